// HttpClient's sized bodies (Content-Length, read straight from the socket): delivered whole, a stall is the
// timeout's transport failure with what arrived delivered, and cancel() ends a stalled read.
#include "client/http_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "client/fake_event_server.h"

namespace pkgcast::client {
namespace {
using namespace std::chrono_literals;
using testing::FakeConnection;
using testing::FakeEventServer;

std::unique_ptr<HttpClient> client_for(const FakeEventServer& server, std::chrono::milliseconds timeout) {
  HttpOptions o;
  o.timeout = timeout;
  return std::move(HttpClient::create(*parse_server_url(server.url()), o)).value();
}

Result<HttpResponse> get(HttpClient& c, std::string& body) {
  StreamRequest req;
  req.target = "/chunk";
  req.on_data = [&](std::string_view piece) {
    body.append(piece);
    return true;
  };
  return c.stream(req);
}

TEST(HttpClientTest, ASizedBodyLargerThanTheBufferArrivesWhole) {
  const std::string payload(700 * 1024 + 3, 'x');
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    c.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(payload.size()) + "\r\n\r\n");
    for (std::size_t at = 0; at < payload.size(); at += 100'000) c.write(std::string_view(payload).substr(at, 100'000));
    c.wait_for_client_close();
  });
  auto c = client_for(server, 5s);
  std::string body;
  auto r = get(*c, body);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(body, payload);
}

TEST(HttpClientTest, AStalledSizedBodyIsATransportFailureAfterTheTimeout) {
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd");
    c.wait_for_client_close();
  });
  auto c = client_for(server, 300ms);
  std::string body;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = get(*c, body);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kTransportFailure);
  EXPECT_EQ(body, "abcd");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(HttpClientTest, CancelEndsAStalledSizedBody) {
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
    c.wait_for_client_close();
  });
  auto c = client_for(server, 0ms);  // no timeout: only cancel() can end it
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    c->cancel();
  });
  std::string body;
  auto r = get(*c, body);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kCallCancelled);
}

}  // namespace
}  // namespace pkgcast::client
