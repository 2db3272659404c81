#include "server/http_server.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

#include "server/server_core.h"

#ifndef PKGCAST_VERSION
#error "PKGCAST_VERSION must be defined by the build"
#endif

namespace pkgcast::server {
namespace {

std::string format_url(bool tls, const tcp::endpoint& ep) {
  const std::string address = ep.address().to_string();
  const std::string host = ep.address().is_v6() ? "[" + address + "]" : address;
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(ep.port());
}

// Runs `ioc` until it is stopped. A handler that throws (Beast throws for what its parser cannot hold, allocation
// fails, ...) unwinds out of run(); the handler and the connection it held are destroyed, the thread logs and
// runs on. Asio allows run() to be called again after an exception without a restart().
void run_network_thread(net::io_context& ioc) {
  // A file body goes by sendfile(2), which (unlike Asio's sends) raises SIGPIPE when the client has gone: blocked
  // here, it stays pending on this thread and sendfile returns EPIPE, whatever the process does with SIGPIPE.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  while (true) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("network thread: a handler threw: {}", e.what());
    } catch (...) {
      spdlog::error("network thread: a handler threw a non-standard exception");
    }
  }
}

HttpServerOptions resolve_limits(HttpServerOptions o) {
  const ConnectionLimits fd_bound = connection_limits_for(open_files_limit());
  if (o.max_connections == 0) {
    o.max_connections = fd_bound.max_connections;
  } else if (o.max_connections > fd_bound.max_connections) {
    spdlog::warn("max_connections {} exceeds what the open-file limit allows; using {}", o.max_connections,
                 fd_bound.max_connections);
    o.max_connections = fd_bound.max_connections;
  }
  if (o.max_connections_per_address == 0) {
    o.max_connections_per_address = std::max<std::size_t>(1, o.max_connections / 4);
  }
  o.max_connections_per_address = std::min(o.max_connections_per_address, o.max_connections);
  if (o.max_header_bytes > kMaxHeaderBytesLimit) {
    spdlog::warn("max_header_bytes {} exceeds what the HTTP parser can hold; using {}", o.max_header_bytes,
                 kMaxHeaderBytesLimit);
    o.max_header_bytes = kMaxHeaderBytesLimit;
  }
  o.max_header_bytes = std::max<std::size_t>(o.max_header_bytes, 256);
  return o;
}

}  // namespace

ConnectionLimits connection_limits_for(std::uint64_t open_files_limit) {
  const std::uint64_t reserve = std::max<std::uint64_t>(64, open_files_limit / 8);
  ConnectionLimits l;
  l.max_connections = open_files_limit > 2 * reserve ? static_cast<std::size_t>(open_files_limit - reserve)
                                                     : static_cast<std::size_t>(std::max<std::uint64_t>(1, open_files_limit / 2));
  l.max_connections_per_address = std::max<std::size_t>(1, l.max_connections / 4);
  return l;
}

std::uint64_t open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1024;
  return static_cast<std::uint64_t>(limit.rlim_cur);
}

std::string_view server_version() { return "pkgcast/" PKGCAST_VERSION; }
std::string_view pkgcast_version() { return PKGCAST_VERSION; }

HttpServer::Core::Core(const HttpServerOptions& opts, const Router& router, Authenticator authenticator,
                       Handler fallback, Metrics& m, RememberedToken remembered)
    : options(opts),
      dispatcher(router, std::move(authenticator), std::move(fallback), std::move(remembered)),
      metrics(m),
      ioc(std::make_unique<net::io_context>(static_cast<int>(std::max<std::size_t>(1, opts.network_threads)))),
      acceptor(std::in_place, net::make_strand(*ioc)),
      accept_retry(std::in_place, acceptor->get_executor()) {}

void HttpServer::Core::do_accept() {
  acceptor->async_accept(net::make_strand(*ioc), [self = shared_from_this()](boost::system::error_code ec,
                                                                              tcp::socket socket) {
    if (ec) {
      if (!self->acceptor->is_open() || self->stopping.load()) return;
      // Out of file descriptors and the like: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      self->accept_retry->expires_after(std::chrono::milliseconds(50));
      self->accept_retry->async_wait([self](boost::system::error_code) { self->do_accept(); });
      return;
    }
    boost::system::error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);  // small responses must not wait for Nagle
    if (self->tls) {
      start_tls_connection(self, std::move(socket));
    } else {
      start_plain_connection(self, std::move(socket));
    }
    self->do_accept();
  });
}

std::uint64_t HttpServer::Core::add_connection(std::weak_ptr<Connection> c, std::shared_ptr<ConnectionSlot> slot,
                                               bool& refused) {
  std::weak_ptr<Connection> victim;
  std::uint64_t id = 0;
  {
    MutexLock lock(mu_);
    id = next_connection_id_++;
    std::size_t total = 0;
    std::size_t same_address = 0;
    for (const auto& [other_id, e] : connections_) {
      if (!e.counted) continue;
      ++total;
      if (e.slot->address == slot->address) ++same_address;
    }
    refused = false;
    const bool address_full = same_address >= options.max_connections_per_address;
    if (address_full || total >= options.max_connections) {
      // The longest-idle connection: of this address when the address is at its limit (evicting another
      // address's connection would leave this one over), else of anyone.
      Entry* oldest = nullptr;
      std::int64_t oldest_since = 0;
      for (auto& [other_id, e] : connections_) {
        if (!e.counted || (address_full && e.slot->address != slot->address)) continue;
        const std::int64_t since = e.slot->idle_since.load();
        if (since == ConnectionSlot::kBusy) continue;
        if (oldest == nullptr || since < oldest_since) {
          oldest = &e;
          oldest_since = since;
        }
      }
      if (oldest != nullptr) {
        oldest->counted = false;
        victim = oldest->connection;
      } else {
        refused = true;
      }
    }
    connections_.emplace(id, Entry{std::move(c), std::move(slot), !refused});
  }
  // Outside the lock: the victim's last reference may go here, and its destructor takes the lock.
  if (auto v = victim.lock()) {
    metrics.connection_evicted();
    v->evict();
  }
  if (refused) metrics.connection_refused();
  return id;
}

void HttpServer::Core::remove_connection(std::uint64_t id) {
  MutexLock lock(mu_);
  connections_.erase(id);
  changed_.notify_all();
}

std::optional<Error> HttpServer::Core::begin_stream(const std::shared_ptr<StreamChannel>& channel) {
  {
    MutexLock lock(mu_);
    if (streams_.size() >= options.max_streams) {
      return make_error(WbemCode::kServerTooBusy, "too many open streams (max_streams " +
                                                      std::to_string(options.max_streams) + "); retry later");
    }
    if (!channel->owner().empty() && streams_per_owner_[channel->owner()] >= options.max_streams_per_token) {
      if (streams_per_owner_[channel->owner()] == 0) streams_per_owner_.erase(channel->owner());
      return make_error(WbemCode::kServerTooBusy, "this token has too many open streams (max_streams_per_token " +
                                                      std::to_string(options.max_streams_per_token) +
                                                      "); retry later");
    }
    if (streams_per_address_[channel->address()] >= options.max_streams_per_address) {
      if (streams_per_address_[channel->address()] == 0) streams_per_address_.erase(channel->address());
      return make_error(WbemCode::kServerTooBusy,
                        "this address has too many open streams (max_streams_per_address " +
                            std::to_string(options.max_streams_per_address) + "); retry later");
    }
    streams_.insert(channel);
    if (!channel->owner().empty()) ++streams_per_owner_[channel->owner()];
    ++streams_per_address_[channel->address()];
  }
  if (stopping.load()) channel->end(make_error(WbemCode::kShuttingDown, "the server is shutting down"));
  metrics.stream_started();
  return std::nullopt;
}

void HttpServer::Core::end_stream(const std::shared_ptr<StreamChannel>& channel) {
  {
    MutexLock lock(mu_);
    if (streams_.erase(channel) == 0) return;
    auto release = [](std::unordered_map<std::string, std::size_t>& counts, const std::string& key) {
      auto it = counts.find(key);
      if (it != counts.end() && --it->second == 0) counts.erase(it);
    };
    if (!channel->owner().empty()) release(streams_per_owner_, channel->owner());
    release(streams_per_address_, channel->address());
  }
  metrics.stream_finished();
}

std::size_t HttpServer::Core::end_streams_of(std::string_view owner, const Error& why) {
  std::vector<std::shared_ptr<StreamChannel>> ending;
  {
    MutexLock lock(mu_);
    if (owner.empty()) return 0;
    for (const auto& c : streams_) {
      if (c->owner() == owner) ending.push_back(c);
    }
  }
  // Failing kicks each connection, which closes and gives the slot back on its strand.
  for (auto& c : ending) c->fail(why);
  return ending.size();
}

void HttpServer::Core::notify_connections(bool force) {
  std::vector<std::shared_ptr<Connection>> live;
  {
    MutexLock lock(mu_);
    for (auto& [id, entry] : connections_) {
      if (auto c = entry.connection.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) force ? c->force_close() : c->server_stopping();
  // The last references may go here, outside the lock (a connection's destructor takes it).
  live.clear();
}

void HttpServer::Core::fail_streams(const Error& error) {
  std::vector<std::shared_ptr<StreamChannel>> all;
  {
    MutexLock lock(mu_);
    all.assign(streams_.begin(), streams_.end());
  }
  for (auto& c : all) c->fail(error);
}

bool HttpServer::Core::wait_idle(std::chrono::steady_clock::time_point deadline) {
  MutexLock lock(mu_);
  while (!connections_.empty()) {
    if (!changed_.wait_until(mu_, deadline)) return connections_.empty();
  }
  return true;
}

void HttpServer::Core::stop(std::chrono::milliseconds grace) {
  {
    MutexLock lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping.store(true);
  const bool started = !network_threads.empty();
  net::post(acceptor->get_executor(), [self = shared_from_this()] {
    boost::system::error_code ec;
    self->acceptor->close(ec);
    self->accept_retry->cancel();
  });
  // Streams are asked to end (each connection calls StreamChannel::end): an event stream sends its error event
  // and the last chunk, within the grace period like every answer in progress; what is left after it fails below.
  notify_connections(/*force=*/false);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  if (started && !wait_idle(deadline)) {
    spdlog::warn("grace period over; closing the remaining connections");
  }
  const Error shutting_down = make_error(WbemCode::kShuttingDown, "the server is shutting down");
  fail_streams(shutting_down);
  notify_connections(/*force=*/true);
  if (started) wait_idle(std::chrono::steady_clock::now() + std::chrono::seconds(1));
  // Nothing runs on the network threads after this; handlers still posted to them are destroyed with the ioc.
  keep_running.reset();
  ioc->stop();
  for (auto& t : network_threads) t.join();
  network_threads.clear();
  // Workers finish what they hold (database work is bounded); their replies go to the stopped ioc and vanish.
  workers->join();
  // Every stream has failed: the producers finish their current (bounded) step, and what is still queued is
  // cancelled here. No source runs after this, so the store may close.
  fail_streams(shutting_down);
  stream_pool->stop();
}

namespace {

Status check_readable(std::string_view what, const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(WbemCode::kInvalidParameter,
                      "cannot read " + std::string(what) + " '" + file.string() + "': " + std::strerror(errno));
  }
  ::close(fd);
  return ok_status();
}

// A certificate clients will refuse still lets the server start (a renewal may be on its way), but not silently.
void warn_if_not_valid_now(SSL_CTX* ctx, const std::filesystem::path& file) {
  const X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return;
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    spdlog::warn("TLS certificate '{}' has expired: clients will refuse it", file.string());
  } else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    spdlog::warn("TLS certificate '{}' is not valid yet: clients will refuse it", file.string());
  }
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::create(const HttpServerOptions& options, const Router& router,
                                                       Authenticator authenticator, Handler fallback,
                                                       Metrics& metrics, RememberedToken remembered) {
  auto core = std::make_shared<Core>(resolve_limits(options), router, std::move(authenticator), std::move(fallback),
                                     metrics, std::move(remembered));
  boost::system::error_code ec;
  if (options.tls) {
    core->tls.emplace(net::ssl::context::tls_server);
    auto& ctx = *core->tls;
    ctx.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                        net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1,
                    ec);
    // OpenSSL reports a file it cannot open without the reason ("asio.ssl error"): the files are tried first.
    PKG_TRY(check_readable("TLS certificate", options.tls->cert_file));
    PKG_TRY(check_readable("TLS key", options.tls->key_file));
    ctx.use_certificate_chain_file(options.tls->cert_file.string(), ec);
    if (ec) {
      return make_error(WbemCode::kInvalidParameter,
                        "cannot load TLS certificate '" + options.tls->cert_file.string() + "': " + ec.message());
    }
    ctx.use_private_key_file(options.tls->key_file.string(), net::ssl::context::pem, ec);
    if (ec) {
      const bool mismatch = ec.category() == net::error::get_ssl_category() &&
                            ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
      return make_error(
          WbemCode::kInvalidParameter,
          "cannot load TLS key '" + options.tls->key_file.string() + "': " + ec.message() +
              (mismatch ? " (the key must belong to the first certificate of '" + options.tls->cert_file.string() +
                              "': the server's own, before the intermediate ones)"
                        : std::string()));
    }
    warn_if_not_valid_now(ctx.native_handle(), options.tls->cert_file);
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
      return make_error(WbemCode::kInvalidParameter, "TLS key '" + options.tls->key_file.string() +
                                                         "' does not match certificate '" +
                                                         options.tls->cert_file.string() + "'");
    }
  }
  tcp::resolver resolver(*core->ioc);
  const auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                          tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return make_error(WbemCode::kInvalidParameter,
                      "cannot resolve listen address '" + options.host + "': " + ec.message());
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  const std::string where = options.host + ":" + std::to_string(options.port);
  auto& acceptor = *core->acceptor;
  if (acceptor.open(endpoint.protocol(), ec); ec) {
    return make_error(WbemCode::kFailed, "cannot listen on " + where + ": " + ec.message());
  }
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (acceptor.bind(endpoint, ec); ec) {
    return make_error(WbemCode::kFailed, "cannot listen on " + where + ": " + ec.message());
  }
  if (acceptor.listen(net::socket_base::max_listen_connections, ec); ec) {
    return make_error(WbemCode::kFailed, "cannot listen on " + where + ": " + ec.message());
  }
  const tcp::endpoint bound = acceptor.local_endpoint(ec);
  core->port = bound.port();
  core->url = format_url(options.tls.has_value(), bound);
  core->workers = std::make_unique<net::thread_pool>(std::max<std::size_t>(1, options.workers));
  core->stream_pool = std::make_shared<StreamPool>(options.stream_producers);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(core)));
}

HttpServer::HttpServer(std::shared_ptr<Core> core) : core_(std::move(core)) {}

HttpServer::~HttpServer() {
  core_->stop(std::chrono::milliseconds(0));
  // I/O objects go before their io_context. Pending handlers own connections, and connections own the Core:
  // destroying the io_context destroys them while the Core is still ours.
  core_->accept_retry.reset();
  core_->acceptor.reset();
  core_->ioc.reset();
}

void HttpServer::start() {
  core_->keep_running.emplace(core_->ioc->get_executor());
  core_->do_accept();
  const std::size_t n = std::max<std::size_t>(1, core_->options.network_threads);
  for (std::size_t i = 0; i < n; ++i) {
    core_->network_threads.emplace_back([core = core_.get()] { run_network_thread(*core->ioc); });
  }
}

std::uint16_t HttpServer::port() const { return core_->port; }
std::string HttpServer::url() const { return core_->url; }
bool HttpServer::stopping() const { return core_->stopping.load(); }
void HttpServer::stop(std::chrono::milliseconds grace) { core_->stop(grace); }
std::size_t HttpServer::end_streams_of(std::string_view token_id) {
  return core_->end_streams_of(
      token_id, make_error(WbemCode::kAccessDenied, "the token of this stream was revoked; the stream ended"));
}

}  // namespace pkgcast::server
