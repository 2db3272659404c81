// Internal to pkgcast_server: the state the listener and every connection share. Connections hold it by
// shared_ptr, so it outlives the last of them however the server is torn down.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "server/stream_pool.h"
#include "server/dispatch.h"
#include "server/http_server.h"
#include "server/metrics.h"

namespace pkgcast::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// The steady clock as ConnectionSlot::idle_since counts it.
inline std::int64_t now_ticks() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

// What the connection registry knows of a connection without reaching into it: shared by the connection (which
// writes it on its strand) and the registry (which reads it under its lock at a connection limit).
struct ConnectionSlot {
  static constexpr std::int64_t kBusy = -1;
  std::string address;  // the peer's IP address; set before the connection registers, constant after
  // steady_clock ticks since the connection last had no request in progress (a TLS handshake, waiting for or
  // receiving a request head); kBusy while a request is admitted, handled, answered or streamed.
  std::atomic<std::int64_t> idle_since{kBusy};
};

// What the server needs of a connection, whatever its stream type. Every call may come from any thread; the
// connection acts on its own strand.
class Connection {
 public:
  virtual ~Connection() = default;
  // The server began a graceful stop: close when idle, end streams, finish the request in progress.
  virtual void server_stopping() = 0;
  // The grace period is over: close now.
  virtual void force_close() = 0;
  // Chosen to make room at a connection limit: close if still idle, else close after the response in progress.
  virtual void evict() = 0;
};

// Starts serving an accepted socket (session_plain.cc / session_tls.cc).
void start_plain_connection(std::shared_ptr<HttpServer::Core> core, tcp::socket socket);
void start_tls_connection(std::shared_ptr<HttpServer::Core> core, tcp::socket socket);

// "pkgcast/0.1.0": the Server header and the version /api/v1/health reports.
std::string_view server_version();

class HttpServer::Core : public std::enable_shared_from_this<HttpServer::Core> {
 public:
  Core(const HttpServerOptions& options, const Router& router, Authenticator authenticator, Handler fallback,
       Metrics& metrics, RememberedToken remembered);

  const HttpServerOptions options;
  const Dispatcher dispatcher;
  Metrics& metrics;
  std::unique_ptr<net::io_context> ioc;  // destroyed explicitly by ~HttpServer, before the Core
  // Keeps the network threads running while a stop waits for workers: with the acceptor closed and a request in a
  // handler, the io_context would otherwise have no work and return, stranding the handler's reply.
  std::optional<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  std::optional<net::ssl::context> tls;
  std::optional<tcp::acceptor> acceptor;       // reset by ~HttpServer, before the io_context
  std::optional<net::steady_timer> accept_retry;
  std::unique_ptr<net::thread_pool> workers;
  std::vector<std::thread> network_threads;
  std::string url;
  std::uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> queued_requests{0};

  void do_accept();

  // Connection registry, so a stop can reach every connection, and the connection limits
  // (options.max_connections, options.max_connections_per_address). At a limit the longest-idle connection (of
  // the same address when that address is at its limit) is evicted to admit the new one; when none is idle the
  // new connection is registered uncounted with `refused` set, and answers 503 WBEM_E_SERVER_TOO_BUSY and closes.
  std::uint64_t add_connection(std::weak_ptr<Connection> c, std::shared_ptr<ConnectionSlot> slot, bool& refused)
      PKG_EXCLUDES(mu_);
  void remove_connection(std::uint64_t id) PKG_EXCLUDES(mu_);

  // The producer pool every stream's source runs on (options.stream_producers threads).
  std::shared_ptr<StreamPool> stream_pool;

  // Stream slots: at most options.max_streams in all, max_streams_per_token per token id and
  // max_streams_per_address per client address. nullopt when admitted (the channel is registered, so a stop or
  // end_streams_of reaches it), else the WBEM_E_SERVER_TOO_BUSY error naming the limit.
  std::optional<Error> begin_stream(const std::shared_ptr<StreamChannel>& channel) PKG_EXCLUDES(mu_);
  // Gives the slot back; idempotent.
  void end_stream(const std::shared_ptr<StreamChannel>& channel) PKG_EXCLUDES(mu_);
  // Fails every open stream of `owner` with `why`; returns how many.
  std::size_t end_streams_of(std::string_view owner, const Error& why) PKG_EXCLUDES(mu_);

  void stop(std::chrono::milliseconds grace) PKG_EXCLUDES(mu_);

 private:
  void notify_connections(bool force) PKG_EXCLUDES(mu_);
  void fail_streams(const Error& error) PKG_EXCLUDES(mu_);
  // Waits until no connection remains, or the deadline passes; true when idle.
  bool wait_idle(std::chrono::steady_clock::time_point deadline) PKG_EXCLUDES(mu_);

  Mutex mu_;
  CondVar changed_;
  struct Entry {
    std::weak_ptr<Connection> connection;
    std::shared_ptr<ConnectionSlot> slot;
    bool counted = true;  // false once evicted, or when refused at a limit
  };
  std::unordered_map<std::uint64_t, Entry> connections_ PKG_GUARDED_BY(mu_);
  std::uint64_t next_connection_id_ PKG_GUARDED_BY(mu_) = 1;
  std::set<std::shared_ptr<StreamChannel>> streams_ PKG_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::size_t> streams_per_owner_ PKG_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::size_t> streams_per_address_ PKG_GUARDED_BY(mu_);
  bool stopped_ PKG_GUARDED_BY(mu_) = false;
};

}  // namespace pkgcast::server
