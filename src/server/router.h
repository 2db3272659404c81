// The contract between the HTTP server and the resources it serves. A route is a method, a path pattern, the
// access it needs, and a handler. Handlers run on worker threads (never the network thread), may block on the
// database, and never throw: the server wraps each call in one catch-all that answers WBEM_E_FAILED.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "site/identity.h"

namespace pkgcast::server {

// What a route demands of the caller's token. Each level admits the roles listed:
//   kPublic: no token needed.           kRead: any role but dp.
//   kPackageAdmin: full-admin, package-admin.   kFullAdmin: full-admin.
//   kDp: dp (its own endpoints; the handler checks the DP name) and full-admin.
enum class Access : std::uint8_t { kPublic, kRead, kPackageAdmin, kFullAdmin, kDp };

// True when `role` satisfies `access`.
bool role_allows(site::Role role, Access access);

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

// Writes a streamed body, chunk by chunk. write() blocks while the client is slow (back-pressure) and fails once
// the client has gone away, so producers stop early.
class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  virtual Status write(std::string_view chunk) = 0;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, the body is produced by this function with chunked transfer encoding, after the status line and
  // headers were sent; `body` is ignored. Used for large query results and event streams.
  std::function<Status(BodyWriter&)> stream;

  static Response json(unsigned status, std::string body);
};

// {"error": "WBEM_E_...", "hresult": "0x8004....", "message": ...} with the HTTP status for the code:
// 400 for bad input (INVALID_QUERY/CLASS/PROPERTY/PARAMETER/OBJECT_PATH, TYPE_MISMATCH, VALUE_OUT_OF_RANGE,
// ILLEGAL_NULL, INVALID_OPERATION, QUOTA_VIOLATION, READ_ONLY), 401 for a missing or unknown token,
// 403 ACCESS_DENIED, 404 NOT_FOUND / INVALID_NAMESPACE / INVALID_METHOD, 409 ALREADY_EXISTS,
// 413 for an oversized body, 501 NOT_SUPPORTED, 503 SHUTTING_DOWN / SERVER_TOO_BUSY, 500 otherwise.
Response error_response(const Error& error);
unsigned http_status_for(WbemCode code);

using Handler = std::function<Response(Request&)>;

class Router {
 public:
  // Pattern segments in braces bind path parameters: "/api/v1/packages/{id}/distribute".
  void add(std::string method, std::string pattern, Access access, Handler handler);

  struct Match {
    const Handler* handler = nullptr;
    Access access = Access::kPublic;
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
  };
  std::vector<Route> routes_;
};

}  // namespace pkgcast::server
