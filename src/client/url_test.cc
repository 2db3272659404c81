#include "client/url.h"

#include <gtest/gtest.h>

namespace pkgcast::client {
namespace {

TEST(ServerUrlTest, ParsesWhatUsersType) {
  auto a = parse_server_url("http://127.0.0.1:8750");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->tls);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8750);
  auto b = parse_server_url("https://site.example/pkgcast/");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->tls);
  EXPECT_EQ(b->port, 443);
  EXPECT_EQ(b->base_path, "/pkgcast");
  auto c = parse_server_url("localhost:9000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->port, 9000);
  auto d = parse_server_url("http://[::1]:8750");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "::1");
  EXPECT_EQ(d->to_string(), "http://[::1]:8750");
}

TEST(ServerUrlTest, RefusesBadUrls) {
  for (const char* bad : {"", "ftp://x", "http://", "http://host:0", "http://host:70000", "http://host:12ab",
                          "http://user@host", "http://host/?q", "http://[::1"}) {
    auto r = parse_server_url(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(ServerUrlTest, EncodesQueryValues) {
  EXPECT_EQ(url_encode(R"(root\sms\site_ABC)"), "root%5Csms%5Csite_ABC");
  EXPECT_EQ(url_encode("a b&c=d~"), "a%20b%26c%3Dd~");
}

}  // namespace
}  // namespace pkgcast::client
