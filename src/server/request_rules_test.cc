#include "server/request_rules.h"

#include <gtest/gtest.h>

namespace pkgcast::server {
namespace {

RequestHead head(std::vector<std::pair<std::string_view, std::string_view>> fields, std::string_view method = "POST",
                 unsigned version = 11) {
  RequestHead h;
  h.method = method;
  h.version = version;
  h.fields = std::move(fields);
  return h;
}

unsigned status_of(const std::optional<HeadRefusal>& r) { return r ? r->status : 0; }

TEST(RequestRulesTest, AcceptsOrdinaryHeads) {
  EXPECT_EQ(status_of(check_request_head(head({{"Host", "a"}}, "GET"))), 0U);
  EXPECT_EQ(status_of(check_request_head(head({{"Host", "a"}, {"Transfer-Encoding", "chunked"}}))), 0U);
  EXPECT_EQ(status_of(check_request_head(head({{"host", "a"}, {"transfer-encoding", "Chunked"}}))), 0U);
  EXPECT_EQ(status_of(check_request_head(head({{"Host", "a"}, {"Content-Length", "3"}}))), 0U);
  EXPECT_EQ(status_of(check_request_head(head({{"Host", "a"}, {"Authorization", "Bearer x"}}))), 0U);
  EXPECT_EQ(status_of(check_request_head(head({}, "GET", 10))), 0U);  // HTTP/1.0 needs no Host
  for (const auto m : kKnownMethods) EXPECT_EQ(status_of(check_request_head(head({{"Host", "a"}}, m))), 0U) << m;
}

TEST(RequestRulesTest, BytesThatCannotStartARequestAreRefusedFromTheFirst) {
  EXPECT_EQ(status_of(check_request_start("")), 0U);
  EXPECT_EQ(status_of(check_request_start("G")), 0U);
  EXPECT_EQ(status_of(check_request_start("\r\nGET / HTTP/1.1")), 0U);
  EXPECT_EQ(status_of(check_request_start("\nGET")), 0U);
  const auto tls = check_request_start(std::string_view("\x16\x03\x01", 3));
  ASSERT_TRUE(tls);
  EXPECT_EQ(tls->status, 400U);
  EXPECT_NE(tls->error.message.find("TLS handshake"), std::string::npos);
  EXPECT_EQ(status_of(check_request_start(std::string_view("\x16", 1))), 400U);
  EXPECT_EQ(status_of(check_request_start(" GET")), 400U);
  EXPECT_EQ(status_of(check_request_start(std::string_view("\x80", 1))), 400U);
}

TEST(RequestRulesTest, UnknownMethodsAreNotImplemented) {
  for (const std::string_view m : {"FOO", "get", "TRACE", "CONNECT", "PROPFIND", ""}) {
    const auto r = check_request_head(head({{"Host", "a"}}, m));
    ASSERT_TRUE(r) << m;
    EXPECT_EQ(r->status, 501U);
    EXPECT_EQ(r->error.code, WbemCode::kNotSupported);
  }
  EXPECT_EQ(known_method("PATCH"), "PATCH");
  EXPECT_FALSE(known_method("patch"));
}

TEST(RequestRulesTest, TransferEncodingFollowsRfc9112) {
  auto te = [](std::string_view v) { return status_of(check_request_head(head({{"Host", "a"}, {"Transfer-Encoding", v}}))); };
  EXPECT_EQ(te("xchunked"), 400U);
  EXPECT_EQ(te("chunked, identity"), 400U);
  EXPECT_EQ(te("identity"), 400U);
  EXPECT_EQ(te("gzip"), 400U);  // the last coding is not chunked: the length is unknowable
  EXPECT_EQ(te("chunked, chunked"), 400U);
  EXPECT_EQ(te(""), 400U);
  EXPECT_EQ(te(" , "), 400U);
  EXPECT_EQ(te("chu\"nked, chunked"), 400U);
  EXPECT_EQ(te("gzip, chunked"), 501U);
  EXPECT_EQ(te("xchunked, chunked"), 501U);
  EXPECT_EQ(te("chunked , "), 0U);
  // Two field lines form one list.
  EXPECT_EQ(status_of(check_request_head(
                head({{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "identity"}}))),
            400U);
  // With Content-Length, in either order; and in HTTP/1.0.
  EXPECT_EQ(status_of(check_request_head(
                head({{"Host", "a"}, {"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}))),
            400U);
  EXPECT_EQ(status_of(check_request_head(
                head({{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"content-length", "5"}}))),
            400U);
  EXPECT_EQ(status_of(check_request_head(head({{"Transfer-Encoding", "chunked"}}, "POST", 10))), 400U);
}

TEST(RequestRulesTest, HostAndAuthorizationAppearOnce) {
  EXPECT_EQ(status_of(check_request_head(head({}, "GET"))), 400U);
  EXPECT_EQ(status_of(check_request_head(head({{"Host", "a"}, {"Host", "b"}}, "GET"))), 400U);
  EXPECT_EQ(status_of(check_request_head(head({{"Host", "a"}, {"HOST", "a"}}, "GET", 10))), 400U);
  const auto r = check_request_head(
      head({{"Host", "a"}, {"Authorization", "Bearer x"}, {"authorization", "Bearer y"}}, "GET"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400U);
  EXPECT_NE(r->error.message.find("Authorization"), std::string::npos);
}

TEST(RequestRulesTest, ObsFoldIsRefused) {
  EXPECT_FALSE(check_raw_head("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n"));
  EXPECT_EQ(status_of(check_raw_head("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n")), 400U);
  EXPECT_EQ(status_of(check_raw_head("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n")), 400U);
  EXPECT_EQ(status_of(check_raw_head("GET / HTTP/1.1\r\n Host: a\r\n\r\n")), 400U);
}

TEST(RequestRulesTest, FindsTheEndOfTheHead) {
  const std::string_view req = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
  EXPECT_EQ(find_head_end(req), req.size() - 4);
  EXPECT_FALSE(find_head_end("GET / HTTP/1.1\r\nHost: a\r\n"));
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\n\n"), 16U);
  // Resumed after a split terminator.
  const std::string_view split = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(find_head_end(split, split.size() - 2), split.size());
  EXPECT_EQ(find_head_end(split, split.size() - 1), split.size());
}

}  // namespace
}  // namespace pkgcast::server
