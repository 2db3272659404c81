#include "wql/lexer.h"

#include <gtest/gtest.h>

namespace pkgcast::wql {
namespace {

std::vector<Token> lex_ok(std::string_view text) {
  auto tokens = lex(text);
  EXPECT_TRUE(tokens.ok()) << (tokens.ok() ? "" : tokens.error().to_string());
  return tokens.ok() ? *tokens : std::vector<Token>{};
}

std::string lex_error(std::string_view text) {
  auto tokens = lex(text);
  EXPECT_FALSE(tokens.ok());
  return tokens.ok() ? "" : tokens.error().to_string();
}

TEST(LexerTest, KeywordsInAnyCaseIdentifiersAsWritten) {
  auto t = lex_ok("select Name FrOm sms_Package");
  ASSERT_EQ(t.size(), 5u);
  EXPECT_TRUE(t[0].is(Keyword::kSelect));
  EXPECT_EQ(t[1].keyword, Keyword::kNone);
  EXPECT_EQ(t[1].text, "Name");
  EXPECT_TRUE(t[2].is(Keyword::kFrom));
  EXPECT_EQ(t[3].text, "sms_Package");
  EXPECT_EQ(t[4].kind, TokenKind::kEnd);
}

TEST(LexerTest, NonReservedWordsStayNames) {
  auto t = lex_ok("Order Join");
  EXPECT_TRUE(t[0].is(Keyword::kOrder));
  EXPECT_FALSE(t[0].is_reserved());
  EXPECT_TRUE(t[1].is(Keyword::kJoin));
  EXPECT_FALSE(t[1].is_reserved());
}

TEST(LexerTest, PositionsCountLinesAndCharacters) {
  auto t = lex_ok("a\n  '\xC3\x9C' b\n\tc");
  ASSERT_EQ(t.size(), 5u);
  EXPECT_EQ(format_position(t[0].pos), "1:1");
  EXPECT_EQ(format_position(t[1].pos), "2:3");
  EXPECT_EQ(format_position(t[2].pos), "2:7");  // 'Ü' is three characters, four bytes
  EXPECT_EQ(format_position(t[3].pos), "3:2");
}

TEST(LexerTest, Numbers) {
  auto t = lex_ok("42 -7 0x1F 1.5 -2.5e3 .5 5. 18446744073709551615 -9223372036854775808");
  EXPECT_EQ(t[0].kind, TokenKind::kInteger);
  EXPECT_EQ(t[0].magnitude, 42u);
  EXPECT_TRUE(t[1].negative);
  EXPECT_EQ(t[1].magnitude, 7u);
  EXPECT_EQ(t[2].magnitude, 31u);
  EXPECT_EQ(t[3].kind, TokenKind::kReal);
  EXPECT_DOUBLE_EQ(t[3].real, 1.5);
  EXPECT_DOUBLE_EQ(t[4].real, -2500.0);
  EXPECT_DOUBLE_EQ(t[5].real, 0.5);
  EXPECT_DOUBLE_EQ(t[6].real, 5.0);
  EXPECT_EQ(t[7].magnitude, 18446744073709551615u);
  EXPECT_EQ(t[8].magnitude, 9223372036854775808u);
}

TEST(LexerTest, NumberErrors) {
  EXPECT_EQ(lex_error("18446744073709551616"),
            "WBEM_E_INVALID_QUERY: integer out of range '18446744073709551616' at 1:1");
  EXPECT_EQ(lex_error("x -9223372036854775809"),
            "WBEM_E_INVALID_QUERY: integer out of range '-9223372036854775809' at 1:3");
  EXPECT_EQ(lex_error("1e400"), "WBEM_E_INVALID_QUERY: real number out of range '1e400' at 1:1");
  EXPECT_EQ(lex_error("12ab"), "WBEM_E_INVALID_QUERY: invalid number '12ab' at 1:1");
}

TEST(LexerTest, StringsBothQuotesAndEscapes) {
  auto t = lex_ok(R"('a\'b' "c\"d" 'e\\f\n\t\r' "it's")");
  EXPECT_EQ(t[0].string_value, "a'b");
  EXPECT_EQ(t[1].string_value, "c\"d");
  EXPECT_EQ(t[2].string_value, "e\\f\n\t\r");
  EXPECT_EQ(t[3].string_value, "it's");
}

TEST(LexerTest, StringErrors) {
  EXPECT_EQ(lex_error("x 'abc"), "WBEM_E_INVALID_QUERY: unterminated string at 1:3");
  EXPECT_EQ(lex_error("'ab\\"), "WBEM_E_INVALID_QUERY: unterminated string at 1:1");
  EXPECT_EQ(lex_error("'a\\zb'"), "WBEM_E_INVALID_QUERY: invalid escape '\\z' in string at 1:3");
}

TEST(LexerTest, Operators) {
  auto t = lex_ok("= <> != < > <= >= ( ) , . * + - /");
  const TokenKind want[] = {TokenKind::kEq,     TokenKind::kNe,     TokenKind::kNe,    TokenKind::kLt,
                            TokenKind::kGt,     TokenKind::kLe,     TokenKind::kGe,    TokenKind::kLParen,
                            TokenKind::kRParen, TokenKind::kComma,  TokenKind::kDot,   TokenKind::kStar,
                            TokenKind::kArithmetic, TokenKind::kArithmetic, TokenKind::kArithmetic};
  for (std::size_t i = 0; i < std::size(want); ++i) EXPECT_EQ(t[i].kind, want[i]) << i;
}

TEST(LexerTest, EncodingErrorsHavePositions) {
  EXPECT_EQ(lex_error(std::string_view("ab\0c", 4)), "WBEM_E_INVALID_QUERY: NUL byte at 1:3");
  EXPECT_EQ(lex_error("a\n'\xFF'"), "WBEM_E_INVALID_QUERY: invalid UTF-8 at 2:2");
  EXPECT_EQ(lex_error("a ;"), "WBEM_E_INVALID_QUERY: unexpected character ';' at 1:3");
  EXPECT_EQ(lex_error("\xE2\x80\x8B"), "WBEM_E_INVALID_QUERY: unexpected character U+200B at 1:1");
}

TEST(LexerTest, LongIdentifierIsAQuotaViolation) {
  const std::string name(300, 'a');
  EXPECT_EQ(lex_error(name), "WBEM_E_QUOTA_VIOLATION: name longer than 256 bytes at 1:1");
}

}  // namespace
}  // namespace pkgcast::wql
