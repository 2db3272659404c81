// A compiled WQL LIKE pattern.
//
//   %       any run of characters, including none
//   _       exactly one character (one Unicode code point of UTF-8 text)
//   [abc]   one character of the set; [a-f] a range; [^...] any character not in the set
//   other   itself
// Matching ignores ASCII case (a set or range matches a letter in either case); other characters compare by code
// point. Text that is not valid UTF-8 still matches: each malformed byte counts as one character.
//
// Cost: a match is linear in the text whatever the pattern, because a hostile subscriber's pattern runs on the
// event engine's one thread for every change of its class, against texts an administrator may make a megabyte
// long. Literal and prefix/suffix/short-contains patterns take a byte-wise fast path; the rest run the pattern
// as an automaton whose states (one per character position) are bits, all advanced together for each character
// of the text (bit-parallel Shift-And, with a % as a state that may stay): one 64-bit word per 64 positions a
// character. A pattern has at most kMaxLikePositions positions, so that state fits on the stack: matching
// allocates nothing and never recurses.
// Thread safety: immutable after compile(); matches() may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "wql/limits.h"

namespace pkgcast::wql {

// Most single-character positions (_, [...] or a literal character) in one LIKE pattern. A query's pattern is
// bounded by kMaxLikePatternBytes first; this bounds patterns compiled from elsewhere.
inline constexpr std::size_t kMaxLikePositions = kMaxLikePatternBytes;

class LikePattern {
 public:
  LikePattern() = default;

  // Errors: WBEM_E_INVALID_QUERY (message without a position) for an unterminated or empty [...] set, a range
  // whose ends are reversed, a pattern that is not valid UTF-8; WBEM_E_QUOTA_VIOLATION past kMaxLikePositions.
  static Result<LikePattern> compile(std::string_view pattern);

  bool matches(std::string_view text) const;
  // The pattern as written.
  const std::string& text() const { return text_; }

 private:
  enum class Shape : std::uint8_t { kExact, kPrefix, kSuffix, kContains, kGeneral };

  bool match_general(std::string_view text) const;
  // The positions a character may advance past: a row of words_ words.
  const std::uint64_t* row_for(char32_t cp) const;

  std::string text_;
  Shape shape_ = Shape::kExact;
  std::string literal_;  // for the fast shapes: the pattern without its leading/trailing %

  // The automaton (kGeneral). State j (bit j) means "the first j positions matched"; state 0 is the start and
  // state positions_ accepts. A character moves state j to j + 1 when position j admits it: bit j + 1 of its row.
  // A % before position j (or at the end, for j == positions_) lets state j stay: bit j of stay_.
  std::uint32_t positions_ = 0;
  std::uint32_t words_ = 0;                // (positions_ + 1 + 63) / 64
  std::vector<std::uint64_t> stay_;        // words_
  std::vector<std::uint64_t> ascii_rows_;  // 128 rows, one per ASCII character
  // Above ASCII, case folding does nothing, so whether a position admits a character changes only at the code
  // points where one of the pattern's characters or ranges begins or ends: wide_bounds_ holds those, sorted, and
  // row k of wide_rows_ serves [wide_bounds_[k - 1], wide_bounds_[k]) (row 0 starts at 128).
  std::vector<char32_t> wide_bounds_;
  std::vector<std::uint64_t> wide_rows_;
};

}  // namespace pkgcast::wql
