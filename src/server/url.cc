#include "server/url.h"

#include "core/strings.h"

namespace pkgcast::server {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      const bool complete = i + 2 < text.size();
      const int hi = complete ? hex_value(text[i + 1]) : -1;
      const int lo = complete ? hex_value(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return make_error(WbemCode::kInvalidParameter,
                          "bad percent-escape in request target at offset " + std::to_string(i));
      }
      const char decoded = static_cast<char>(hi * 16 + lo);
      if (decoded == '\0') return make_error(WbemCode::kInvalidParameter, "NUL (%00) in request target");
      out += decoded;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

Result<DecodedTarget> decode_target(std::string_view target) {
  // RFC 9112 section 3.2.2: a server must accept the absolute-form ("http://host/p?q", what a client sends through a
  // proxy). This server has no virtual hosts, so the authority is dropped and the path and query are kept.
  std::string from_absolute;
  for (const std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (target.size() < scheme.size() || !iequals(target.substr(0, scheme.size()), scheme)) continue;
    const std::string_view rest = target.substr(scheme.size());
    const auto path_start = rest.find_first_of("/?#");
    if (path_start == 0 || rest.empty()) {
      return make_error(WbemCode::kInvalidParameter, "request target in absolute form has no host");
    }
    const std::string_view tail = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
    from_absolute = tail.empty() || tail.front() != '/' ? "/" + std::string(tail) : std::string(tail);
    target = from_absolute;
    break;
  }
  if (target.empty() || target.front() != '/') {
    return make_error(WbemCode::kInvalidParameter, "request target must be an absolute path");
  }
  DecodedTarget out;
  const auto qmark = target.find('?');
  PKG_ASSIGN_OR_RETURN(out.path, percent_decode(target.substr(0, qmark), /*plus_is_space=*/false));
  if (qmark == std::string_view::npos) return out;
  std::string_view query = target.substr(qmark + 1);
  // A fragment never reaches a server, but a hand-written client may send one; it is not part of the query.
  if (const auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    PKG_ASSIGN_OR_RETURN(auto name, percent_decode(pair.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      PKG_ASSIGN_OR_RETURN(value, percent_decode(pair.substr(eq + 1), true));
    }
    out.query.insert_or_assign(std::move(name), std::move(value));
  }
  return out;
}

}  // namespace pkgcast::server
