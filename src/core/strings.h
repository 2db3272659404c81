// Small string helpers shared by every layer. WMI compares names and strings without regard to ASCII case.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pkgcast {

char ascii_lower(char c);
char ascii_upper(char c);
std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

// ASCII case-insensitive equality and three-way comparison (<0, 0, >0). Bytes >= 0x80 compare as they are.
bool iequals(std::string_view a, std::string_view b);
int icompare(std::string_view a, std::string_view b);

// Hash consistent with iequals, for unordered containers keyed by names.
struct IHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const;
};
struct IEqual {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return iequals(a, b); }
};
struct ILess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return icompare(a, b) < 0; }
};

bool starts_with_icase(std::string_view s, std::string_view prefix);

// True when s is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace pkgcast
