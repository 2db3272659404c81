// WQL lexer (internal): query text -> tokens, each with its source position.
//
// The lexer owns every character-level rule: UTF-8 validity, NUL bytes, string escapes, number syntax and range.
// Keywords are recognised case-insensitively; identifiers keep their spelling. Token text views point into the
// query text, which must outlive the tokens.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "wql/ast.h"

namespace pkgcast::wql {

enum class TokenKind : std::uint8_t {
  kEnd,
  kIdentifier,  // also keywords: see Token::keyword
  kInteger,     // value in magnitude/negative
  kReal,        // value in real
  kString,      // unescaped value in string_value
  kLParen,
  kRParen,
  kComma,
  kDot,
  kStar,
  kArithmetic,  // + - / % (never valid in WQL; the parser names them)
  kEq,
  kNe,  // <> or !=
  kLt,
  kGt,
  kLe,
  kGe,
};

// Words with a meaning in WQL, or that the parser names in an error (ORDER, JOIN...). Only the first group is
// reserved: the others remain usable as property names.
enum class Keyword : std::uint8_t {
  kNone,
  kSelect,
  kFrom,
  kWhere,
  kAnd,
  kOr,
  kNot,
  kLike,
  kIs,
  kNull,
  kIsa,
  kTrue,
  kFalse,
  kWithin,
  kGroup,
  kBy,
  kHaving,
  kLastReserved = kHaving,
  kOrder,
  kDistinct,
  kJoin,
  kInner,
  kLeft,
  kRight,
  kFull,
  kCross,
  kOuter,
  kUnion,
  kTop,
  kIn,
  kBetween,
  kOn,  // JOIN ... ON (Extended WQL)
  kAs,  // FROM Class AS alias (Extended WQL)
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  Keyword keyword = Keyword::kNone;
  std::string_view text;  // as written
  ast::Position pos;
  std::uint64_t magnitude = 0;  // kInteger
  bool negative = false;        // kInteger, kReal
  double real = 0;              // kReal
  std::string string_value;     // kString

  bool is(Keyword k) const { return kind == TokenKind::kIdentifier && keyword == k; }
  bool is_reserved() const { return keyword != Keyword::kNone && keyword <= Keyword::kLastReserved; }
};

// Precondition: text.size() <= kMaxQueryBytes (checked by parse()). The last token is always kEnd.
// Errors: WBEM_E_INVALID_QUERY with the position of the offending character.
Result<std::vector<Token>> lex(std::string_view text);

// "1:10".
std::string format_position(ast::Position pos);

}  // namespace pkgcast::wql
