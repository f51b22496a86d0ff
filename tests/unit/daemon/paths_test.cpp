#include "daemon/paths.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/platform.h"
#include "support/temp_dir.h"

namespace an::daemon {
namespace {

TEST(PathsTest, LayoutOfTheDataDirectory) {
  DataPaths paths("/srv/node1");
  EXPECT_EQ(paths.data_dir, "/srv/node1");
  EXPECT_EQ(paths.logs_dir, "/srv/node1/logs");
  EXPECT_EQ(paths.log_file, "/srv/node1/logs/node.log");
  EXPECT_EQ(paths.pid_file, "/srv/node1/node.pid");
  EXPECT_EQ(paths.status_file, "/srv/node1/node.status");
  EXPECT_EQ(paths.lock_file, "/srv/node1/node.lock");
  EXPECT_EQ(paths.config_file, "/srv/node1/config.json");
  EXPECT_EQ(paths.default_key_file, "/srv/node1/keys/node.key");
}

TEST(PathsTest, RelativeDirectoriesBecomeAbsoluteAndNormal) {
  auto cwd = std::filesystem::current_path();
  EXPECT_EQ(DataPaths("./node1").data_dir, cwd / "node1");
  EXPECT_EQ(DataPaths("node1/").data_dir, cwd / "node1");
  EXPECT_EQ(DataPaths("a/../b/./c").data_dir, cwd / "b" / "c");
  EXPECT_EQ(DataPaths("/").data_dir, "/");
}

TEST(PathsTest, DirectoryCreationWithPrivateMode) {
  test::TempDir temp;
  auto nested = temp.path() / "a" / "b" / "keys";
  ASSERT_TRUE(make_directory(nested, true));
  struct stat info {};
  ASSERT_EQ(::stat(nested.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
  // Creating again is fine and leaves it as it is.
  ASSERT_TRUE(make_directory(nested, true));
  ASSERT_TRUE(make_directory(temp.path() / "plain", false));
  EXPECT_TRUE(std::filesystem::is_directory(temp.path() / "plain"));
}

TEST(PathsTest, DirectoryCreationFailsOverAFile) {
  test::TempDir temp;
  auto file = temp.path() / "file";
  ASSERT_TRUE(write_file_atomically(file, "x", false));
  auto made = make_directory(file / "sub", false);
  EXPECT_FALSE(made.has_value());
}

}  // namespace
}  // namespace an::daemon
