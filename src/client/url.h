// Server URLs as users type them: "http://127.0.0.1:8750", "https://site.example:8443/", "127.0.0.1:8750".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace pkgcast::client {

struct ServerUrl {
  bool tls = false;
  std::string host;
  std::uint16_t port = 0;
  std::string base_path;  // without a trailing '/', "" for the root

  // "http://host:port" (no trailing slash).
  std::string to_string() const;
};

// Scheme defaults to http; port defaults to 8750 for http and 443 for https. IPv6 hosts in brackets.
// WBEM_E_INVALID_PARAMETER for anything else (user info, fragments, a bad port).
Result<ServerUrl> parse_server_url(std::string_view text);

// Percent-encodes a query parameter value or path segment (RFC 3986 unreserved characters stay as they are).
std::string url_encode(std::string_view s);

}  // namespace pkgcast::client
