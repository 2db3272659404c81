#include "server/dispatch.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

#include "core/strings.h"

namespace pkgcast::server {
namespace {

// RFC 6750 section 3: a request without a token gets the bare challenge; one whose token was presented and not
// accepted (unknown, expired, revoked) names `invalid_token`, and one whose Authorization header is not a bearer
// token `invalid_request`, so a client can tell "log in" from "your token is dead".
enum class Challenge { kNoToken, kInvalidToken, kInvalidRequest };

Response unauthorized(Challenge challenge, std::string message) {
  Response r = error_response(make_error(WbemCode::kAccessDenied, std::move(message)));
  r.status = 401;
  switch (challenge) {
    case Challenge::kNoToken:
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      break;
    case Challenge::kInvalidToken:
      r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      break;
    case Challenge::kInvalidRequest:
      r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_request\"");
      break;
  }
  return r;
}

std::string_view access_name(Access a) {
  switch (a) {
    case Access::kPublic:
      return "public";
    case Access::kRead:
      return "read";
    case Access::kPackageAdmin:
      return "package-admin";
    case Access::kFullAdmin:
      return "full-admin";
    case Access::kDp:
      return "dp";
    case Access::kAnyRole:
      return "any role";
  }
  return "?";
}

}  // namespace

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (!starts_with_icase(authorization, kScheme)) return std::nullopt;
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

Dispatcher::Dispatcher(const Router& router, Authenticator authenticator, Handler fallback,
                       RememberedToken remembered)
    : router_(router),
      authenticator_(std::move(authenticator)),
      fallback_(std::move(fallback)),
      remembered_(std::move(remembered)) {}

Response Dispatcher::call_guarded(const Handler& handler, Request& request) const {
  // The one catch-all (style.md habit 3): whatever a handler throws becomes WBEM_E_FAILED, logged with the route.
  try {
    return handler(request);
  } catch (const std::exception& e) {
    spdlog::error("handler for {} {} threw: {}", request.method, request.path, e.what());
    return error_response(make_error(WbemCode::kFailed, std::string("internal error: ") + e.what()));
  } catch (...) {
    spdlog::error("handler for {} {} threw a non-standard exception", request.method, request.path);
    return error_response(make_error(WbemCode::kFailed, "internal error"));
  }
}

Response Dispatcher::dispatch(Request& request, std::string_view& route_label) const {
  Admission admission = admit(request);
  route_label = admission.route_label;
  if (admission.refusal) return std::move(*admission.refusal);
  return run(admission, request);
}

std::optional<Response> Dispatcher::answer_inline(Request& request, std::string_view& route_label) const {
  if (!remembered_ || !authenticator_) return std::nullopt;
  try {
    auto match = router_.match(request.method, request.path);
    if (!match || match->handler == nullptr || match->inline_handler == nullptr) return std::nullopt;
    // A token in the query, a missing one and every refusal: admit() decides, with the full explanation.
    if (request.query.contains(std::string(kAccessTokenParameter))) return std::nullopt;
    const auto token = bearer_token(request.header("authorization"));
    if (!token) return std::nullopt;
    auto record = remembered_(*token);
    if (!record || !role_allows(record->role, match->access)) return std::nullopt;
    request.caller = std::move(*record);
    request.params = std::move(match->params);
    std::optional<Response> response = (*match->inline_handler)(request);
    if (!response) {
      request.caller.reset();
      request.params.clear();
      return std::nullopt;
    }
    if (response->stream && request.caller) response->stream_owner = request.caller->id;
    route_label = match->pattern;
    return response;
  } catch (const std::exception& e) {
    // An InlineHandler must not throw; if one does anyway, the worker path answers (and logs it if it fails too).
    spdlog::error("inline handler for {} {} threw: {}", request.method, request.path, e.what());
    request.caller.reset();
    request.params.clear();
    return std::nullopt;
  } catch (...) {
    spdlog::error("inline handler for {} {} threw a non-standard exception", request.method, request.path);
    request.caller.reset();
    request.params.clear();
    return std::nullopt;
  }
}

Response Dispatcher::run(const Admission& admission, Request& request) const {
  if (admission.handler == nullptr) {
    return error_response(make_error(WbemCode::kFailed, "internal error: no handler for " + request.path));
  }
  Response response = call_guarded(*admission.handler, request);
  // The stream quotas and revocation find a stream by the token that opened it.
  if (response.stream && request.caller) response.stream_owner = request.caller->id;
  return response;
}

Admission Dispatcher::admit(Request& request) const {
  Admission out;
  auto match = router_.match(request.method, request.path);
  if (!match) {
    const bool api = request.path == "/api" || request.path.rfind("/api/", 0) == 0;
    if (fallback_ && (request.method == "GET" || request.method == "HEAD") && !api) {
      out.route_label = kStaticRoute;
      out.handler = &fallback_;
      return out;
    }
    out.route_label = kUnmatchedRoute;
    out.refusal = error_response(make_error(WbemCode::kNotFound, "no resource at " + request.path));
    return out;
  }
  if (match->handler == nullptr) {
    out.route_label = kUnmatchedRoute;
    std::string allow;
    for (const auto& m : router_.allowed_methods(request.path)) allow += (allow.empty() ? "" : ", ") + m;
    Response r = error_response(
        make_error(WbemCode::kInvalidMethod, request.method + " is not allowed on " + request.path + " (allowed: " +
                                                 allow + ")"));
    r.status = 405;
    r.headers.emplace_back("Allow", allow);
    out.refusal = std::move(r);
    return out;
  }
  out.route_label = match->pattern;

  // RFC 6750 section 2.3. Taken out of the query whatever the route, so no handler sees, echoes or logs it.
  std::optional<std::string> query_token;
  if (auto it = request.query.find(std::string(kAccessTokenParameter)); it != request.query.end()) {
    query_token = std::move(it->second);
    request.query.erase(it);
  }
  const std::string_view authorization = request.header("authorization");
  if (query_token && match->query_token != QueryToken::kAccepted) {
    out.refusal = error_response(make_error(
        WbemCode::kInvalidParameter, "the access_token query parameter is accepted only by the event stream (GET "
                                     "/api/v1/events); send the token as 'Authorization: Bearer <token>'"));
    return out;
  }
  if (query_token && !authorization.empty()) {
    // RFC 6750 section 2: a client must not use more than one method to send its token.
    out.refusal = error_response(make_error(WbemCode::kInvalidParameter,
                                            "a token was sent both in the Authorization header and as access_token; "
                                            "send one"));
    return out;
  }
  std::optional<std::string_view> token;
  if (query_token) {
    if (!query_token->empty()) token = *query_token;
  } else {
    token = bearer_token(authorization);
  }
  if (token && authenticator_) {
    auto record = authenticator_(*token);
    if (!record.ok()) {
      spdlog::error("token lookup failed: {}", record.error().to_string());
      out.refusal = error_response(record.error());
      return out;
    }
    if (*record) request.caller = std::move(**record);
  }
  if (match->access != Access::kPublic) {
    if (!request.caller) {
      if (!authorization.empty() && !token) {
        out.refusal = unauthorized(Challenge::kInvalidRequest, "the Authorization header must be 'Bearer <token>'");
      } else {
        out.refusal = unauthorized(token || query_token ? Challenge::kInvalidToken : Challenge::kNoToken,
                                   "missing or unknown token");
      }
      return out;
    }
    if (!role_allows(request.caller->role, match->access)) {
      out.refusal = error_response(make_error(WbemCode::kAccessDenied,
                                              "a " + std::string(site::role_name(request.caller->role)) +
                                                  " token may not call " + request.method + " " +
                                                  std::string(match->pattern) + " (needs " +
                                                  std::string(access_name(match->access)) + ")"));
      out.refusal->headers.emplace_back("WWW-Authenticate", "Bearer error=\"insufficient_scope\"");
      return out;
    }
  }
  request.params = std::move(match->params);
  out.handler = match->handler;
  return out;
}

}  // namespace pkgcast::server
