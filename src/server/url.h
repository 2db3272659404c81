// Request-target decoding: "/api/v1/x%20y?a=1&b=%C3%A9" -> path "/api/v1/x y", query {a: "1", b: "é"}.
// Pure functions, no I/O; the HTTP session calls them on the network thread.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/result.h"

namespace pkgcast::server {

struct DecodedTarget {
  std::string path;                           // percent-decoded; '+' stays '+'
  std::map<std::string, std::string> query;   // names and values decoded; '+' is a space; a repeated name keeps
                                              // its last value; "a" alone is {a: ""}
};

// The origin form ("/p?q"), or the absolute form ("http://host/p?q", RFC 9112 section 3.2.2: its authority is
// dropped). WBEM_E_INVALID_PARAMETER for any other target, an absolute form without a host, a bad %XX escape, or a
// decoded NUL (a NUL would let "a%00.html" mean different files to different layers).
Result<DecodedTarget> decode_target(std::string_view target);

// Percent-decodes one component; `plus_is_space` for query components (HTML form encoding).
Result<std::string> percent_decode(std::string_view text, bool plus_is_space);

}  // namespace pkgcast::server
