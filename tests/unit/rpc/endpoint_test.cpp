#include "rpc/endpoint.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "support/temp_dir.h"

namespace an::rpc {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

void write_file(const std::filesystem::path& path, const std::string& content, mode_t mode) {
  std::ofstream(path, std::ios::binary) << content;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

TEST(EndpointTest, DefaultIsTheSocketInTheDataDirectory) {
  daemon::DataPaths paths("/srv/node1");
  auto endpoint = choose_endpoint(paths, "");
  EXPECT_EQ(endpoint.bind_address, "unix:/srv/node1/api.sock");
  ASSERT_TRUE(endpoint.socket_path);
  EXPECT_FALSE(endpoint.requires_token);
}

TEST(EndpointTest, APathTooLongForASocketFallsBackToLoopbackTcp) {
  daemon::DataPaths paths("/srv/" + std::string(120, 'x'));
  auto endpoint = choose_endpoint(paths, "");
  EXPECT_EQ(endpoint.bind_address, "127.0.0.1:0");
  EXPECT_FALSE(endpoint.socket_path);
  EXPECT_FALSE(endpoint.requires_token);
}

TEST(EndpointTest, OnlyANonLoopbackBindRequiresTheToken) {
  daemon::DataPaths paths("/srv/node1");
  for (const char* local : {"127.0.0.1:5000", "127.8.9.1:1", "[::1]:5000", "localhost:5000"}) {
    auto endpoint = choose_endpoint(paths, local);
    EXPECT_EQ(endpoint.bind_address, local);
    EXPECT_FALSE(endpoint.requires_token) << local;
  }
  for (const char* remote : {"0.0.0.0:5000", "[::]:5000", "10.0.0.2:5000", "node.example:1"}) {
    EXPECT_TRUE(choose_endpoint(paths, remote).requires_token) << remote;
  }
}

TEST(EndpointTest, AMissingTokenIsCreatedPrivateAndThenReused) {
  test::TempDir dir;
  const auto path = dir.path() / "api.token";
  auto token = load_or_create_token(path);
  ASSERT_TRUE(token) << token.error().message;
  EXPECT_EQ(token->size(), 2 * kTokenBytes);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  auto again = load_or_create_token(path);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *token);
  auto read = read_token(path);
  ASSERT_TRUE(read && read->has_value());
  EXPECT_EQ(**read, *token);
}

TEST(EndpointTest, AnOperatorsTokenIsUsedAsWritten) {
  test::TempDir dir;
  const auto path = dir.path() / "api.token";
  write_file(path, "my-Token_1.2~+/=\n", 0600);
  auto token = load_or_create_token(path);
  ASSERT_TRUE(token) << token.error().message;
  EXPECT_EQ(*token, "my-Token_1.2~+/=");
}

TEST(EndpointTest, BadTokenFilesAreRefusedAndLeftAsTheyAre) {
  test::TempDir dir;
  const auto path = dir.path() / "api.token";
  struct Case {
    std::string content;
    mode_t mode;
    std::string expected;
  };
  for (const auto& bad :
       {Case{"", 0600, "is empty"}, Case{"\n", 0600, "is empty"},
        Case{"two words\n", 0600, "is not a token"}, Case{"secret\x01\n", 0600, "is not a token"},
        Case{std::string(5000, 'a'), 0600, "too long"},
        Case{"readable-by-others\n", 0644, "must be private"}}) {
    write_file(path, bad.content, bad.mode);
    auto token = load_or_create_token(path);
    ASSERT_FALSE(token) << bad.content;
    EXPECT_NE(token.error().message.find(bad.expected), std::string::npos) << token.error().message;
    EXPECT_NE(token.error().message.find(path.string()), std::string::npos)
        << token.error().message;
    EXPECT_EQ(read_file(path), bad.content);
  }
}

TEST(EndpointTest, ClientsSeeNoTokenWhenThereIsNoFile) {
  test::TempDir dir;
  auto token = read_token(dir.path() / "api.token");
  ASSERT_TRUE(token);
  EXPECT_FALSE(token->has_value());
}

}  // namespace
}  // namespace an::rpc
