#include "wql/like.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

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

TEST(LikeTest, PathologicalPatternIsQuadraticAtWorst) {
  std::string pattern;
  for (int i = 0; i < 200; ++i) pattern += "%a";
  pattern += "%b";
  const std::string text(10000, 'a');
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(like(text, pattern));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace pkgcast::wql
