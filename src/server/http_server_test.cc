// The server core over real loopback sockets, with test routes (the /api/v1 resources are tested in routes/).
// Streamed responses are tested in http_stream_test.cc; the fixture is http_test_fixture.h.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "server/http_test_fixture.h"
#include "server/test_tls.h"

namespace pkgcast::server {
namespace {

using namespace std::chrono_literals;
using testing::HttpResponse;
using testing::HttpServerTest;
using testing::json_of;
using testing::TestClient;
namespace fs = std::filesystem;
namespace http = boost::beast::http;

TEST_F(HttpServerTest, ServesARouteWithParamsQueryAndHeaders) {
  start();
  EXPECT_NE(server_->port(), 0);
  EXPECT_EQ(server_->url(), "http://127.0.0.1:" + std::to_string(server_->port()));
  TestClient c(server_->port());
  auto r = c.get("/api/v1/echo/ABC%2000001?x=1+2&y=%26", {bearer("pkc_read"), {"Accept", "application/json"}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r[http::field::content_type], "application/json");
  EXPECT_EQ(r[http::field::server], "pkgcast/0.1.0");
  EXPECT_TRUE(r.keep_alive());
  auto j = json_of(r);
  EXPECT_EQ(j["id"], "ABC 00001");
  EXPECT_EQ(j["q"]["x"], "1 2");
  EXPECT_EQ(j["q"]["y"], "&");
  EXPECT_EQ(j["caller"], static_cast<int>(site::Role::kReadOnly));
  EXPECT_EQ(j["accept"], "application/json");
  // An answer for one token: never sniffed, never kept by a cache; errors alike.
  EXPECT_EQ(r["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ(r[http::field::cache_control], "no-store");
  auto missing = c.get("/api/v1/nothing/%3Cscript%3E");
  EXPECT_EQ(missing["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ(missing[http::field::cache_control], "no-store");
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  start();
  TestClient c(server_->port());
  auto missing = c.get("/api/v1/nothing");
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(json_of(missing)["error"], "WBEM_E_NOT_FOUND");
  auto wrong = c.request(http::verb::put, "/api/v1/echo/1", "{}", {bearer("pkc_full")});
  EXPECT_EQ(wrong.result_int(), 405);
  EXPECT_EQ(json_of(wrong)["error"], "WBEM_E_INVALID_METHOD");
  EXPECT_EQ(wrong[http::field::allow], "GET, HEAD, POST");
}

TEST_F(HttpServerTest, ThrowingHandlerAnswers500AndTheConnectionLivesOn) {
  start();
  TestClient c(server_->port());
  auto r = c.get("/api/v1/throws");
  EXPECT_EQ(r.result_int(), 500);
  auto j = json_of(r);
  EXPECT_EQ(j["error"], "WBEM_E_FAILED");
  EXPECT_EQ(j["hresult"], "0x80041001");
  EXPECT_NE(j["message"].get<std::string>().find("boom"), std::string::npos);
  EXPECT_EQ(c.get("/api/v1/public").result_int(), 200);
}

TEST_F(HttpServerTest, TokensAreCheckedAgainstTheRouteAccess) {
  start();
  TestClient c(server_->port());
  auto none = c.get("/api/v1/echo/1");
  EXPECT_EQ(none.result_int(), 401);
  EXPECT_EQ(none[http::field::www_authenticate], "Bearer");
  EXPECT_EQ(json_of(none)["error"], "WBEM_E_ACCESS_DENIED");
  EXPECT_EQ(json_of(none)["message"], "missing or unknown token");
  auto unknown = c.get("/api/v1/echo/1", {bearer("pkc_unknown")});
  EXPECT_EQ(unknown.result_int(), 401);
  EXPECT_EQ(unknown[http::field::www_authenticate], "Bearer error=\"invalid_token\"");  // RFC 6750 section 3.1
  auto basic = c.get("/api/v1/echo/1", {{"Authorization", "Basic dXNlcjpwdw=="}});
  EXPECT_EQ(basic.result_int(), 401);
  EXPECT_EQ(basic[http::field::www_authenticate], "Bearer error=\"invalid_request\"");
  EXPECT_NE(json_of(basic)["message"].get<std::string>().find("Bearer"), std::string::npos);

  auto dp_reads = c.get("/api/v1/echo/1", {bearer("pkc_dp")});
  EXPECT_EQ(dp_reads.result_int(), 403);
  EXPECT_EQ(dp_reads[http::field::www_authenticate], "Bearer error=\"insufficient_scope\"");
  EXPECT_EQ(json_of(dp_reads)["error"], "WBEM_E_ACCESS_DENIED");
  {
    // A refused request with a body is answered before the body is read, and its connection closes.
    TestClient refused(server_->port());
    EXPECT_EQ(refused.request(http::verb::post, "/api/v1/echo/1", "x", {bearer("pkc_read")}).result_int(), 403);
  }
  EXPECT_EQ(c.request(http::verb::post, "/api/v1/echo/1", "x", {bearer("pkc_pkg")}).result_int(), 201);
  EXPECT_EQ(c.get("/api/v1/admin", {bearer("pkc_pkg")}).result_int(), 403);
  EXPECT_EQ(c.get("/api/v1/admin", {bearer("pkc_full")}).result_int(), 200);
  EXPECT_EQ(c.get("/api/v1/dp", {bearer("pkc_dp")}).result_int(), 200);
  EXPECT_EQ(c.get("/api/v1/dp", {bearer("pkc_read")}).result_int(), 403);
  // Scheme is case-insensitive.
  EXPECT_EQ(c.get("/api/v1/echo/1", {{"authorization", "bearer pkc_read"}}).result_int(), 200);
  // A public route ignores an unknown token and sees a known one.
  EXPECT_EQ(json_of(c.get("/api/v1/public", {bearer("pkc_unknown")}))["caller"], false);
  EXPECT_EQ(json_of(c.get("/api/v1/public", {bearer("pkc_read")}))["caller"], true);
  // A failing lookup is the server's failure, not the caller's.
  auto down = c.get("/api/v1/echo/1", {bearer("pkc_store_down")});
  EXPECT_EQ(down.result_int(), 500);
  EXPECT_EQ(json_of(down)["message"], "the store is unavailable");
}

TEST_F(HttpServerTest, OversizedBodyIs413AndClosesTheConnection) {
  HttpServerOptions o;
  o.max_body_bytes = 1000;
  start(o);
  {
    TestClient c(server_->port());
    auto ok = c.request(http::verb::post, "/api/v1/echo/1", std::string(1000, 'a'), {bearer("pkc_full")});
    EXPECT_EQ(ok.result_int(), 201);
    auto big = c.request(http::verb::post, "/api/v1/echo/1", std::string(1001, 'a'), {bearer("pkc_full")});
    EXPECT_EQ(big.result_int(), 413);
    EXPECT_EQ(json_of(big)["error"], "WBEM_E_QUOTA_VIOLATION");
    EXPECT_FALSE(big.keep_alive());
  }
  {
    // Chunked upload with no Content-Length: the limit applies as the body arrives.
    TestClient c(server_->port());
    std::string raw = "POST /api/v1/echo/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pkc_full\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) raw += "1f4\r\n" + std::string(500, 'b') + "\r\n";
    raw += "0\r\n\r\n";
    c.write_raw(raw);
    auto r = c.read_response();
    EXPECT_EQ(r.result_int(), 413);
  }
}

TEST_F(HttpServerTest, OversizedHeaderIs431) {
  HttpServerOptions o;
  o.max_header_bytes = 2048;
  start(o);
  TestClient c(server_->port());
  auto r = c.get("/api/v1/public", {{"X-Big", std::string(4096, 'h')}});
  EXPECT_EQ(r.result_int(), 431);
  EXPECT_EQ(json_of(r)["error"], "WBEM_E_QUOTA_VIOLATION");
}

TEST_F(HttpServerTest, MalformedRequestLineIs400ThenClose) {
  start();
  TestClient c(server_->port());
  c.write_raw("GARBAGE\x01 / HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string reply = c.read_until_closed();
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  EXPECT_NE(reply.find("WBEM_E_INVALID_PARAMETER"), std::string::npos);
  EXPECT_NE(reply.find("malformed HTTP request"), std::string::npos);

  TestClient c2(server_->port());
  c2.write_raw("GET /api/v1/public HTTP/9.9\r\n\r\n");
  EXPECT_EQ(c2.read_until_closed().rfind("HTTP/1.1 400", 0), 0u);
}

// A TLS client on the plain port hears at once that it is not spoken to in TLS, not after header_timeout (no CRLF
// ever comes in a ClientHello, so the head would otherwise wait for it).
TEST_F(HttpServerTest, ATlsHandshakeOnThePlainPortIsRefusedAtOnce) {
  HttpServerOptions o;
  o.header_timeout = std::chrono::seconds(30);
  start(o);
  TestClient c(server_->port());
  const auto started = std::chrono::steady_clock::now();
  c.write_raw(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  const std::string reply = c.read_until_closed();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  EXPECT_NE(reply.find("a TLS handshake on a plain-HTTP port"), std::string::npos) << reply;

  TestClient c2(server_->port());
  c2.write_raw(std::string("\x00\x01", 2));
  const std::string binary = c2.read_until_closed();
  EXPECT_NE(binary.find("it starts with the byte 0x00"), std::string::npos) << binary;

  // Leading empty lines before a request line are still allowed (RFC 9112 section 2.2).
  TestClient c3(server_->port());
  c3.write_raw("\r\nGET /api/v1/public HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c3.read_response().result_int(), 200);
}

TEST_F(HttpServerTest, BadPercentEncodingIs400AndKeepsTheConnection) {
  start();
  TestClient c(server_->port());
  auto r = c.get("/api/v1/echo/%zz");
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(json_of(r)["error"], "WBEM_E_INVALID_PARAMETER");
  EXPECT_EQ(c.get("/api/v1/public").result_int(), 200);
}

TEST_F(HttpServerTest, ExpectContinueIsAnswered) {
  start();
  TestClient c(server_->port());
  c.write_raw("POST /api/v1/echo/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pkc_full\r\n"
              "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  auto interim = c.read_response();
  EXPECT_EQ(interim.result_int(), 100);
  c.write_raw("hello");
  auto r = c.read_response();
  EXPECT_EQ(r.result_int(), 201);
  EXPECT_EQ(json_of(r)["body"], "hello");
}

TEST_F(HttpServerTest, KeepAliveServesAThousandRequestsOnOneConnection) {
  start();
  TestClient c(server_->port());
  std::vector<double> micros;
  micros.reserve(1000);
  for (int i = 0; i < 1000; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.get("/api/v1/echo/" + std::to_string(i), {bearer("pkc_read")});
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_EQ(r.result_int(), 200);
    ASSERT_EQ(json_of(r)["id"], std::to_string(i));
  }
  EXPECT_EQ(metrics_.open_connections(), 1);
  std::sort(micros.begin(), micros.end());
  std::printf("keep-alive round trip: p50 %.0f us, p99 %.0f us\n", micros[500], micros[990]);
  // Generous bound for a loaded 2-core machine; the benchmark measures the real figure.
  EXPECT_LT(micros[500], 5000.0);
}


TEST_F(HttpServerTest, AnInlineRouteWithARememberedTokenIsAnsweredWithoutAWorker) {
  remembered_ = {"pkc_read", "pkc_dp"};
  HttpServerOptions options;
  options.workers = 1;
  start(options);
  // The only worker is held: whatever needs a worker waits, what the network thread answers does not.
  TestClient holder(server_->port());
  holder.write_raw("GET /api/v1/hold HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int i = 0; i < 500 && !held_.load(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(held_.load());

  TestClient c(server_->port());
  auto r = c.get("/api/v1/inline/abc", {bearer("pkc_read")});
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(json_of(r), (nlohmann::json{{"by", "inline"}, {"id", "abc"}, {"caller", "id2"}}));
  // HEAD too, and a pipelined pair on one write, answered in order.
  EXPECT_EQ(c.head("/api/v1/inline/h", {bearer("pkc_read")}).result_int(), 200);
  c.write_raw("GET /api/v1/inline/one HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pkc_read\r\n\r\n"
              "GET /api/v1/inline/two HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pkc_read\r\n\r\n");
  EXPECT_EQ(json_of(c.read_response())["id"], "one");
  EXPECT_EQ(json_of(c.read_response())["id"], "two");

  release_worker();
  EXPECT_EQ(json_of(holder.read_response())["held"], true);
}

TEST_F(HttpServerTest, WhatTheNetworkThreadCannotDecideGoesToAWorkerUnchanged) {
  remembered_ = {"pkc_read", "pkc_dp"};
  start();
  TestClient c(server_->port());
  // Declined by the inline handler: the worker's handler sees the parameters and the caller, set once.
  auto declined = c.get("/api/v1/inline/decline", {bearer("pkc_read")});
  ASSERT_EQ(declined.result_int(), 200);
  EXPECT_EQ(json_of(declined), (nlohmann::json{{"by", "worker"}, {"id", "decline"}, {"caller", "id2"}}));
  // A token that is not remembered: looked up by a worker.
  auto looked_up = c.get("/api/v1/inline/x", {bearer("pkc_full")});
  ASSERT_EQ(looked_up.result_int(), 200);
  EXPECT_EQ(json_of(looked_up)["by"], "worker");
  // Refusals come from the worker's admission, with their explanation: a role the route does not admit, no token,
  // an unknown one, a token in the query.
  auto denied = c.get("/api/v1/inline/x", {bearer("pkc_dp")});
  EXPECT_EQ(denied.result_int(), 403);
  EXPECT_EQ(json_of(denied)["error"], "WBEM_E_ACCESS_DENIED");
  EXPECT_EQ(c.get("/api/v1/inline/x").result_int(), 401);
  EXPECT_EQ(c.get("/api/v1/inline/x", {bearer("pkc_nobody")}).result_int(), 401);
  EXPECT_EQ(c.get("/api/v1/inline/x?access_token=pkc_read").result_int(), 400);
  // A route without an InlineHandler is never answered inline.
  auto echo = c.get("/api/v1/echo/7", {bearer("pkc_read")});
  ASSERT_EQ(echo.result_int(), 200);
  EXPECT_EQ(json_of(echo)["id"], "7");
}

TEST_F(HttpServerTest, GracefulStopFinishesInFlightRequestsAndEndsStreams) {
  start();
  auto events_end = events_end_.get_future();
  TestClient stream_client(server_->port());
  stream_client.write_raw("GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(stream_client.read_header().get().result_int(), 200);

  TestClient idle(server_->port());
  EXPECT_EQ(idle.get("/api/v1/public").result_int(), 200);

  auto slow = std::async(std::launch::async, [port = server_->port()] {
    TestClient c(port);
    return c.get("/api/v1/slow");
  });
  std::this_thread::sleep_for(100ms);  // the slow request is in its handler
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  auto r = slow.get();
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_FALSE(r.keep_alive());
  ASSERT_EQ(events_end.wait_for(1s), std::future_status::ready);
  EXPECT_EQ(events_end.get().code, WbemCode::kShuttingDown);
  EXPECT_EQ(idle.read_until_closed(), "");  // the idle connection was closed
  EXPECT_THROW(TestClient late(server_->port()), boost::system::system_error);
}

TEST_F(HttpServerTest, NotModifiedCarriesNoContentLength) {
  start();
  TestClient c(server_->port());
  const auto full = c.get("/api/v1/cached");
  EXPECT_EQ(full.result_int(), 200);
  EXPECT_EQ(full[http::field::content_length], std::to_string(full.body().size()));
  // RFC 9110 section 15.4.5: a 304 may carry only the 200's Content-Length; it sends none.
  for (const auto method : {http::verb::get, http::verb::head}) {
    TestClient raw(server_->port());
    raw.write_raw(std::string(http::to_string(method)) +
                  " /api/v1/cached HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\"\r\nConnection: close\r\n\r\n");
    const std::string answer = raw.read_until_closed();
    EXPECT_EQ(answer.rfind("HTTP/1.1 304 ", 0), 0u) << answer;
    EXPECT_EQ(answer.find("Content-Length"), std::string::npos) << answer;
    EXPECT_NE(answer.find("ETag: \"v1\""), std::string::npos) << answer;
    EXPECT_EQ(answer.substr(answer.find("\r\n\r\n") + 4), "") << answer;
  }
  // Kept alive: the 304 has no body, and the next answer follows it on the same connection.
  EXPECT_EQ(c.get("/api/v1/cached", {{"If-None-Match", "\"v1\""}}).result_int(), 304);
  EXPECT_EQ(c.get("/api/v1/public").result_int(), 200);
}

TEST_F(HttpServerTest, HealthAndMetrics) {
  start();
  TestClient c(server_->port());
  auto health = c.get("/api/v1/health");
  ASSERT_EQ(health.result_int(), 200);
  EXPECT_EQ(health.body(), R"({"status":"ok","site":"ABC","version":"0.1.0","revision":42})");
  c.get("/api/v1/echo/7", {bearer("pkc_read")});
  auto metrics = c.get("/metrics");
  ASSERT_EQ(metrics.result_int(), 200);
  EXPECT_EQ(metrics[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = metrics.body();
  EXPECT_NE(text.find(R"(pkgcast_http_requests_total{method="GET",route="/api/v1/echo/{id}",status="200"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(pkgcast_http_requests_total{method="GET",route="/api/v1/health",status="200"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find("pkgcast_http_open_connections 1"), std::string::npos);
}

// Health reads the database, not only the server's memory: 503 while it cannot be read, and no wait on one that does
// not answer (the read runs once at a time; the others answer from it, or 503 past the patience).
TEST_F(HttpServerTest, HealthIsUnhealthyWhileTheDatabaseCannotBeRead) {
  start();
  TestClient c(server_->port());
  {
    std::lock_guard lock(probe_mu_);
    store_probe_ = [] { return Status(make_error(WbemCode::kFailed, "postgresql: cannot connect: refused")); };
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the last answer's second
  auto down = c.get("/api/v1/health");
  EXPECT_EQ(down.result_int(), 503);
  EXPECT_NE(down.body().find("postgresql: cannot connect"), std::string::npos) << down.body();

  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  {
    std::lock_guard lock(probe_mu_);
    store_probe_ = [released] {
      released.wait();
      return ok_status();
    };
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  std::thread waiting([this] {
    TestClient w(server_->port());
    EXPECT_EQ(w.get("/api/v1/health").result_int(), 200);  // the read that was waited for
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // past the patience
  auto stuck = c.get("/api/v1/health");
  EXPECT_EQ(stuck.result_int(), 503);
  EXPECT_NE(stuck.body().find("the database has not answered for"), std::string::npos) << stuck.body();
  release.set_value();
  waiting.join();
  EXPECT_EQ(c.get("/api/v1/health").result_int(), 200);
}

TEST_F(HttpServerTest, StaticFilesAreServedWithoutTraversal) {
  char tmpl[] = "/tmp/pkgcast-web-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path base = tmpl;
  fs::create_directories(base / "web");
  testing::write_file(base / "web" / "index.html", "<h1>pkgcast</h1>");
  testing::write_file(base / "secret.txt", "secret");
  start({}, static_files_handler(base / "web"));
  TestClient c(server_->port());
  auto index = c.get("/");
  EXPECT_EQ(index.result_int(), 200);
  EXPECT_EQ(index.body(), "<h1>pkgcast</h1>");
  EXPECT_EQ(index[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(index[http::field::cache_control], "no-cache");  // the route's own choice stands
  for (const char* target : {"/../secret.txt", "/%2e%2e/secret.txt", "/%2e%2e%2fsecret.txt", "/..%5csecret.txt"}) {
    auto r = c.get(target);
    EXPECT_EQ(r.result_int(), 400) << target;
    EXPECT_EQ(r.body().find("secret\""), std::string::npos);
  }
  EXPECT_EQ(c.get("/api/v1/not-a-route").result_int(), 404);  // /api/ never falls back to files
  EXPECT_EQ(json_of(c.get("/nope.css"))["error"], "WBEM_E_NOT_FOUND");
  fs::remove_all(base);
}

TEST_F(HttpServerTest, TlsRoundTrip) {
  char tmpl[] = "/tmp/pkgcast-tls-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir = tmpl;
  const auto cert = testing::make_self_signed();
  testing::write_file(dir / "cert.pem", cert.cert_pem);
  testing::write_file(dir / "key.pem", cert.key_pem);
  HttpServerOptions o;
  o.tls = TlsFiles{dir / "cert.pem", dir / "key.pem"};
  start(o);
  EXPECT_EQ(server_->url().rfind("https://127.0.0.1:", 0), 0u);
  {
    TestClient c(server_->port(), cert.cert_pem);
    for (int i = 0; i < 3; ++i) {
      auto r = c.get("/api/v1/echo/tls", {bearer("pkc_read")});
      EXPECT_EQ(r.result_int(), 200);
      EXPECT_EQ(json_of(r)["id"], "tls");
    }
    // Streams keep a TLS connection alive too: the disconnect watch under TLS is called off cleanly.
    for (int i = 0; i < 3; ++i) {
      auto lines = c.get("/api/v1/lines?n=1000");
      EXPECT_EQ(std::count(lines.body().begin(), lines.body().end(), '\n'), 1000);
      EXPECT_TRUE(lines.keep_alive());
      EXPECT_EQ(c.get("/api/v1/echo/after", {bearer("pkc_read")}).result_int(), 200);
    }
    EXPECT_EQ(metrics_.open_connections(), 1);
  }
  {
    // Plain HTTP to the TLS port gets no HTTP answer, and the server carries on.
    TestClient plain(server_->port());
    plain.write_raw("GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(plain.read_until_closed().find("HTTP/1.1 200"), std::string::npos);
  }
  TestClient again(server_->port(), cert.cert_pem);
  EXPECT_EQ(again.get("/api/v1/health").result_int(), 200);
  fs::remove_all(dir);
}

TEST_F(HttpServerTest, AccessTokenInTheQueryOnlyWhereTheRouteTakesIt) {
  start();
  TestClient c(server_->port());
  const auto ok = c.get("/api/v1/watch?access_token=pkc_read&x=1");
  ASSERT_EQ(ok.result_int(), 200) << ok.body();
  EXPECT_EQ(json_of(ok)["caller"], "id" + std::to_string(static_cast<int>(site::Role::kReadOnly)));
  EXPECT_EQ(json_of(ok)["q"], (nlohmann::json{{"x", "1"}}));  // the handler never sees the token
  EXPECT_EQ(c.head("/api/v1/watch?access_token=pkc_read").result_int(), 200);

  for (const std::string target : {"/api/v1/watch?access_token=pkc_nope", "/api/v1/watch?access_token="}) {
    const auto wrong = c.get(target);
    EXPECT_EQ(wrong.result_int(), 401) << target;
    EXPECT_EQ(wrong[http::field::www_authenticate], "Bearer error=\"invalid_token\"");
  }
  EXPECT_EQ(c.get("/api/v1/watch?access_token=pkc_dp").result_int(), 403);  // the route's roles, as with the header
  // RFC 6750 section 2: one method per request.
  const auto both = c.get("/api/v1/watch?access_token=pkc_read", {bearer("pkc_read")});
  EXPECT_EQ(both.result_int(), 400);
  EXPECT_EQ(json_of(both)["error"], "WBEM_E_INVALID_PARAMETER");
  // Elsewhere the parameter is refused, never taken as a token, whatever the method or the route's access.
  EXPECT_EQ(c.get("/api/v1/echo/1?access_token=pkc_read").result_int(), 400);
  EXPECT_EQ(c.get("/api/v1/public?access_token=pkc_read").result_int(), 400);
  TestClient poster(server_->port());  // a refused request with a body closes its connection
  const auto post = poster.request(http::verb::post, "/api/v1/echo/1?access_token=pkc_full", "{}");
  EXPECT_EQ(post.result_int(), 400);
  EXPECT_EQ(json_of(post)["message"].get<std::string>().find("pkc_"), std::string::npos);  // not echoed
  EXPECT_EQ(c.get("/api/v1/echo/1", {bearer("pkc_read")}).result_int(), 200);  // the header still works
}

TEST_F(HttpServerTest, BadTlsFilesAndBusyPortsAreClearErrors) {
  HttpServerOptions o;
  o.port = 0;
  o.tls = TlsFiles{"/nonexistent/cert.pem", "/nonexistent/key.pem"};
  auto bad = HttpServer::create(o, router_, {}, {}, metrics_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, WbemCode::kInvalidParameter);
  EXPECT_NE(bad.error().message.find("/nonexistent/cert.pem"), std::string::npos);

  start();
  HttpServerOptions same;
  same.port = server_->port();
  auto busy = HttpServer::create(same, router_, {}, {}, metrics_);
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.error().message.find("cannot listen on 127.0.0.1:"), std::string::npos) << busy.error().message;

  HttpServerOptions nowhere;
  nowhere.host = "no-such-host.invalid";
  nowhere.port = 0;
  auto unresolved = HttpServer::create(nowhere, router_, {}, {}, metrics_);
  ASSERT_FALSE(unresolved.ok());
  EXPECT_EQ(unresolved.error().code, WbemCode::kInvalidParameter);
}

TEST(ConnectionLimitsTest, KeepAReserveBelowTheOpenFileLimit) {
  auto l = connection_limits_for(1024);
  EXPECT_EQ(l.max_connections, 896U);
  EXPECT_EQ(l.max_connections_per_address, 224U);
  l = connection_limits_for(20000);
  EXPECT_EQ(l.max_connections, 17500U);
  EXPECT_EQ(l.max_connections_per_address, 4375U);
  l = connection_limits_for(100);  // too few for the reserve: half
  EXPECT_EQ(l.max_connections, 50U);
  EXPECT_EQ(l.max_connections_per_address, 12U);
  l = connection_limits_for(1);
  EXPECT_EQ(l.max_connections, 1U);
  EXPECT_EQ(l.max_connections_per_address, 1U);
  EXPECT_GT(open_files_limit(), 0U);
}

}  // namespace
}  // namespace pkgcast::server