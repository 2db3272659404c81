// Streamed responses (Response::stream) over real loopback sockets: chunking, back-pressure, failure, limits, and
// keep-alive after a stream.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "server/http_test_fixture.h"

namespace pkgcast::server {
namespace {

using namespace std::chrono_literals;
using testing::HttpResponse;
using testing::HttpServerTest;
using testing::json_of;
using testing::TestClient;
namespace http = boost::beast::http;

constexpr std::string_view kLastChunk = "\r\n0\r\n\r\n";

TEST_F(HttpServerTest, StreamsAHundredThousandChunks) {
  start();
  TestClient c(server_->port());
  auto r = c.get("/api/v1/lines?n=100000");
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_TRUE(r.chunked());
  EXPECT_TRUE(r.keep_alive());
  EXPECT_EQ(r[http::field::content_type], "text/plain");
  const std::string& body = r.body();
  EXPECT_EQ(std::count(body.begin(), body.end(), '\n'), 100000);
  EXPECT_EQ(body.rfind("line 0\n", 0), 0u);
  EXPECT_NE(body.find("line 99999\n"), std::string::npos);
  EXPECT_LT(body.find("line 5000\n"), body.find("line 5001\n"));
  EXPECT_EQ(produced_.load(), 100000);
}

TEST_F(HttpServerTest, StreamsAMillionSmallWritesWithoutBufferingThemAll) {
  start();
  TestClient c(server_->port());
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.get("/api/v1/lines?n=1000000");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(std::count(r.body().begin(), r.body().end(), '\n'), 1000000);
  EXPECT_NE(r.body().find("line 999999\n"), std::string::npos);
  std::printf("1,000,000 writes, %zu bytes streamed in %.3f s\n", r.body().size(), seconds);
}

TEST_F(HttpServerTest, SlowReaderHoldsTheProducerBackAndDisconnectStopsIt) {
  HttpServerOptions o;
  o.stream_buffer_bytes = 256 * 1024;
  start(o);
  auto end = firehose_end_.get_future();
  {
    TestClient c(server_->port());
    c.write_raw("GET /api/v1/firehose HTTP/1.1\r\nHost: x\r\n\r\n");
    auto& header = c.read_header();
    EXPECT_EQ(header.get().result_int(), 200);
    EXPECT_FALSE(c.read_some_body(1 << 20).empty());
    std::this_thread::sleep_for(300ms);
    // 4 GiB would be produced without back-pressure; socket buffers plus the writer's bound hold a few MiB.
    const long held = produced_.load();
    EXPECT_LT(held, 64L << 20) << held;
    std::this_thread::sleep_for(100ms);
    EXPECT_LT(produced_.load() - held, 4L << 20);
    c.close();
  }
  ASSERT_EQ(end.wait_for(5s), std::future_status::ready);
  const Error e = end.get();
  EXPECT_NE(e.code, WbemCode::kOk) << e.message;
  EXPECT_LT(produced_.load(), 1L << 30);
}

TEST_F(HttpServerTest, FailingStreamLeavesTheBodyTruncated) {
  start();
  TestClient c(server_->port());
  EXPECT_THROW(c.get("/api/v1/broken-stream"), boost::system::system_error);
}

TEST_F(HttpServerTest, TooManyStreamsAre503) {
  HttpServerOptions o;
  o.max_streams = 1;
  start(o);
  auto end = events_end_.get_future();
  TestClient c1(server_->port());
  c1.write_raw("GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c1.read_header().get().result_int(), 200);
  TestClient c2(server_->port());
  auto busy = c2.get("/api/v1/events");
  EXPECT_EQ(busy.result_int(), 503);
  EXPECT_EQ(json_of(busy)["error"], "WBEM_E_SERVER_TOO_BUSY");
  c1.close();
  ASSERT_EQ(end.wait_for(5s), std::future_status::ready);
}

TEST_F(HttpServerTest, AStreamKeepsTheConnectionForTheNextRequest) {
  start();
  TestClient c(server_->port());
  auto first = c.get("/api/v1/lines?n=1000");
  ASSERT_EQ(first.result_int(), 200);
  EXPECT_TRUE(first.chunked());
  EXPECT_TRUE(first.keep_alive());
  EXPECT_EQ(std::count(first.body().begin(), first.body().end(), '\n'), 1000);
  // The same socket carries the next request, plain and streamed.
  auto second = c.get("/api/v1/echo/next", {bearer("pkc_read")});
  ASSERT_EQ(second.result_int(), 200);
  EXPECT_EQ(json_of(second)["id"], "next");
  auto third = c.get("/api/v1/lines?n=3");
  EXPECT_EQ(third.body(), "line 0\nline 1\nline 2\n");
  // The server reads this request only after ending the stream before it (the client may see the terminating
  // chunk before the server has counted the stream out).
  EXPECT_EQ(c.get("/api/v1/public").result_int(), 200);
  EXPECT_EQ(metrics_.open_connections(), 1);
  EXPECT_EQ(metrics_.active_streams(), 0);
}

TEST_F(HttpServerTest, AThousandStreamsInARowOnOneConnection) {
  start();
  TestClient c(server_->port());
  std::vector<double> micros;
  micros.reserve(1000);
  for (int i = 0; i < 1000; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.get("/api/v1/lines?n=" + std::to_string(1 + i % 7));
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_EQ(r.result_int(), 200);
    ASSERT_TRUE(r.keep_alive());
    ASSERT_EQ(std::count(r.body().begin(), r.body().end(), '\n'), 1 + i % 7) << "response " << i;
  }
  EXPECT_EQ(metrics_.open_connections(), 1);
  std::sort(micros.begin(), micros.end());
  std::printf("streamed round trip on a kept-alive connection: p50 %.0f us, p99 %.0f us\n", micros[500],
              micros[990]);
}

TEST_F(HttpServerTest, ARequestSentDuringAStreamIsAnsweredAfterIt) {
  start();
  TestClient c(server_->port());
  c.write_raw("GET /api/v1/gated HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(c.read_header().get().result_int(), 200);
  // Pipelined while the stream is open: the disconnect watch reads it and must keep it for later.
  c.write_raw("GET /api/v1/echo/queued HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pkc_read\r\n\r\n");
  std::this_thread::sleep_for(50ms);
  open_gate();
  std::string body;
  for (std::string piece; !(piece = c.read_some_body(1 << 16)).empty();) body += piece;
  EXPECT_EQ(body, "firstsecond");
  auto queued = c.read_response();
  ASSERT_EQ(queued.result_int(), 200);
  EXPECT_EQ(json_of(queued)["id"], "queued");
  EXPECT_EQ(c.get("/api/v1/public").result_int(), 200);
}

TEST_F(HttpServerTest, FloodingDuringAStreamEndsTheConnectionAfterIt) {
  HttpServerOptions o;
  o.max_header_bytes = 1024;
  o.max_body_bytes = 1024;
  start(o);
  TestClient c(server_->port());
  c.write_raw("GET /api/v1/gated HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(c.read_header().get().result_int(), 200);
  // More than one request's worth: the server drops it rather than buffer it, so none of it may be answered.
  c.write_raw(std::string(16 * 1024, 'x'));
  std::this_thread::sleep_for(50ms);
  open_gate();
  // The stream still completes (terminating chunk), then the connection closes without a word about the flood.
  std::string body;
  for (std::string piece; !(piece = c.read_some_body(1 << 16)).empty();) body += piece;
  EXPECT_EQ(body, "firstsecond");
  EXPECT_EQ(c.read_until_closed(), "");
}

TEST_F(HttpServerTest, AStreamEndsTheConnectionWhenTheClientSaysSo) {
  start();
  {
    TestClient c(server_->port());
    c.write_raw("GET /api/v1/lines?n=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::string raw = c.read_until_closed();
    EXPECT_NE(raw.find("Connection: close"), std::string::npos) << raw;
    EXPECT_NE(raw.find("line 1\n"), std::string::npos);
    EXPECT_EQ(raw.substr(raw.size() - kLastChunk.size()), kLastChunk);
  }
  {
    // HTTP/1.0 even when it asks for keep-alive: chunked framing is HTTP/1.1's, so the body is close-delimited.
    TestClient c(server_->port());
    c.write_raw("GET /api/v1/lines?n=2 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
    const std::string raw = c.read_until_closed();
    EXPECT_EQ(raw.find("Transfer-Encoding"), std::string::npos) << raw;
    EXPECT_NE(raw.find("Connection: close"), std::string::npos) << raw;
    EXPECT_EQ(raw.substr(raw.find("\r\n\r\n") + 4), "line 0\nline 1\n") << raw;
  }
}

TEST_F(HttpServerTest, AHalfClosedClientGetsTheWholeBody) {
  start();
  for (const char* version : {"HTTP/1.1", "HTTP/1.0"}) {
    TestClient c(server_->port());
    c.write_raw(std::string("GET /api/v1/lines?n=100000 ") + version + "\r\nHost: x\r\n\r\n");
    c.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send);  // the client's half-close: not a hang-up
    const std::string raw = c.read_until_closed();
    EXPECT_NE(raw.find("line 99999\n"), std::string::npos) << version << ": " << raw.size() << " bytes";
    if (std::string(version) == "HTTP/1.1") {
      EXPECT_EQ(raw.substr(raw.size() - kLastChunk.size()), kLastChunk);
    }
  }
  EXPECT_EQ(metrics_.active_streams(), 0);
}

TEST_F(HttpServerTest, AWaitingStreamHoldsNoProducerThread) {
  HttpServerOptions o;
  o.stream_producers = 1;
  start(o);
  // The gated stream waits for the test without holding the only producer thread: another stream still flows.
  TestClient gated(server_->port());
  gated.write_raw("GET /api/v1/gated HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(gated.read_header().get().result_int(), 200);
  EXPECT_EQ(gated.read_some_body(5), "first");
  TestClient other(server_->port());
  auto r = other.get("/api/v1/lines?n=50000");
  EXPECT_EQ(std::count(r.body().begin(), r.body().end(), '\n'), 50000);
  open_gate();
  std::string rest;
  for (std::string piece; !(piece = gated.read_some_body(1 << 16)).empty();) rest += piece;
  EXPECT_EQ(rest, "second");
}

TEST_F(HttpServerTest, StreamQuotasPerTokenAndPerAddress) {
  HttpServerOptions o;
  o.max_streams_per_token = 1;
  o.max_streams_per_address = 2;
  start(o);
  TestClient a(server_->port());
  a.write_raw("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pkc_read\r\n\r\n");
  EXPECT_EQ(a.read_header().get().result_int(), 200);
  TestClient b(server_->port());
  auto same_token = b.get("/api/v1/events", {bearer("pkc_read")});
  EXPECT_EQ(same_token.result_int(), 503);
  EXPECT_EQ(json_of(same_token)["error"], "WBEM_E_SERVER_TOO_BUSY");
  EXPECT_NE(json_of(same_token)["message"].get<std::string>().find("max_streams_per_token"), std::string::npos);
  TestClient c(server_->port());
  c.write_raw("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pkc_pkg\r\n\r\n");
  EXPECT_EQ(c.read_header().get().result_int(), 200);
  TestClient d(server_->port());
  auto same_address = d.get("/api/v1/lines?n=3");
  EXPECT_EQ(same_address.result_int(), 503);
  EXPECT_NE(json_of(same_address)["message"].get<std::string>().find("max_streams_per_address"), std::string::npos);
  // The busy answer keeps the connection: once a slot is free the same client is served.
  a.close();
  for (int i = 0; i < 200 && metrics_.active_streams() > 1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(d.get("/api/v1/lines?n=3").body(), "line 0\nline 1\nline 2\n");
}

TEST_F(HttpServerTest, EndStreamsOfEndsEveryStreamOfThatTokenAtOnce) {
  start();
  auto end = events_end_.get_future();
  TestClient mine(server_->port());
  mine.write_raw("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pkc_read\r\n\r\n");
  ASSERT_EQ(mine.read_header().get().result_int(), 200);
  EXPECT_EQ(server_->end_streams_of("nobody"), 0u);
  EXPECT_EQ(server_->end_streams_of(tokens_["pkc_read"].id), 1u);
  ASSERT_EQ(end.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(end.get().code, WbemCode::kAccessDenied);
  // The connection closes with the chunked body unterminated (read_until_closed returns only on close).
  const std::string rest = mine.read_until_closed();
  EXPECT_EQ(rest.find(kLastChunk), std::string::npos);
  for (int i = 0; i < 200 && metrics_.active_streams() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(metrics_.active_streams(), 0);
}

TEST_F(HttpServerTest, AStreamHoldsAtMostItsBuffer) {
  HttpServerOptions o;
  o.stream_buffer_bytes = 64 * 1024;
  start(o);
  auto end = firehose_end_.get_future();
  TestClient c(server_->port());
  c.write_raw("GET /api/v1/firehose HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(c.read_header().get().result_int(), 200);
  // The client reads nothing more: the source is asked only for what fits, so production stops at the socket
  // buffers plus 64 KiB, and stays there.
  // Settled: unchanged over 10 samples in a row (a loaded machine can leave the producer unscheduled for one).
  long held = -1;
  int unchanged = 0;
  for (int i = 0; i < 300 && unchanged < 10; ++i) {
    std::this_thread::sleep_for(20ms);
    const long now = produced_.load();
    unchanged = now == held ? unchanged + 1 : 0;
    held = now;
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(produced_.load(), held);
  EXPECT_LT(held, 32L << 20);
  c.close();
  ASSERT_EQ(end.wait_for(5s), std::future_status::ready);
}

TEST_F(HttpServerTest, AFailedStreamIsUnterminatedAndClosesTheConnection) {
  start();
  TestClient c(server_->port());
  EXPECT_EQ(c.get("/api/v1/public").result_int(), 200);  // kept alive until the failing stream
  c.write_raw("GET /api/v1/broken-stream HTTP/1.1\r\nHost: x\r\n\r\n");
  // read_until_closed returns only because the server closed the connection.
  const std::string raw = c.read_until_closed();
  EXPECT_NE(raw.find("Transfer-Encoding: chunked"), std::string::npos) << raw;
  EXPECT_EQ(raw.find("Connection: close"), std::string::npos) << raw;  // announced kept alive, then closed
  EXPECT_NE(raw.find("partial"), std::string::npos) << raw;
  EXPECT_EQ(raw.find(kLastChunk), std::string::npos) << raw;
}

TEST_F(HttpServerTest, HeadOfAStreamNamesNoLengthAndOpensNoStream) {
  start();
  TestClient c(server_->port());
  c.write_raw("HEAD /api/v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string raw = c.read_until_closed();
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 ", 0), 0u) << raw;
  EXPECT_NE(raw.find("Content-Type: text/event-stream"), std::string::npos) << raw;
  EXPECT_EQ(raw.find("Content-Length"), std::string::npos) << raw;
  EXPECT_EQ(raw.find("Transfer-Encoding"), std::string::npos) << raw;
  EXPECT_EQ(raw.substr(raw.find("\r\n\r\n") + 4), "") << raw;
  std::lock_guard lock(ticker_mu_);
  EXPECT_TRUE(tickers_.empty());  // the source was never started
}

TEST_F(HttpServerTest, StopEndsAStreamWithItsLastWordsAndTheLastChunk) {
  start();
  TestClient c(server_->port());
  c.write_raw("GET /api/v1/sse HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.read_header().get().result_int(), 200);
  EXPECT_NE(c.read_some_body(64).find(": heartbeat"), std::string::npos);
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);  // the client took its last words: no wait for the grace
  const std::string rest = c.read_until_closed();
  EXPECT_NE(rest.find("event: error\ndata: WBEM_E_SHUTTING_DOWN\n\n"), std::string::npos) << rest;
  ASSERT_GE(rest.size(), kLastChunk.size()) << rest;
  EXPECT_EQ(rest.substr(rest.size() - kLastChunk.size()), kLastChunk) << rest;  // the body is complete
}

TEST_F(HttpServerTest, AStreamWhoseClientDoesNotReadHoldsAStopUpOnlyForTheGrace) {
  start();
  TestClient c(server_->port());
  c.write_raw("GET /api/v1/sse-flood HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.read_header().get().result_int(), 200);
  std::this_thread::sleep_for(300ms);  // the socket buffers and the stream's buffer fill up
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop(500ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 400ms);  // it waited for the client, within the grace
  EXPECT_LT(took, 2s);
  // Cut, as any stream the client did not take in time: no last chunk.
  const std::string rest = c.read_until_closed();
  EXPECT_GT(rest.size(), 0u);
  EXPECT_NE(rest.substr(rest.size() - std::min(rest.size(), kLastChunk.size())), kLastChunk);
}

TEST_F(HttpServerTest, StopDoesNotWaitForAClientKeptAliveAfterAStream) {
  start();
  TestClient c(server_->port());
  // The client has the whole body, and may not have sent anything else, as the server is told to stop: the
  // connection is idle, so it is closed at once rather than drained until the grace period ends.
  EXPECT_TRUE(c.get("/api/v1/lines?n=5").keep_alive());
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(c.read_until_closed(), "");
}

}  // namespace
}  // namespace pkgcast::server
