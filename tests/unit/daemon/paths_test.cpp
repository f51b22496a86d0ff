#include "daemon/paths.h"

#include <gtest/gtest.h>
#if !defined(_WIN32)
#include <sys/stat.h>
#endif

#include "daemon/platform.h"
#include "support/temp_dir.h"

namespace an::daemon {
namespace {

namespace fs = std::filesystem;

// An absolute directory of this platform: /srv/node1, or C:\srv\node1 on Windows (where
// "/srv" has no drive and is not absolute).
fs::path absolute_example() {
#if defined(_WIN32)
  return fs::path("C:\\") / "srv" / "node1";
#else
  return fs::path("/") / "srv" / "node1";
#endif
}

TEST(PathsTest, LayoutOfTheDataDirectory) {
  const fs::path root = absolute_example();
  DataPaths paths(root);
  EXPECT_EQ(paths.data_dir, root);
  EXPECT_EQ(paths.logs_dir, root / "logs");
  EXPECT_EQ(paths.log_file, root / "logs" / "node.log");
  EXPECT_EQ(paths.pid_file, root / "node.pid");
  EXPECT_EQ(paths.status_file, root / "node.status");
  EXPECT_EQ(paths.lock_file, root / "node.lock");
  EXPECT_EQ(paths.config_file, root / "config.json");
  EXPECT_EQ(paths.default_key_file, root / "keys" / "node.key");
#if !defined(_WIN32)
  EXPECT_EQ(paths.log_file, "/srv/node1/logs/node.log");
#else
  EXPECT_EQ(paths.log_file.native(), L"C:\\srv\\node1\\logs\\node.log");
#endif
}

TEST(PathsTest, RelativeDirectoriesBecomeAbsoluteAndNormal) {
  auto cwd = fs::current_path();
  EXPECT_EQ(DataPaths("./node1").data_dir, cwd / "node1");
  EXPECT_EQ(DataPaths("node1/").data_dir, cwd / "node1");
  EXPECT_EQ(DataPaths("a/../b/./c").data_dir, cwd / "b" / "c");
  const fs::path root = cwd.root_path();
  EXPECT_EQ(DataPaths(root).data_dir, root);
}

#if defined(_WIN32)
TEST(PathsTest, ForwardSlashesBecomeBackslashesOnWindows) {
  EXPECT_EQ(DataPaths("C:/srv/node1/").data_dir.native(), L"C:\\srv\\node1");
  EXPECT_EQ(DataPaths("C:/srv/node1").log_file, absolute_example() / "logs" / "node.log");
}
#endif

TEST(PathsTest, DirectoryCreationWithPrivateMode) {
  test::TempDir temp;
  auto nested = temp.path() / "a" / "b" / "keys";
  ASSERT_TRUE(make_directory(nested, true));
  EXPECT_TRUE(fs::is_directory(nested));
#if !defined(_WIN32)
  struct stat info {};
  ASSERT_EQ(::stat(nested.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
#endif
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
