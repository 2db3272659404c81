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

TEST_F(DataDirTest, ADirectoryOthersCanWriteIsNotTrusted) {
  const fs::path dir = base_ / "data";
  ASSERT_TRUE(ensure_private_dir(dir).ok());
  EXPECT_TRUE(check_trusted_dir(dir).ok()) << check_trusted_dir(dir).error().to_string();
  for (mode_t mode : {0777, 0770, 0702, 0722}) {
    ::chmod(dir.c_str(), mode);
    auto s = check_trusted_dir(dir);
    ASSERT_FALSE(s.ok()) << std::oct << mode;
    EXPECT_EQ(s.error().code, WbemCode::kAccessDenied);
    EXPECT_NE(s.error().message.find(dir.string()), std::string::npos) << s.error().message;
    // Says who can write it: the group, or every user.
    const char* who = (mode & S_IWOTH) != 0 ? "every user can write" : "its group can write";
    EXPECT_NE(s.error().message.find(who), std::string::npos) << std::oct << mode << ": " << s.error().message;
  }
  ::chmod(dir.c_str(), 0755);  // readable by others is not writable by them
  EXPECT_TRUE(check_trusted_dir(dir).ok());
}

TEST_F(DataDirTest, AParentOthersCanWriteNeedsTheStickyBit) {
  const fs::path parent = base_ / "shared";
  const fs::path dir = parent / "data";
  ASSERT_TRUE(ensure_private_dir(dir).ok());
  ::chmod(parent.c_str(), 0777);
  auto s = check_trusted_dir(dir);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, WbemCode::kAccessDenied);
  EXPECT_NE(s.error().message.find("sticky"), std::string::npos) << s.error().message;
  ::chmod(parent.c_str(), 01777);
  EXPECT_TRUE(check_trusted_dir(dir).ok());
  // Through a link, the real path is what is judged.
  fs::create_directory_symlink(dir, base_ / "link");
  EXPECT_TRUE(check_trusted_dir(base_ / "link").ok());
  ::chmod(parent.c_str(), 0777);
  EXPECT_FALSE(check_trusted_dir(base_ / "link").ok());
  ::chmod(parent.c_str(), 0755);
}

TEST_F(DataDirTest, PrivateFilesAreRegularOwnedAndClosed) {
  const fs::path f = base_ / "admin.token";
  EXPECT_EQ(check_private_file(f).error().code, WbemCode::kNotFound);
  std::ofstream(f) << "x";
  ::chmod(f.c_str(), 0600);
  EXPECT_TRUE(check_private_file(f).ok());
  for (mode_t mode : {0644, 0660, 0606, 0640}) {
    ::chmod(f.c_str(), mode);
    auto s = check_private_file(f);
    ASSERT_FALSE(s.ok()) << std::oct << mode;
    EXPECT_EQ(s.error().code, WbemCode::kAccessDenied);
  }
  ::chmod(f.c_str(), 0600);
  fs::create_symlink(f, base_ / "link");
  EXPECT_EQ(check_private_file(base_ / "link").error().code, WbemCode::kAccessDenied);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(f.c_str(), 65534, 65534), 0);
    auto s = check_private_file(f);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("another user"), std::string::npos);
  }
}

TEST_F(DataDirTest, DatabaseFilesAreCreatedPrivateWhateverTheUmask) {
  const mode_t old = ::umask(0);
  const fs::path db = base_ / "pkgcast.db";
  ASSERT_TRUE(ensure_private_file(db).ok());
  EXPECT_EQ(mode_of(db), 0600u);
  EXPECT_EQ(fs::file_size(db), 0u);
  // An existing one that others may only read is tightened; one they may write is refused.
  ::chmod(db.c_str(), 0644);
  EXPECT_TRUE(ensure_private_file(db).ok());
  EXPECT_EQ(mode_of(db), 0600u);
  ::chmod(db.c_str(), 0666);
  EXPECT_EQ(ensure_private_file(db).error().code, WbemCode::kAccessDenied);
  // A planted link is never followed.
  fs::create_symlink(base_ / "elsewhere", base_ / "linked.db");
  EXPECT_FALSE(ensure_private_file(base_ / "linked.db").ok());
  EXPECT_FALSE(fs::exists(base_ / "elsewhere"));
  ::umask(old);
}

}  // namespace
}  // namespace pkgcast::server
