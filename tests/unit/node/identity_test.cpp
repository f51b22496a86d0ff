// The key file: creation modes, reloading, refusal of bad files without touching them, keygen
// with and without -force, concurrent first starts. Runs in a fresh temporary directory.
#include "node/identity.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/platform.h"
#include "p2p/crypto/key.h"
#include "p2p/crypto/keys.h"
#include "support/temp_dir.h"

namespace an::node {
namespace {

namespace fs = std::filesystem;

// libp2p/specs peer-ids.md test vectors: an Ed25519 private key as go-libp2p stores it, and
// the peer ID it yields; a secp256k1 private key and its peer ID.
constexpr std::string_view kSpecEd25519Private =
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144"
    "b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
constexpr std::string_view kSpecEd25519PeerId =
    "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";
constexpr std::string_view kSpecSecp256k1Private =
    "0802122053dadf1d5a164d6b4acdb15e24aa4c5b1d3461bdbd42abedb0a4404d56ced8fb";
constexpr std::string_view kSpecSecp256k1PeerId =
    "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY";

std::string from_hex(std::string_view hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return bytes;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(stream), {});
}

// The content of small files, the size of big ones: enough to notice any change we could make.
std::string fingerprint(const fs::path& path) {
  const auto size = fs::file_size(path);
  return size > (1u << 20) ? "size " + std::to_string(size) : read_bytes(path);
}

void write_bytes(const fs::path& path, const std::string& bytes, mode_t mode = 0600) {
  {
    std::ofstream stream(path, std::ios::binary | std::ios::trunc);
    stream << bytes;
  }
  ::chmod(path.c_str(), mode);
}

mode_t mode_of(const fs::path& path) {
  struct stat info {};
  ::stat(path.c_str(), &info);
  return info.st_mode & 07777;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(temp_.path().empty()); }
  fs::path path(const std::string& name) const { return temp_.path() / name; }

  // Asserts that loading `file` fails with a message containing `expected`, and that neither
  // load_identity nor load_or_create_identity changed the file.
  void expect_refused(const fs::path& file, const std::string& expected) {
    const std::string before = fingerprint(file);
    const mode_t mode_before = mode_of(file);
    auto loaded = load_identity(file);
    ASSERT_FALSE(loaded) << "loaded " << loaded->peer_id.to_string();
    EXPECT_TRUE(contains(loaded.error().message, expected)) << loaded.error().message;
    auto created = load_or_create_identity(file);
    ASSERT_FALSE(created);
    EXPECT_EQ(created.error().message, loaded.error().message);
    EXPECT_EQ(fingerprint(file), before);
    EXPECT_EQ(mode_of(file), mode_before);
  }

  test::TempDir temp_;
};

TEST_F(IdentityTest, CreatesAPrivateKeyFileInAPrivateDirectory) {
  const fs::path file = path("data/keys/node.key");
  auto created = load_or_create_identity(file);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_TRUE(created->second);
  EXPECT_EQ(mode_of(file), 0600u);
  EXPECT_EQ(mode_of(file.parent_path()), 0700u);
  EXPECT_EQ(created->first.peer_id.to_string().substr(0, 8), "12D3KooW");
  EXPECT_EQ(fs::file_size(file), 68u);  // 0x08 0x01 0x12 0x40 + seed + public key

  auto again = load_or_create_identity(file);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(again->second);
  EXPECT_EQ(again->first.peer_id, created->first.peer_id);

  auto loaded = load_identity(file);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->peer_id, created->first.peer_id);
  EXPECT_EQ(loaded->key.public_key(), created->first.key.public_key());
  EXPECT_EQ(p2p::PeerId::from_public_key(loaded->key.public_key()), loaded->peer_id);
}

TEST_F(IdentityTest, LoadsAGoLibp2pKeyFile) {
  const fs::path file = path("node.key");
  write_bytes(file, from_hex(kSpecEd25519Private));
  auto loaded = load_identity(file);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->peer_id.to_string(), kSpecEd25519PeerId);
}

TEST_F(IdentityTest, MissingFile) {
  const fs::path file = path("absent.key");
  auto loaded = load_identity(file);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().message, "key file " + file.string() + " does not exist");
  EXPECT_FALSE(fs::exists(file));
}

TEST_F(IdentityTest, RefusesCorruptContent) {
  const fs::path file = path("node.key");
  write_bytes(file, "this is not a key\n");
  expect_refused(file, "key file " + file.string() + ": not a libp2p private key: ");

  std::string truncated = from_hex(kSpecEd25519Private);
  truncated.resize(40);
  write_bytes(file, truncated);
  expect_refused(file, "not a libp2p private key: truncated");

  std::string wrong_public_half = from_hex(kSpecEd25519Private);
  wrong_public_half.back() ^= 1;
  write_bytes(file, wrong_public_half);
  expect_refused(file, "corrupt key");

  std::string trailing = from_hex(kSpecEd25519Private) + '\n';
  write_bytes(file, trailing);
  expect_refused(file, "not a libp2p private key: ");
}

TEST_F(IdentityTest, RefusesAnEmptyFile) {
  const fs::path file = path("node.key");
  write_bytes(file, "");
  expect_refused(file, "key file " + file.string() + " is empty");
}

TEST_F(IdentityTest, LoadsKeyFilesOfEveryType) {
  const fs::path file = path("node.key");
  write_bytes(file, from_hex(kSpecSecp256k1Private));
  auto loaded = load_identity(file);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->peer_id.to_string(), kSpecSecp256k1PeerId);
  EXPECT_EQ(loaded->key.type(), p2p::KeyType::kSecp256k1);

  for (const auto type : {p2p::KeyType::kRsa, p2p::KeyType::kEcdsa}) {
    auto key = p2p::PrivateKey::generate(type);
    ASSERT_TRUE(key);
    auto encoded = key->to_protobuf();
    ASSERT_TRUE(encoded);
    write_bytes(file, std::string(encoded->begin(), encoded->end()));
    auto reloaded = load_identity(file);
    ASSERT_TRUE(reloaded) << reloaded.error().message;
    EXPECT_EQ(reloaded->peer_id, key->peer_id());
    EXPECT_EQ(reloaded->key.type(), type);
  }
}

TEST_F(IdentityTest, RefusesAWeakRsaKey) {
  // A libp2p RSA private key of 1024 bits is refused: no node runs with it.
  EVP_PKEY* weak = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024});
  ASSERT_NE(weak, nullptr);
  unsigned char* der = nullptr;
  const int size = i2d_PrivateKey(weak, &der);
  ASSERT_GT(size, 0);
  const p2p::Bytes encoded = p2p::encode_key_message(
      p2p::KeyType::kRsa, p2p::ByteView(der, static_cast<std::size_t>(size)));
  OPENSSL_free(der);
  EVP_PKEY_free(weak);
  const fs::path file = path("node.key");
  write_bytes(file, std::string(encoded.begin(), encoded.end()));
  expect_refused(file, "invalid RSA private key: 1024 bits, outside 2048 to 8192");
}

TEST_F(IdentityTest, KeygenMakesKeysOfEveryType) {
  const std::pair<p2p::KeyType, std::string_view> cases[] = {{p2p::KeyType::kEd25519, "12D3KooW"},
                                                             {p2p::KeyType::kRsa, "Qm"},
                                                             {p2p::KeyType::kSecp256k1, "16Uiu2"},
                                                             {p2p::KeyType::kEcdsa, "Qm"}};
  for (const auto& [type, prefix] : cases) {
    const fs::path file = path(std::string(p2p::key_type_name(type)) + ".key");
    auto generated = generate_identity(file, false, type);
    ASSERT_TRUE(generated) << generated.error().message;
    EXPECT_EQ(generated->key.type(), type);
    EXPECT_TRUE(generated->peer_id.to_string().starts_with(prefix))
        << generated->peer_id.to_string();
    EXPECT_EQ(mode_of(file), 0600u);
    auto loaded = load_identity(file);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->peer_id, generated->peer_id);
  }
  const fs::path rsa_file = path("rsa3072.key");
  auto rsa = generate_identity(rsa_file, false, p2p::KeyType::kRsa, 3072);
  ASSERT_TRUE(rsa) << rsa.error().message;
  auto signature = rsa->key.sign(p2p::Bytes{1, 2, 3});
  ASSERT_TRUE(signature);
  EXPECT_EQ(signature->size(), 384u);

  const fs::path weak_file = path("weak.key");
  auto weak = generate_identity(weak_file, false, p2p::KeyType::kRsa, 1024);
  ASSERT_FALSE(weak);
  EXPECT_TRUE(contains(weak.error().message, "2048 to 8192")) << weak.error().message;
  EXPECT_FALSE(fs::exists(weak_file));
}

TEST_F(IdentityTest, RefusesAFileOthersCanReadBeforeParsingIt) {
  const fs::path file = path("node.key");
  write_bytes(file, from_hex(kSpecEd25519Private), 0640);
  const std::string loose = daemon::describe_loose_permissions(file);
  ASSERT_FALSE(loose.empty());
  expect_refused(file, loose);
  expect_refused(file, daemon::private_permissions_fix(file));

  // Garbage with loose permissions: the permission problem is reported, not the content.
  write_bytes(file, "garbage", 0604);
  auto loaded = load_identity(file);
  ASSERT_FALSE(loaded);
  EXPECT_TRUE(contains(loaded.error().message, "refusing to use key file"))
      << loaded.error().message;
  EXPECT_FALSE(contains(loaded.error().message, "not a libp2p")) << loaded.error().message;
}

TEST_F(IdentityTest, RefusesAnUnreadableFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  const fs::path file = path("node.key");
  write_bytes(file, from_hex(kSpecEd25519Private), 0200);
  expect_refused(file, "cannot read key file " + file.string() + ": Permission denied");
}

TEST_F(IdentityTest, RefusesAFileInADirectoryWithoutAccess) {
  if (::geteuid() == 0) GTEST_SKIP() << "root passes directory permissions";
  const fs::path directory = path("locked");
  fs::create_directory(directory);
  const fs::path file = directory / "node.key";
  write_bytes(file, from_hex(kSpecEd25519Private));
  ::chmod(directory.c_str(), 0000);
  auto loaded = load_identity(file);
  auto created = load_or_create_identity(file);
  ::chmod(directory.c_str(), 0700);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().message,
            "cannot read key file " + file.string() + ": Permission denied");
  ASSERT_FALSE(created);
  EXPECT_EQ(read_bytes(file), from_hex(kSpecEd25519Private));
}

TEST_F(IdentityTest, RefusesADirectory) {
  const fs::path directory = path("node.key");
  fs::create_directory(directory);
  for (auto result : {load_identity(directory),
                      load_or_create_identity(directory).map([](auto pair) { return pair.first; }),
                      generate_identity(directory, true)}) {
    ASSERT_FALSE(result);
    EXPECT_TRUE(contains(result.error().message, "is a directory")) << result.error().message;
  }
  EXPECT_TRUE(fs::is_directory(directory));
}

TEST_F(IdentityTest, RefusesAHugeFile) {
  const fs::path file = path("node.key");
  write_bytes(file, "");
  fs::resize_file(file, std::uintmax_t{1} << 30);  // Sparse: nothing is written or read.
  expect_refused(file, "is 1073741824 bytes, too large for a key");

  fs::resize_file(file, kMaxKeyFileSize + 1);
  expect_refused(file, "too large for a key");
}

TEST_F(IdentityTest, KeygenCreatesANewFile) {
  const fs::path file = path("new/node.key");
  auto generated = generate_identity(file, false);
  ASSERT_TRUE(generated) << generated.error().message;
  EXPECT_EQ(mode_of(file), 0600u);
  EXPECT_EQ(mode_of(file.parent_path()), 0700u);
  auto loaded = load_identity(file);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->peer_id, generated->peer_id);
  EXPECT_FALSE(fs::exists(path("new/node.key.bak")));
}

TEST_F(IdentityTest, KeygenWithoutForceRefusesAndNamesTheCurrentPeer) {
  const fs::path file = path("node.key");
  write_bytes(file, from_hex(kSpecEd25519Private));
  auto generated = generate_identity(file, false);
  ASSERT_FALSE(generated);
  EXPECT_TRUE(contains(generated.error().message, file.string())) << generated.error().message;
  EXPECT_TRUE(contains(generated.error().message, std::string(kSpecEd25519PeerId)));
  EXPECT_TRUE(contains(generated.error().message, "-force"));
  EXPECT_EQ(read_bytes(file), from_hex(kSpecEd25519Private));
  EXPECT_FALSE(fs::exists(path("node.key.bak")));

  write_bytes(file, "corrupt");
  auto over_corrupt = generate_identity(file, false);
  ASSERT_FALSE(over_corrupt);
  EXPECT_TRUE(contains(over_corrupt.error().message, "unusable")) << over_corrupt.error().message;
  EXPECT_TRUE(contains(over_corrupt.error().message, "-force"));
  EXPECT_EQ(read_bytes(file), "corrupt");
}

TEST_F(IdentityTest, KeygenWithForceKeepsTheOldFileAsBak) {
  const fs::path file = path("node.key");
  const fs::path backup = path("node.key.bak");
  write_bytes(file, from_hex(kSpecEd25519Private));
  write_bytes(backup, "an older backup");

  auto generated = generate_identity(file, true);
  ASSERT_TRUE(generated) << generated.error().message;
  EXPECT_NE(generated->peer_id.to_string(), kSpecEd25519PeerId);
  EXPECT_EQ(read_bytes(backup), from_hex(kSpecEd25519Private));
  EXPECT_EQ(mode_of(file), 0600u);
  auto loaded = load_identity(file);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->peer_id, generated->peer_id);

  // A corrupt file may be replaced too; it is kept as the backup.
  write_bytes(file, "corrupt");
  auto over_corrupt = generate_identity(file, true);
  ASSERT_TRUE(over_corrupt) << over_corrupt.error().message;
  EXPECT_EQ(read_bytes(backup), "corrupt");
  EXPECT_TRUE(load_identity(file));
}

TEST_F(IdentityTest, ConcurrentFirstStartsAgreeOnOneKey) {
  const fs::path file = path("race/node.key");
  constexpr int kThreads = 8;
  std::vector<Expected<std::pair<Identity, bool>>> results(kThreads, fail("not run"));
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back(
          [&, i] { results[static_cast<std::size_t>(i)] = load_or_create_identity(file); });
    }
    for (auto& thread : threads)
      thread.join();
  }
  std::set<std::string> peer_ids;
  int creators = 0;
  for (const auto& result : results) {
    ASSERT_TRUE(result) << result.error().message;
    peer_ids.insert(result->first.peer_id.to_string());
    creators += result->second ? 1 : 0;
  }
  EXPECT_EQ(peer_ids.size(), 1u);
  EXPECT_EQ(creators, 1);
  auto loaded = load_identity(file);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->peer_id.to_string(), *peer_ids.begin());
  // No temporary files are left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(file.parent_path()), fs::directory_iterator()), 1);
}

}  // namespace
}  // namespace an::node
