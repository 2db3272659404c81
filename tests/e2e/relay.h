// A TCP relay on a free loopback port, put between a DP agent and the server in end-to-end tests: it measures the
// bytes the server sends, independently of either process, and injects network faults.
//
// Every accepted connection is forwarded to 127.0.0.1:<target port> (a connection the target refuses is closed at
// once, as a dead server would be seen). The relay knows just enough HTTP/1.1 for its faults: it relies on the
// agent's client sending one request at a time per connection (no pipelining), so a request seen going to the
// server starts the next response coming back on the same connection.
//
// Thread safety: every public method may be called from any thread. One thread accepts, one thread per connection
// forwards both directions; the destructor closes every socket and joins them all.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pkgcast::testing {

class Relay {
 public:
  // Listens at once; port() is valid when the constructor returns (0 when the socket could not be set up).
  explicit Relay(int target_port);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Bytes read from the server and passed on to the client, over every connection since construction.
  std::uint64_t bytes_to_client() const { return to_client_.load(); }

  // From now on, server-to-client bytes pass only while bytes_to_client() < limit: the relay forwards exactly up to
  // the limit and then holds every connection's server side (nothing more is read from the server) until
  // release(). Client-to-server bytes keep flowing.
  void hold_at(std::uint64_t limit);
  void release();
  // True once bytes_to_client() reached the hold limit, false at the timeout.
  bool wait_held(std::chrono::milliseconds timeout) const;

  // Arms a one-time fault: in the body of the next 200 answer to a `GET /api/v1/content/chunks/...`, one byte of
  // the payload (after any chunked-encoding size line) is flipped. Answers of another status (206, 404, ...) pass
  // untouched and the fault stays armed.
  void corrupt_next_chunk_body();
  // The request target whose answer was corrupted ("" while none was).
  std::string corrupted_target() const;

  // How many times `GET <target>` went to the server.
  int requests_for(const std::string& target) const;

 private:
  struct Conn;
  void accept_loop();
  void serve(int client_fd);
  // Client to server: notes chunk requests and arms the connection's corruption. Returns false on a write error.
  bool client_to_server(Conn& c, const char* data, std::size_t n);
  // Server to client, through the corruption buffer when the connection is armed.
  bool server_to_client(Conn& c, const char* data, std::size_t n);
  // How many bytes may be read from the server now (0 while held); SIZE_MAX when no hold is set.
  std::size_t allowance() const;

  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> to_client_{0};
  std::thread acceptor_;

  mutable std::mutex mu_;
  std::vector<std::thread> workers_;       // guarded by mu_
  std::vector<int> open_fds_;              // guarded by mu_: shut down by the destructor
  std::uint64_t hold_limit_ = UINT64_MAX;  // guarded by mu_
  std::map<std::string, int> requests_;    // guarded by mu_
  bool corrupt_armed_ = false;             // guarded by mu_
  std::string corrupted_target_;           // guarded by mu_
  std::mutex read_mu_;                     // makes "read from the server, then count" atomic under a hold
};

}  // namespace pkgcast::testing
