#include "server/request_rules.h"

#include <string>

#include "core/strings.h"

namespace pkgcast::server {
namespace {

HeadRefusal refuse(unsigned status, WbemCode code, std::string message) {
  return HeadRefusal{status, make_error(code, std::move(message))};
}

HeadRefusal bad_request(std::string message) {
  return refuse(400, WbemCode::kInvalidParameter, std::move(message));
}

// RFC 9110 section 5.6.2: tchar.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A printable excerpt of client input for an error message: at most 40 bytes, control bytes as '?'.
std::string quote(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > 40) out += "...";
  return "'" + out + "'";
}

std::optional<HeadRefusal> check_transfer_encoding(const RequestHead& head) {
  std::vector<std::string_view> codings;
  bool present = false;
  bool content_length = false;
  for (const auto& [name, value] : head.fields) {
    if (iequals(name, "content-length")) content_length = true;
    if (!iequals(name, "transfer-encoding")) continue;
    present = true;
    // A list (RFC 9110 section 5.6.1): empty elements are allowed and ignored.
    std::string_view rest = value;
    while (true) {
      const auto comma = rest.find(',');
      const std::string_view element = trim_ows(rest.substr(0, comma));
      if (!element.empty()) codings.push_back(element);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (!present) return std::nullopt;
  if (content_length) return bad_request("a request may not carry both Transfer-Encoding and Content-Length");
  if (head.version < 11) return bad_request("Transfer-Encoding is not allowed in an HTTP/1.0 request");
  if (codings.empty()) return bad_request("Transfer-Encoding names no coding");
  for (const auto coding : codings) {
    // A coding may carry parameters ("gzip;q=1"); the name is what counts.
    if (!is_token(trim_ows(coding.substr(0, coding.find(';'))))) {
      return bad_request("Transfer-Encoding coding " + quote(coding) + " is not a token");
    }
  }
  if (!iequals(codings.back(), "chunked")) {
    return bad_request("the last Transfer-Encoding coding must be 'chunked', not " + quote(codings.back()) +
                       ": the body length cannot be determined");
  }
  for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
    if (iequals(codings[i], "chunked")) return bad_request("Transfer-Encoding applies 'chunked' more than once");
  }
  if (codings.size() > 1) {
    return refuse(501, WbemCode::kNotSupported,
                  "Transfer-Encoding coding " + quote(codings.front()) + " is not supported (only 'chunked' is)");
  }
  return std::nullopt;
}

}  // namespace

std::optional<HeadRefusal> check_request_start(std::string_view bytes) {
  if (bytes.empty()) return std::nullopt;
  const char first = bytes.front();
  if (is_tchar(first) || first == '\r' || first == '\n') return std::nullopt;
  // 0x16 is a TLS handshake record; 0x03 the major version that follows it.
  if (first == '\x16' && (bytes.size() < 2 || bytes[1] == '\x03')) {
    return bad_request("a TLS handshake on a plain-HTTP port: this server speaks http://, not https://");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  const auto c = static_cast<unsigned char>(first);
  return bad_request(std::string("not an HTTP request: it starts with the byte 0x") + kHex[c >> 4] + kHex[c & 0xF]);
}

std::optional<std::string_view> known_method(std::string_view method) {
  for (const auto m : kKnownMethods) {
    if (m == method) return m;
  }
  return std::nullopt;
}

std::optional<std::size_t> find_head_end(std::string_view bytes, std::size_t from) {
  // Step back so a terminator split across two reads is still found.
  std::size_t i = from >= 3 ? from - 3 : 0;
  for (; i < bytes.size(); ++i) {
    if (bytes[i] != '\n') continue;
    if (i + 1 < bytes.size() && bytes[i + 1] == '\n') return i + 2;
    if (i + 2 < bytes.size() && bytes[i + 1] == '\r' && bytes[i + 2] == '\n') return i + 3;
  }
  return std::nullopt;
}

std::optional<HeadRefusal> check_raw_head(std::string_view head) {
  // Every line after the request line: a field line, or the empty line that ends the head.
  std::size_t eol = head.find('\n');
  while (eol != std::string_view::npos && eol + 1 < head.size()) {
    const char next = head[eol + 1];
    if (next == ' ' || next == '\t') {
      return bad_request("obsolete line folding (a header line starting with a space or tab) is not accepted");
    }
    eol = head.find('\n', eol + 1);
  }
  return std::nullopt;
}

std::optional<HeadRefusal> check_request_head(const RequestHead& head) {
  if (!known_method(head.method)) {
    return refuse(501, WbemCode::kNotSupported, "method " + quote(head.method) + " is not implemented");
  }
  if (auto refusal = check_transfer_encoding(head)) return refusal;
  std::size_t hosts = 0;
  std::size_t authorizations = 0;
  for (const auto& [name, value] : head.fields) {
    if (iequals(name, "host")) ++hosts;
    if (iequals(name, "authorization")) ++authorizations;
  }
  if (hosts > 1) return bad_request("more than one Host header");
  if (hosts == 0 && head.version >= 11) return bad_request("an HTTP/1.1 request must carry a Host header");
  if (authorizations > 1) return bad_request("more than one Authorization header");
  return std::nullopt;
}

}  // namespace pkgcast::server
