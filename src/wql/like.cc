#include "wql/like.h"

#include <algorithm>
#include <iterator>

#include "core/strings.h"
#include "wql/utf8.h"

namespace pkgcast::wql {
namespace {

char32_t fold(char32_t c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }
char32_t unfold(char32_t c) { return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c; }

bool contains_icase(std::string_view text, std::string_view needle) {
  if (needle.size() > text.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= text.size(); ++i) {
    if (iequals(text.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

}  // namespace

Result<LikePattern> LikePattern::compile(std::string_view pattern) {
  LikePattern p;
  p.text_ = std::string(pattern);
  std::size_t i = 0;
  while (i < pattern.size()) {
    char32_t cp = 0;
    std::size_t n = decode_utf8(pattern, i, &cp);
    if (n == 0) return make_error(WbemCode::kInvalidQuery, "LIKE pattern is not valid UTF-8");
    Element e;
    if (cp == '%') {
      e.kind = ElementKind::kAnyRun;
      // Runs of % are one %.
      if (!p.elements_.empty() && p.elements_.back().kind == ElementKind::kAnyRun) {
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
      e.first_range = static_cast<std::uint32_t>(p.ranges_.size());
      while (true) {
        if (i >= pattern.size()) return make_error(WbemCode::kInvalidQuery, "unterminated [ in LIKE pattern");
        n = decode_utf8(pattern, i, &cp);
        if (n == 0) return make_error(WbemCode::kInvalidQuery, "LIKE pattern is not valid UTF-8");
        // A ']' right after '[' or '[^' is a member, as in SQL Server; elsewhere it closes the set.
        if (cp == ']' && p.ranges_.size() > e.first_range) break;
        i += n;
        char32_t hi = cp;
        // A range is written `a-f`, or `a=f` as WMI's documentation of LIKE writes it.
        if (i + 1 < pattern.size() && (pattern[i] == '-' || pattern[i] == '=') && pattern[i + 1] != ']') {
          n = decode_utf8(pattern, i + 1, &hi);
          if (n == 0) return make_error(WbemCode::kInvalidQuery, "LIKE pattern is not valid UTF-8");
          if (hi < cp) return make_error(WbemCode::kInvalidQuery, "reversed range in LIKE pattern");
          i += 1 + n;
        }
        p.ranges_.emplace_back(cp, hi);
      }
      n = 1;  // the closing ']'
      // Sorted and merged, so that a character is looked up by binary search (a set may hold thousands of ranges).
      auto first = p.ranges_.begin() + e.first_range;
      std::sort(first, p.ranges_.end());
      auto out = first;
      for (auto r = first + 1; r != p.ranges_.end(); ++r) {
        if (r->first <= out->second + 1) {
          out->second = std::max(out->second, r->second);
        } else {
          *++out = *r;
        }
      }
      p.ranges_.erase(out + 1, p.ranges_.end());
      e.end_range = static_cast<std::uint32_t>(p.ranges_.size());
    } else {
      e.kind = ElementKind::kChar;
      e.ch = fold(cp);
    }
    p.elements_.push_back(e);
    i += n;
  }

  // Pick a fast shape when the pattern is only literal characters, with % at one or both ends.
  std::size_t begin = 0;
  std::size_t end = p.elements_.size();
  const bool lead = begin < end && p.elements_[begin].kind == ElementKind::kAnyRun;
  if (lead) ++begin;
  const bool trail = begin < end && p.elements_[end - 1].kind == ElementKind::kAnyRun;
  if (trail) --end;
  bool literal = true;
  for (std::size_t k = begin; k < end; ++k) literal = literal && p.elements_[k].kind == ElementKind::kChar;
  if (!literal) {
    p.shape_ = Shape::kGeneral;
    return p;
  }
  // The literal run is the pattern text between the % ends (every element there is one character as written).
  std::string_view body = pattern;
  while (!body.empty() && body.front() == '%') body.remove_prefix(1);
  while (!body.empty() && body.back() == '%') body.remove_suffix(1);
  p.literal_ = std::string(body);
  p.shape_ = lead ? (trail ? Shape::kContains : Shape::kSuffix) : (trail ? Shape::kPrefix : Shape::kExact);
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

bool LikePattern::match_one(const Element& e, char32_t cp) const {
  switch (e.kind) {
    case ElementKind::kOne: return true;
    case ElementKind::kChar: return fold(cp) == e.ch;
    case ElementKind::kSet: {
      const auto first = ranges_.begin() + e.first_range;
      const auto last = ranges_.begin() + e.end_range;
      // The ranges are sorted and disjoint: the one that may hold c is the last that starts at or below it.
      const auto holds = [&](char32_t c) {
        auto it = std::upper_bound(first, last, c, [](char32_t v, const auto& r) { return v < r.first; });
        return it != first && c <= std::prev(it)->second;
      };
      const bool in = holds(cp) || holds(fold(cp)) || holds(unfold(cp));
      return in != e.negated;
    }
    case ElementKind::kAnyRun: break;
  }
  return false;
}

// Classic wildcard walk: every element but % consumes exactly one character, so on a mismatch it is enough to
// retry from the most recent %, letting it absorb one more character.
bool LikePattern::match_general(std::string_view text) const {
  const std::size_t m = elements_.size();
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = m;  // none yet
  std::size_t star_t = 0;
  while (t < text.size()) {
    if (p < m && elements_[p].kind == ElementKind::kAnyRun) {
      star = p++;
      star_t = t;
      continue;
    }
    char32_t cp = 0;
    const std::size_t len = decode_utf8_lenient(text, t, &cp);
    if (p < m && match_one(elements_[p], cp)) {
      ++p;
      t += len;
      continue;
    }
    if (star == m) return false;
    p = star + 1;
    star_t += decode_utf8_lenient(text, star_t, &cp);
    t = star_t;
  }
  while (p < m && elements_[p].kind == ElementKind::kAnyRun) ++p;
  return p == m;
}

}  // namespace pkgcast::wql
