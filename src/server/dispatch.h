// The request pipeline between the wire and a handler, free of networking so it can be tested alone:
// route match (404 / 405) -> bearer-token authentication (401 / 403) -> handler inside the one catch-all
// (500 WBEM_E_FAILED). Runs on a worker thread: authentication and handlers may block on the database.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "server/router.h"
#include "site/tokens.h"

namespace pkgcast::server {

// Looks up the token of an "Authorization: Bearer <token>" header: the record, nullopt when unknown, or an error
// when the lookup itself failed (the store is down). Called from worker threads concurrently.
using Authenticator = std::function<Result<std::optional<site::TokenRecord>>(std::string_view token)>;

// Route labels for requests that matched no route, used in metrics.
inline constexpr std::string_view kUnmatchedRoute = "(unmatched)";
inline constexpr std::string_view kStaticRoute = "(static)";

class Dispatcher {
 public:
  // `router` must outlive the dispatcher. `fallback`, when set, answers GET requests that match no route and are
  // not under /api/ (the dashboard's static files); it is public.
  Dispatcher(const Router& router, Authenticator authenticator, Handler fallback);

  // Produces the response for `request` (whose method, path, query, headers and body are set). Fills
  // request.params and request.caller. Never throws. `route_label` receives the matched pattern for metrics.
  Response dispatch(Request& request, std::string_view& route_label) const;

 private:
  Response call_guarded(const Handler& handler, Request& request) const;

  const Router& router_;
  Authenticator authenticator_;
  Handler fallback_;
};

// The token of an "Authorization" header value: "Bearer <token>" (scheme case-insensitive); nullopt otherwise.
std::optional<std::string_view> bearer_token(std::string_view authorization);

}  // namespace pkgcast::server
