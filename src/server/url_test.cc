#include "server/url.h"

#include <gtest/gtest.h>

namespace pkgcast::server {
namespace {

TEST(UrlTest, DecodesPathAndQuery) {
  auto t = decode_target("/api/v1/x%20y+z?namespace=root%5Csms%5Csite_ABC&query=SELECT+*+FROM+A&flag");
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(t->path, "/api/v1/x y+z");
  EXPECT_EQ(t->query.at("namespace"), "root\\sms\\site_ABC");
  EXPECT_EQ(t->query.at("query"), "SELECT * FROM A");
  EXPECT_EQ(t->query.at("flag"), "");
}

TEST(UrlTest, RepeatedNameKeepsLastAndEmptyPairsAreSkipped) {
  auto t = decode_target("/p?a=1&&a=2&b=%C3%A9&");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->query.size(), 2u);
  EXPECT_EQ(t->query.at("a"), "2");
  EXPECT_EQ(t->query.at("b"), "\xC3\xA9");
}

TEST(UrlTest, FragmentIsNotPartOfTheQuery) {
  auto t = decode_target("/p?a=1#frag");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->query.at("a"), "1");
}

TEST(UrlTest, RefusesBadEscapesNulAndRelativeTargets) {
  for (const char* bad : {"/a%2", "/a%zz", "/a%", "/a%00b", "/p?x=%0", "/p?x%00=1", "relative", "", "*",
                          "ftp://host/p", "http:///p", "http://", "https://?a=1", "http://host/a%00"}) {
    auto t = decode_target(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.error().code, WbemCode::kInvalidParameter) << bad;
  }
}

// RFC 9112 section 3.2.2: the absolute form is accepted; the authority is dropped.
TEST(UrlTest, AbsoluteFormKeepsThePathAndQuery) {
  auto t = decode_target("http://127.0.0.1:8750/api/v1/x%20y?a=1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/api/v1/x y");
  EXPECT_EQ(t->query.at("a"), "1");
  auto bare = decode_target("HTTPS://pkgcast.example");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->path, "/");
  auto query_only = decode_target("http://h?b=2");
  ASSERT_TRUE(query_only.ok());
  EXPECT_EQ(query_only->path, "/");
  EXPECT_EQ(query_only->query.at("b"), "2");
  auto traversal = decode_target("http://h/%2e%2e/etc/passwd");
  ASSERT_TRUE(traversal.ok());
  EXPECT_EQ(traversal->path, "/../etc/passwd");  // the same path as in origin form: refused the same way
}

TEST(UrlTest, EncodedTraversalDecodesToDots) {
  auto t = decode_target("/%2e%2E/%2E%2e/etc/passwd");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/../../etc/passwd");  // static_files refuses it; the router never matches it
}

}  // namespace
}  // namespace pkgcast::server
