#include "wql/like.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>

#include "core/strings.h"
#include "wql/utf8.h"

namespace pkgcast::wql {
namespace {

// A contains-pattern's needle up to this long is searched byte by byte (at most this many comparisons a byte of
// text); a longer one runs as an automaton, which is linear whatever the needle.
constexpr std::size_t kMaxNaiveNeedleBytes = 32;
constexpr std::size_t kMaxWords = (kMaxLikePositions + 1 + 63) / 64;

char32_t fold(char32_t c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }
char32_t unfold(char32_t c) { return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c; }

bool contains_icase(std::string_view text, std::string_view needle) {
  if (needle.size() > text.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= text.size(); ++i) {
    if (iequals(text.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

enum class ElementKind : std::uint8_t { kAnyRun, kOne, kChar, kSet };
using Range = std::pair<char32_t, char32_t>;

// One element of a pattern as written; the automaton is built from these.
struct Element {
  ElementKind kind = ElementKind::kChar;
  bool negated = false;           // kSet
  char32_t ch = 0;                // kChar, ASCII letters lower-cased
  std::uint32_t first_range = 0;  // kSet: ranges[first_range, end_range), sorted and disjoint
  std::uint32_t end_range = 0;
};

struct Parsed {
  std::vector<Element> elements;
  std::vector<Range> ranges;
};

Result<Parsed> parse_pattern(std::string_view pattern) {
  Parsed p;
  std::size_t i = 0;
  while (i < pattern.size()) {
    char32_t cp = 0;
    std::size_t n = decode_utf8(pattern, i, &cp);
    if (n == 0) return make_error(WbemCode::kInvalidQuery, "LIKE pattern is not valid UTF-8");
    Element e;
    if (cp == '%') {
      e.kind = ElementKind::kAnyRun;
      // Runs of % are one %.
      if (!p.elements.empty() && p.elements.back().kind == ElementKind::kAnyRun) {
        i += n;
        continue;
      }
    } else if (cp == '_') {
      e.kind = ElementKind::kOne;
    } else if (cp == '[') {
      e.kind = ElementKind::kSet;
      i += n;
      if (i < pattern.size() && pattern[i] == '^') {
        e.negated = true;
        ++i;
      }
      e.first_range = static_cast<std::uint32_t>(p.ranges.size());
      while (true) {
        if (i >= pattern.size()) return make_error(WbemCode::kInvalidQuery, "unterminated [ in LIKE pattern");
        n = decode_utf8(pattern, i, &cp);
        if (n == 0) return make_error(WbemCode::kInvalidQuery, "LIKE pattern is not valid UTF-8");
        // A ']' right after '[' or '[^' is a member, as in SQL Server; elsewhere it closes the set.
        if (cp == ']' && p.ranges.size() > e.first_range) break;
        i += n;
        char32_t hi = cp;
        // A range is written `a-f`, or `a=f` as WMI's documentation of LIKE writes it.
        if (i + 1 < pattern.size() && (pattern[i] == '-' || pattern[i] == '=') && pattern[i + 1] != ']') {
          n = decode_utf8(pattern, i + 1, &hi);
          if (n == 0) return make_error(WbemCode::kInvalidQuery, "LIKE pattern is not valid UTF-8");
          if (hi < cp) return make_error(WbemCode::kInvalidQuery, "reversed range in LIKE pattern");
          i += 1 + n;
        }
        p.ranges.emplace_back(cp, hi);
      }
      n = 1;  // the closing ']'
      // Sorted and merged, so that a character is looked up by binary search (a set may hold thousands of ranges).
      auto first = p.ranges.begin() + e.first_range;
      std::sort(first, p.ranges.end());
      auto out = first;
      for (auto r = first + 1; r != p.ranges.end(); ++r) {
        if (r->first <= out->second + 1) {
          out->second = std::max(out->second, r->second);
        } else {
          *++out = *r;
        }
      }
      p.ranges.erase(out + 1, p.ranges.end());
      e.end_range = static_cast<std::uint32_t>(p.ranges.size());
    } else {
      e.kind = ElementKind::kChar;
      e.ch = fold(cp);
    }
    p.elements.push_back(e);
    i += n;
  }
  return p;
}

// Whether a one-character element admits an ASCII character (either case of a letter).
bool admits_ascii(const Parsed& p, const Element& e, char32_t c) {
  switch (e.kind) {
    case ElementKind::kOne: return true;
    case ElementKind::kChar: return fold(c) == e.ch;
    case ElementKind::kSet: {
      const auto first = p.ranges.begin() + e.first_range;
      const auto last = p.ranges.begin() + e.end_range;
      // The ranges are sorted and disjoint: the one that may hold x is the last that starts at or below it.
      const auto holds = [&](char32_t x) {
        auto it = std::upper_bound(first, last, x, [](char32_t v, const Range& r) { return v < r.first; });
        return it != first && x <= std::prev(it)->second;
      };
      return (holds(c) || holds(fold(c)) || holds(unfold(c))) != e.negated;
    }
    case ElementKind::kAnyRun: break;
  }
  return false;
}

void set_bit(std::uint64_t* row, std::uint32_t bit, bool on) {
  const std::uint64_t mask = std::uint64_t{1} << (bit % 64);
  row[bit / 64] = on ? (row[bit / 64] | mask) : (row[bit / 64] & ~mask);
}

}  // namespace

Result<LikePattern> LikePattern::compile(std::string_view pattern) {
  PKG_ASSIGN_OR_RETURN(Parsed parsed, parse_pattern(pattern));
  const auto& elements = parsed.elements;
  LikePattern p;
  p.text_ = std::string(pattern);

  // Pick a fast shape when the pattern is only literal characters, with % at one or both ends.
  std::size_t begin = 0;
  std::size_t end = elements.size();
  const bool lead = begin < end && elements[begin].kind == ElementKind::kAnyRun;
  if (lead) ++begin;
  const bool trail = begin < end && elements[end - 1].kind == ElementKind::kAnyRun;
  if (trail) --end;
  bool literal = true;
  for (std::size_t k = begin; k < end; ++k) literal = literal && elements[k].kind == ElementKind::kChar;
  if (literal) {
    // The literal run is the pattern text between the % ends (every element there is one character as written).
    std::string_view body = pattern;
    while (!body.empty() && body.front() == '%') body.remove_prefix(1);
    while (!body.empty() && body.back() == '%') body.remove_suffix(1);
    p.literal_ = std::string(body);
    p.shape_ = lead ? (trail ? Shape::kContains : Shape::kSuffix) : (trail ? Shape::kPrefix : Shape::kExact);
    if (p.shape_ != Shape::kContains || p.literal_.size() <= kMaxNaiveNeedleBytes) return p;
    p.literal_.clear();
  }
  p.shape_ = Shape::kGeneral;

  const auto positions = static_cast<std::size_t>(
      std::count_if(elements.begin(), elements.end(), [](const Element& e) { return e.kind != ElementKind::kAnyRun; }));
  if (positions > kMaxLikePositions) {
    return make_error(WbemCode::kQuotaViolation,
                      "LIKE pattern with more than " + std::to_string(kMaxLikePositions) + " character positions");
  }
  p.positions_ = static_cast<std::uint32_t>(positions);
  p.words_ = static_cast<std::uint32_t>((positions + 1 + 63) / 64);
  const std::size_t words = p.words_;
  p.stay_.assign(words, 0);
  p.ascii_rows_.assign(128 * words, 0);

  // Code points above ASCII where some position's verdict may change: a character's own and the one after it,
  // a range's start and the one after its end.
  for (const auto& e : elements) {
    if (e.kind == ElementKind::kChar && e.ch >= 128) {
      p.wide_bounds_.push_back(e.ch);
      p.wide_bounds_.push_back(e.ch + 1);
    } else if (e.kind == ElementKind::kSet) {
      for (auto r = e.first_range; r < e.end_range; ++r) {
        const auto [lo, hi] = parsed.ranges[r];
        if (hi < 128) continue;
        p.wide_bounds_.push_back(std::max<char32_t>(lo, 128));
        p.wide_bounds_.push_back(hi + 1);
      }
    }
  }
  std::sort(p.wide_bounds_.begin(), p.wide_bounds_.end());
  p.wide_bounds_.erase(std::unique(p.wide_bounds_.begin(), p.wide_bounds_.end()), p.wide_bounds_.end());
  // Row 0 starts at 128 already.
  p.wide_bounds_.erase(p.wide_bounds_.begin(),
                       std::upper_bound(p.wide_bounds_.begin(), p.wide_bounds_.end(), char32_t{128}));
  const std::size_t wide_rows = p.wide_bounds_.size() + 1;
  p.wide_rows_.assign(wide_rows * words, 0);
  // Row k serves code points from its start (128 for row 0, else wide_bounds_[k - 1]); the rows whose start lies
  // in [lo, hi] (lo >= 128) are first_row(lo) .. last_row(hi).
  const auto first_row = [&](char32_t lo) -> std::size_t {
    if (lo == 128) return 0;
    return static_cast<std::size_t>(std::lower_bound(p.wide_bounds_.begin(), p.wide_bounds_.end(), lo) -
                                    p.wide_bounds_.begin()) +
           1;
  };
  const auto last_row = [&](char32_t hi) -> std::size_t {
    return static_cast<std::size_t>(std::upper_bound(p.wide_bounds_.begin(), p.wide_bounds_.end(), hi) -
                                    p.wide_bounds_.begin());
  };
  const auto mark_wide = [&](std::uint32_t bit, char32_t lo, char32_t hi, bool on) {
    for (std::size_t k = first_row(std::max<char32_t>(lo, 128)), last = last_row(hi); k <= last; ++k) {
      set_bit(&p.wide_rows_[k * words], bit, on);
    }
  };

  std::uint32_t state = 0;  // positions before this element
  for (const auto& e : elements) {
    if (e.kind == ElementKind::kAnyRun) {
      set_bit(p.stay_.data(), state, true);
      continue;
    }
    const std::uint32_t bit = state + 1;  // the state this position leads to
    for (char32_t c = 0; c < 128; ++c) {
      if (admits_ascii(parsed, e, c)) set_bit(&p.ascii_rows_[c * words], bit, true);
    }
    switch (e.kind) {
      case ElementKind::kOne: mark_wide(bit, 128, 0x10FFFF, true); break;
      case ElementKind::kChar:
        if (e.ch >= 128) mark_wide(bit, e.ch, e.ch, true);
        break;
      case ElementKind::kSet:
        if (e.negated) mark_wide(bit, 128, 0x10FFFF, true);
        for (auto r = e.first_range; r < e.end_range; ++r) {
          const auto [lo, hi] = parsed.ranges[r];
          if (hi >= 128) mark_wide(bit, lo, hi, !e.negated);
        }
        break;
      case ElementKind::kAnyRun: break;
    }
    ++state;
  }
  return p;
}

bool LikePattern::matches(std::string_view text) const {
  switch (shape_) {
    case Shape::kExact: return iequals(text, literal_);
    case Shape::kPrefix: return starts_with_icase(text, literal_);
    case Shape::kSuffix:
      return text.size() >= literal_.size() && iequals(text.substr(text.size() - literal_.size()), literal_);
    case Shape::kContains: return contains_icase(text, literal_);
    case Shape::kGeneral: break;
  }
  return match_general(text);
}

const std::uint64_t* LikePattern::row_for(char32_t cp) const {
  if (cp < 128) return &ascii_rows_[cp * words_];
  const auto k = std::upper_bound(wide_bounds_.begin(), wide_bounds_.end(), cp) - wide_bounds_.begin();
  return &wide_rows_[static_cast<std::size_t>(k) * words_];
}

// Every state advances at once: a state j moves to j + 1 when the character fits position j, and stays when a %
// lets it. Once no state is alive, nothing can match.
bool LikePattern::match_general(std::string_view text) const {
  std::array<std::uint64_t, kMaxWords> states{};
  states[0] = 1;
  const std::size_t words = words_;
  std::size_t t = 0;
  while (t < text.size()) {
    char32_t cp = 0;
    t += decode_utf8_lenient(text, t, &cp);
    const std::uint64_t* row = row_for(cp);
    std::uint64_t carry = 0;
    std::uint64_t alive = 0;
    for (std::size_t w = 0; w < words; ++w) {
      const std::uint64_t now = states[w];
      const std::uint64_t next = (((now << 1) | carry) & row[w]) | (now & stay_[w]);
      carry = now >> 63;
      states[w] = next;
      alive |= next;
    }
    if (alive == 0) return false;
  }
  return (states[positions_ / 64] >> (positions_ % 64)) & 1;
}

}  // namespace pkgcast::wql
