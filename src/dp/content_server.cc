#include "dp/content_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/mutex.h"
#include "core/paths.h"
#include "core/strings.h"
#include "dp/fs_util.h"

namespace pkgcast::dp {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

class Session;

// Every open connection, so that a new one at a bound can take the place of the connection idle longest.
struct Slot {
  std::weak_ptr<Session> session;
  std::string address;
};

// What a manifest file looked like when its bytes were last hashed and found right: while it still looks so, a GET
// reads it without hashing it again (a manifest may be tens of megabytes, asked for by every pull DP and client).
struct ManifestSeen {
  std::uint64_t inode = 0, size = 0;
  std::int64_t mtime_ns = 0, ctime_ns = 0;
  bool operator==(const ManifestSeen&) const = default;
  static ManifestSeen of(const struct stat& st) {
    return {static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
            st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
            st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec};
  }
};
constexpr std::size_t kMaxManifestsSeen = 4096;  // entries; the map is emptied when full

// The first `size` bytes of `fd`; fewer when the file is shorter, an error when a read fails.
Result<std::string> read_fd(int fd, std::uint64_t size) {
  std::string out(size, '\0');
  std::uint64_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, out.data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(WbemCode::kFailed, std::string("read: ") + std::strerror(errno));
    if (n == 0) break;
    done += static_cast<std::uint64_t>(n);
  }
  out.resize(done);
  return out;
}

struct Shared {
  ContentServerOptions options;
  const ChunkIndex* index = nullptr;
  std::filesystem::path manifests_dir;
  Mutex seen_mu;
  std::unordered_map<std::string, ManifestSeen> manifests_seen PKG_GUARDED_BY(seen_mu);  // by hex
  Mutex mu;
  std::list<Slot> slots PKG_GUARDED_BY(mu);
  std::unordered_map<std::string, std::size_t> per_address PKG_GUARDED_BY(mu);  // open connections of each address

  std::size_t per_address_limit() const {
    if (options.max_connections_per_address != 0) return options.max_connections_per_address;
    return std::max<std::size_t>(1, options.max_connections / 4);
  }
  // Forgets a slot and its address's count.
  void release(std::list<Slot>::iterator slot) PKG_REQUIRES(mu) {
    auto it = per_address.find(slot->address);
    if (it != per_address.end() && --it->second == 0) per_address.erase(it);
    slots.erase(slot);
  }
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

using Response = http::response<http::string_body>;

Response error_response(unsigned status, std::string_view code, std::string_view message, unsigned version) {
  Response res{static_cast<http::status>(status), version};
  res.set(http::field::content_type, "application/json");
  res.body() = nlohmann::json{{"error", code}, {"message", message}}.dump();
  return res;
}

// The verified bytes behind a target, or an error response. A HEAD, or a GET answered 304, of a manifest reads
// nothing: `head_length` then carries the length the GET would send, and the body stays empty.
Response handle(Shared& s, const http::request<http::empty_body>& req, std::optional<std::uint64_t>& head_length) {
  const unsigned v = req.version();
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    Response refused = error_response(405, "WBEM_E_INVALID_METHOD", "only GET and HEAD", v);
    refused.set(http::field::allow, "GET, HEAD");  // RFC 9110 section 15.5.6
    return refused;
  }
  // The path alone: a query (a cache-busting or signing proxy's) names nothing here, as on the site server.
  std::string_view target(req.target().data(), req.target().size());
  target = target.substr(0, target.find('?'));
  if (target == "/health") {
    Response res{http::status::ok, v};
    res.set(http::field::content_type, "application/json");
    nlohmann::json health{{"status", "ok"}, {"name", s.options.name}};
    if (s.options.bytes_received) health["content_bytes_received"] = s.options.bytes_received();
    res.body() = health.dump();
    return res;
  }
  std::string body;
  std::string hex;
  std::uint64_t size = 0;
  bool unread = false;  // a manifest answered without its bytes (HEAD, 304)
  const auto matches_etag = [&req](const std::string& etag) {
    const auto inm = req[http::field::if_none_match];
    return !inm.empty() &&
           (inm == "*" || std::string_view(inm.data(), inm.size()).find(etag) != std::string_view::npos);
  };
  if (target.starts_with("/content/chunks/")) {
    hex = std::string(target.substr(16));
    auto digest = content::Digest::from_hex(hex);
    if (!digest) return error_response(400, "WBEM_E_INVALID_PARAMETER", "not a SHA-256", v);
    hex = digest->hex();  // one ETag per chunk, however the request spelled its hash
    auto bytes = s.index->read(*digest);
    if (!bytes.ok()) return error_response(404, "WBEM_E_NOT_FOUND", "no such chunk", v);
    body = std::move(bytes).value();
    size = body.size();
  } else if (target.starts_with("/content/manifests/")) {
    hex = std::string(target.substr(19));
    auto digest = content::Digest::from_hex(hex);
    if (!digest) return error_response(400, "WBEM_E_INVALID_PARAMETER", "not a manifest hash", v);
    hex = digest->hex();
    const auto file = s.manifests_dir / digest->hex();
    Fd fd(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return error_response(404, "WBEM_E_NOT_FOUND", "no such manifest", v);
    }
    size = static_cast<std::uint64_t>(st.st_size);
    if (size > s.options.max_manifest_bytes) return error_response(413, "WBEM_E_QUOTA_VIOLATION", "too large", v);
    unread = req.method() == http::verb::head || matches_etag("\"" + hex + "\"");
    if (!unread) {
      const ManifestSeen now = ManifestSeen::of(st);
      bool known = false;
      {
        MutexLock lock(s.seen_mu);
        const auto it = s.manifests_seen.find(hex);
        known = it != s.manifests_seen.end() && it->second == now;
      }
      auto bytes = read_fd(fd.get(), size);
      if (!bytes.ok() || bytes->size() != size || (!known && content::sha256(*bytes) != *digest)) {
        MutexLock lock(s.seen_mu);
        s.manifests_seen.erase(hex);
        return error_response(404, "WBEM_E_NOT_FOUND", "no such manifest", v);
      }
      if (!known) {
        MutexLock lock(s.seen_mu);
        if (s.manifests_seen.size() >= kMaxManifestsSeen) s.manifests_seen.clear();
        s.manifests_seen[hex] = now;
      }
      body = std::move(bytes).value();
    }
  } else {
    return error_response(404, "WBEM_E_NOT_FOUND", "no such resource", v);
  }
  Response res{http::status::ok, v};
  res.set(http::field::content_type, "application/octet-stream");
  const std::string etag = "\"" + hex + "\"";
  res.set(http::field::etag, etag);
  res.set(http::field::cache_control, "public, max-age=31536000, immutable");
  res.set(http::field::accept_ranges, "bytes");
  // If-None-Match naming this ETag (or "*"): 304, no body (the bytes are immutable, so the client's copy is good).
  if (matches_etag(etag)) {
    res.result(http::status::not_modified);
    return res;
  }
  // If-Range (RFC 9110 section 13.1.5): the range only for the representation named by its strong ETag; any other
  // validator (a weak tag, a date) gets the whole, so a resumed download never splices two representations.
  const auto if_range = req[http::field::if_range];
  const bool range_applies = if_range.empty() || std::string_view(if_range.data(), if_range.size()) == etag;
  std::uint64_t length = size;
  // A Range field given twice is invalid (it is single-valued): ignored, as a field that cannot be understood.
  const bool one_range = req.count(http::field::range) == 1;
  if (auto range_header = req[http::field::range]; range_applies && one_range && !range_header.empty()) {
    if (auto r = parse_range(std::string_view(range_header.data(), range_header.size()), size)) {
      if (r->first > r->last) {
        Response bad = error_response(416, "WBEM_E_VALUE_OUT_OF_RANGE", "range not satisfiable", v);
        bad.set(http::field::content_range, "bytes */" + std::to_string(size));
        return bad;
      }
      res.result(http::status::partial_content);
      res.set(http::field::content_range,
              "bytes " + std::to_string(r->first) + "-" + std::to_string(r->last) + "/" + std::to_string(size));
      length = r->last - r->first + 1;
      if (!unread) body = body.substr(r->first, length);
    }
  }
  if (unread) head_length = length;
  res.body() = std::move(body);
  return res;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  // kIdle: waiting for or receiving a request head (may be evicted); kBusy: a request read and its answer being
  // written; kEvicted: chosen to make room, closing.
  enum State : int { kIdle, kBusy, kEvicted };

  Session(tcp::socket socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {}
  ~Session() {
    MutexLock lock(shared_->mu);
    if (registered_) shared_->release(slot_);
  }

  // Under shared_->mu, once the session is made.
  void registered(std::list<Slot>::iterator slot) {
    slot_ = slot;
    registered_ = true;
  }

  void start() { read(); }

  // Under shared_->mu: how long this connection has been idle, or nullopt when it is not idle.
  std::optional<std::int64_t> idle_since() const {
    if (state_.load() != kIdle) return std::nullopt;
    return idle_since_.load();
  }

  // Under shared_->mu, from admit(), which then takes the slot out of the registry: marks an idle connection
  // evicted and has its socket closed on the session's own strand (false when it has just become busy).
  bool evict() {
    int expected = kIdle;
    if (!state_.compare_exchange_strong(expected, kEvicted)) return false;
    registered_ = false;
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
    return true;
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(0);
    stream_.expires_after(shared_->options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return refuse(ec);
    int expected = kIdle;
    if (!state_.compare_exchange_strong(expected, kBusy)) return close();  // evicted meanwhile
    const auto& req = parser_->get();
    std::optional<std::uint64_t> head_length;
    try {
      res_ = handle(*shared_, req, head_length);
    } catch (const std::exception& e) {  // the one catch-all: Boost/nlohmann/bad_alloc
      res_ = error_response(500, "WBEM_E_FAILED", e.what(), req.version());
      head_length.reset();
    }
    res_.keep_alive(req.keep_alive());
    res_.set(http::field::server, "pkgcast-dp");
    res_.prepare_payload();
    if (res_.result() == http::status::not_modified) {
      res_.erase(http::field::content_length);  // a 304 names no length (RFC 9110 section 15.4.5)
    } else if (req.method() == http::verb::head) {  // the GET answer's headers, no body
      const auto length = head_length.value_or(res_.body().size());
      res_.body() = std::string();  // its memory too, not only its size
      res_.content_length(length);
    }
    keep_alive_ = res_.keep_alive();
    write();
  }

  // The response in pieces, each with its own deadline: a client that takes no byte for idle_timeout is cut off,
  // one that reads steadily, however slowly (a pull DP on a thin link taking a large manifest), is not.
  void write() {
    serializer_.emplace(res_);
    write_some();
  }
  void write_some() {
    stream_.expires_after(shared_->options.idle_timeout);
    http::async_write_some(stream_, *serializer_, [self = shared_from_this()](beast::error_code e, std::size_t) {
      if (!e && !self->serializer_->is_done()) return self->write_some();
      self->on_write(e);
    });
  }

  // A request that cannot be read as HTTP is answered, and the connection then closed (what follows it cannot be
  // framed); a connection that ended, timed out or was closed is just closed.
  void refuse(beast::error_code ec) {
    const auto& http_errors = http::make_error_code(http::error::end_of_stream).category();
    if (ec.category() != http_errors || ec == http::error::end_of_stream || ec == http::error::partial_message) {
      return close();
    }
    int expected = kIdle;
    if (!state_.compare_exchange_strong(expected, kBusy)) return close();  // evicted meanwhile
    if (ec == http::error::header_limit) {
      res_ = error_response(431, "WBEM_E_QUOTA_VIOLATION", "the request head is larger than 8 KiB", 11);
    } else if (ec == http::error::body_limit) {
      res_ = error_response(413, "WBEM_E_QUOTA_VIOLATION", "requests to the content server carry no body", 11);
    } else {
      res_ = error_response(400, "WBEM_E_INVALID_PARAMETER", "malformed HTTP request: " + ec.message(), 11);
    }
    res_.keep_alive(false);
    res_.set(http::field::server, "pkgcast-dp");
    res_.prepare_payload();
    keep_alive_ = false;
    write();
  }

  void on_write(beast::error_code ec) {
    serializer_.reset();
    res_ = {};
    if (ec || !keep_alive_) return close();
    idle_since_.store(now_ns());
    state_.store(kIdle);
    read();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  std::shared_ptr<Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  Response res_;
  std::optional<http::response_serializer<http::string_body>> serializer_;  // of res_, while it is written
  bool keep_alive_ = false;
  std::atomic<int> state_{kIdle};
  std::atomic<std::int64_t> idle_since_{now_ns()};
  std::list<Slot>::iterator slot_;  // guarded by shared_->mu, with registered_
  bool registered_ = false;
};

// Admits a new connection from `address`, or says no (nullptr). At max_connections, or at the per-address limit
// for `address`, the connection idle longest (of that address, at the per-address limit) is evicted to make room,
// so idle connections cannot lock a client out; when every candidate is busy the new one is refused.
std::shared_ptr<Session> admit(const std::shared_ptr<Shared>& shared, tcp::socket socket, const std::string& address) {
  // Every session looked at is kept until the lock is released: if its last handler ends meanwhile, dropping the
  // last reference here would run its destructor, which takes the lock, while the lock is held.
  std::vector<std::shared_ptr<Session>> looked_at;
  MutexLock lock(shared->mu);
  const auto mine = shared->per_address.find(address);
  const bool address_full = mine != shared->per_address.end() && mine->second >= shared->per_address_limit();
  if (address_full || shared->slots.size() >= shared->options.max_connections) {
    bool made_room = false;
    while (!made_room) {
      std::shared_ptr<Session> oldest;
      std::list<Slot>::iterator oldest_slot;
      std::int64_t oldest_since = 0;
      for (auto slot = shared->slots.begin(); slot != shared->slots.end(); ++slot) {
        if (address_full && slot->address != address) continue;
        auto session = slot->session.lock();
        if (!session) continue;  // being destroyed: its slot goes with it
        const auto since = session->idle_since();
        if (since && (!oldest || *since < oldest_since)) {
          oldest = session;
          oldest_slot = slot;
          oldest_since = *since;
        }
        looked_at.push_back(std::move(session));
      }
      if (!oldest) return nullptr;
      made_room = oldest->evict();  // false: it turned busy since; look again
      if (made_room) shared->release(oldest_slot);
    }
  }
  auto session = std::make_shared<Session>(std::move(socket), shared);
  ++shared->per_address[address];
  session->registered(shared->slots.insert(shared->slots.end(), Slot{session, address}));
  return session;
}

class BeastContentServer final : public ContentServer {
 public:
  BeastContentServer(std::shared_ptr<Shared> shared) : shared_(std::move(shared)), acceptor_(ioc_) {}
  ~BeastContentServer() override { stop(); }

  Status listen() {
    beast::error_code ec;
    auto address = net::ip::make_address(shared_->options.host, ec);
    if (ec) return make_error(WbemCode::kInvalidParameter, "bad listen address '" + shared_->options.host + "'");
    tcp::endpoint ep(address, shared_->options.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return make_error(WbemCode::kTransportFailure, "cannot listen on " + shared_->options.host + ":" +
                                                         std::to_string(shared_->options.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    accept();
    const std::size_t n = std::max<std::size_t>(1, shared_->options.threads);
    for (std::size_t i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        for (;;) {
          try {
            ioc_.run();
            return;
          } catch (const std::exception&) {  // a handler threw past its catch-all: keep serving
          }
        }
      });
    }
    return ok_status();
  }

  std::uint16_t port() const override { return port_; }

  void stop() override {
    if (stopped_.exchange(true)) return;
    ioc_.stop();  // pending handlers (and the sessions they hold) go with the io_context
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      if (!ec) {
        beast::error_code peer_ec;
        const auto peer = socket.remote_endpoint(peer_ec);
        std::shared_ptr<Session> session;
        if (!peer_ec) session = admit(shared_, std::move(socket), peer.address().to_string());
        if (session) {
          session->start();
        } else {
          beast::error_code ignored;
          socket.close(ignored);  // every connection busy: refuse rather than queue
        }
      }
      accept();
    });
  }

  std::shared_ptr<Shared> shared_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
};

}  // namespace

std::optional<ByteRange> parse_range(std::string_view header, std::uint64_t size) {
  // The unit is case-insensitive (RFC 9110 section 14.1).
  if (header.size() < 6 || !iequals(header.substr(0, 6), "bytes=")) return std::nullopt;
  header.remove_prefix(6);
  if (header.find(',') != std::string_view::npos) return std::nullopt;  // multiple ranges: send it whole
  const std::size_t dash = header.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto first_text = header.substr(0, dash);
  const auto last_text = header.substr(dash + 1);
  if (first_text.empty()) {  // suffix: the last N bytes
    auto n = parse_u64(last_text);
    if (!n) return std::nullopt;
    if (*n == 0 || size == 0) return ByteRange{1, 0};
    return ByteRange{size - std::min(*n, size), size - 1};
  }
  auto first = parse_u64(first_text);
  if (!first) return std::nullopt;
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!last_text.empty()) {
    if (last_text.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    // A last position past the end, however many digits it has, is the end (RFC 9110 section 14.1.2): one that
    // does not fit in 64 bits (nullopt here) is past any end.
    const auto l = parse_u64(last_text);
    if (l && *l < *first) return std::nullopt;
    if (l) last = std::min(*l, last);
  }
  if (*first >= size) return ByteRange{1, 0};
  return ByteRange{*first, last};
}

Result<std::unique_ptr<ContentServer>> ContentServer::start(const ContentServerOptions& options,
                                                            const ChunkIndex& index,
                                                            const std::filesystem::path& manifests_dir) {
  auto shared = std::make_shared<Shared>();
  shared->options = options;
  shared->index = &index;
  shared->manifests_dir = manifests_dir;
  auto server = std::make_unique<BeastContentServer>(std::move(shared));
  PKG_TRY(server->listen());
  return std::unique_ptr<ContentServer>(std::move(server));
}

}  // namespace pkgcast::dp
