// Internal to pkgcast_server: one client connection, over a plain or a TLS stream. Every member function runs on
// the connection's strand; handlers run on the worker pool and hand their response back to the strand.
//
// States: handshake (TLS) -> reading (the head, into a buffer bounded by max_header_bytes) -> handling (the head
//         passed request_rules.h; a worker admits it, then, for a request with a body, the body is read and a
//         worker runs the handler; a request without a body that Dispatcher::answer_inline answers is handled on
//         the strand itself) -> writing -> reading ...
//         or handling -> writing a file body (the head, then the file's bytes: send_file) -> reading ...
//         or handling -> streaming (the producer pool pulls the body from the response's StreamSource into a
//         StreamChannel, and pump() sends what it holds) -> stream ended (the last chunk is out; the disconnect
//         watch is being called off) -> reading ..., or closed after a failed stream, after a half-close, or when
//         the connection is not kept alive.
#pragma once

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <spdlog/spdlog.h>
#include <sstream>
#include <string>
#include <utility>

#include "core/strings.h"
#include "server/request_rules.h"
#include "server/stream_pool.h"
#include "server/server_core.h"
#include "server/url.h"

namespace pkgcast::server {

namespace beast = boost::beast;
namespace http = beast::http;

inline std::string_view to_std(beast::string_view s) { return {s.data(), s.size()}; }
inline beast::string_view to_beast(std::string_view s) { return {s.data(), s.size()}; }

template <class Stream>
class Session final : public Connection, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <class... Args>
  Session(std::shared_ptr<HttpServer::Core> core, Args&&... stream_args)
      : core_(std::move(core)),
        stream_(std::forward<Args>(stream_args)...),
        slot_(std::make_shared<ConnectionSlot>()) {
    core_->metrics.connection_opened();
  }
  ~Session() override {
    if (id_ != 0) core_->remove_connection(id_);
    core_->metrics.connection_closed();
  }

  void start() {
    beast::error_code ec;
    const auto peer = lowest().socket().remote_endpoint(ec);
    slot_->address = ec ? std::string("?") : peer.address().to_string();
    slot_->idle_since.store(now_ticks());
    bool refused = false;
    id_ = core_->add_connection(this->weak_from_this(), slot_, refused);
    refused_ = refused;
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->guarded([&] { self->begin(); }); });
  }

  void server_stopping() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->on_server_stopping(); });
  }
  void force_close() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->close_now(); });
  }
  void evict() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      // Idle when chosen, but a request may have begun since: then it is answered and the connection closes.
      if ((self->state_ == State::kReading || self->state_ == State::kHandshake) &&
          self->slot_->idle_since.load() != ConnectionSlot::kBusy) {
        return self->close_now();
      }
      self->keep_alive_ = false;
    });
  }

 private:
  enum class State { kHandshake, kReading, kHandling, kWriting, kStreaming, kStreamEnded, kClosing };

  // What the disconnect watch reads at a time, into buffer_.
  static constexpr std::size_t kWatchReadBytes = 4096;

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  static void lowest_shutdown_send(beast::tcp_stream& s) {
    beast::error_code ec;
    s.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // Runs a completion's body so that nothing it throws leaves the network thread: what Beast or an allocation
  // throws closes this connection, and only it.
  template <class F>
  void guarded(F&& body) noexcept {
    try {
      body();
    } catch (const std::exception& e) {
      spdlog::error("connection from {}: {}; closing it", slot_->address, e.what());
      close_now();
    } catch (...) {
      spdlog::error("connection from {}: a non-standard exception; closing it", slot_->address);
      close_now();
    }
  }

  void begin() {
    if (core_->stopping.load()) return close_now();
    // A new connection has header_timeout for its TLS handshake and its first request head together.
    head_started_ = true;
    lowest().expires_after(core_->options.header_timeout);
    if constexpr (kTls) {
      state_ = State::kHandshake;
      stream_.async_handshake(net::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                self->guarded([&] {
                                  if (ec) return self->close_now();  // plain HTTP to an HTTPS port, scanners, ...
                                  if (self->refused_) return self->refuse_busy();
                                  self->do_read();
                                });
                              });
    } else {
      if (refused_) return refuse_busy();
      do_read();
    }
  }

  // At a connection limit with nothing to evict: 503, then close (draining briefly, so the client gets the answer
  // rather than a reset).
  void refuse_busy() {
    keep_alive_ = false;
    version_ = 11;
    send_wire_error(503, make_error(WbemCode::kServerTooBusy, "too many connections; retry later"));
  }

  // Statuses whose answer never has a body (RFC 9110 sections 15.2, 15.3.5, 15.4.5).
  static bool bodiless_status(unsigned status) { return status < 200 || status == 204 || status == 304; }

  std::string_view buffered() const {
    const auto data = buffer_.data();
    return {static_cast<const char*>(data.data()), data.size()};
  }

  // Reading a request: first the whole head, into buffer_ (at most max_header_bytes, so nothing else grows it),
  // which passes the raw-head rules, then Beast's parser, then the head rules of request_rules.h.
  void do_read() {
    // Idle now, as a connection in kReading when the stop began: nothing is owed to the client, which may keep
    // the connection open indefinitely (a graceful close would wait for it until the drain times out).
    if (core_->stopping.load()) return close_now();
    state_ = State::kReading;
    slot_->idle_since.store(now_ticks());
    method_label_ = "-";
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(core_->options.max_header_bytes));
    parser_->body_limit(core_->options.max_body_bytes);
    // The buffer holds a head, then while the body is read only what the parser has not consumed: a chunk-size
    // line with its extensions, or the trailers. Bounding it bounds all of them (trailers count against the
    // header limit); past it Beast reports buffer_overflow, answered 431.
    buffer_.max_size(std::max(core_->options.max_header_bytes, buffer_.size()));
    head_scanned_ = 0;
    if (!head_started_) {
      if (buffer_.size() > 0) {
        head_started_ = true;  // a pipelined request's first bytes are already here
        lowest().expires_after(core_->options.header_timeout);
      } else {
        lowest().expires_after(core_->options.idle_timeout);
      }
    }
    read_head();
  }

  void read_head() {
    const std::size_t limit = core_->options.max_header_bytes;
    std::string_view bytes = buffered();
    if (head_scanned_ == 0) {
      // Empty lines before a request line are ignored (RFC 9112 section 2.2: a client may send a CRLF after a
      // body); header_timeout bounds how long a client may send them.
      std::size_t empty = 0;
      while (empty < bytes.size() && (bytes[empty] == '\r' || bytes[empty] == '\n')) ++empty;
      if (empty > 0) {
        buffer_.consume(empty);
        bytes = buffered();
      }
      if (auto refusal = check_request_start(bytes)) return send_wire_error(refusal->status, refusal->error);
    }
    if (auto end = find_head_end(bytes, head_scanned_)) {
      if (*end > limit) return header_too_large();
      return on_head(*end);
    }
    head_scanned_ = bytes.size();
    if (bytes.size() >= limit) return header_too_large();
    stream_.async_read_some(buffer_.prepare(limit - bytes.size()),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->guarded([&] {
                                self->buffer_.commit(n);
                                // A half-received head with the peer gone, an idle or header timeout: nothing
                                // to answer.
                                if (ec) return self->close_now();
                                if (!self->head_started_ && n > 0) {
                                  self->head_started_ = true;
                                  self->lowest().expires_after(self->core_->options.header_timeout);
                                }
                                self->read_head();
                              });
                            });
  }

  void header_too_large() {
    send_wire_error(431, make_error(WbemCode::kQuotaViolation,
                                    "request header larger than " +
                                        std::to_string(core_->options.max_header_bytes) + " bytes"));
  }

  void on_head(std::size_t end) {
    // No request is idle from here until the answer is out; a request head may not be evicted.
    slot_->idle_since.store(ConnectionSlot::kBusy);
    head_started_ = false;
    state_ = State::kHandling;
    lowest().expires_never();
    const std::string_view raw = buffered().substr(0, end);
    if (auto refusal = check_raw_head(raw)) return send_wire_error(refusal->status, refusal->error);
    beast::error_code ec;
    const std::size_t used = parser_->put(net::buffer(raw.data(), raw.size()), ec);
    buffer_.consume(used);
    if (ec) return on_read_error(ec);
    if (!parser_->is_header_done()) {
      return send_wire_error(400, make_error(WbemCode::kInvalidParameter, "malformed HTTP request head"));
    }
    const auto& header = parser_->get();
    RequestHead head;
    head.method = to_std(header.method_string());
    head.version = header.version();
    for (const auto& field : header) head.fields.emplace_back(to_std(field.name_string()), to_std(field.value()));
    if (auto refusal = check_request_head(head)) return send_wire_error(refusal->status, refusal->error);
    method_label_ = *known_method(head.method);
    keep_alive_ = header.keep_alive();
    version_ = header.version();
    head_request_ = method_label_ == "HEAD";
    started_ = std::chrono::steady_clock::now();

    const bool body_pending = !parser_->is_done();
    Request request;
    request.method = std::string(method_label_);
    auto target = decode_target(to_std(header.target()));
    if (!target.ok()) return send_wire_error(400, target.error(), /*close=*/body_pending);
    request.path = std::move(target->path);
    request.query = std::move(target->query);
    for (const auto& [name, value] : head.fields) request.headers.emplace(to_lower(name), std::string(value));

    if (core_->stopping.load()) {
      return send_wire_error(503, make_error(WbemCode::kShuttingDown, "the server is shutting down"));
    }
    if (!body_pending) {
      request_read();
      // A chunk request with a remembered token is answered here, without the hand-off to a worker and back.
      std::string_view route_label;
      if (auto answer = core_->dispatcher.answer_inline(request, route_label)) {
        core_->metrics.record_request(request.method, route_label, answer->status,
                                      std::chrono::steady_clock::now() - started_);
        return send(std::move(*answer));
      }
      return to_workers(std::move(request), std::nullopt);
    }
    // Route and authenticate on the head alone; the body is read (and "100 Continue" sent) only when admitted.
    to_workers(std::move(request), std::nullopt, /*admit_only=*/true);
  }

  // Hands the request to a worker: admission (route match, token) and, unless `admit_only`, the handler; with an
  // `admitted` request (its body now read) only the handler. The answer comes back to the strand; an admit_only
  // request that passes comes back to read_body().
  void to_workers(Request request, std::optional<Admission> admitted, bool admit_only = false) {
    if (core_->queued_requests.fetch_add(1) >= core_->options.max_queued_requests) {
      core_->queued_requests.fetch_sub(1);
      return send_wire_error(503, make_error(WbemCode::kServerTooBusy, "too many requests waiting; retry later"),
                             /*close=*/admit_only);
    }
    net::post(*core_->workers, [self = this->shared_from_this(), request = std::move(request),
                                admitted = std::move(admitted), admit_only]() mutable {
      // A worker thread: nothing may leave this lambda (an exception would end the pool's thread and the process).
      try {
        self->core_->queued_requests.fetch_sub(1);
        const Dispatcher& dispatcher = self->core_->dispatcher;
        Admission admission = admitted ? std::move(*admitted) : dispatcher.admit(request);
        std::optional<Response> response;
        if (admission.refusal) {
          response = std::move(*admission.refusal);
          admission.refusal.reset();
        } else if (!admit_only) {
          response = dispatcher.run(admission, request);
        }
        if (!response) {
          net::post(self->stream_.get_executor(), [self, request = std::move(request),
                                                   admission = std::move(admission)]() mutable {
            self->guarded([&] { self->read_body(std::move(request), std::move(admission)); });
          });
          return;
        }
        self->core_->metrics.record_request(request.method, admission.route_label, response->status,
                                            std::chrono::steady_clock::now() - self->started_);
        // A refused request's body was never read: the connection cannot carry another request.
        const bool close = admit_only;
        net::post(self->stream_.get_executor(), [self, response = std::move(*response), close]() mutable {
          self->guarded([&] {
            if (close) self->keep_alive_ = false;
            self->send(std::move(response));
          });
        });
      } catch (const std::exception& e) {
        spdlog::error("worker: request from {} failed: {}", self->slot_->address, e.what());
        net::post(self->stream_.get_executor(), [self] { self->close_now(); });
      } catch (...) {
        spdlog::error("worker: request from {} failed with a non-standard exception", self->slot_->address);
        net::post(self->stream_.get_executor(), [self] { self->close_now(); });
      }
    });
  }

  // An admitted request with a body: "100 Continue" when asked, then the body.
  void read_body(Request request, Admission admission) {
    if (state_ == State::kClosing || !parser_) return;
    if (core_->stopping.load()) {
      return send_wire_error(503, make_error(WbemCode::kShuttingDown, "the server is shutting down"));
    }
    pending_request_ = std::move(request);
    pending_admission_ = std::move(admission);
    lowest().expires_after(core_->options.idle_timeout);
    // curl and others wait (a full second) for "100 Continue" before sending a body they announced.
    if (iequals(to_std(parser_->get()[http::field::expect]), "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                         self->guarded([&] {
                           if (ec) return self->close_now();
                           self->read_rest();
                         });
                       });
      return;
    }
    read_rest();
  }

  void read_rest() {
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->guarded([&] {
        if (ec) return self->on_read_error(ec);
        self->on_body();
      });
    });
  }

  void on_body() {
    lowest().expires_never();
    // Trailers joined the header fields: together they must stay within the header limit.
    std::size_t field_bytes = 0;
    for (const auto& field : parser_->get()) field_bytes += field.name_string().size() + field.value().size() + 4;
    if (field_bytes > core_->options.max_header_bytes) return header_too_large();
    Request request = std::move(*pending_request_);
    pending_request_.reset();
    request.body = std::move(parser_->get().body());
    request_read();
    Admission admission = std::move(*pending_admission_);
    pending_admission_.reset();
    to_workers(std::move(request), std::move(admission));
  }

  // The request is read whole: the parser goes, and the buffer is no longer bounded by the header limit (a
  // stream's disconnect watch bounds what it keeps itself).
  void request_read() {
    parser_.reset();
    buffer_.max_size(std::numeric_limits<std::size_t>::max());
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return send_wire_error(413, make_error(WbemCode::kQuotaViolation,
                                             "request body larger than " +
                                                 std::to_string(core_->options.max_body_bytes) + " bytes"));
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      // buffer_overflow: a trailer section or a chunk line longer than the header limit.
      return header_too_large();
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return send_wire_error(400, make_error(WbemCode::kInvalidParameter, "malformed HTTP request: " + ec.message()));
    }
    // The client went away, or was idle too long: nothing to answer.
    close_now();
  }

  // Answers a request the pipeline could not take (malformed, too large, ...). `close` when the rest of the
  // input cannot be trusted to start a new request.
  void send_wire_error(unsigned status, const Error& error, bool close = true) {
    if (close) {
      keep_alive_ = false;
      parser_.reset();
    } else {
      request_read();
    }
    buffer_.max_size(std::numeric_limits<std::size_t>::max());
    core_->metrics.record_request(method_label_, kUnmatchedRoute, status, std::chrono::nanoseconds(0));
    Response r = error_response(error);
    r.status = status;
    send(std::move(r));
  }

  // What every answer carries unless its route chose otherwise: nothing is sniffed into another type (an error
  // body echoes the request's path), and nothing is kept by a cache (answers are per token) but what a route
  // marks cacheable (immutable content, the dashboard's files).
  template <class Message>
  static void set_default_fields(Message& message) {
    if (message.find("X-Content-Type-Options") == message.end()) message.set("X-Content-Type-Options", "nosniff");
    if (message.find(http::field::cache_control) == message.end()) message.set(http::field::cache_control, "no-store");
  }

  void send(Response response) {
    if (state_ == State::kClosing) return;
    const bool streamed = response.stream != nullptr;
    if (streamed) {
      if (!head_request_) return start_stream(std::move(response));
      // HEAD of a streamed answer: its headers only; the producer never runs, and no slot is taken.
      response.stream = nullptr;
    }
    state_ = State::kWriting;
    slot_->idle_since.store(ConnectionSlot::kBusy);
    const bool keep = keep_alive_ && !core_->stopping.load();
    if (response.file && !head_request_) return send_file(std::move(response), keep);
    response_.emplace(static_cast<http::status>(response.status), version_);
    response_->set(http::field::server, to_beast(server_version()));
    response_->set(http::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) response_->set(name, value);
    set_default_fields(*response_);
    response_->keep_alive(keep);
    if (bodiless_status(response.status)) {
      // 1xx, 204 and 304 have no body and send no Content-Length (RFC 9110 sections 8.6, 15.4.5): the length a
      // 304 could name is the 200's, which this answer does not know. Beast's prepare_payload() would say 0.
    } else if (head_request_) {
      // The GET answer's headers, Content-Length included, and no body (RFC 9110 section 9.3.2). A streamed GET
      // answer names no length (it is chunked, or close-delimited), so its HEAD names none either.
      if (!streamed) response_->content_length(response.file ? response.file->length : response.body.size());
    } else {
      response_->body() = std::move(response.body);
      response_->prepare_payload();
    }
    lowest().expires_after(core_->options.write_timeout);
    http::async_write(stream_, *response_,
                      [self = this->shared_from_this(), keep](beast::error_code ec, std::size_t) {
                        self->guarded([&] {
                          self->response_.reset();
                          self->head_request_ = false;
                          if (ec) return self->close_now();
                          if (!keep) return self->close_gracefully();
                          self->do_read();
                        });
                      });
  }

  // A body from a file (file_body.h): the head, then the bytes. On a plain connection they go by sendfile(2), a
  // slice at a time, waiting for the socket to take more when it is full; on TLS through file_buffer_, one bounded
  // piece at a time. Each wait is bounded by write_timeout. A file that ends early (it shrank since it was opened)
  // or fails to read ends the connection: the client sees fewer bytes than Content-Length said.
  void send_file(Response response, bool keep) {
    file_ = std::move(*response.file);
    file_sent_ = 0;
    file_header_.emplace(static_cast<http::status>(response.status), version_);
    file_header_->set(http::field::server, to_beast(server_version()));
    file_header_->set(http::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) file_header_->set(name, value);
    set_default_fields(*file_header_);
    file_header_->keep_alive(keep);
    file_header_->content_length(file_->length);
    lowest().expires_after(core_->options.write_timeout);
    if constexpr (!kTls) {
      // The head goes by send(2) with MSG_MORE, so the kernel sends it in one segment with the body's first bytes
      // (one trip through the TCP stack instead of two); what the socket does not take at once goes through Beast.
      std::ostringstream head;
      head << file_header_->base();
      file_head_ = std::move(head).str();
      file_header_.reset();
      if (!make_non_blocking()) return;
      const int flags = MSG_NOSIGNAL | (file_->length > 0 ? MSG_MORE : 0);
      ssize_t n = -1;
      do {
        n = ::send(lowest().socket().native_handle(), file_head_.data(), file_head_.size(), flags);
      } while (n < 0 && errno == EINTR);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return close_now();  // the client went away
      file_head_.erase(0, n > 0 ? static_cast<std::size_t>(n) : 0);
      if (file_head_.empty()) return send_file_body(keep);
      net::async_write(stream_, net::buffer(file_head_),
                       [self = this->shared_from_this(), keep](beast::error_code ec, std::size_t) {
                         self->guarded([&] {
                           self->file_head_.clear();
                           if (ec) return self->close_now();
                           self->send_file_body(keep);
                         });
                       });
      return;
    }
    http::async_write(stream_, *file_header_,
                      [self = this->shared_from_this(), keep](beast::error_code ec, std::size_t) {
                        self->guarded([&] {
                          self->file_header_.reset();
                          if (ec) return self->close_now();
                          self->send_file_body(keep);
                        });
                      });
  }

  void send_file_body(bool keep) {
    if (state_ == State::kClosing || !file_) return;
    while (file_sent_ < file_->length) {
      const std::uint64_t left = file_->length - file_sent_;
      const int fd = file_->file->fd();
      const auto at = static_cast<off_t>(file_->offset + file_sent_);
      if constexpr (!kTls) {
        auto& socket = lowest().socket();
        if (!make_non_blocking()) return;
        off_t offset = at;
        const ssize_t n = ::sendfile(socket.native_handle(), fd, &offset,
                                     static_cast<std::size_t>(std::min<std::uint64_t>(left, kSendfileSlice)));
        if (n > 0) {
          file_sent_ += static_cast<std::uint64_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return wait_writable(keep);
        if (n == 0) return file_failed("the file ended early");
        if (errno == EPIPE || errno == ECONNRESET) return close_now();  // the client went away
        return file_failed(std::string("sendfile: ") + std::strerror(errno));
      } else {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, kFileBufferBytes));
        file_buffer_.resize(want);
        std::size_t got = 0;
        while (got < want) {
          const ssize_t n = ::pread(fd, file_buffer_.data() + got, want - got, at + static_cast<off_t>(got));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return file_failed(std::string("read: ") + std::strerror(errno));
          if (n == 0) return file_failed("the file ended early");
          got += static_cast<std::size_t>(n);
        }
        lowest().expires_after(core_->options.write_timeout);
        net::async_write(stream_, net::buffer(file_buffer_.data(), got),
                         [self = this->shared_from_this(), keep](beast::error_code ec, std::size_t n) {
                           self->guarded([&] {
                             if (ec) return self->close_now();
                             self->file_sent_ += n;
                             self->send_file_body(keep);
                           });
                         });
        return;
      }
    }
    file_.reset();
    file_buffer_.clear();
    file_buffer_.shrink_to_fit();
    head_request_ = false;
    if (!keep) return close_gracefully();
    do_read();
  }

  // sendfile found the socket's send buffer full: wait until it takes more, at most write_timeout.
  void wait_writable(bool keep) {
    if constexpr (!kTls) {
      // The timer's completion may already be queued when the wait ends: it acts only for the wait it was set for.
      const std::uint64_t wait = ++send_waits_;
      auto on_timeout = [self = this->shared_from_this(), wait](beast::error_code ec) {
        if (ec == net::error::operation_aborted || wait != self->send_waits_) return;
        self->guarded([&] { self->close_now(); });  // the client took nothing for write_timeout
      };
      auto on_writable = [self = this->shared_from_this(), keep](beast::error_code ec) {
        self->guarded([&] {
          ++self->send_waits_;
          self->send_timer_.cancel();
          if (ec) return self->close_now();
          self->send_file_body(keep);
        });
      };
      send_timer_.expires_after(core_->options.write_timeout);
      send_timer_.async_wait(net::bind_executor(stream_.get_executor(), std::move(on_timeout)));
      lowest().socket().async_wait(tcp::socket::wait_write,
                                   net::bind_executor(stream_.get_executor(), std::move(on_writable)));
    }
  }

  // sendfile(2) and send(2) on the socket must not block the network thread. False: the connection is closed.
  bool make_non_blocking() {
    if (socket_non_blocking_) return true;
    beast::error_code ec;
    lowest().socket().native_non_blocking(true, ec);
    if (ec) {
      file_failed("cannot make the socket non-blocking: " + ec.message());
      return false;
    }
    socket_non_blocking_ = true;
    return true;
  }

  void file_failed(const std::string& why) {
    spdlog::warn("connection from {}: a file body failed after {} of {} bytes: {}; closing the connection",
                 slot_->address, file_sent_, file_ ? file_->length : 0, why);
    close_now();
  }

  void start_stream(Response response) {
    // The channel holds the connection weakly and no executor of its own: it may outlive both (in the server's
    // stream registry, or on a producer thread), and an executor must not outlive its io_context.
    beast::error_code ec;
    const auto remote = lowest().socket().remote_endpoint(ec);
    const std::string address = ec ? std::string("unknown") : remote.address().to_string();
    auto channel = std::make_shared<StreamChannel>(
        std::move(response.stream), core_->stream_pool, core_->options.stream_buffer_bytes,
        std::move(response.stream_owner), address, [weak = this->weak_from_this()] {
          if (auto self = weak.lock()) {
            net::post(self->stream_.get_executor(), [self] { self->pump(); });
          }
        });
    if (auto refused = core_->begin_stream(channel)) {
      return send_wire_error(503, *refused, /*close=*/false);
    }
    state_ = State::kStreaming;
    channel_ = channel;
    // HTTP/1.1: chunked, and kept alive like any response (the terminating chunk delimits the body), so many small
    // queries share one connection. HTTP/1.0 has no chunked framing: the body is delimited by closing the
    // connection. A failed stream ends the connection either way, below.
    chunked_ = version_ >= 11;
    keep_alive_ = keep_alive_ && chunked_ && !core_->stopping.load();
    stream_header_.emplace(static_cast<http::status>(response.status), version_);
    stream_header_->set(http::field::server, to_beast(server_version()));
    stream_header_->set(http::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) stream_header_->set(name, value);
    set_default_fields(*stream_header_);
    if (chunked_) {
      stream_header_->keep_alive(keep_alive_);
      stream_header_->chunked(true);
    } else {
      stream_header_->set(http::field::connection, "close");
    }
    serializer_.emplace(*stream_header_);
    lowest().expires_after(core_->options.write_timeout);
    http::async_write_header(stream_, *serializer_, [self = this->shared_from_this()](beast::error_code ec2,
                                                                                         std::size_t) {
      if (ec2) return self->close_now();  // gone before the first byte of the body: the slot is given back
      if (!self->channel_) return;        // closed meanwhile (server stop)
      self->watch_for_disconnect();
      self->channel_->begin();
    });
  }

  // While a stream runs no request is parsed, so a pending read notices at once when the client hangs up (an
  // event stream may be silent for a long time). What the client sends meanwhile (a pipelined next request) is
  // kept in buffer_ for after the stream, up to one request's worth; beyond that it is dropped, and the connection
  // then closes after the stream because its input can no longer be trusted. A read EOF is the client's
  // half-close (shutdown(SHUT_WR)), not a hang-up: it still reads, so the answer goes out whole and the connection
  // closes after it. A client that closed entirely is noticed by the next write failing.
  void watch_for_disconnect() {
    lowest().expires_never();
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(kWatchReadBytes), [self = this->shared_from_this()](
                                                                  beast::error_code ec, std::size_t n) {
      self->watching_ = false;
      self->buffer_.commit(n);
      if (self->state_ == State::kStreamEnded) {
        // Called off by after_stream() (operation_aborted), or it read the next request's first bytes just
        // before: either way the stream is over. Anything else is the client leaving.
        if (ec && ec != net::error::operation_aborted) return self->close_now();
        return self->do_read();
      }
      if (self->state_ != State::kStreaming) return;
      if (ec == net::error::eof || ec == http::error::end_of_stream ||
          ec == net::ssl::error::stream_truncated) {
        // Half-closed: finish the answer, then close; nothing more will be read. With no read pending, the
        // session keeps itself alive until the stream ends (end_stream() lets go).
        self->keep_alive_ = false;
        self->hold_ = self;
        return;
      }
      if (ec) {
        // The client is gone: the stream is given back here, not left to pump(). Between chunks no write is pending,
        // so this handler may hold the session's last reference, and fail() kicks nobody when a pool thread has
        // claimed the kick (conn_active_) but not yet delivered it: that kick then finds the session gone (the
        // channel holds it weakly), and the stream's slot was never given back. As on a write error.
        self->client_gone_ = true;
        if (self->channel_) self->channel_->fail(make_error(WbemCode::kFailed, "the client disconnected"));
        return self->close_now();
      }
      const std::size_t limit = self->core_->options.max_header_bytes + self->core_->options.max_body_bytes;
      if (self->buffer_.size() > limit) {
        self->buffer_.consume(self->buffer_.size());
        self->keep_alive_ = false;
      }
      self->watch_for_disconnect();
    });
  }

  void pump() {
    if (!channel_ || writing_chunk_ || state_ != State::kStreaming) return;
    Status result;
    switch (channel_->take(chunk_, result)) {
      case StreamChannel::Next::kIdle:
        return;
      case StreamChannel::Next::kWrite: {
        writing_chunk_ = true;
        lowest().expires_after(core_->options.write_timeout);
        auto done = [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
          self->writing_chunk_ = false;
          if (ec) {
            // Write error or write timeout: the client is gone or stalled past write_timeout.
            self->client_gone_ = true;
            if (self->channel_) self->channel_->fail(make_error(WbemCode::kFailed, "the client disconnected"));
            return self->close_now();
          }
          if (self->channel_) self->channel_->written();
          self->pump();
        };
        if (chunked_) {
          net::async_write(stream_, http::make_chunk(net::buffer(chunk_)), std::move(done));
        } else {
          net::async_write(stream_, net::buffer(chunk_), std::move(done));
        }
        return;
      }
      case StreamChannel::Next::kFinish:
        if (!result.ok()) {
          // The status line is long gone; an unterminated chunked body is how HTTP says "this is incomplete".
          // A client that leaves an event stream (`status --wait` once it has its answer, a closed dashboard tab)
          // is how such a stream normally ends: not worth a warning.
          if (client_gone_) {
            spdlog::debug("stream ended early: {}", result.error().to_string());
          } else if (result.error().code != WbemCode::kShuttingDown) {
            spdlog::warn("stream ended early: {}", result.error().to_string());
          }
          return close_now();
        }
        if (!chunked_) {
          // HTTP/1.0: the end of the body is the end of the connection (keep_alive_ is false).
          end_stream();
          return after_stream();
        }
        writing_chunk_ = true;
        lowest().expires_after(core_->options.write_timeout);
        net::async_write(stream_, http::make_chunk_last(),
                         [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                           self->writing_chunk_ = false;
                           self->end_stream();
                           if (ec) return self->close_now();
                           self->after_stream();
                         });
        return;
    }
  }

  // The body is complete on the wire. The next request is read once the disconnect watch has returned (a stream
  // allows one read at a time); calling it off keeps whatever it had already received.
  void after_stream() {
    serializer_.reset();
    stream_header_.reset();
    if (!keep_alive_ || core_->stopping.load()) {
      // The request was read whole and the disconnect watch consumed anything sent since (or the client
      // half-closed), so closing right away cannot reset the connection under unread data.
      if constexpr (!kTls) {
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      }
      return close_now();
    }
    state_ = State::kStreamEnded;
    if (!watching_) return do_read();
    beast::error_code ignored;
    lowest().socket().cancel(ignored);
  }

  // Gives the stream's slot back and drops the channel (its source is cancelled by the pool if it had not
  // finished). Every way a streaming session ends passes here: the last chunk, close_now() (write error or
  // timeout, hang-up, server stop, revocation), a failed header write.
  void end_stream() {
    if (!channel_) return;
    auto channel = std::move(channel_);
    channel_.reset();
    chunk_.clear();
    chunk_.shrink_to_fit();
    core_->end_stream(channel);
    // Callers run inside a handler that holds the session, so letting go here cannot destroy it under them.
    hold_.reset();
  }

  void on_server_stopping() {
    switch (state_) {
      case State::kHandshake:
      case State::kReading:
        return close_now();
      case State::kStreaming:
        // Ended well where the source can say why (an event stream's `event: error`), within the grace period:
        // the body then ends with its last chunk and the connection closes (after_stream).
        if (channel_) channel_->end(make_error(WbemCode::kShuttingDown, "the server is shutting down"));
        return;
      case State::kHandling:
      case State::kWriting:
      case State::kClosing:
        return;  // the response goes out with "Connection: close"
      case State::kStreamEnded:
        return;  // do_read() comes next and closes instead
    }
  }

  // Half-closes and drains what the client still sends (briefly), so an unread request body does not turn our
  // last response into a connection reset on the client's side.
  void close_gracefully() {
    if (state_ == State::kClosing) return;
    state_ = State::kClosing;
    lowest().expires_after(std::chrono::seconds(2));
    if constexpr (kTls) {
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->close_now(); });
    } else {
      beast::error_code ec;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return close_now();
      drain();
    }
  }

  void drain() {
    lowest().async_read_some(net::buffer(discard_), [self = this->shared_from_this()](beast::error_code ec,
                                                                                      std::size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > 4 * self->core_->options.max_body_bytes) return self->close_now();
      self->drain();
    });
  }

  void close_now() {
    state_ = State::kClosing;
    if (channel_) channel_->fail(make_error(WbemCode::kFailed, "the connection was closed"));
    end_stream();
    file_.reset();  // the descriptor goes now, not when the last handler lets go of the session
    if constexpr (!kTls) send_timer_.cancel();
    lowest().close();
  }

  std::shared_ptr<HttpServer::Core> core_;
  Stream stream_;
  std::shared_ptr<ConnectionSlot> slot_;  // shared with the connection registry
  std::uint64_t id_ = 0;
  bool refused_ = false;  // at a connection limit with nothing to evict: answer 503 and close
  State state_ = State::kReading;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  // Reading a request.
  bool head_started_ = false;     // the head timer (header_timeout) runs
  std::size_t head_scanned_ = 0;  // bytes of buffer_ already searched for the end of the head
  std::string_view method_label_ = "-";  // one of kKnownMethods once the head passed the rules; else "-"
  bool head_request_ = false;
  std::optional<Request> pending_request_;  // admitted, its body being read
  std::optional<Admission> pending_admission_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  std::chrono::steady_clock::time_point started_;
  // Streaming.
  std::shared_ptr<StreamChannel> channel_;
  bool chunked_ = true;  // false: an HTTP/1.0 client, whose body ends with the connection
  // Set while a half-closed client's stream runs: between writes no pending operation holds the session.
  std::shared_ptr<Session> hold_;
  std::optional<http::response<http::empty_body>> stream_header_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;
  std::string chunk_;
  bool writing_chunk_ = false;
  bool watching_ = false;  // the disconnect watch's read is pending
  bool client_gone_ = false;  // a stream's client hung up or stopped reading (its end is logged at debug)
  std::array<char, 4096> discard_{};
  std::size_t drained_ = 0;
  // A file body being sent (send_file): at most one open file per connection.
  static constexpr std::uint64_t kSendfileSlice = 1u << 20;  // at most per sendfile call
  static constexpr std::size_t kFileBufferBytes = 64u << 10;  // TLS: what one write holds
  std::optional<FileBody> file_;
  std::uint64_t file_sent_ = 0;
  std::optional<http::response<http::empty_body>> file_header_;
  std::string file_head_;  // plain: what of the serialized head send(2) did not take at once
  std::string file_buffer_;
  bool socket_non_blocking_ = false;
  net::steady_timer send_timer_{stream_.get_executor()};  // bounds each wait for the socket (plain only)
  std::uint64_t send_waits_ = 0;                          // socket waits begun and ended, to match timeouts
};

}  // namespace pkgcast::server
