// The rules a request head must pass before the server spends anything on it (RFC 9112), free of networking so
// the connection and the fuzzer (fuzz/http_fuzz.cc) apply the very same ones. Beast's parser is lenient where a
// front proxy may not be: it joins obsolete line folding, reads "Transfer-Encoding: chunked, identity" or
// "xchunked" as "no body", and takes any token as a method. Each of those lets a body be read as a second request
// (smuggling) or grows a label set without bound, so they are refused here, and every refusal closes the
// connection: the rest of its input cannot be trusted to start a new request.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace pkgcast::server {

// The methods the server implements; any other is refused with 501 before it is counted anywhere, so metric
// labels and log lines only ever carry one of these.
inline constexpr std::array<std::string_view, 7> kKnownMethods = {"GET",    "HEAD",  "POST",   "PUT",
                                                                  "DELETE", "PATCH", "OPTIONS"};

// The entry of kKnownMethods equal to `method` (case-sensitive, as RFC 9110 says methods are), or nullopt.
std::optional<std::string_view> known_method(std::string_view method);

// The end of the head in `bytes` received so far: the offset just past the empty line that ends it ("\r\n\r\n",
// or a bare "\n\n" that the parser then refuses), or nullopt when it has not arrived yet. `from` is where the
// previous search stopped, so a head arriving byte by byte is scanned once.
std::optional<std::size_t> find_head_end(std::string_view bytes, std::size_t from = 0);

// Why a head was refused: the HTTP status (400, 501) and the WBEM error of the body. The connection closes.
struct HeadRefusal {
  unsigned status = 400;
  Error error;
};

// A refusal of the bytes that start a request, as soon as the first of them arrives, when they cannot start one:
// a request line starts with a method (a token), after the empty lines the connection skips (RFC 9112 section 2.2,
// so CR and LF pass here too). A TLS
// ClientHello on a plain-HTTP port is the common case; it is refused at once rather than after header_timeout, so
// that the client hears of its mistake now (400 WBEM_E_INVALID_PARAMETER; the connection closes).
std::optional<HeadRefusal> check_request_start(std::string_view bytes);

// The raw head (request line to the empty line): obs-fold, a field line that starts with a space or a tab, is
// refused (400; RFC 9112 section 5.2 allows rejecting it, and a proxy that unfolds it differently is how a header
// is smuggled past it).
std::optional<HeadRefusal> check_raw_head(std::string_view head);

// The parsed head as the parser gives it: fields in arrival order, names as sent.
struct RequestHead {
  std::string_view method;
  unsigned version = 11;  // 10 for HTTP/1.0, 11 for HTTP/1.1
  std::vector<std::pair<std::string_view, std::string_view>> fields;
};

// In this order:
//   a method not in kKnownMethods                                          501 WBEM_E_NOT_SUPPORTED
//   Transfer-Encoding with Content-Length, in HTTP/1.0, empty, a coding that is not a token, `chunked` twice or
//     not last (RFC 9112 section 6.3: "xchunked", "chunked, identity")       400 WBEM_E_INVALID_PARAMETER
//   Transfer-Encoding with a coding other than chunked ("gzip, chunked")    501 WBEM_E_NOT_SUPPORTED
//   HTTP/1.1 without Host, or more than one Host (RFC 9112 section 3.2)      400
//   more than one Authorization                                             400
std::optional<HeadRefusal> check_request_head(const RequestHead& head);

}  // namespace pkgcast::server
