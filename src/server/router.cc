#include "server/router.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <utility>

namespace pkgcast::server {
namespace {

// Splits "/a/b/c" into {"a", "b", "c"}; "/" into {}. A trailing slash yields an empty last segment, so
// "/api/v1/packages/" does not match "/api/v1/packages": one spelling per resource.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path == "/") return out;
  if (path.front() == '/') path.remove_prefix(1);
  while (true) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool is_param(std::string_view segment) {
  return segment.size() >= 3 && segment.front() == '{' && segment.back() == '}';
}

// A route table is written by code at start-up; a malformed pattern is a programming error, found by the first
// test that starts a server, so it stops the process instead of becoming a run-time error path.
[[noreturn]] void bad_pattern(const std::string& method, const std::string& pattern, const char* why) {
  std::fprintf(stderr, "pkgcast: invalid route %s %s: %s\n", method.c_str(), pattern.c_str(), why);
  std::abort();
}

// Which of two matching routes is more specific: the one with a literal where the other has a parameter, at the
// leftmost segment where they differ ("/packages/search" wins over "/packages/{id}").
bool more_specific(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const bool a_lit = !is_param(a[i]);
    const bool b_lit = !is_param(b[i]);
    if (a_lit != b_lit) return a_lit;
  }
  return false;
}

bool segments_match(const std::vector<std::string>& pattern, const std::vector<std::string_view>& parts) {
  if (pattern.size() != parts.size()) return false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (is_param(pattern[i]) ? parts[i].empty() : pattern[i] != parts[i]) return false;
  }
  return true;
}

}  // namespace

bool role_allows(site::Role role, Access access) {
  using site::Role;
  switch (access) {
    case Access::kPublic:
      return true;
    case Access::kRead:
      return role != Role::kDp;
    case Access::kPackageAdmin:
      return role == Role::kFullAdmin || role == Role::kPackageAdmin;
    case Access::kFullAdmin:
      return role == Role::kFullAdmin;
    case Access::kDp:
      return role == Role::kDp || role == Role::kFullAdmin;
    case Access::kAnyRole:
      return true;
  }
  return false;
}

std::string_view Request::header(std::string_view lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? std::string_view() : std::string_view(it->second);
}

Response Response::json(unsigned status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

unsigned http_status_for(WbemCode code) {
  switch (code) {
    case WbemCode::kOk:
      return 200;
    case WbemCode::kInvalidQuery:
    case WbemCode::kInvalidQueryType:
    case WbemCode::kInvalidClass:
    case WbemCode::kInvalidProperty:
    case WbemCode::kInvalidParameter:
    case WbemCode::kInvalidObjectPath:
    case WbemCode::kInvalidObject:
    case WbemCode::kInvalidOperator:
    case WbemCode::kNotEventClass:
    case WbemCode::kAggregatingByObject:
    case WbemCode::kTypeMismatch:
    case WbemCode::kValueOutOfRange:
    case WbemCode::kIllegalNull:
    case WbemCode::kInvalidOperation:
    case WbemCode::kQuotaViolation:
    case WbemCode::kReadOnly:
    case WbemCode::kRegistrationTooBroad:
    case WbemCode::kRegistrationTooPrecise:
      return 400;
    case WbemCode::kAccessDenied:
      return 403;
    case WbemCode::kNotFound:
    case WbemCode::kInvalidNamespace:
    case WbemCode::kInvalidMethod:
      return 404;
    case WbemCode::kAlreadyExists:
      return 409;
    case WbemCode::kNotSupported:
      return 501;
    case WbemCode::kShuttingDown:
    case WbemCode::kServerTooBusy:
      return 503;
    default:
      // Everything else is the server's own failure (FAILED, OUT_OF_DISK_SPACE, TIMED_OUT, ...); codes added to
      // core/wbem.h later land here until they are given a status of their own.
      return 500;
  }
}

std::string error_json(const Error& error) {
  // ordered_json keeps "error" first, so the body reads the way the CLI prints it.
  nlohmann::ordered_json body = {
      {"error", wbem_name(error.code)},
      {"hresult", wbem_hresult(error.code)},
      {"message", error.message},
  };
  // Messages may quote client input that is not UTF-8; replace rather than throw.
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Response error_response(const Error& error) {
  Response r = Response::json(http_status_for(error.code), error_json(error));
  // A refusal for load says when to come back (RFC 9110 section 10.2.3): the requests, streams and connections
  // that fill a limit end all the time, so a second is a fair first wait.
  if (error.code == WbemCode::kServerTooBusy) r.headers.emplace_back("Retry-After", "1");
  return r;
}

void Router::add(std::string method, std::string pattern, Access access, Handler handler, QueryToken query_token,
                 InlineHandler inline_handler) {
  if (pattern.empty() || pattern.front() != '/') bad_pattern(method, pattern, "must start with '/'");
  if (!handler) bad_pattern(method, pattern, "no handler");
  std::vector<std::string> segments;
  for (const auto segment : split_path(pattern)) {
    if (segment.empty()) bad_pattern(method, pattern, "empty segment");
    const bool braces = segment.find_first_of("{}") != std::string_view::npos;
    if (braces && !is_param(segment)) bad_pattern(method, pattern, "a parameter must be a whole segment");
    segments.emplace_back(segment);
  }
  for (const auto& r : routes_) {
    if (r.method == method && r.segments == segments) bad_pattern(method, pattern, "registered twice");
  }
  routes_.push_back(
      Route{std::move(method), std::move(pattern), std::move(segments), access, std::move(handler), query_token,
            std::move(inline_handler)});
}

std::optional<Router::Match> Router::match(std::string_view method, std::string_view path) const {
  const auto parts = split_path(path);
  const Route* best = nullptr;
  const Route* best_get = nullptr;  // HEAD is answered wherever GET is (RFC 9110 section 9.3.2)
  bool path_matched = false;
  for (const auto& route : routes_) {
    if (!segments_match(route.segments, parts)) continue;
    path_matched = true;
    if (route.method == method) {
      if (best == nullptr || more_specific(route.segments, best->segments)) best = &route;
    } else if (method == "HEAD" && route.method == "GET") {
      if (best_get == nullptr || more_specific(route.segments, best_get->segments)) best_get = &route;
    }
  }
  if (!path_matched) return std::nullopt;
  if (best == nullptr) best = best_get;
  Match m;
  if (best == nullptr) return m;  // 405: the path exists, the method does not
  m.handler = &best->handler;
  if (best->inline_handler) m.inline_handler = &best->inline_handler;
  m.access = best->access;
  m.query_token = best->query_token;
  m.pattern = best->pattern;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& seg = best->segments[i];
    if (is_param(seg)) m.params.emplace(seg.substr(1, seg.size() - 2), std::string(parts[i]));
  }
  return m;
}

std::vector<std::string> Router::allowed_methods(std::string_view path) const {
  const auto parts = split_path(path);
  std::vector<std::string> out;
  for (const auto& route : routes_) {
    if (!segments_match(route.segments, parts)) continue;
    if (std::find(out.begin(), out.end(), route.method) == out.end()) out.push_back(route.method);
    if (route.method == "GET" && std::find(out.begin(), out.end(), "HEAD") == out.end()) out.push_back("HEAD");
  }
  return out;
}

}  // namespace pkgcast::server
