// POSIX specifics of the platform layer (file modes, chmod); the behaviour every platform shares
// is tested in platform_files_test.cpp.
#include "daemon/platform.h"

#if !defined(_WIN32)

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace an::daemon {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class FilesPosixTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()); }

  static std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
  }
  static unsigned mode_of(const fs::path& path) {
    struct stat info {};
    EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
    return info.st_mode & 07777;
  }
  std::vector<std::string> names_in_dir() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  test::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

TEST_F(FilesPosixTest, AtomicWriteReplacesContentAndLeavesNoTemporaryFile) {
  const fs::path file = dir_ / "node.status";
  ASSERT_TRUE(write_file_atomically(file, "first", /*owner_only=*/false));
  ASSERT_TRUE(write_file_atomically(file, "second, longer", /*owner_only=*/false));
  EXPECT_EQ(read(file), "second, longer");
  EXPECT_EQ(mode_of(file), 0644u);
  EXPECT_EQ(names_in_dir(), std::vector<std::string>{"node.status"});
}

TEST_F(FilesPosixTest, AtomicWriteOwnerOnlyIsMode0600) {
  const fs::path file = dir_ / "node.key";
  ASSERT_TRUE(write_file_atomically(file, "secret", /*owner_only=*/true));
  EXPECT_EQ(mode_of(file), 0600u);
  EXPECT_EQ(describe_loose_permissions(file), "");
}

TEST_F(FilesPosixTest, FailedAtomicWriteRemovesItsTemporaryFile) {
  // A directory in the way makes the final rename fail after the temp file was written.
  const fs::path in_the_way = dir_ / "occupied";
  fs::create_directory(in_the_way);
  fs::create_directory(in_the_way / "child");  // non-empty: rename cannot replace it
  auto written = write_file_atomically(in_the_way, "content", false);
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().message.find("occupied"), std::string::npos) << written.error().message;
  EXPECT_EQ(names_in_dir(), std::vector<std::string>{"occupied"});
}

TEST_F(FilesPosixTest, AtomicWriteIntoMissingDirectoryFails) {
  auto written = write_file_atomically(dir_ / "missing" / "file", "x", false);
  ASSERT_FALSE(written);
  EXPECT_FALSE(written.error().message.empty());
}

TEST_F(FilesPosixTest, SecondExclusiveCreatorIsToldTheFileExists) {
  const fs::path file = dir_ / "node.key";
  auto first = create_file_exclusively(file, "winner", /*owner_only=*/true);
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->already_exists);
  auto second = create_file_exclusively(file, "loser", /*owner_only=*/true);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->already_exists);
  EXPECT_EQ(read(file), "winner");
  EXPECT_EQ(mode_of(file), 0600u);
  EXPECT_EQ(names_in_dir(), std::vector<std::string>{"node.key"});
}

TEST_F(FilesPosixTest, MakeDirectoryCreatesParentsAndMakesTheLastPrivate) {
  const fs::path keys = dir_ / "a" / "b" / "keys";
  ASSERT_TRUE(make_directory(keys, /*owner_only=*/true));
  EXPECT_TRUE(fs::is_directory(keys));
  EXPECT_EQ(mode_of(keys), 0700u);
  // Existing directories are accepted and left alone.
  ::chmod(keys.c_str(), 0750);
  ASSERT_TRUE(make_directory(keys, true));
  EXPECT_EQ(mode_of(keys), 0750u);
  ASSERT_TRUE(make_directory(dir_ / "trailing" / "", false));
  EXPECT_TRUE(fs::is_directory(dir_ / "trailing"));
}

TEST_F(FilesPosixTest, MakeDirectoryRefusesAFileInTheWay) {
  ASSERT_TRUE(write_file_atomically(dir_ / "file", "x", false));
  auto made = make_directory(dir_ / "file", false);
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message.find("not a directory"), std::string::npos)
      << made.error().message;
}

TEST_F(FilesPosixTest, LoosePermissionsAreDescribed) {
  const fs::path file = dir_ / "node.key";
  ASSERT_TRUE(write_file_atomically(file, "x", true));
  EXPECT_EQ(describe_loose_permissions(file), "");
  ::chmod(file.c_str(), 0644);
  EXPECT_EQ(describe_loose_permissions(file), "mode 0644 lets group and others read it");
  ::chmod(file.c_str(), 0640);
  EXPECT_EQ(describe_loose_permissions(file), "mode 0640 lets group read it");
  ::chmod(file.c_str(), 0606);
  EXPECT_EQ(describe_loose_permissions(file), "mode 0606 lets others read and write it");
  ::chmod(file.c_str(), 0642);
  EXPECT_EQ(describe_loose_permissions(file), "mode 0642 lets group read it and others write it");
  EXPECT_EQ(describe_loose_permissions(dir_ / "missing"), "");
}

TEST(PrivatePermissionsFix, QuotesThePathForTheShell) {
  EXPECT_EQ(private_permissions_fix("/data dir/keys/node.key"),
            "chmod 600 '/data dir/keys/node.key'");
  EXPECT_EQ(private_permissions_fix("it's"), "chmod 600 'it'\\''s'");
}

TEST_F(FilesPosixTest, ReadFileReadsAtOffsetsAndSurvivesRenameAndDelete) {
  const fs::path file = dir_ / "node.log";
  ASSERT_TRUE(write_file_atomically(file, "0123456789", false));
  auto reader = ReadFile::open(file);
  ASSERT_TRUE(reader);
  auto identity = reader->identity();
  ASSERT_TRUE(identity);
  EXPECT_EQ(file_identity(file), *identity);

  fs::rename(file, dir_ / "node.log.1");
  char buffer[16] = {};
  auto count = reader->read_at(3, buffer, 4);
  ASSERT_TRUE(count);
  EXPECT_EQ(std::string(buffer, *count), "3456");

  fs::remove(dir_ / "node.log.1");
  count = reader->read_at(8, buffer, sizeof buffer);
  ASSERT_TRUE(count);
  EXPECT_EQ(std::string(buffer, *count), "89");
  count = reader->read_at(10, buffer, sizeof buffer);
  ASSERT_TRUE(count);
  EXPECT_EQ(*count, 0u);
  auto size = reader->size();
  ASSERT_TRUE(size);
  EXPECT_EQ(*size, 10u);
}

}  // namespace
}  // namespace an::daemon

#endif  // !defined(_WIN32)
