#include "server/dispatch.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

#include "core/strings.h"

namespace pkgcast::server {
namespace {

Response unauthorized(std::string message) {
  Response r = error_response(make_error(WbemCode::kAccessDenied, std::move(message)));
  r.status = 401;
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

// The server core names roles itself rather than link the site layer (and through it the store) for one table;
// the spelling is site::role_name's.
std::string_view role_label(site::Role r) {
  switch (r) {
    case site::Role::kFullAdmin:
      return "full-admin";
    case site::Role::kPackageAdmin:
      return "package-admin";
    case site::Role::kReadOnly:
      return "read-only";
    case site::Role::kDp:
      return "dp";
  }
  return "?";
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

Dispatcher::Dispatcher(const Router& router, Authenticator authenticator, Handler fallback)
    : router_(router), authenticator_(std::move(authenticator)), fallback_(std::move(fallback)) {}

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
  auto match = router_.match(request.method, request.path);
  if (!match) {
    const bool api = request.path == "/api" || request.path.rfind("/api/", 0) == 0;
    if (fallback_ && request.method == "GET" && !api) {
      route_label = kStaticRoute;
      return call_guarded(fallback_, request);
    }
    route_label = kUnmatchedRoute;
    return error_response(make_error(WbemCode::kNotFound, "no resource at " + request.path));
  }
  if (match->handler == nullptr) {
    route_label = kUnmatchedRoute;
    std::string allow;
    for (const auto& m : router_.allowed_methods(request.path)) allow += (allow.empty() ? "" : ", ") + m;
    Response r = error_response(
        make_error(WbemCode::kInvalidMethod, request.method + " is not allowed on " + request.path + " (allowed: " +
                                                 allow + ")"));
    r.status = 405;
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  route_label = match->pattern;

  const std::string_view authorization = request.header("authorization");
  const auto token = bearer_token(authorization);
  if (token && authenticator_) {
    auto record = authenticator_(*token);
    if (!record.ok()) {
      spdlog::error("token lookup failed: {}", record.error().to_string());
      return error_response(record.error());
    }
    if (*record) request.caller = std::move(**record);
  }
  if (match->access != Access::kPublic) {
    if (!request.caller) {
      if (!authorization.empty() && !token) return unauthorized("the Authorization header must be 'Bearer <token>'");
      return unauthorized("missing or unknown token");
    }
    if (!role_allows(request.caller->role, match->access)) {
      return error_response(make_error(WbemCode::kAccessDenied,
                                       "a " + std::string(role_label(request.caller->role)) +
                                           " token may not call " + request.method + " " + std::string(match->pattern) +
                                           " (needs " + std::string(access_name(match->access)) + ")"));
    }
  }
  request.params = std::move(match->params);
  Response response = call_guarded(*match->handler, request);
  if (response.stream && request.caller) response.stream_owner = request.caller->id;
  return response;
}

}  // namespace pkgcast::server
