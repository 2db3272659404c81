#include "wql/lexer.h"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>
#include <utility>

#include "core/strings.h"
#include "wql/limits.h"
#include "wql/utf8.h"

namespace pkgcast::wql {
namespace {

constexpr std::array<std::pair<std::string_view, Keyword>, 31> kKeywords{{
    {"SELECT", Keyword::kSelect},   {"FROM", Keyword::kFrom},
    {"WHERE", Keyword::kWhere},     {"AND", Keyword::kAnd},
    {"OR", Keyword::kOr},           {"NOT", Keyword::kNot},
    {"LIKE", Keyword::kLike},       {"IS", Keyword::kIs},
    {"NULL", Keyword::kNull},       {"ISA", Keyword::kIsa},
    {"TRUE", Keyword::kTrue},       {"FALSE", Keyword::kFalse},
    {"WITHIN", Keyword::kWithin},   {"GROUP", Keyword::kGroup},
    {"BY", Keyword::kBy},           {"HAVING", Keyword::kHaving},
    {"ORDER", Keyword::kOrder},     {"DISTINCT", Keyword::kDistinct},
    {"JOIN", Keyword::kJoin},       {"INNER", Keyword::kInner},
    {"LEFT", Keyword::kLeft},       {"RIGHT", Keyword::kRight},
    {"FULL", Keyword::kFull},       {"CROSS", Keyword::kCross},
    {"OUTER", Keyword::kOuter},     {"UNION", Keyword::kUnion},
    {"TOP", Keyword::kTop},         {"IN", Keyword::kIn},
    {"BETWEEN", Keyword::kBetween}, {"ON", Keyword::kOn},
    {"AS", Keyword::kAs},
}};

Keyword keyword_of(std::string_view word) {
  for (const auto& [name, kw] : kKeywords) {
    if (iequals(name, word)) return kw;
  }
  return Keyword::kNone;
}

bool is_ident_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }
bool is_hex_digit(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

Error error_at(ast::Position pos, std::string what, WbemCode code = WbemCode::kInvalidQuery) {
  return make_error(code, std::move(what) + " at " + format_position(pos));
}

// Walks the text keeping the line and column of the current byte.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool done() const { return i_ >= text_.size(); }
  std::size_t offset() const { return i_; }
  char peek(std::size_t ahead = 0) const { return i_ + ahead < text_.size() ? text_[i_ + ahead] : '\0'; }
  ast::Position pos() const { return pos_; }
  std::string_view since(std::size_t start) const { return text_.substr(start, i_ - start); }
  std::string_view text() const { return text_; }

  void advance(std::size_t n = 1) {
    for (std::size_t k = 0; k < n && i_ < text_.size(); ++k, ++i_) {
      const char c = text_[i_];
      if (c == '\n') {
        ++pos_.line;
        pos_.column = 1;
      } else if (is_utf8_lead(c)) {
        ++pos_.column;
      }
    }
  }

 private:
  std::string_view text_;
  std::size_t i_ = 0;
  ast::Position pos_;
};

// Rejects NUL bytes and malformed UTF-8 anywhere in the text, before any other rule can misread them.
Status check_encoding(std::string_view text) {
  Cursor cur(text);
  while (!cur.done()) {
    const char c = cur.peek();
    if (c == '\0') return error_at(cur.pos(), "NUL byte");
    char32_t cp = 0;
    const std::size_t n = decode_utf8(text, cur.offset(), &cp);
    if (n == 0) return error_at(cur.pos(), "invalid UTF-8");
    cur.advance(n);
  }
  return ok_status();
}

// 'c' for printable ASCII, U+XXXX for everything else (control characters, and non-ASCII characters, which may
// be invisible or look like ASCII ones).
std::string describe_char(std::string_view text, std::size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c >= 0x20 && c < 0x7F) return "'" + std::string(1, static_cast<char>(c)) + "'";
  char32_t cp = c;
  if (decode_utf8(text, i, &cp) == 0) cp = c;
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "U+";
  const int digits = cp > 0xFFFF ? 6 : 4;
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 0xF];
  return out;
}

Status lex_string(Cursor& cur, Token& tok) {
  const char quote = cur.peek();
  cur.advance();
  tok.kind = TokenKind::kString;
  while (true) {
    if (cur.done()) return error_at(tok.pos, "unterminated string");
    const char c = cur.peek();
    if (c == quote) {
      cur.advance();
      return ok_status();
    }
    if (c != '\\') {
      tok.string_value.push_back(c);
      cur.advance();
      continue;
    }
    const ast::Position esc_pos = cur.pos();
    const char e = cur.peek(1);
    switch (e) {
      case '\\': tok.string_value.push_back('\\'); break;
      case '\'': tok.string_value.push_back('\''); break;
      case '"': tok.string_value.push_back('"'); break;
      case 'n': tok.string_value.push_back('\n'); break;
      case 't': tok.string_value.push_back('\t'); break;
      case 'r': tok.string_value.push_back('\r'); break;
      default: {
        // NUL bytes were rejected up front, so '\0' here means the text ended after the backslash.
        if (e == '\0') return error_at(tok.pos, "unterminated string");
        const std::string what = describe_char(cur.text(), cur.offset() + 1);  // 'q' or U+0007
        return error_at(esc_pos, "invalid escape " +
                                     (what[0] == '\'' ? "'\\" + what.substr(1) : "'\\' followed by " + what) +
                                     " in string");
      }
    }
    cur.advance(2);
  }
}

Status lex_number(Cursor& cur, Token& tok) {
  const std::size_t start = cur.offset();
  if (cur.peek() == '-') {
    tok.negative = true;
    cur.advance();
  }
  const std::size_t digits_start = cur.offset();
  bool hex = false;
  bool real = false;
  if (cur.peek() == '0' && (cur.peek(1) == 'x' || cur.peek(1) == 'X') && is_hex_digit(cur.peek(2))) {
    hex = true;
    cur.advance(2);
    while (is_hex_digit(cur.peek())) cur.advance();
  } else {
    while (is_digit(cur.peek())) cur.advance();
    if (cur.peek() == '.') {
      real = true;
      cur.advance();
      while (is_digit(cur.peek())) cur.advance();
    }
    if ((cur.peek() == 'e' || cur.peek() == 'E') &&
        (is_digit(cur.peek(1)) || ((cur.peek(1) == '+' || cur.peek(1) == '-') && is_digit(cur.peek(2))))) {
      real = true;
      cur.advance(2);
      while (is_digit(cur.peek())) cur.advance();
    }
  }
  tok.text = cur.since(start);
  if (is_ident_char(cur.peek()) || cur.peek() == '.') {
    while (is_ident_char(cur.peek()) || cur.peek() == '.') cur.advance();
    return error_at(tok.pos, "invalid number '" + std::string(cur.since(start)) + "'");
  }
  const std::string_view digits = cur.since(digits_start);
  if (real) {
    tok.kind = TokenKind::kReal;
    const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), tok.real);
    if (ec != std::errc() || p != digits.data() + digits.size() || !std::isfinite(tok.real)) {
      return error_at(tok.pos, "real number out of range '" + std::string(tok.text) + "'");
    }
    if (tok.negative) tok.real = -tok.real;
    return ok_status();
  }
  tok.kind = TokenKind::kInteger;
  const std::string_view body = hex ? digits.substr(2) : digits;
  const auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), tok.magnitude, hex ? 16 : 10);
  const auto kMaxNegative = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1;
  if (ec != std::errc() || p != body.data() + body.size() || (tok.negative && tok.magnitude > kMaxNegative)) {
    return error_at(tok.pos, "integer out of range '" + std::string(tok.text) + "'");
  }
  return ok_status();
}

// Symbols: ( ) , . * = <> != < > <= >= and the arithmetic operators WQL lacks.
bool lex_symbol(Cursor& cur, Token& tok) {
  const char c = cur.peek();
  const char n = cur.peek(1);
  std::size_t len = 1;
  switch (c) {
    case '(': tok.kind = TokenKind::kLParen; break;
    case ')': tok.kind = TokenKind::kRParen; break;
    case ',': tok.kind = TokenKind::kComma; break;
    case '.': tok.kind = TokenKind::kDot; break;
    case '*': tok.kind = TokenKind::kStar; break;
    case '+':
    case '-':
    case '/':
    case '%': tok.kind = TokenKind::kArithmetic; break;
    case '=': tok.kind = TokenKind::kEq; break;
    case '<':
      if (n == '>') {
        tok.kind = TokenKind::kNe;
        len = 2;
      } else if (n == '=') {
        tok.kind = TokenKind::kLe;
        len = 2;
      } else {
        tok.kind = TokenKind::kLt;
      }
      break;
    case '>':
      if (n == '=') {
        tok.kind = TokenKind::kGe;
        len = 2;
      } else {
        tok.kind = TokenKind::kGt;
      }
      break;
    case '!':
      if (n != '=') return false;
      tok.kind = TokenKind::kNe;
      len = 2;
      break;
    default: return false;
  }
  const std::size_t start = cur.offset();
  cur.advance(len);
  tok.text = cur.since(start);
  return true;
}

}  // namespace

std::string format_position(ast::Position pos) {
  return std::to_string(pos.line) + ":" + std::to_string(pos.column);
}

Result<std::vector<Token>> lex(std::string_view text) {
  PKG_TRY(check_encoding(text));
  // A byte-order mark is an encoding artefact of files, not part of the query.
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  std::vector<Token> tokens;
  Cursor cur(text);
  while (true) {
    while (!cur.done() && is_space(cur.peek())) cur.advance();
    Token tok;
    tok.pos = cur.pos();
    if (cur.done()) {
      tokens.push_back(std::move(tok));
      return tokens;
    }
    const char c = cur.peek();
    const std::size_t start = cur.offset();
    if (is_ident_start(c)) {
      while (is_ident_char(cur.peek())) cur.advance();
      tok.kind = TokenKind::kIdentifier;
      tok.text = cur.since(start);
      if (tok.text.size() > kMaxIdentifierBytes) {
        return error_at(tok.pos, "name longer than " + std::to_string(kMaxIdentifierBytes) + " bytes",
                        WbemCode::kQuotaViolation);
      }
      tok.keyword = keyword_of(tok.text);
    } else if (is_digit(c) || ((c == '-' || c == '.') && is_digit(cur.peek(1))) ||
               (c == '-' && cur.peek(1) == '.' && is_digit(cur.peek(2)))) {
      PKG_TRY(lex_number(cur, tok));
    } else if (c == '\'' || c == '"') {
      PKG_TRY(lex_string(cur, tok));
      tok.text = cur.since(start);
    } else if (!lex_symbol(cur, tok)) {
      return error_at(tok.pos, "unexpected character " + describe_char(text, start));
    }
    tokens.push_back(std::move(tok));
  }
}

}  // namespace pkgcast::wql
