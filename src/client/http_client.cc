#include "client/http_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>
#include <vector>

#include "core/strings.h"

namespace pkgcast::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxResponseBody = std::size_t{1} << 31;

class BeastHttpClient final : public HttpClient {
 public:
  BeastHttpClient(ServerUrl url, HttpOptions options)
      : HttpClient(std::move(url)), options_(std::move(options)), ssl_ctx_(asio::ssl::context::tls_client) {}

  Status init() {
    if (!url_.tls) return ok_status();
    beast::error_code ec;
    if (options_.insecure) {
      ssl_ctx_.set_verify_mode(asio::ssl::verify_none, ec);
    } else {
      ssl_ctx_.set_verify_mode(asio::ssl::verify_peer, ec);
      if (!options_.ca_file.empty()) {
        ssl_ctx_.load_verify_file(options_.ca_file, ec);
      } else {
        ssl_ctx_.set_default_verify_paths(ec);
      }
    }
    if (ec) return transport_error("cannot set up TLS", ec);
    return ok_status();
  }

  Result<HttpResponse> request(std::string_view method, std::string_view target, std::string_view body,
                               std::string_view content_type) override {
    std::string collected;
    StreamRequest sr{.method = method, .target = target, .body = body, .content_type = content_type};
    sr.on_data = [&](std::string_view piece) {
      collected.append(piece);
      return true;
    };
    auto r = exchange(sr);
    if (!r.ok()) return r;
    r->body = std::move(collected);
    return r;
  }

  Result<HttpResponse> request_streaming(std::string_view method, std::string_view target, std::string_view body,
                                         const std::function<bool(std::string_view)>& on_data) override {
    StreamRequest sr{.method = method, .target = target, .body = body};
    sr.on_data = on_data;
    return exchange(sr);
  }

  Result<HttpResponse> stream(const StreamRequest& request) override { return exchange(request); }

  void cancel() override {
    cancelled_.store(true);
    // The socket belongs to the thread running the io_context: closing it there makes the pending operation
    // complete with an error. The streams themselves are destroyed only by that thread (close()).
    asio::post(ioc_, [this] {
      if (plain_) abort_socket(plain_->socket());
      if (tls_) abort_socket(beast::get_lowest_layer(*tls_).socket());
    });
  }

 private:
  Error transport_error(std::string_view what, const beast::error_code& ec) const {
    return make_error(WbemCode::kTransportFailure,
                      std::string(what) + " " + url_.to_string() + ": " + ec.message());
  }

  // Runs the io_context until the started operation completes or the timeout passes.
  void run() {
    ioc_.restart();
    ioc_.run();
  }

  template <typename Stream>
  void arm_timeout(Stream& s) {
    if (options_.timeout.count() > 0) {
      beast::get_lowest_layer(s).expires_after(options_.timeout);
    } else {
      beast::get_lowest_layer(s).expires_never();
    }
  }

  Status connect() {
    close();
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(url_.host, std::to_string(url_.port), ec);
    if (ec) return transport_error("cannot resolve", ec);
    if (url_.tls) {
      tls_.emplace(ioc_, ssl_ctx_);
      if (!SSL_set_tlsext_host_name(tls_->native_handle(), url_.host.c_str())) {
        return make_error(WbemCode::kTransportFailure, "cannot set the TLS server name");
      }
      if (!options_.insecure) tls_->set_verify_callback(asio::ssl::host_name_verification(url_.host));
      arm_timeout(*tls_);
      beast::get_lowest_layer(*tls_).async_connect(endpoints, [&](beast::error_code e, auto) { ec = e; });
      run();
      if (ec) return transport_error("cannot connect to", ec);
      beast::get_lowest_layer(*tls_).socket().set_option(tcp::no_delay(true), ec);
      tls_->async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
      run();
      if (ec) {
        // A plain-HTTP server answers a ClientHello with an HTTP 400 (OpenSSL reads it as a record of an unknown
        // version) or closes: say what that most likely means.
        const bool plain_peer = ec == asio::ssl::error::stream_truncated ||
                                (ec.category() == asio::error::get_ssl_category() &&
                                 ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_WRONG_VERSION_NUMBER);
        Error e = transport_error("TLS handshake failed with", ec);
        if (plain_peer) e.message += " (does the server speak plain HTTP? then use http://)";
        return e;
      }
    } else {
      plain_.emplace(ioc_);
      arm_timeout(*plain_);
      plain_->async_connect(endpoints, [&](beast::error_code e, auto) { ec = e; });
      run();
      if (ec) return transport_error("cannot connect to", ec);
      plain_->socket().set_option(tcp::no_delay(true), ec);
    }
    return ok_status();
  }

  // Closes with a reset (SO_LINGER 0): for a response abandoned before its end.
  static void abort_socket(tcp::socket& socket) {
    beast::error_code ignored;
    if (!socket.is_open()) return;
    socket.set_option(asio::socket_base::linger(true, 0), ignored);
    socket.close(ignored);
  }

  void close() {
    beast::error_code ignored;
    if (plain_) plain_->socket().close(ignored);
    if (tls_) beast::get_lowest_layer(*tls_).socket().close(ignored);
    plain_.reset();
    tls_.reset();
    // Bytes read ahead from the old connection (the rest of a response that was stopped) are not the next one's.
    buffer_.consume(buffer_.size());
  }

  bool connected() const { return plain_.has_value() || tls_.has_value(); }

  Error cancelled_error() const {
    return make_error(WbemCode::kCallCancelled, "request to " + url_.to_string() + " cancelled");
  }

  Result<HttpResponse> exchange(const StreamRequest& sr) {
    AbortScope scope(abort_, sr.abort);
    if (stopping()) return cancelled_error();
    auto result = exchange_once(sr);
    if (stopping()) {
      close();  // mid-response: the connection's state is unknown
      return cancelled_error();
    }
    return result;
  }

  // The request in progress's own abort flag (StreamRequest::abort), for as long as it runs.
  class AbortScope {
   public:
    AbortScope(const std::atomic<bool>*& slot, const std::atomic<bool>* flag) : slot_(slot) { slot_ = flag; }
    ~AbortScope() { slot_ = nullptr; }
    AbortScope(const AbortScope&) = delete;
    AbortScope& operator=(const AbortScope&) = delete;

   private:
    const std::atomic<bool>*& slot_;
  };
  // cancel() was called, or the request in progress was aborted.
  bool stopping() const { return cancelled_.load() || (abort_ != nullptr && abort_->load()); }

  // The request's bytes on the wire, ready to send (several may go in one write: stream_pipelined).
  std::string serialize(const StreamRequest& sr) const {
    const std::string_view method = sr.method;
    http::request<http::string_body> req;
    req.method(http::string_to_verb(std::string(method)));
    req.target(url_.base_path + std::string(sr.target));
    req.version(11);
    req.set(http::field::host, url_.host);
    req.set(http::field::user_agent, "pkgcast-client/0.1");
    req.set(http::field::accept, std::string(sr.accept));
    if (!options_.token.empty()) req.set(http::field::authorization, "Bearer " + options_.token);
    for (const auto& [name, value] : sr.headers) req.set(name, value);
    if (!sr.body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      req.set(http::field::content_type, std::string(sr.content_type));
      req.body() = std::string(sr.body);
    }
    req.prepare_payload();
    std::string out;
    http::request_serializer<http::string_body> serializer(req);
    beast::error_code ec;
    do {
      serializer.next(ec, [&](beast::error_code&, const auto& buffers) {
        for (const auto b : beast::buffers_range_ref(buffers)) out.append(static_cast<const char*>(b.data()), b.size());
        serializer.consume(beast::buffer_bytes(buffers));
      });
    } while (!ec && !serializer.is_done());
    return out;
  }

  Result<HttpResponse> exchange_once(const StreamRequest& sr) {
    const std::string wire = serialize(sr);
    // A kept-alive connection may have been closed by the server while idle: retry once on a fresh one, but only
    // when nothing of the response was received (the request was not processed).
    const bool reused = connected();
    if (!reused) PKG_TRY(connect());
    bool any_response = false;
    auto result = exchange_on_current(wire, sr, any_response);
    if (!result.ok() && reused && !any_response && !cancelled_.load()) {
      PKG_TRY(connect());
      result = exchange_on_current(wire, sr, any_response);
    }
    if (!result.ok()) close();
    return result;
  }

  Result<HttpResponse> exchange_on_current(std::string_view wire, const StreamRequest& sr, bool& any_response) {
    if (tls_) {
      PKG_TRY(send_on(*tls_, wire));
      return receive_on(*tls_, sr, any_response);
    }
    PKG_TRY(send_on(*plain_, wire));
    return receive_on(*plain_, sr, any_response);
  }

  template <typename Stream>
  Status send_on(Stream& stream, std::string_view wire) {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      return send_plain(stream.socket(), wire);
    } else {
      beast::error_code ec;
      arm_timeout(stream);
      asio::async_write(stream, asio::buffer(wire.data(), wire.size()), [&](beast::error_code e, std::size_t) {
        ec = e;
      });
      run();
      if (ec) return transport_error("cannot send to", ec);
      return ok_status();
    }
  }

 public:
  std::vector<Result<HttpResponse>> stream_pipelined(std::span<const StreamRequest> requests) override {
    std::vector<Result<HttpResponse>> out;
    out.reserve(requests.size());
    const auto fail_rest = [&](const Error& e) {
      while (out.size() < requests.size()) out.emplace_back(e);
    };
    if (requests.empty()) return out;
    // The batch's requests share one abort flag in practice (one job's downloads): the first one's is honoured.
    AbortScope scope(abort_, requests.front().abort);
    if (stopping()) {
      fail_rest(cancelled_error());
      return out;
    }
    std::string wire;
    for (const auto& sr : requests) wire += serialize(sr);
    const bool reused = connected();
    if (!reused) {
      if (Status c = connect(); !c.ok()) {
        fail_rest(c.error());
        return out;
      }
    }
    bool resent = false;
    Status sent = tls_ ? send_on(*tls_, wire) : send_on(*plain_, wire);
    for (std::size_t i = 0; i < requests.size(); ++i) {
      bool any_response = false;
      Result<HttpResponse> r = sent.ok() ? (tls_ ? receive_on(*tls_, requests[i], any_response)
                                                  : receive_on(*plain_, requests[i], any_response))
                                         : Result<HttpResponse>(sent.error());
      // The connection was closed by the server while idle: all of them again, once, on a fresh one.
      if (!r.ok() && i == 0 && reused && !resent && !any_response && !cancelled_.load()) {
        resent = true;
        if (Status c = connect(); !c.ok()) {
          fail_rest(c.error());
          return out;
        }
        sent = tls_ ? send_on(*tls_, wire) : send_on(*plain_, wire);
        r = sent.ok() ? (tls_ ? receive_on(*tls_, requests[i], any_response)
                              : receive_on(*plain_, requests[i], any_response))
                      : Result<HttpResponse>(sent.error());
      }
      if (!r.ok() && stopping()) r = cancelled_error();
      const bool failed = !r.ok();
      out.push_back(std::move(r));
      // A failed or stopped answer, or one after which the server closes: the answers after it are not read.
      if (failed || !connected()) {
        close();
        fail_rest(make_error(WbemCode::kTransportFailure,
                             "no answer read from " + url_.to_string() + ": the connection ended before it"));
        break;
      }
    }
    return out;
  }

 private:
  // Reads one response (the request was sent) and hands its body to sr.on_data.
  template <typename Stream>
  Result<HttpResponse> receive_on(Stream& stream, const StreamRequest& sr, bool& any_response) {
    beast::error_code ec;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(kMaxResponseBody);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      PKG_TRY(receive_head_plain(stream.socket(), parser, any_response));
    } else {
      arm_timeout(stream);
      http::async_read_header(stream, buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
      run();
      if (ec) return transport_error("no answer from", ec);
      any_response = true;
    }

    HttpResponse out;
    out.status = parser.get().result_int();
    out.content_type = std::string(parser.get()[http::field::content_type]);
    for (const auto& field : parser.get()) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    bool stopped = sr.on_head && !sr.on_head(out);
    const bool sized = !stopped && !parser.is_done() && !parser.chunked() && parser.content_length().has_value();
    if (sized) PKG_TRY(read_sized_body(stream, *parser.content_length(), sr, stopped));
    char chunk[64 * 1024];
    // Beast reads from the socket at most what the buffer can hold without growing (and at least 512 bytes): after
    // a header read the buffer is small, so without room made here a body arrived 512 bytes per recvmsg, each with
    // its own epoll wait and timer re-arm.
    buffer_.reserve(sizeof chunk);
    while (!stopped && !sized && !parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      arm_timeout(stream);
      // read_some: hand over what arrived without waiting for the buffer to fill (an event stream trickles).
      http::async_read_some(stream, buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
      run();
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return transport_error("connection broken while reading from", ec);
      const std::size_t got = sizeof chunk - parser.get().body().size;
      if (got > 0 && sr.on_data && !sr.on_data(std::string_view(chunk, got))) {
        stopped = true;
        break;
      }
    }
    if (stopped) {
      // The rest of the body is not wanted: reset, not close, so that the server ends the response and gives its
      // slot back at once (a close reads to it as a half-close, after which it goes on writing until a write fails).
      if (plain_) abort_socket(plain_->socket());
      if (tls_) abort_socket(beast::get_lowest_layer(*tls_).socket());
      close();
    } else if (!parser.get().keep_alive()) {
      close();
    }
    return out;
  }

  // The head of a response on a plain connection, into `parser`: read with recv(2) until the blank line that
  // ends it (receive_plain; no reactor round, no timer), then parsed. Bytes after the head stay in buffer_.
  Status receive_head_plain(tcp::socket& socket, http::response_parser<http::buffer_body>& parser,
                            bool& any_response) {
    constexpr std::size_t kMaxHead = 64 * 1024;
    // The whole head within one timeout, however its bytes trickle in (a byte now and then would otherwise hold
    // the caller for as long as 64 KiB of them take).
    const std::optional<std::chrono::steady_clock::time_point> by =
        options_.timeout.count() > 0 ? std::optional(std::chrono::steady_clock::now() + options_.timeout)
                                     : std::nullopt;
    std::size_t scanned = 0;
    for (;;) {
      const std::string_view have(static_cast<const char*>(buffer_.data().data()), buffer_.size());
      const auto end = have.find("\r\n\r\n", scanned);
      if (end != std::string_view::npos) {
        beast::error_code ec;
        const std::size_t used = parser.put(asio::buffer(have.data(), end + 4), ec);
        buffer_.consume(used);
        if (ec || !parser.is_header_done()) {
          return make_error(WbemCode::kTransportFailure,
                            "malformed answer from " + url_.to_string() + ": " + (ec ? ec.message() : "bad head"));
        }
        return ok_status();
      }
      scanned = have.size() < 3 ? 0 : have.size() - 3;
      if (have.size() >= kMaxHead) {
        return make_error(WbemCode::kTransportFailure, "answer head from " + url_.to_string() + " is too large");
      }
      auto room = buffer_.prepare(std::max<std::size_t>(4096, std::min(kMaxHead - have.size(), kBodyBufferBytes)));
      Result<std::size_t> got = receive_plain(socket, static_cast<char*>(room.data()), room.size(), by);
      if (!got.ok()) {
        if (!any_response && got.error().code == WbemCode::kTransportFailure) {
          return make_error(WbemCode::kTransportFailure, "no answer from " + url_.to_string() + ": " +
                                                             got.error().message);
        }
        return std::move(got).error();
      }
      any_response = true;
      buffer_.commit(*got);
    }
  }

  // All of `wire` on a plain connection: send(2), waiting in poll(2) while the socket's buffer is full.
  Status send_plain(tcp::socket& socket, std::string_view wire) {
    const int fd = socket.native_handle();
    auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    while (!wire.empty()) {
      const ssize_t n = ::send(fd, wire.data(), wire.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        wire.remove_prefix(static_cast<std::size_t>(n));
        deadline = std::chrono::steady_clock::now() + options_.timeout;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        return transport_error("cannot send to", beast::error_code(errno, boost::system::system_category()));
      }
      PKG_TRY(wait_until_ready(fd, POLLOUT, deadline, "cannot send to"));
    }
    return ok_status();
  }

  // Waits in poll(2) until `fd` may be ready for `events`: at most kCancelCheck at a time, so that cancel() is seen
  // (it cannot reach a thread that is not running the io_context), and never past `deadline` when the client has a
  // timeout. `what` begins the errors' text.
  Status wait_until_ready(int fd, short events, std::chrono::steady_clock::time_point deadline, std::string_view what) {
    constexpr std::chrono::milliseconds kCancelCheck{100};
    if (stopping()) return cancelled_error();
    auto wait = kCancelCheck;
    if (options_.timeout.count() > 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return transport_error(what, beast::error::timeout);
      wait = std::min(wait, left + std::chrono::milliseconds(1));
    }
    pollfd p{fd, events, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) < 0 && errno != EINTR) {
      return transport_error(what, beast::error_code(errno, boost::system::system_category()));
    }
    return ok_status();
  }

  // A body of `length` bytes (Content-Length, not chunked), handed to sr.on_data from `body_buffer_`: first what
  // the head's read brought along, then straight from the connection. The parser would copy each byte once more
  // (from buffer_ into its body buffer) and cost a parse step per read; a sized body needs neither. Bytes beyond
  // the body stay in buffer_. `stopped` when on_data said so.
  template <typename Stream>
  Status read_sized_body(Stream& stream, std::uint64_t length, const StreamRequest& sr, bool& stopped) {
    while (length > 0 && buffer_.size() > 0 && !stopped) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer_.size()));
      if (sr.on_data && !sr.on_data(std::string_view(static_cast<const char*>(buffer_.data().data()), n))) {
        stopped = true;
      }
      buffer_.consume(n);
      length -= n;
    }
    if (body_buffer_.empty()) body_buffer_.resize(kBodyBufferBytes);
    while (length > 0 && !stopped) {
      const std::size_t room = static_cast<std::size_t>(std::min<std::uint64_t>(length, kBodyBufferBytes));
      std::size_t got = 0;
      if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        PKG_ASSIGN_OR_RETURN(got, receive_plain(stream.socket(), body_buffer_.data(), room));
      } else {
        beast::error_code ec;
        arm_timeout(stream);
        stream.async_read_some(asio::buffer(body_buffer_.data(), room), [&](beast::error_code e, std::size_t n) {
          ec = e;
          got = n;
        });
        run();
        if (ec) return transport_error("connection broken while reading from", ec);
      }
      length -= got;
      if (sr.on_data && !sr.on_data(std::string_view(body_buffer_.data(), got))) stopped = true;
    }
    return ok_status();
  }

  // Some bytes of a plain connection: recv(2) on the socket itself, waiting in poll(2) while nothing has arrived.
  // Through the io_context each read also armed and cancelled the stream's timer and ran the reactor (a timerfd
  // update or two and an epoll_wait per read, more than the read itself on loopback). The timeout is the same: at
  // most options_.timeout without a byte; cancel() is seen within 100 ms (wait_until_ready).
  // `by`, when given, replaces the per-read timeout (a total one the caller keeps).
  Result<std::size_t> receive_plain(tcp::socket& socket, char* data, std::size_t size,
                                    std::optional<std::chrono::steady_clock::time_point> by = std::nullopt) {
    const int fd = socket.native_handle();
    const auto deadline = by ? *by : std::chrono::steady_clock::now() + options_.timeout;
    for (;;) {
      const ssize_t n = ::recv(fd, data, size, MSG_DONTWAIT);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n == 0) return transport_error("connection broken while reading from", asio::error::eof);
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return transport_error("connection broken while reading from",
                               beast::error_code(errno, boost::system::system_category()));
      }
      PKG_TRY(wait_until_ready(fd, POLLIN, deadline, "connection broken while reading from"));
    }
  }

  // A sized body is read whole per request into this buffer (made at the first one): as large as a content chunk,
  // so that a chunk the kernel holds already is taken in one read.
  static constexpr std::size_t kBodyBufferBytes = 256 * 1024;
  std::vector<char> body_buffer_;

  HttpOptions options_;
  asio::io_context ioc_;
  asio::ssl::context ssl_ctx_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
  std::atomic<bool> cancelled_{false};
  const std::atomic<bool>* abort_ = nullptr;  // the request in progress's StreamRequest::abort (AbortScope)
};

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::create(const ServerUrl& url, HttpOptions options) {
  auto client = std::make_unique<BeastHttpClient>(url, std::move(options));
  PKG_TRY(client->init());
  return std::unique_ptr<HttpClient>(std::move(client));
}

Result<std::string> HttpClient::call(std::string_view method, std::string_view target, std::string_view body) {
  PKG_ASSIGN_OR_RETURN(HttpResponse response, request(method, target, body));
  if (response.status >= 200 && response.status < 300) return std::move(response.body);
  return error_from_response(response);
}

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

Error error_from_response(const HttpResponse& response) {
  auto j = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    const std::string name = j["error"].get<std::string>();
    const std::string message =
        j.contains("message") && j["message"].is_string() ? j["message"].get<std::string>() : std::string();
    if (auto code = wbem_code_from_name(name)) return make_error(*code, message);
    return make_error(WbemCode::kFailed, name + ": " + message);
  }
  std::string snippet = response.body.substr(0, 200);
  return make_error(WbemCode::kFailed, "server answered HTTP " + std::to_string(response.status) +
                                           (snippet.empty() ? "" : ": " + snippet));
}

}  // namespace pkgcast::client
