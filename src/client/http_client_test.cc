// HttpClient's sized bodies (Content-Length, read straight from the socket): delivered whole, a stall is the
// timeout's transport failure with what arrived delivered, and cancel() ends a stalled read. Pipelined requests:
// answers read in order, and the requests after a failed, stopped or closing answer fail without hanging.
#include "client/http_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

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

std::string sized(std::string_view body, std::string_view extra = {}) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + std::string(extra) + "\r\n" +
         std::string(body);
}

// Three GETs whose bodies are collected into `bodies`; `stop_at` (when set) is stopped by its on_head.
std::vector<StreamRequest> three_requests(std::vector<std::string>& bodies, int stop_at = -1) {
  bodies.assign(3, {});
  std::vector<StreamRequest> requests(3);
  for (int i = 0; i < 3; ++i) {
    requests[i].target = "/chunk";
    requests[i].on_head = [i, stop_at](const HttpResponse&) { return i != stop_at; };
    requests[i].on_data = [&bodies, i](std::string_view piece) {
      bodies[i].append(piece);
      return true;
    };
  }
  return requests;
}

TEST(HttpClientTest, PipelinedRequestsAreAnsweredInOrder) {
  const std::string large(300 * 1024, 'L');
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    // All three answers at once, the way a server answers requests that were all sent before the first answer.
    c.write(sized("first") + sized(large) + sized(""));
    c.wait_for_client_close();
  });
  auto c = client_for(server, 5s);
  std::vector<std::string> bodies;
  const auto requests = three_requests(bodies);
  const auto answers = c->stream_pipelined(requests);
  ASSERT_EQ(answers.size(), 3u);
  for (const auto& a : answers) {
    ASSERT_TRUE(a.ok()) << a.error().to_string();
    EXPECT_EQ(a->status, 200u);
  }
  EXPECT_EQ(bodies[0], "first");
  EXPECT_EQ(bodies[1], large);
  EXPECT_EQ(bodies[2], "");
  EXPECT_EQ(server.targets().size(), 1u);  // one connection carried all three
}

TEST(HttpClientTest, RequestsAfterAStoppedPipelinedAnswerFailWithoutBeingRead) {
  FakeEventServer server([&](FakeConnection& c, const std::string&, int index) {
    if (index == 0) c.write(sized("one") + sized("two") + sized("three"));
    if (index == 1) c.write(sized("again"));
    c.wait_for_client_close();
  });
  auto c = client_for(server, 5s);
  std::vector<std::string> bodies;
  const auto requests = three_requests(bodies, /*stop_at=*/1);
  const auto answers = c->stream_pipelined(requests);
  ASSERT_EQ(answers.size(), 3u);
  ASSERT_TRUE(answers[0].ok());
  EXPECT_EQ(bodies[0], "one");
  ASSERT_TRUE(answers[1].ok());  // stopped by its caller: its status is known, its body unread
  EXPECT_EQ(bodies[1], "");
  ASSERT_FALSE(answers[2].ok());
  EXPECT_EQ(answers[2].error().code, WbemCode::kTransportFailure);
  EXPECT_EQ(bodies[2], "");
  // The client goes on, on a new connection.
  std::string body;
  auto r = get(*c, body);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(body, "again");
}

TEST(HttpClientTest, RequestsAfterAClosingOrCutPipelinedAnswerFail) {
  for (const bool announced : {true, false}) {
    SCOPED_TRACE(announced ? "Connection: close" : "connection cut");
    FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
      c.write(sized("only", announced ? "Connection: close\r\n" : ""));
      c.close();
    });
    auto c = client_for(server, 5s);
    std::vector<std::string> bodies;
    const auto requests = three_requests(bodies);
    const auto t0 = std::chrono::steady_clock::now();
    const auto answers = c->stream_pipelined(requests);
    ASSERT_EQ(answers.size(), 3u);
    ASSERT_TRUE(answers[0].ok()) << answers[0].error().to_string();
    EXPECT_EQ(bodies[0], "only");
    for (int i = 1; i < 3; ++i) {
      ASSERT_FALSE(answers[i].ok());
      EXPECT_EQ(answers[i].error().code, WbemCode::kTransportFailure);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);  // not the 5 s timeout: the close is seen at once
  }
}

// A plain connection's answer head is read and parsed by the client itself: a malformed or endless one is a
// transport failure naming the server, at once, and the client goes on with a new connection.
TEST(HttpClientTest, AMalformedOrOversizedAnswerHeadIsATransportFailure) {
  for (const std::string& head : {std::string("HTTP/1.1 abc\r\n\r\n"), std::string("garbage\r\n\r\n"),
                                  "HTTP/1.1 200 OK\r\nX: " + std::string(70 * 1024, 'a') + "\r\n\r\n"}) {
    SCOPED_TRACE(head.substr(0, 20));
    FakeEventServer server([&](FakeConnection& c, const std::string&, int index) {
      c.write(index == 0 ? head : sized("fine"));
      c.wait_for_client_close();
    });
    auto c = client_for(server, 5s);
    std::string body;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = get(*c, body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, WbemCode::kTransportFailure);
    EXPECT_NE(r.error().message.find(server.url()), std::string::npos) << r.error().message;
    EXPECT_EQ(body, "");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
    auto again = get(*c, body);
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_EQ(body, "fine");
  }
}

}  // namespace
}  // namespace pkgcast::client
