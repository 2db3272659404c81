#include "core/paths.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace pkgcast {
namespace {

TEST(PathsTest, AtomicWriteReplacesAndSetsMode) {
  char tmpl[] = "/tmp/pkgcast-paths-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/admin.token";
  ASSERT_TRUE(write_file_atomic(path, "first", 0600).ok());
  ASSERT_TRUE(write_file_atomic(path, "second", 0600).ok());
  EXPECT_EQ(*read_file(path), "second");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmpl), std::filesystem::directory_iterator()), 1);
  std::filesystem::remove_all(tmpl);
}

TEST(PathsTest, ErrorsNameThePath) {
  auto w = write_file_atomic("/nonexistent-dir/x", "data");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("/nonexistent-dir/x"), std::string::npos);
  auto r = read_file("/nonexistent-dir/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kNotFound);
}

}  // namespace
}  // namespace pkgcast
