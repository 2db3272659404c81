// The HTTP/1.1 server (Boost.Beast, asynchronous), plain or TLS.
//
// Threads:
// - network: `network_threads` threads run one io_context: accept, TLS handshakes, reads, writes. Nothing on them
//   blocks. Each connection's operations run on its own strand.
// - workers: a fixed pool of `workers` threads runs authentication and handlers (both may block on the database).
//   A route's InlineHandler (router.h: local files only, bounded CPU) runs on the network thread instead, for a
//   request without a body whose token is remembered without the store (Dispatcher::answer_inline).
// - stream producers: a fixed pool of `stream_producers` threads pulls every streamed response's body from its
//   StreamSource (router.h), a bounded piece at a time and only while the connection has room, so no stream holds
//   a thread (or a database connection) while it waits for its client or for data.
//
// Connections: at most max_connections, and max_connections_per_address from one peer address; at a limit the
// longest-idle connection (no request in progress) is closed to admit the new one, and when none is idle the new
// one is answered 503 WBEM_E_SERVER_TOO_BUSY and closed. Per connection: keep-alive, one request at a time (no
// pipelining), limits on header (trailers included) and body size, a header timeout (the whole head must arrive
// within it), an idle timeout between requests and a write timeout. Each request head passes
// server/request_rules.h first (unknown methods 501, ambiguous framing 400/501, obs-fold, Host, duplicate
// Authorization), and is routed and authenticated before its body is read or "100 Continue" is sent: a refused
// request with a body is answered at once and the connection closes. A streamed response is chunked (close-delimited for an
// HTTP/1.0 client); the connection stays open after its terminating chunk like after any response, and is closed
// instead when the stream failed (the body is left unterminated, so the client sees it incomplete). A client's
// half-close (read EOF) is not a hang-up: the answer is sent whole, then the connection closes. Errors on the wire are answered with the WBEM JSON error body:
// 400 malformed request, 413 body too large, 431 header or trailer too large, 501 unknown method or transfer
// coding, 503 while shutting down, when the worker queue or a stream quota is full, or at a connection limit. HEAD is answered
// wherever GET is, with the GET answer's headers and no body. No exception escapes a network or worker thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "server/dispatch.h"
#include "server/metrics.h"
#include "server/router.h"

namespace pkgcast::server {

struct TlsFiles {
  std::filesystem::path cert_file;  // PEM certificate chain
  std::filesystem::path key_file;   // PEM private key
};

// The largest max_header_bytes the parser can hold: Beast keeps a field's offsets in 16 bits and throws for a field
// of 65,534 bytes or more, so a head (or a trailer section) is kept below that. Larger values are clamped.
inline constexpr std::size_t kMaxHeaderBytesLimit = 65'535;

// Connection limits derived from the open-file limit (RLIMIT_NOFILE): a reserve of max(64, limit / 8) descriptors
// is kept for the database, log and served files; max_connections is the rest, and one address may hold a quarter
// of them. Both at least 1.
struct ConnectionLimits {
  std::size_t max_connections = 0;
  std::size_t max_connections_per_address = 0;
};
ConnectionLimits connection_limits_for(std::uint64_t open_files_limit);
// The process's soft RLIMIT_NOFILE (1024 when it cannot be read).
std::uint64_t open_files_limit();

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // an IP address or a name that resolves to one
  std::uint16_t port = 8750;       // 0 = any free port; port() tells which
  std::optional<TlsFiles> tls;     // set = HTTPS only
  std::size_t network_threads = 1;
  std::size_t workers = 4;
  std::size_t max_header_bytes = 16 * 1024;         // the head, and separately a chunked body's trailers
  std::size_t max_connections = 0;                  // 0 = connection_limits_for(open_files_limit()); clamped to it
  std::size_t max_connections_per_address = 0;      // 0 = the same rule; clamped to max_connections
  std::chrono::milliseconds header_timeout{10'000};  // from connect or a request's first byte to its complete head
  std::size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds idle_timeout{60'000};   // between requests on a kept-alive connection
  std::chrono::milliseconds write_timeout{60'000};  // for one response or one chunk to be taken by the client
  std::size_t max_streams = 256;                    // concurrent streamed responses; more get 503
  std::size_t max_streams_per_token = 32;           // of those, per token id (anonymous streams: address only)
  std::size_t max_streams_per_address = 64;         // of those, per client IP address
  std::size_t max_queued_requests = 4096;           // waiting for a worker; more get 503
  std::size_t stream_buffer_bytes = 256 * 1024;     // a stream's unsent bytes; its source is not called beyond
  std::size_t stream_producers = 2;                 // threads pulling from every stream's source
};

// "0.1.0": the version of this build (health, metrics, the Server header).
std::string_view pkgcast_version();

class HttpServer {
 public:
  // Resolves and binds the listening socket and loads the TLS files; serves nothing until start().
  // WBEM_E_INVALID_PARAMETER for an unusable host or TLS file, WBEM_E_FAILED when the address cannot be bound.
  // `router` and `metrics` must outlive the server; `dispatcher` is built from router, authenticator, fallback and
  // `remembered` (which, when set, lets the network thread answer a route's InlineHandler: router.h).
  static Result<std::unique_ptr<HttpServer>> create(const HttpServerOptions& options, const Router& router,
                                                    Authenticator authenticator, Handler fallback, Metrics& metrics,
                                                    RememberedToken remembered = {});
  // Stops as stop() with no grace period.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts the network and worker threads. Call once.
  void start();

  std::uint16_t port() const;
  // "http://127.0.0.1:8750" / "https://[::1]:8443".
  std::string url() const;
  bool stopping() const;

  // Graceful stop: stops accepting, closes idle connections, lets requests in progress finish and answers new ones
  // with 503 WBEM_E_SHUTTING_DOWN for up to `grace`; asks every stream to end with WBEM_E_SHUTTING_DOWN (a source
  // that can say so in its body, StreamSource::end_early, does, and the body ends complete; the others end
  // incomplete at once); when `grace` is over fails every stream still open (a client that does not read), closes
  // every connection, and joins all threads. Returns when no handler or producer runs any more. Idempotent; call
  // from any thread but a server thread.
  void stop(std::chrono::milliseconds grace);

  // Ends at once every open stream whose request was authenticated with token `token_id` (for a revoked token):
  // its source is cancelled with WBEM_E_ACCESS_DENIED and its connection closed with the body incomplete.
  // Returns how many streams were ended. Any thread.
  std::size_t end_streams_of(std::string_view token_id);

  class Core;  // shared with the connections; defined in server_core.h

 private:
  explicit HttpServer(std::shared_ptr<Core> core);
  std::shared_ptr<Core> core_;
};

}  // namespace pkgcast::server
