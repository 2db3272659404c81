// A scripted HTTP server on a free loopback port for the client library's tests: each connection's request is
// recorded and answered by the test's handler with whatever bytes it writes (a stream, an error, a cut).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pkgcast::client::testing {

class FakeConnection {
 public:
  FakeConnection(int fd, const std::atomic<bool>* stopping) : fd_(fd), stopping_(stopping) {}
  ~FakeConnection();
  // False once the peer has gone.
  bool write(std::string_view bytes);
  // Closes at once (no terminating chunk: the client sees a broken stream).
  void close();
  // Blocks until the client closes its side or the server stops.
  void wait_for_client_close();

  // Helpers for a chunked event stream.
  bool sse_head() {
    return write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n");
  }
  bool chunk(std::string_view data);
  bool event(std::uint64_t revision, std::string_view json = {});
  bool end_chunks() { return write("0\r\n\r\n"); }
  // The server's `event: error` (a WBEM error name and its message), then the end of the stream.
  bool error_event_and_end(std::string_view wbem_name, std::string_view message);
  bool json_error(int status, std::string_view reason, std::string_view wbem_name, std::string_view message);

 private:
  int fd_;
  const std::atomic<bool>* stopping_;
};

class FakeEventServer {
 public:
  using Handler = std::function<void(FakeConnection& conn, const std::string& target, int index)>;

  // `handler` runs on the connection's own thread; index counts requests from 0.
  explicit FakeEventServer(Handler handler);
  ~FakeEventServer();

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> targets() const;
  // Waits (bounded) until at least n requests arrived.
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  // Set by stop(): handlers that loop should end when it is.
  bool stopping() const { return stopping_.load(); }

 private:
  void accept_loop();

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<std::string> targets_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// The JSON of an event at `revision` (an __InstanceModificationEvent of an SMS_PackageStatusRootSummarizer).
std::string event_json(std::uint64_t revision);

}  // namespace pkgcast::client::testing
