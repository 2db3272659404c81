#include "wql/like.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace pkgcast::wql {
namespace {

bool like(std::string_view text, std::string_view pattern) {
  auto p = LikePattern::compile(pattern);
  EXPECT_TRUE(p.ok()) << pattern;
  return p.ok() && p->matches(text);
}

TEST(LikeTest, Wildcards) {
  EXPECT_TRUE(like("Office 2021", "Office%"));
  EXPECT_TRUE(like("Office", "Office%"));
  EXPECT_FALSE(like("Offic", "Office%"));
  EXPECT_TRUE(like("Office 2021", "%2021"));
  EXPECT_TRUE(like("Office 2021", "%ice 2%"));
  EXPECT_TRUE(like("", "%"));
  EXPECT_TRUE(like("", ""));
  EXPECT_FALSE(like("a", ""));
  EXPECT_TRUE(like("abc", "a_c"));
  EXPECT_FALSE(like("ac", "a_c"));
  EXPECT_TRUE(like("abcbc", "a%bc"));
  EXPECT_TRUE(like("mississippi", "m%iss%ppi"));
  EXPECT_FALSE(like("mississippi", "m%iss%ppx"));
  EXPECT_TRUE(like("a%b", "a[%]b"));
  EXPECT_FALSE(like("axb", "a[%]b"));
  EXPECT_TRUE(like("a_b", "a[_]b"));
}

TEST(LikeTest, IgnoresAsciiCase) {
  EXPECT_TRUE(like("OFFICE", "office"));
  EXPECT_TRUE(like("office tools", "%TOOLS"));
  EXPECT_TRUE(like("Office", "[n-p]ffice"));
  EXPECT_TRUE(like("office", "[N-P]FFICE"));
  EXPECT_FALSE(like("office", "[^O]%"));
  EXPECT_FALSE(like("\xC3\xBC", "\xC3\x9C"));  // ü vs Ü: only ASCII folds
}

TEST(LikeTest, Sets) {
  EXPECT_TRUE(like("b", "[abc]"));
  EXPECT_FALSE(like("d", "[abc]"));
  EXPECT_TRUE(like("d", "[^abc]"));
  EXPECT_TRUE(like("e", "[a-f]"));
  EXPECT_FALSE(like("g", "[a-f]"));
  EXPECT_TRUE(like("-", "[a-]"));
  EXPECT_TRUE(like("]", "[]]"));
  EXPECT_TRUE(like("x", "[^]]"));
  EXPECT_TRUE(like("7", "[0-9]"));
  // WMI's documentation writes a range `[a=f]` (and `[^a=f]`); an '=' first or last is a member.
  EXPECT_TRUE(like("e", "[a=f]"));
  EXPECT_FALSE(like("g", "[a=f]"));
  EXPECT_TRUE(like("g", "[^a=f]"));
  EXPECT_TRUE(like("=", "[a=]"));
  EXPECT_TRUE(like("=", "[=a]"));
  EXPECT_FALSE(like("b", "[=a]"));
}

// A set's ranges are sorted and merged when the pattern compiles (a character is looked up by binary search):
// overlapping, adjacent, repeated and unordered ranges mean what they say, in either ASCII case.
TEST(LikeTest, SetsOfManyRangesInAnyOrder) {
  EXPECT_TRUE(like("d", "[x-zb-eab-c]"));
  EXPECT_TRUE(like("A", "[x-zb-eab-c]"));
  EXPECT_TRUE(like("Y", "[x-zb-eab-c]"));
  EXPECT_FALSE(like("f", "[x-zb-eab-c]"));
  EXPECT_FALSE(like("w", "[x-zb-eab-c]"));
  EXPECT_TRUE(like("f", "[^x-zb-eab-c]"));
  EXPECT_TRUE(like("m", "[k-lm-mn]"));
  EXPECT_TRUE(like("\xC3\x9C", "[a\xC3\x9Cz]"));
  // Every other code point from 0x100 to 0x2800: 5,000 ranges of one; between them, nothing.
  std::string set = "[";
  for (char32_t c = 0x100; c < 0x2810; c += 2) {
    if (c < 0x800) {
      set += static_cast<char>(0xC0 | (c >> 6));
    } else {
      set += static_cast<char>(0xE0 | (c >> 12));
      set += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    }
    set += static_cast<char>(0x80 | (c & 0x3F));
  }
  set += "]";
  EXPECT_TRUE(like("\xC4\x80", set));       // U+0100
  EXPECT_FALSE(like("\xC4\x81", set));      // U+0101
  EXPECT_TRUE(like("\xE2\xA0\x8E", set));   // U+280E
  EXPECT_FALSE(like("\xE2\xA0\x8F", set));  // U+280F
  EXPECT_FALSE(like("a", set));
}

TEST(LikeTest, UnderscoreIsOneCodePoint) {
  EXPECT_TRUE(like("\xC3\x9C" "ber", "_ber"));     // Über
  EXPECT_TRUE(like("\xF0\x9F\x98\x80", "_"));       // one emoji, four bytes
  EXPECT_FALSE(like("\xF0\x9F\x98\x80", "__"));
  EXPECT_TRUE(like("\xC3\x9C", "[\xC3\x9C\xC3\x96]"));
  EXPECT_TRUE(like("\xE6\x97\xA5", "[\xE6\x97\xA0-\xE6\x97\xBF]"));
}

TEST(LikeTest, MalformedTextStillMatchesBytewise) {
  EXPECT_TRUE(like("a\xFF" "b", "a_b"));
  EXPECT_TRUE(like("\xC3", "_"));
}

TEST(LikeTest, PatternErrors) {
  EXPECT_EQ(LikePattern::compile("[abc").error().message, "unterminated [ in LIKE pattern");
  EXPECT_EQ(LikePattern::compile("[]").error().message, "unterminated [ in LIKE pattern");
  EXPECT_EQ(LikePattern::compile("[z-a]").error().message, "reversed range in LIKE pattern");
  EXPECT_EQ(LikePattern::compile("[z=a]").error().message, "reversed range in LIKE pattern");
  EXPECT_EQ(LikePattern::compile("a\xFF").error().message, "LIKE pattern is not valid UTF-8");
}

// Patterns that made a wildcard walk backtrack: the automaton gives the same answers (its cost, linear in the
// text, is measured in bench/wql_bench's BM_LikePathological*).
TEST(LikeTest, PathologicalPatterns) {
  std::string many_runs;
  for (int i = 0; i < 200; ++i) many_runs += "%a";
  EXPECT_FALSE(like(std::string(10000, 'a'), many_runs + "%b"));
  EXPECT_TRUE(like(std::string(10000, 'a') + "b", many_runs + "%b"));
  EXPECT_FALSE(like(std::string(199, 'a') + "b", many_runs + "%b"));
  const std::string long_needle = std::string(100, 'a') + "b";
  EXPECT_FALSE(like(std::string(10000, 'a'), "%" + long_needle + "%"));
  EXPECT_TRUE(like(std::string(10000, 'a') + long_needle + "x", "%" + long_needle + "%"));
  EXPECT_TRUE(like(std::string(10000, 'A') + "B", "%" + long_needle));
}

// The largest automaton: every position a set, state bits across nine words.
TEST(LikeTest, PositionsUpToTheLimitSpanWords) {
  std::string pattern;
  std::string text;
  for (std::size_t i = 0; i < kMaxLikePositions; ++i) {
    pattern += i % 3 == 0 ? "[a-c]" : (i % 3 == 1 ? "_" : "x");
    text += i % 3 == 0 ? "b" : (i % 3 == 1 ? "\xC3\xA9" : "X");
  }
  EXPECT_TRUE(like(text, pattern));
  EXPECT_TRUE(like("zz" + text, "%" + pattern));
  EXPECT_FALSE(like(text + "z", pattern));
  EXPECT_FALSE(like(text.substr(1), pattern));
  const auto over = LikePattern::compile(pattern + "_");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, WbemCode::kQuotaViolation);
  // A literal pattern of any length needs no automaton.
  EXPECT_TRUE(like(std::string(4 * kMaxLikePositions, 'q'), std::string(4 * kMaxLikePositions, 'Q')));
}

// Random patterns and texts against a reference written from the definition: a table of which text prefixes
// match which pattern prefixes, over code points.
TEST(LikeTest, AgreesWithTheDefinitionOnRandomPatterns) {
  struct Token {
    const char* text;
    bool any_run;
    bool (*admits)(char32_t);
  };
  static const Token kTokens[] = {
      {"%", true, nullptr},
      {"_", false, [](char32_t) { return true; }},
      {"a", false, [](char32_t c) { return c == 'a' || c == 'A'; }},
      {"B", false, [](char32_t c) { return c == 'b' || c == 'B'; }},
      {"\xC3\xA9", false, [](char32_t c) { return c == 0xE9; }},
      {"[ab]", false, [](char32_t c) { return c == 'a' || c == 'b' || c == 'A' || c == 'B'; }},
      {"[^a]", false, [](char32_t c) { return c != 'a' && c != 'A'; }},
      {"[a-c]", false, [](char32_t c) { return (c >= 'a' && c <= 'c') || (c >= 'A' && c <= 'C'); }},
      {"[\xC3\xA0-\xC3\xBC]", false, [](char32_t c) { return c >= 0xE0 && c <= 0xFC; }},
      {"[^\xC3\xA9"
       "b]",
       false, [](char32_t c) { return c != 0xE9 && c != 'b' && c != 'B'; }},
      {"[\xC3\xBF-\xF0\x9F\x98\x80]", false, [](char32_t c) { return c >= 0xFF && c <= 0x1F600; }},
  };
  // Characters of the texts, with their code points (the malformed byte counts as U+00FF).
  static const std::pair<const char*, char32_t> kChars[] = {
      {"a", 'a'},         {"A", 'A'},         {"b", 'b'},
      {"c", 'c'},         {"\xC3\xA9", 0xE9}, {"\xC3\xBC", 0xFC},
      {"\xC3\x9F", 0xDF}, {"\xFF", 0xFF},     {"\xF0\x9F\x98\x80", 0x1F600}};
  std::uint64_t seed = 0x9E3779B97F4A7C15ULL;
  const auto next = [&](std::uint64_t bound) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed % bound;
  };
  int matched = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<const Token*> tokens(next(8));
    std::string pattern;
    for (auto& t : tokens) {
      t = &kTokens[next(std::size(kTokens))];
      pattern += t->text;
    }
    std::vector<char32_t> cps(next(10));
    std::string text;
    for (auto& c : cps) {
      const auto& ch = kChars[next(std::size(kChars))];
      c = ch.second;
      text += ch.first;
    }
    // reach[j]: the pattern's first j tokens can match the text read so far. A % at token j loops on state j and
    // may be left without reading (the closure).
    const auto closure = [&](std::vector<bool>& states) {
      for (std::size_t j = 0; j < tokens.size(); ++j) {
        if (tokens[j]->any_run && states[j]) states[j + 1] = true;
      }
    };
    std::vector<bool> reach(tokens.size() + 1, false);
    reach[0] = true;
    closure(reach);
    for (char32_t c : cps) {
      std::vector<bool> after(tokens.size() + 1, false);
      for (std::size_t j = 0; j < tokens.size(); ++j) {
        if (!reach[j]) continue;
        if (tokens[j]->any_run) {
          after[j] = true;
        } else if (tokens[j]->admits(c)) {
          after[j + 1] = true;
        }
      }
      closure(after);
      reach = std::move(after);
    }
    const bool expected = reach[tokens.size()];
    matched += expected ? 1 : 0;
    ASSERT_EQ(like(text, pattern), expected) << "pattern '" << pattern << "' text '" << text << "'";
  }
  // Both answers occur often enough for the comparison to mean something.
  EXPECT_GT(matched, 1000);
  EXPECT_LT(matched, 19000);
}

}  // namespace
}  // namespace pkgcast::wql
