// The keygen command: -type and -bits, their refusals, and key files of every type that load
// afterwards. Runs in a fresh temporary directory; the command prints to stdout and stderr.
#include <gtest/gtest.h>

#include <string>

#include "app/cli.h"
#include "app/commands.h"
#include "node/identity.h"
#include "support/temp_dir.h"

namespace an::app {
namespace {

namespace fs = std::filesystem;

class KeygenCommandTest : public ::testing::Test {
 protected:
  int keygen(const std::string& file, Words extra) {
    Words words{"-data", directory.path().string(), "-key", (directory.path() / file).string()};
    words.insert(words.end(), extra.begin(), extra.end());
    return command_keygen(words);
  }
  fs::path path(const std::string& file) const { return directory.path() / file; }

  test::TempDir directory;
};

TEST_F(KeygenCommandTest, EveryTypeMakesAKeyFileThatLoads) {
  const std::pair<std::string, p2p::KeyType> cases[] = {
      {"ed25519", p2p::KeyType::kEd25519},
      {"rsa", p2p::KeyType::kRsa},
      {"secp256k1", p2p::KeyType::kSecp256k1},
      {"ecdsa", p2p::KeyType::kEcdsa},
  };
  for (const auto& [name, type] : cases) {
    ASSERT_EQ(keygen(name + ".key", {"-type", name}), kExitOk) << name;
    auto loaded = node::load_identity(path(name + ".key"));
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->key.type(), type) << name;
  }
  // The default is Ed25519.
  ASSERT_EQ(keygen("default.key", {}), kExitOk);
  auto loaded = node::load_identity(path("default.key"));
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->key.type(), p2p::KeyType::kEd25519);
}

TEST_F(KeygenCommandTest, RsaBits) {
  ASSERT_EQ(keygen("rsa.key", {"-type", "rsa", "-bits", "3072"}), kExitOk);
  auto loaded = node::load_identity(path("rsa.key"));
  ASSERT_TRUE(loaded) << loaded.error().message;
  auto signature = loaded->key.sign(p2p::Bytes{1});
  ASSERT_TRUE(signature);
  EXPECT_EQ(signature->size(), 384u);
}

TEST_F(KeygenCommandTest, RefusesBadTypesAndSizesWithoutWritingAFile) {
  const Words refused[] = {
      {"-type", "dsa"},
      {"-type", "rsa", "-bits", "1024"},
      {"-type", "rsa", "-bits", "8193"},
      {"-type", "rsa", "-bits", "2048x"},
      {"-type", "rsa", "-bits", "-2048"},
      {"-type", "ecdsa", "-bits", "2048"},
      {"-bits", "4096"},
  };
  for (const auto& words : refused) {
    EXPECT_EQ(keygen("refused.key", words), kExitUsage) << words.back();
    EXPECT_FALSE(fs::exists(path("refused.key"))) << words.back();
  }
}

}  // namespace
}  // namespace an::app
