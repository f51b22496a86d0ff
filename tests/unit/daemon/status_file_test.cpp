#include "daemon/status_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/temp_dir.h"

namespace an::daemon {
namespace {

using std::chrono::seconds;

NodeStatus sample_status() {
  NodeStatus status;
  status.running = true;
  status.pid = 4242;
  status.start_time = std::chrono::system_clock::time_point(seconds(1795000000));
  status.node_id = "12D3KooWEUV2VXTpixB4s76Jac4XZE2cegCkqnMbizLkfh3ffZED";
  status.version = "0.1.0";
  status.role = "relay";
  status.listen_addrs = {
      "/ip4/127.0.0.1/tcp/9000/p2p/12D3KooWEUV2VXTpixB4s76Jac4XZE2cegCkqnMbizLkfh3ffZED"};
  status.peer_count = 5;
  status.data_dir = "/var/lib/agentnetwork";
  status.log_file = "/var/lib/agentnetwork/logs/node.log";
  status.pid_file = "/var/lib/agentnetwork/node.pid";
  status.launch_args = {"--data", "/var/lib/agentnetwork", "--role", "relay"};
  status.updated_at = status.start_time + seconds(9015);
  return status;
}

TEST(UptimeTest, FormatsLikeGoDurations) {
  EXPECT_EQ(format_uptime(seconds(0)), "0s");
  EXPECT_EQ(format_uptime(seconds(7)), "7s");
  EXPECT_EQ(format_uptime(seconds(240)), "4m0s");
  EXPECT_EQ(format_uptime(seconds(2 * 3600 + 30 * 60 + 15)), "2h30m15s");
  EXPECT_EQ(format_uptime(seconds(100 * 3600)), "100h0m0s");
  EXPECT_EQ(format_uptime(seconds(-3)), "0s");
}

TEST(Rfc3339Test, RoundTripsAndAcceptsGoForms) {
  auto time = std::chrono::system_clock::time_point(seconds(1795000000));
  EXPECT_EQ(format_rfc3339(time), "2026-11-18T11:06:40Z");
  auto parsed = parse_rfc3339("2026-11-18T11:06:40Z");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, time);
  // Go writes local offsets and nanoseconds.
  auto with_offset = parse_rfc3339("2026-11-18T19:06:40.123456789+08:00");
  ASSERT_TRUE(with_offset.has_value()) << with_offset.error().message;
  EXPECT_EQ(std::chrono::duration_cast<seconds>(*with_offset - time).count(), 0);
  auto leap_day = parse_rfc3339("2024-02-29T00:00:00Z");
  ASSERT_TRUE(leap_day.has_value());
  EXPECT_EQ(format_rfc3339(*leap_day), "2024-02-29T00:00:00Z");
}

TEST(Rfc3339Test, RejectsMalformedTimes) {
  for (const char* bad :
       {"", "2026-11-18", "2026-11-18T11:06:40", "2026-13-18T08:26:40Z", "2026-11-18T25:26:40Z",
        "2026-11-18T11:06:40Zjunk", "2026-11-18T08:26:40.Z", "2026-11-18T08:26:40+0800",
        "20261118T082640Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
}

TEST(StatusFileTest, JsonHasEveryKeyOfTheSpec) {
  auto json = status_to_json(sample_status(), sample_status().start_time + seconds(9015));
  for (const char* key : {"running", "pid", "start_time", "uptime", "node_id", "version", "role",
                          "listen_addrs", "peer_count", "data_dir", "log_file", "pid_file"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_EQ(json["uptime"], "2h30m15s");
  EXPECT_EQ(json["start_time"], "2026-11-18T11:06:40Z");
  EXPECT_EQ(json["pid"], 4242);
}

TEST(StatusFileTest, WriteThenReadRoundTrips) {
  test::TempDir dir;
  auto path = dir.path() / "node.status";
  auto status = sample_status();
  ASSERT_TRUE(write_status_file(path, status));
  auto read = read_status_file(path);
  ASSERT_TRUE(read.has_value()) << read.error().message;
  EXPECT_EQ(read->pid, status.pid);
  EXPECT_EQ(read->node_id, status.node_id);
  EXPECT_EQ(read->role, status.role);
  EXPECT_EQ(read->listen_addrs, status.listen_addrs);
  EXPECT_EQ(read->peer_count, status.peer_count);
  EXPECT_EQ(read->launch_args, status.launch_args);
  EXPECT_EQ(read->start_time, status.start_time);
  EXPECT_EQ(read->updated_at, status.updated_at);
  // No temporary file is left beside it.
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path()))
    ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(StatusFileTest, RewriteReplacesTheWholeFile) {
  test::TempDir dir;
  auto path = dir.path() / "node.status";
  auto status = sample_status();
  status.listen_addrs.assign(50, status.listen_addrs.front());
  ASSERT_TRUE(write_status_file(path, status));
  status.listen_addrs.resize(1);
  status.peer_count = 6;
  ASSERT_TRUE(write_status_file(path, status));
  auto read = read_status_file(path);
  ASSERT_TRUE(read.has_value()) << read.error().message;
  EXPECT_EQ(read->listen_addrs.size(), 1u);
  EXPECT_EQ(read->peer_count, 6u);
}

TEST(StatusFileTest, MalformedFilesAreErrors) {
  test::TempDir dir;
  auto path = dir.path() / "node.status";
  EXPECT_FALSE(read_status_file(path).has_value());  // missing
  for (const char* content : {"", "{", "[]", "{\"running\":true}", "{\"running\":\"yes\"}"}) {
    std::ofstream(path, std::ios::trunc) << content;
    auto read = read_status_file(path);
    EXPECT_FALSE(read.has_value()) << content;
  }
}

TEST(PidFileTest, WriteReadAndRejectGarbage) {
  test::TempDir dir;
  auto path = dir.path() / "node.pid";
  auto missing = read_pid_file(path);
  ASSERT_TRUE(missing.has_value());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(write_pid_file(path, 12345));
  auto read = read_pid_file(path);
  ASSERT_TRUE(read.has_value());
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ(**read, 12345);
  for (const char* content : {"", "abc", "-5", "0", "12 34", "99999999999999999999999"}) {
    std::ofstream(path, std::ios::trunc) << content;
    EXPECT_FALSE(read_pid_file(path).has_value()) << content;
  }
}

}  // namespace
}  // namespace an::daemon
