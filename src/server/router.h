// The contract between the HTTP server and the resources it serves. A route is a method, a path pattern, the
// access it needs, and a handler. Handlers run on worker threads (never the network thread), may block on the
// database, and never throw: the server wraps each call in one catch-all that answers WBEM_E_FAILED.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "server/file_body.h"
#include "site/identity.h"

namespace pkgcast::server {

// What a route demands of the caller's token. Each level admits the roles listed:
//   kPublic: no token needed.           kRead: any role but dp.
//   kPackageAdmin: full-admin, package-admin.   kFullAdmin: full-admin.
//   kDp: dp (its own endpoints; the handler checks the DP name) and full-admin.
//   kAnyRole: every role, dp included (immutable content, which DP agents fetch and readers may inspect).
enum class Access : std::uint8_t { kPublic, kRead, kPackageAdmin, kFullAdmin, kDp, kAnyRole };

// True when `role` satisfies `access`.
bool role_allows(site::Role role, Access access);

// Whether a route also takes its token as the `access_token` query parameter (RFC 6750 section 2.3), for clients
// that cannot send an Authorization header: a browser's EventSource. Only the event stream does, since a URL is
// logged by proxies and kept in histories; elsewhere the parameter is refused (400), never read as a token.
enum class QueryToken : std::uint8_t { kRefused, kAccepted };

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded, without the query string: "/api/v1/packages/ABC00001"
  std::map<std::string, std::string> query;   // decoded query parameters
  std::map<std::string, std::string> params;  // from the pattern: {"id": "ABC00001"}
  std::map<std::string, std::string, std::less<>> headers;  // lower-case names
  std::string body;
  // The authenticated caller; nullopt on kPublic routes without a token.
  std::optional<site::TokenRecord> caller;

  // A header by lower-case name, or "" when absent.
  std::string_view header(std::string_view lower_name) const;
};

// A streamed body, pulled piece by piece (design.md section 9: streams are asynchronous). No thread and no
// database connection belongs to a stream: a small fixed pool of producer threads (`stream_producers`) calls
// next() for the streams that are ready, one call at a time per stream, and only while the connection has room
// (less than `stream_buffer_bytes` taken and not yet sent). Between calls a source holds only its own state.
//
// The contract, for every kind of stream (query answers, event streams, chunk downloads):
// - start(wake) is called once, on a producer thread, before the first next(). `wake` may be kept and called from
//   any thread at any time, also after the stream ended (then it does nothing); it is cheap and never blocks.
// - next(out, room) appends the next piece to `out` (empty on entry; about `room` bytes at most, one indivisible
//   item may exceed it) and returns quickly: it does a BOUNDED amount of work (a page of rows, a time slice, what
//   is queued) and never waits for anything. It answers:
//     more()       call me again as soon as there is room (out may be empty: work was done, none of it output);
//     wait()       nothing more for now; call me again after wake() (a wake() that came during this call counts);
//     done(status) the body is complete; an error status ends it as incomplete (a chunked body is left
//                  unterminated and the connection closes), so a source that can say what went wrong in its body
//                  format (the query's "error" member) writes that and answers done(ok).
//   next() must not throw; if it does, the stream ends as done(WBEM_E_FAILED).
// - cancel(why) is called once instead of any further next() when the stream ends early: the client hung up, a
//   write failed or timed out, the server is stopping (WBEM_E_SHUTTING_DOWN), or the server ended the caller's
//   streams (HttpServer::end_streams_of, for a revoked token). Never concurrently with next(). The source drops
//   whatever it holds; the server drops the source soon after.
// - end_early(why, out) is called once, instead of any further next(), when the server ends a healthy stream on
//   its own account (it is stopping: WBEM_E_SHUTTING_DOWN). A source whose body format can say so appends that to
//   `out` (an event stream's `event: error`), drops what it holds and answers true: the body then ends complete,
//   after what was already produced, if the client takes it within the server's shutdown grace. False (the
//   default) ends the stream as a failure does (incomplete), and cancel(why) follows. Bounded like next().
// Thread safety: next()/start()/cancel() are serialized per stream, though not always on the same thread.
class StreamSource {
 public:
  class Step {
   public:
    enum class Kind : std::uint8_t { kMore, kWait, kDone };
    static Step more() { return Step(Kind::kMore, ok_status()); }
    static Step wait() { return Step(Kind::kWait, ok_status()); }
    static Step done(Status status = ok_status()) { return Step(Kind::kDone, std::move(status)); }
    Kind kind() const { return kind_; }
    const Status& status() const { return status_; }

   private:
    Step(Kind kind, Status status) : kind_(kind), status_(std::move(status)) {}
    Kind kind_;
    Status status_;
  };
  using Waker = std::function<void()>;

  virtual ~StreamSource() = default;
  virtual void start(Waker wake) { (void)wake; }
  virtual Step next(std::string& out, std::size_t room) = 0;
  virtual void cancel(const Error& why) { (void)why; }
  virtual bool end_early(const Error& why, std::string& out) {
    (void)why;
    (void)out;
    return false;
  }
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, the body is these bytes of a file (file_body.h), sent from the file; `body` is ignored. The headers
  // (Content-Length included) are as for a string body of that length, HEAD gets them without the body.
  std::optional<FileBody> file;
  // When set, the body is pulled from this source after the status line and headers were sent; `body` is
  // ignored. HTTP/1.1 clients get it chunked; HTTP/1.0 clients get it close-delimited (Connection: close).
  std::shared_ptr<StreamSource> stream;
  // Whose stream it is, for the per-token stream quota and HttpServer::end_streams_of: the dispatcher fills it
  // with the caller's token id ("" for an anonymous caller).
  std::string stream_owner;

  static Response json(unsigned status, std::string body);
};

// {"error": "WBEM_E_...", "hresult": "0x8004....", "message": ...} with the HTTP status for the code:
// 400 for bad input (INVALID_QUERY/CLASS/PROPERTY/PARAMETER/OBJECT_PATH, TYPE_MISMATCH, VALUE_OUT_OF_RANGE,
// ILLEGAL_NULL, INVALID_OPERATION, QUOTA_VIOLATION, READ_ONLY), 401 for a missing or unknown token,
// 403 ACCESS_DENIED, 404 NOT_FOUND / INVALID_NAMESPACE / INVALID_METHOD, 409 ALREADY_EXISTS,
// 413 for an oversized body, 501 NOT_SUPPORTED, 503 SHUTTING_DOWN / SERVER_TOO_BUSY, 500 otherwise.
Response error_response(const Error& error);
// That body alone, as one line of JSON: what a stream that has already sent its status writes when it fails.
std::string error_json(const Error& error);
unsigned http_status_for(WbemCode code);

using Handler = std::function<Response(Request&)>;

// A route's second handler, for the requests it can answer without blocking: from local files (an open, a stat),
// with bounded CPU, never through the store. The server calls it on the network thread, for a request without a
// body whose token is known without the store (Dispatcher::answer_inline), sparing the hand-off to a worker and
// back that a DP agent's thousands of chunk requests a second would otherwise each pay. nullopt: the request goes
// to a worker and the route's Handler answers it, as every request of a route without an InlineHandler does.
// Must not throw.
using InlineHandler = std::function<std::optional<Response>(Request&)>;

class Router {
 public:
  // Pattern segments in braces bind path parameters: "/api/v1/packages/{id}/distribute".
  void add(std::string method, std::string pattern, Access access, Handler handler,
           QueryToken query_token = QueryToken::kRefused, InlineHandler inline_handler = {});

  struct Match {
    const Handler* handler = nullptr;
    const InlineHandler* inline_handler = nullptr;  // null when the route has none
    Access access = Access::kPublic;
    QueryToken query_token = QueryToken::kRefused;
    std::map<std::string, std::string> params;
    std::string_view pattern;  // the matched route's pattern (metrics label); valid while the router lives
  };
  // nullopt when no pattern matches the path; a match with handler == nullptr when the path matches but the
  // method does not (405). HEAD matches a GET route when no HEAD route is registered: the handler runs as for GET
  // (request.method stays "HEAD") and the server sends the headers without the body.
  std::optional<Match> match(std::string_view method, std::string_view path) const;
  // The methods registered for a path, for the Allow header of a 405 (HEAD included wherever GET is).
  std::vector<std::string> allowed_methods(std::string_view path) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Access access;
    Handler handler;
    QueryToken query_token;
    InlineHandler inline_handler;
  };
  std::vector<Route> routes_;
};

}  // namespace pkgcast::server
