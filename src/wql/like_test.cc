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
