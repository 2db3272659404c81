// A compiled WQL LIKE pattern.
//
//   %       any run of characters, including none
//   _       exactly one character (one Unicode code point of UTF-8 text)
//   [abc]   one character of the set; [a-f] a range; [^...] any character not in the set
//   other   itself
// Matching ignores ASCII case (a set or range matches a letter in either case); other characters compare by code
// point. Text that is not valid UTF-8 still matches: each malformed byte counts as one character.
//
// Matching allocates nothing and never recurses: literal and prefix/suffix/contains patterns take a byte-wise fast
// path, the rest a two-pointer wildcard walk in O(text * pattern) worst case.
// Thread safety: immutable after compile(); matches() may be called concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace pkgcast::wql {

class LikePattern {
 public:
  LikePattern() = default;

  // Errors (WBEM_E_INVALID_QUERY, message without a position): an unterminated or empty [...] set, a range whose
  // ends are reversed, a pattern that is not valid UTF-8.
  static Result<LikePattern> compile(std::string_view pattern);

  bool matches(std::string_view text) const;
  // The pattern as written.
  const std::string& text() const { return text_; }

 private:
  enum class Shape : std::uint8_t { kExact, kPrefix, kSuffix, kContains, kGeneral };
  enum class ElementKind : std::uint8_t { kAnyRun, kOne, kChar, kSet };
  struct Element {
    ElementKind kind = ElementKind::kChar;
    bool negated = false;  // kSet
    char32_t ch = 0;       // kChar, ASCII letters lower-cased
    std::uint32_t first_range = 0;  // kSet: ranges_[first_range, end_range)
    std::uint32_t end_range = 0;
  };

  bool match_general(std::string_view text) const;
  bool match_one(const Element& e, char32_t cp) const;

  std::string text_;
  Shape shape_ = Shape::kExact;
  std::string literal_;  // for the fast shapes: the pattern without its leading/trailing %
  std::vector<Element> elements_;
  std::vector<std::pair<char32_t, char32_t>> ranges_;
};

}  // namespace pkgcast::wql
