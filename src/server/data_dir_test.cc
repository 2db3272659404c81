#include "server/data_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

namespace pkgcast::server {
namespace {
namespace fs = std::filesystem;

class DataDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pkgcast-datadir-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
  }
  void TearDown() override {
    ::chmod(base_.c_str(), 0755);
    fs::remove_all(base_);
  }
  static mode_t mode_of(const fs::path& p) {
    struct stat st {};
    ::stat(p.c_str(), &st);
    return st.st_mode & 07777;
  }
  fs::path base_;
};

TEST_F(DataDirTest, CreatesNestedDirectoryPrivate) {
  const mode_t old = ::umask(0);
  const fs::path dir = base_ / "a" / "b" / "pkgcast";
  ASSERT_TRUE(ensure_private_dir(dir).ok());
  ::umask(old);
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(mode_of(dir), 0700u);
  EXPECT_EQ(mode_of(base_ / "a"), 0755u);
  EXPECT_TRUE(ensure_private_dir(dir).ok());  // idempotent
}

TEST_F(DataDirTest, ExistingFileIsNotADirectory) {
  std::ofstream(base_ / "file") << "x";
  auto s = ensure_private_dir(base_ / "file");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, WbemCode::kInvalidParameter);
  EXPECT_TRUE(fs::is_regular_file(base_ / "file"));
}

}  // namespace
}  // namespace pkgcast::server
