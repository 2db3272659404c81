// UTF-8 decoding helpers (internal), shared by the lexer and LIKE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pkgcast::wql {

// Decodes the code point starting at s[i] (precondition: i < s.size()) into *cp and returns its length in bytes,
// or 0 when the bytes there are not well-formed UTF-8 (overlong, surrogate, above U+10FFFF, truncated).
std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t* cp);

// As decode_utf8, but never fails: a malformed byte decodes as itself (a code point in U+0080..U+00FF) with
// length 1. For matching text that was not validated.
inline std::size_t decode_utf8_lenient(std::string_view s, std::size_t i, char32_t* cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  const std::size_t n = decode_utf8(s, i, cp);
  if (n != 0) return n;
  *cp = c;
  return 1;
}

// True for the bytes that begin a code point (everything but 10xxxxxx continuation bytes).
inline bool is_utf8_lead(char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }

}  // namespace pkgcast::wql
