// The request pipeline between the wire and a handler, free of networking so it can be tested alone:
// route match (404 / 405) -> bearer-token authentication (401 / 403) -> handler inside the one catch-all
// (500 WBEM_E_FAILED). Runs on a worker thread: authentication and handlers may block on the database; except
// answer_inline(), which the network thread calls and which never blocks.
// Admission (match and authentication) needs only the request head, so the server admits a request before it
// reads the body or sends "100 Continue": a refused upload costs a header's worth of memory, not a body's.
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

// The record of a token when it is known without the store (and active): what the server's token cache holds
// (token_cache.h). nullopt when only a lookup through the store would tell. Never blocks; called from network
// threads concurrently.
using RememberedToken = std::function<std::optional<site::TokenRecord>(std::string_view token)>;

// The query parameter that carries a token on routes registered with QueryToken::kAccepted (router.h; RFC 6750
// section 2.3). admit() takes it out of request.query on every route; with an Authorization header too, or on a
// route that does not accept it, the request is refused 400 WBEM_E_INVALID_PARAMETER.
inline constexpr std::string_view kAccessTokenParameter = "access_token";

// Route labels for requests that matched no route, used in metrics.
inline constexpr std::string_view kUnmatchedRoute = "(unmatched)";
inline constexpr std::string_view kStaticRoute = "(static)";

// What admit() decided: a refusal to send as is, or the handler to run once the body is in.
struct Admission {
  std::optional<Response> refusal;   // 404, 405, 400 (access_token), 401, 403, or the token lookup's own error
  const Handler* handler = nullptr;  // set when admitted; owned by the router or the dispatcher
  std::string_view route_label;      // the matched pattern or a fixed label (metrics)
};

class Dispatcher {
 public:
  // `router` must outlive the dispatcher. `fallback`, when set, answers GET requests that match no route and are
  // not under /api/ (the dashboard's static files); it is public.
  // `remembered`, when set, lets answer_inline() authenticate without the store.
  Dispatcher(const Router& router, Authenticator authenticator, Handler fallback, RememberedToken remembered = {});

  // Produces the response for `request` (whose method, path, query, headers and body are set). Fills
  // request.params and request.caller. Never throws. `route_label` receives the matched pattern for metrics.
  // The same as admit() then run().
  Response dispatch(Request& request, std::string_view& route_label) const;

  // Route match and authentication on the head alone (method, path, headers); fills request.params and
  // request.caller. Throws only what the authenticator throws.
  Admission admit(Request& request) const;
  // Runs an admitted request's handler (request.body now set) inside the catch-all. Never throws.
  Response run(const Admission& admission, Request& request) const;

  // The answer to a request without a body, given without blocking (router.h, InlineHandler): when its route has
  // an InlineHandler, its bearer token is remembered (RememberedToken) with a role the route admits, and that
  // handler answers. nullopt otherwise, with `request` as it came: the request then goes through admit() and run()
  // on a worker, which also give every refusal. `route_label` receives the matched pattern when answered. Never
  // throws.
  std::optional<Response> answer_inline(Request& request, std::string_view& route_label) const;

 private:
  Response call_guarded(const Handler& handler, Request& request) const;

  const Router& router_;
  Authenticator authenticator_;
  Handler fallback_;
  RememberedToken remembered_;
};

// The token of an "Authorization" header value: "Bearer <token>" (scheme case-insensitive); nullopt otherwise.
std::optional<std::string_view> bearer_token(std::string_view authorization);

}  // namespace pkgcast::server
