#include <gtest/gtest.h>

#include "node/node.h"

namespace an::node {
namespace {

TEST(ReadyReportTest, SuccessRoundTrips) {
  ReadyReport report;
  report.ok = true;
  report.pid = 77;
  report.node_id = "12D3KooW";
  report.listen_addrs = {"/ip4/127.0.0.1/tcp/1/p2p/12D3KooW"};
  report.log_file = "/d/logs/node.log";
  auto decoded = decode_ready_report(encode_ready_report(report));
  EXPECT_TRUE(decoded.ok);
  EXPECT_EQ(decoded.pid, 77);
  EXPECT_EQ(decoded.node_id, report.node_id);
  EXPECT_EQ(decoded.listen_addrs, report.listen_addrs);
  EXPECT_EQ(decoded.log_file, report.log_file);
}

TEST(ReadyReportTest, FailuresAndSilenceAreFailures) {
  ReadyReport report;
  report.error = "already running (PID 5)";
  report.running_pid = 5;
  auto decoded = decode_ready_report(encode_ready_report(report));
  EXPECT_FALSE(decoded.ok);
  EXPECT_EQ(decoded.error, report.error);
  EXPECT_EQ(decoded.running_pid, 5);

  auto silent = decode_ready_report("");
  EXPECT_FALSE(silent.ok);
  EXPECT_NE(silent.error.find("exited before reporting"), std::string::npos);
  auto garbled = decode_ready_report("{\"ok\":tru");
  EXPECT_FALSE(garbled.ok);
  auto no_reason = decode_ready_report("{\"ok\":false}");
  EXPECT_FALSE(no_reason.ok);
  EXPECT_FALSE(no_reason.error.empty());
}

}  // namespace
}  // namespace an::node
