// A blocking HTTP/1.1 client for the pkgcast API: one kept-alive connection, TLS when the URL says https, the bearer
// token on every request, and the server's JSON errors turned back into pkgcast::Error.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/url.h"
#include "core/result.h"

namespace pkgcast::client {

struct HttpOptions {
  std::string token;                                  // sent as "Authorization: Bearer <token>" when not empty
  std::string ca_file;                                // trust these certificates for https (default: system store)
  bool insecure = false;                              // https without certificate checks (tests, lab set-ups)
  std::chrono::milliseconds timeout{30'000};          // per request; 0 = none
};

struct HttpResponse {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  // Every response header as received (names as the server spelled them), in order.
  std::vector<std::pair<std::string, std::string>> headers;

  // The value of the first header named `name` (ASCII case-insensitive), "" when absent.
  std::string header(std::string_view name) const;
};

// A request whose answer is read piece by piece (see HttpClient::stream).
struct StreamRequest {
  std::string_view method = "GET";
  std::string_view target{};                        // below the URL's base path, with its query string
  std::string_view body{};
  std::string_view content_type = "application/json";
  std::string_view accept = "application/json";
  // Further request headers (e.g. Range, Last-Event-ID), sent as given after the ones above.
  std::vector<std::pair<std::string, std::string>> headers{};
  // Called once the status line and headers arrived, before any body byte; false stops reading.
  std::function<bool(const HttpResponse& head)> on_head{};
  // Called with each piece of the body as it arrives; false stops reading (the connection is closed).
  std::function<bool(std::string_view piece)> on_data{};
  // When set and it becomes true, the request ends WBEM_E_CALL_CANCELLED and the connection is closed: seen within
  // 100 ms while a plain connection waits for bytes, and between reads on TLS. Unlike cancel(), it ends only the
  // requests that carry it (a job stopped while its downloads wait on a source that says nothing).
  const std::atomic<bool>* abort = nullptr;
};

// Thread safety: one request at a time; use one client per thread (cancel() excepted).
class HttpClient {
 public:
  static Result<std::unique_ptr<HttpClient>> create(const ServerUrl& url, HttpOptions options);
  virtual ~HttpClient() = default;

  // Sends a request (target is the path below the URL's base path, with its query string) and reads the whole
  // response. A connection the server closed while idle is reopened once. Transport problems are
  // WBEM_E_TRANSPORT_FAILURE naming the server; HTTP errors are NOT turned into errors here (see call()).
  virtual Result<HttpResponse> request(std::string_view method, std::string_view target, std::string_view body = {},
                                       std::string_view content_type = "application/json") = 0;

  // As request, but hands the body to `on_data` piece by piece as it arrives (chunked or not); on_data returns
  // false to stop reading, which closes the connection. Returns the status and content type with an empty body.
  virtual Result<HttpResponse> request_streaming(std::string_view method, std::string_view target,
                                                 std::string_view body,
                                                 const std::function<bool(std::string_view)>& on_data) = 0;

  // The general form of request_streaming: headers of the request and a callback for the response head. The
  // timeout applies to each step (connect, write, the whole response head, every read of the body), so for an
  // endless stream it is an idle timeout, while a head that trickles in a byte at a time still ends in time.
  virtual Result<HttpResponse> stream(const StreamRequest& request) = 0;

  // Several requests sent together, before any answer is read (HTTP/1.1 pipelining), then their answers read in
  // order, each as stream() reads one: a batch of small downloads waits for the server once rather than once per
  // request. One result per request, in order. When an answer fails, is stopped (its on_head or on_data said so)
  // or ends the connection, the connection is closed and every request after it is answered
  // WBEM_E_TRANSPORT_FAILURE without a retry: the server may not have seen them, and the caller asks again. A
  // connection the server had closed while idle is reopened once, as by stream(), when no answer arrived at all.
  virtual std::vector<Result<HttpResponse>> stream_pipelined(std::span<const StreamRequest> requests) = 0;

  // Aborts the request in progress, if any, and every later one: they return WBEM_E_CALL_CANCELLED. The only
  // member that may be called from another thread than the one making requests; the client must stay alive
  // until it returns.
  virtual void cancel() = 0;

  // request(), then: a 2xx answer yields its body; anything else yields the server's error
  // ({"error": "WBEM_E_...", "message": ...}) as an Error, or WBEM_E_FAILED with the status when the body is not
  // a pkgcast error.
  Result<std::string> call(std::string_view method, std::string_view target, std::string_view body = {});

  const ServerUrl& url() const { return url_; }

 protected:
  explicit HttpClient(ServerUrl url) : url_(std::move(url)) {}
  ServerUrl url_;
};

// The Error a non-2xx response stands for.
Error error_from_response(const HttpResponse& response);

}  // namespace pkgcast::client
