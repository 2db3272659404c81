// Recursive-descent parser: tokens -> ast::Query. The grammar is docs/wql.md's EBNF, one function per rule.
// Recursion happens only through parenthesised conditions and NOT, and both count against kMaxNestingDepth
// before recursing, so hostile nesting ends in an error, never in a stack overflow.
#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "wql/functions.h"
#include "wql/lexer.h"
#include "wql/limits.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

using ast::Expr;
using ast::ExprKind;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Result<ast::Query> parse_query();
  Result<ast::Query> parse_select();

 private:
  const Token& peek(std::size_t ahead = 0) const {
    const std::size_t i = pos_ + ahead;
    return i < tokens_.size() ? tokens_[i] : tokens_.back();
  }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool accept(Keyword k) {
    if (!peek().is(k)) return false;
    next();
    return true;
  }

  static Error error_at(ast::Position pos, std::string what, WbemCode code = WbemCode::kInvalidQuery) {
    return make_error(code, std::move(what) + " at " + format_position(pos));
  }
  Error expected(std::string_view what) const { return error_at(peek().pos, "expected " + std::string(what)); }
  Status expect(Keyword k, std::string_view name) {
    if (!accept(k)) return expected(name);
    return ok_status();
  }

  Status parse_select_list(ast::Query& q);
  bool is_count() const;
  Status parse_count(ast::Query& q);
  Result<ast::PropertyPath> parse_path(std::string_view what, bool allow_star = false);
  Status parse_alias(std::string& alias, ast::Position& pos);
  Status parse_joins(ast::Query& q);
  Result<ast::Join> parse_join();
  Result<double> parse_interval(std::string_view clause);
  Status parse_group(ast::Query& q);
  Status parse_order_by(ast::Query& q);
  Status check_end();

  Result<Expr> parse_or();
  Result<Expr> parse_and();
  Result<Expr> parse_unary();
  Result<Expr> parse_primary();
  Result<Expr> parse_predicate();
  Result<ast::Operand> parse_operand();
  Result<ast::Operand> parse_call();
  Result<ast::Literal> parse_string_literal(std::string_view what);
  Result<std::vector<ast::Literal>> parse_in_list();
  Status parse_subquery(ast::Expr& e, ast::Position open);
  Status reject_arithmetic() const;
  Status enter(ast::Position pos);
  void leave() { --depth_; }
  Status count_term(ast::Position pos);

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
  std::size_t terms_ = 0;
  std::size_t subqueries_ = 0;
};

Result<ast::Query> Parser::parse_query() {
  PKG_ASSIGN_OR_RETURN(ast::Query q, parse_select());
  PKG_TRY(check_end());
  return q;
}

// A whole SELECT statement but its end: the top-level query, or a subquery that a ')' closes.
Result<ast::Query> Parser::parse_select() {
  ast::Query q;
  PKG_TRY(expect(Keyword::kSelect, "SELECT"));
  PKG_TRY(parse_select_list(q));
  PKG_TRY(expect(Keyword::kFrom, "FROM"));
  const Token& cls = peek();
  if (cls.kind != TokenKind::kIdentifier || cls.is_reserved()) return expected("class name");
  q.from_class = std::string(cls.text);
  q.from_pos = cls.pos;
  next();
  PKG_TRY(parse_alias(q.from_alias, q.from_alias_pos));
  PKG_TRY(parse_joins(q));
  if (peek().is(Keyword::kWithin)) {
    q.within_pos = next().pos;
    PKG_ASSIGN_OR_RETURN(q.within, parse_interval("WITHIN"));
  }
  if (accept(Keyword::kWhere)) {
    PKG_ASSIGN_OR_RETURN(q.where, parse_or());
  }
  if (peek().is(Keyword::kWithin)) return error_at(peek().pos, "WITHIN must come before WHERE");
  if (peek().is(Keyword::kOrder)) PKG_TRY(parse_order_by(q));
  if (peek().is(Keyword::kWhere)) return error_at(peek().pos, "WHERE must come before ORDER BY");
  if (peek().is(Keyword::kGroup)) PKG_TRY(parse_group(q));
  if (peek().is(Keyword::kHaving)) return error_at(peek().pos, "HAVING requires GROUP WITHIN");
  return q;
}

Status Parser::parse_select_list(ast::Query& q) {
  if (peek().is(Keyword::kTop)) return error_at(peek().pos, "TOP is not supported");
  if (peek().is(Keyword::kDistinct)) {
    q.select_pos = next().pos;
    q.distinct = true;
  }
  if (is_count()) return parse_count(q);
  if (peek().kind == TokenKind::kStar) {
    next();
    return ok_status();
  }
  while (true) {
    if (q.select.size() == kMaxSelectedProperties) {
      return error_at(peek().pos, "more than " + std::to_string(kMaxSelectedProperties) + " selected properties",
                      WbemCode::kQuotaViolation);
    }
    if (is_count()) return error_at(peek().pos, "COUNT(*) cannot be selected with properties");
    PKG_ASSIGN_OR_RETURN(auto path, parse_path("property name or *", true));
    if (peek().kind == TokenKind::kLParen) return error_at(peek().pos, "functions are not supported in SELECT");
    q.select.push_back(std::move(path));
    if (peek().kind != TokenKind::kComma) return ok_status();
    next();
  }
}

bool Parser::is_count() const {
  return peek().kind == TokenKind::kIdentifier && iequals(peek().text, "COUNT") &&
         peek(1).kind == TokenKind::kLParen;
}

// COUNT(*): the SMS Provider refuses COUNT together with DISTINCT, in either order.
Status Parser::parse_count(ast::Query& q) {
  const ast::Position at = next().pos;
  if (q.distinct) return error_at(at, "COUNT and DISTINCT cannot be used together");
  q.count = true;
  q.select_pos = at;
  next();  // (
  if (peek().is(Keyword::kDistinct)) return error_at(peek().pos, "COUNT and DISTINCT cannot be used together");
  if (peek().kind != TokenKind::kStar) return error_at(peek().pos, "COUNT takes only * (COUNT(*))");
  next();
  if (peek().kind != TokenKind::kRParen) return expected("')' after COUNT(*");
  next();
  if (peek().kind == TokenKind::kComma) return error_at(peek().pos, "COUNT(*) cannot be selected with properties");
  return ok_status();
}

// `allow_star`: a SELECT list, where `alias.*` names every property of one joined class.
Result<ast::PropertyPath> Parser::parse_path(std::string_view what, bool allow_star) {
  ast::PropertyPath path;
  while (true) {
    const Token& t = peek();
    if (allow_star && path.parts.size() == 1 && t.kind == TokenKind::kStar) {
      path.parts.emplace_back("*");
      path.positions.push_back(t.pos);
      next();
      return path;
    }
    if (t.kind != TokenKind::kIdentifier || t.is_reserved()) {
      return path.parts.empty() ? expected(what) : expected("property name after '.'");
    }
    path.parts.emplace_back(t.text);
    path.positions.push_back(t.pos);
    next();
    if (peek().kind != TokenKind::kDot) return path;
    next();
  }
}

// [AS] alias after a class name. A bare alias is any identifier that is not a keyword, so `FROM C WHERE`,
// `FROM C JOIN` and `FROM C ORDER BY` read as they always did.
Status Parser::parse_alias(std::string& alias, ast::Position& pos) {
  const bool as = accept(Keyword::kAs);
  const Token& t = peek();
  if (t.kind != TokenKind::kIdentifier || t.keyword != Keyword::kNone) {
    if (as) return expected("an alias after AS");
    return ok_status();
  }
  alias = std::string(t.text);
  pos = t.pos;
  next();
  return ok_status();
}

// { "," class [alias] | [INNER | LEFT [OUTER]] JOIN class [alias] ON condition }. RIGHT, FULL and CROSS joins
// are refused, as Configuration Manager's provider refuses them.
Status Parser::parse_joins(ast::Query& q) {
  while (true) {
    const Token& t = peek();
    if (t.is(Keyword::kRight) || t.is(Keyword::kFull) || t.is(Keyword::kCross)) {
      return error_at(t.pos, to_upper(t.text) + " joins are not supported (JOIN, INNER JOIN, LEFT [OUTER] JOIN are)");
    }
    if (t.is(Keyword::kOuter)) return error_at(t.pos, "OUTER JOIN needs LEFT (LEFT OUTER JOIN)");
    if (t.kind != TokenKind::kComma && !t.is(Keyword::kJoin) && !t.is(Keyword::kInner) && !t.is(Keyword::kLeft)) {
      return ok_status();
    }
    if (q.joins.size() + 1 == kMaxJoinedClasses) {
      return error_at(t.pos, "more than " + std::to_string(kMaxJoinedClasses) + " classes in FROM",
                      WbemCode::kQuotaViolation);
    }
    PKG_ASSIGN_OR_RETURN(ast::Join join, parse_join());
    q.joins.push_back(std::move(join));
  }
}

Result<ast::Join> Parser::parse_join() {
  ast::Join join;
  join.pos = peek().pos;
  if (peek().kind == TokenKind::kComma) {
    next();
    join.kind = ast::JoinKind::kList;
  } else {
    if (accept(Keyword::kLeft)) {
      join.kind = ast::JoinKind::kLeft;
      accept(Keyword::kOuter);
    } else {
      accept(Keyword::kInner);
    }
    PKG_TRY(expect(Keyword::kJoin, "JOIN"));
  }
  const Token& cls = peek();
  if (cls.kind != TokenKind::kIdentifier || cls.is_reserved()) return expected("class name");
  join.cls.name = std::string(cls.text);
  join.cls.pos = cls.pos;
  next();
  PKG_TRY(parse_alias(join.cls.alias, join.cls.alias_pos));
  if (join.kind == ast::JoinKind::kList) {
    if (peek().is(Keyword::kOn)) return error_at(peek().pos, "ON follows JOIN; `FROM A, B` takes its conditions in WHERE");
    return join;
  }
  if (!accept(Keyword::kOn)) return expected("ON after the joined class");
  PKG_ASSIGN_OR_RETURN(join.on, parse_or());
  return join;
}

Result<double> Parser::parse_interval(std::string_view clause) {
  const Token& t = peek();
  double seconds = 0;
  if (t.kind == TokenKind::kInteger) {
    seconds = t.negative ? -static_cast<double>(t.magnitude) : static_cast<double>(t.magnitude);
  } else if (t.kind == TokenKind::kReal) {
    seconds = t.real;
  } else {
    return expected("a number of seconds after " + std::string(clause));
  }
  if (!(seconds > 0)) {
    return error_at(t.pos, std::string(clause) + " needs a positive number of seconds, not " + std::string(t.text));
  }
  next();
  return seconds;
}

// ORDER BY path [ASC|DESC] { "," path [ASC|DESC] }. ASC and DESC are not reserved: they are read only here.
Status Parser::parse_order_by(ast::Query& q) {
  q.order_pos = next().pos;
  if (!accept(Keyword::kBy)) return expected("BY after ORDER");
  while (true) {
    if (q.order_by.size() == kMaxOrderByTerms) {
      return error_at(peek().pos, "more than " + std::to_string(kMaxOrderByTerms) + " ORDER BY properties",
                      WbemCode::kQuotaViolation);
    }
    ast::OrderTerm term;
    PKG_ASSIGN_OR_RETURN(term.path, parse_path("property name after ORDER BY"));
    if (peek().kind == TokenKind::kLParen) return error_at(peek().pos, "functions are not supported");
    if (peek().kind == TokenKind::kIdentifier && !peek().is_reserved() &&
        (iequals(peek().text, "ASC") || iequals(peek().text, "DESC"))) {
      term.descending = iequals(next().text, "DESC");
    }
    q.order_by.push_back(std::move(term));
    if (peek().kind != TokenKind::kComma) return ok_status();
    next();
  }
}

Status Parser::parse_group(ast::Query& q) {
  ast::GroupClause g;
  g.pos = next().pos;
  if (!peek().is(Keyword::kWithin)) {
    if (peek().is(Keyword::kBy)) return error_at(peek().pos, "GROUP BY needs an interval: GROUP WITHIN n BY ...");
    return expected("WITHIN after GROUP");
  }
  g.within_pos = next().pos;
  PKG_ASSIGN_OR_RETURN(g.within, parse_interval("GROUP WITHIN"));
  if (accept(Keyword::kBy)) {
    while (true) {
      if (g.by.size() == kMaxSelectedProperties) {
        return error_at(peek().pos, "more than " + std::to_string(kMaxSelectedProperties) + " GROUP BY properties",
                        WbemCode::kQuotaViolation);
      }
      PKG_ASSIGN_OR_RETURN(auto path, parse_path("property name after BY"));
      g.by.push_back(std::move(path));
      if (peek().kind != TokenKind::kComma) break;
      next();
    }
  }
  if (accept(Keyword::kHaving)) {
    PKG_ASSIGN_OR_RETURN(g.having, parse_or());
  }
  q.group = std::move(g);
  return ok_status();
}

Status Parser::check_end() {
  const Token& t = peek();
  if (t.kind == TokenKind::kEnd) return ok_status();
  if (t.is(Keyword::kOrder)) return error_at(t.pos, "only one ORDER BY clause is allowed");
  if (t.is(Keyword::kUnion)) return error_at(t.pos, "UNION is not supported");
  if (t.kind == TokenKind::kArithmetic || t.kind == TokenKind::kStar) {
    return error_at(t.pos, "arithmetic is not supported");
  }
  if (t.is(Keyword::kGroup)) return error_at(t.pos, "only one GROUP clause is allowed");
  if (t.kind == TokenKind::kString) {
    // Most often SQL's doubled quote ('O''Reilly'), which WQL reads as two strings.
    return error_at(t.pos, "unexpected '" + std::string(t.text) + "' (a quote inside a string is written \\' or \\\")");
  }
  return error_at(t.pos, "unexpected '" + std::string(t.text) + "'");
}

Status Parser::enter(ast::Position pos) {
  if (++depth_ > kMaxNestingDepth) {
    return error_at(pos, "condition nested deeper than " + std::to_string(kMaxNestingDepth),
                    WbemCode::kQuotaViolation);
  }
  return ok_status();
}

Status Parser::count_term(ast::Position pos) {
  if (++terms_ > kMaxTerms) {
    return error_at(pos, "more than " + std::to_string(kMaxTerms) + " terms", WbemCode::kQuotaViolation);
  }
  return ok_status();
}

Result<Expr> Parser::parse_or() {
  PKG_ASSIGN_OR_RETURN(Expr first, parse_and());
  if (!peek().is(Keyword::kOr)) return first;
  Expr e;
  e.kind = ExprKind::kOr;
  e.pos = peek().pos;
  e.children.push_back(std::move(first));
  while (accept(Keyword::kOr)) {
    PKG_ASSIGN_OR_RETURN(Expr more, parse_and());
    e.children.push_back(std::move(more));
  }
  return e;
}

Result<Expr> Parser::parse_and() {
  PKG_ASSIGN_OR_RETURN(Expr first, parse_unary());
  if (!peek().is(Keyword::kAnd)) return first;
  Expr e;
  e.kind = ExprKind::kAnd;
  e.pos = peek().pos;
  e.children.push_back(std::move(first));
  while (accept(Keyword::kAnd)) {
    PKG_ASSIGN_OR_RETURN(Expr more, parse_unary());
    e.children.push_back(std::move(more));
  }
  return e;
}

Result<Expr> Parser::parse_unary() {
  if (!peek().is(Keyword::kNot)) return parse_primary();
  Expr e;
  e.kind = ExprKind::kNot;
  e.pos = next().pos;
  PKG_TRY(enter(e.pos));
  PKG_ASSIGN_OR_RETURN(Expr operand, parse_unary());
  leave();
  e.children.push_back(std::move(operand));
  return e;
}

Result<Expr> Parser::parse_primary() {
  if (peek().kind != TokenKind::kLParen) return parse_predicate();
  const ast::Position open = next().pos;
  PKG_TRY(enter(open));
  PKG_ASSIGN_OR_RETURN(Expr inner, parse_or());
  leave();
  if (peek().kind != TokenKind::kRParen) {
    PKG_TRY(reject_arithmetic());
    return expected("')' to close the '(' of " + format_position(open));
  }
  next();
  return inner;
}

Status Parser::reject_arithmetic() const {
  const Token& t = peek();
  if (t.kind == TokenKind::kArithmetic || t.kind == TokenKind::kStar ||
      ((t.kind == TokenKind::kInteger || t.kind == TokenKind::kReal) && t.negative)) {
    return error_at(t.pos, "arithmetic is not supported");
  }
  return ok_status();
}

Result<Expr> Parser::parse_predicate() {
  Expr e;
  PKG_TRY(count_term(peek().pos));
  PKG_ASSIGN_OR_RETURN(e.lhs, parse_operand());
  const Token& t = peek();
  e.pos = t.pos;
  switch (t.kind) {
    case TokenKind::kEq: e.op = ast::CompareOp::kEq; break;
    case TokenKind::kNe: e.op = ast::CompareOp::kNe; break;
    case TokenKind::kLt: e.op = ast::CompareOp::kLt; break;
    case TokenKind::kGt: e.op = ast::CompareOp::kGt; break;
    case TokenKind::kLe: e.op = ast::CompareOp::kLe; break;
    case TokenKind::kGe: e.op = ast::CompareOp::kGe; break;
    default: {
      if (t.is(Keyword::kIs)) {
        next();
        e.kind = ExprKind::kIsNull;
        e.negated = accept(Keyword::kNot);
        if (!accept(Keyword::kNull)) {
          return error_at(peek().pos, "IS takes only NULL (IS NULL or IS NOT NULL)");
        }
        return e;
      }
      if (t.is(Keyword::kIsa)) {
        next();
        e.kind = ExprKind::kIsa;
        PKG_ASSIGN_OR_RETURN(e.rhs, parse_string_literal("a quoted class name after ISA"));
        return e;
      }
      if (t.is(Keyword::kLike) || (t.is(Keyword::kNot) && peek(1).is(Keyword::kLike))) {
        e.negated = t.is(Keyword::kNot);
        if (e.negated) next();
        e.pos = next().pos;
        e.kind = ExprKind::kLike;
        PKG_ASSIGN_OR_RETURN(e.rhs, parse_string_literal("a quoted pattern after LIKE"));
        if (std::get<std::string>(std::get<ast::Literal>(e.rhs).value).size() > kMaxLikePatternBytes) {
          return error_at(e.pos, "LIKE pattern longer than " + std::to_string(kMaxLikePatternBytes) + " bytes",
                          WbemCode::kQuotaViolation);
        }
        return e;
      }
      if (t.is(Keyword::kIn) || (t.is(Keyword::kNot) && peek(1).is(Keyword::kIn))) {
        e.negated = t.is(Keyword::kNot);
        if (e.negated) next();
        e.pos = next().pos;
        e.kind = ExprKind::kIn;
        if (peek().kind == TokenKind::kLParen && peek(1).is(Keyword::kSelect)) {
          const ast::Position open = next().pos;
          PKG_TRY(parse_subquery(e, open));
          return e;
        }
        PKG_ASSIGN_OR_RETURN(e.list, parse_in_list());
        return e;
      }
      PKG_TRY(reject_arithmetic());
      if (t.is(Keyword::kBetween)) return error_at(t.pos, "BETWEEN is not supported");
      return expected("a comparison operator");
    }
  }
  next();
  e.kind = ExprKind::kCompare;
  PKG_ASSIGN_OR_RETURN(e.rhs, parse_operand());
  PKG_TRY(reject_arithmetic());
  return e;
}

Result<ast::Operand> Parser::parse_operand() {
  const Token& t = peek();
  ast::Literal lit;
  lit.pos = t.pos;
  switch (t.kind) {
    case TokenKind::kInteger:
      if (t.negative && t.magnitude != 0) {
        // magnitude <= 2^63 (the lexer checks); 0 - (m - 1) - 1 avoids overflowing at INT64_MIN.
        lit.value = -static_cast<std::int64_t>(t.magnitude - 1) - 1;
      } else {
        lit.value = t.magnitude;
      }
      break;
    case TokenKind::kReal: lit.value = t.real; break;
    case TokenKind::kString: lit.value = t.string_value; break;
    case TokenKind::kIdentifier:
      if (t.is(Keyword::kTrue) || t.is(Keyword::kFalse)) {
        lit.value = t.is(Keyword::kTrue);
      } else if (t.is(Keyword::kNull)) {
        lit.value = ast::Null{};
      } else if (!t.is_reserved()) {
        if (peek(1).kind == TokenKind::kLParen) return parse_call();
        PKG_ASSIGN_OR_RETURN(auto path, parse_path("property name"));
        if (peek().kind == TokenKind::kLParen) return error_at(peek().pos, "functions are not supported");
        return ast::Operand(std::move(path));
      } else {
        return expected("a property or a value");
      }
      break;
    case TokenKind::kArithmetic:
    case TokenKind::kStar: return error_at(t.pos, "arithmetic is not supported");
    default: return expected("a property or a value");
  }
  next();
  return ast::Operand(std::move(lit));
}

// NAME "(" [ datepart "," ] operand { "," operand } ")", or GETDATE "(" ")". A call nests like a parenthesis, so it
// counts against kMaxNestingDepth.
Result<ast::Operand> Parser::parse_call() {
  const Token& name = next();
  ast::Call call;
  call.pos = name.pos;
  const auto fn = find_function(name.text);
  if (!fn) return error_at(name.pos, "unknown function '" + std::string(name.text) + "'");
  call.function = *fn;
  const std::string fname = ast::function_name(*fn);
  const ast::Position open = next().pos;  // (
  PKG_TRY(enter(open));
  const std::size_t arity = function_arity(*fn);
  const std::string arity_text =
      fname + " takes " + (takes_datepart(*fn) ? "a datepart and " : "") +
      (arity == 0 ? std::string("no arguments") : std::to_string(arity) + (arity == 1 ? " argument" : " arguments"));
  if (takes_datepart(*fn)) {
    const Token& part = peek();
    if (part.kind != TokenKind::kIdentifier || part.is_reserved()) {
      return error_at(part.pos, fname + " needs a datepart first (year, yy, month, mm, day, dd, hour, hh, minute, mi, "
                                        "second, ss, ...)");
    }
    if (!find_datepart(part.text)) return error_at(part.pos, "unknown datepart '" + std::string(part.text) + "'");
    call.datepart = std::string(part.text);
    next();
    if (peek().kind != TokenKind::kComma) return error_at(peek().pos, arity_text);
    next();
  }
  while (call.args.size() < arity) {
    if (peek().kind == TokenKind::kRParen) return error_at(peek().pos, arity_text);
    PKG_ASSIGN_OR_RETURN(ast::Operand arg, parse_operand());
    call.args.push_back(std::move(arg));
    if (call.args.size() < arity) {
      if (peek().kind != TokenKind::kComma) {
        PKG_TRY(reject_arithmetic());
        return peek().kind == TokenKind::kRParen ? error_at(peek().pos, arity_text) : expected("',' between arguments");
      }
      next();
    }
  }
  if (peek().kind != TokenKind::kRParen) {
    PKG_TRY(reject_arithmetic());
    if (peek().kind == TokenKind::kComma || arity == 0) return error_at(peek().pos, arity_text);
    return expected("')' to close the '(' of " + format_position(open));
  }
  next();
  leave();
  return ast::Operand(ast::CallBox(std::move(call)));
}

// "(" SELECT ... ")": a subquery nests like a parenthesis (kMaxNestingDepth), its terms count toward kMaxTerms, and
// a query holds at most kMaxSubqueries.
Status Parser::parse_subquery(ast::Expr& e, ast::Position open) {
  if (++subqueries_ > kMaxSubqueries) {
    return error_at(open, "more than " + std::to_string(kMaxSubqueries) + " subqueries", WbemCode::kQuotaViolation);
  }
  PKG_TRY(enter(open));
  PKG_ASSIGN_OR_RETURN(ast::Query sub, parse_select());
  leave();
  if (peek().kind != TokenKind::kRParen) {
    if (peek().kind == TokenKind::kEnd) return expected("')' to close the subquery opened at " + format_position(open));
    PKG_TRY(check_end());
    return expected("')' to close the subquery opened at " + format_position(open));
  }
  next();
  e.subquery.push_back(std::move(sub));
  return ok_status();
}

// "(" literal { "," literal } ")". Each value counts as a term, so kMaxTerms bounds the list too.
Result<std::vector<ast::Literal>> Parser::parse_in_list() {
  if (peek().kind != TokenKind::kLParen) return expected("'(' after IN");
  const ast::Position open = next().pos;
  if (peek().kind == TokenKind::kRParen) return error_at(peek().pos, "IN needs at least one value");
  std::vector<ast::Literal> list;
  while (true) {
    PKG_TRY(count_term(peek().pos));
    const ast::Position at = peek().pos;
    PKG_ASSIGN_OR_RETURN(ast::Operand item, parse_operand());
    auto* lit = std::get_if<ast::Literal>(&item);
    if (lit == nullptr) return error_at(at, "an IN list holds values, not properties");
    list.push_back(std::move(*lit));
    if (peek().kind == TokenKind::kRParen) break;
    if (peek().kind != TokenKind::kComma) {
      PKG_TRY(reject_arithmetic());
      return expected("',' or ')' to close the IN list opened at " + format_position(open));
    }
    next();
  }
  next();
  return list;
}

Result<ast::Literal> Parser::parse_string_literal(std::string_view what) {
  const Token& t = peek();
  if (t.kind != TokenKind::kString) return expected(what);
  ast::Literal lit;
  lit.pos = t.pos;
  lit.value = t.string_value;
  next();
  return lit;
}

// Schema queries have their own syntax ({object paths}), so they are recognised before the lexer sees them.
Status reject_schema_query(std::string_view text) {
  const std::size_t start = text.find_first_not_of(" \t\r\n\f\v");
  if (start == std::string_view::npos) return ok_status();
  const std::string_view rest = text.substr(start);
  for (std::string_view kind : {"ASSOCIATORS", "REFERENCES"}) {
    if (!starts_with_icase(rest, kind)) continue;
    if (rest.size() == kind.size() || !std::isalnum(static_cast<unsigned char>(rest[kind.size()]))) {
      return make_error(WbemCode::kNotSupported, std::string(kind) + " OF queries are not supported");
    }
  }
  return ok_status();
}

}  // namespace

Result<ast::Query> parse(std::string_view text) {
  if (text.size() > kMaxQueryBytes) {
    return make_error(WbemCode::kQuotaViolation, "query of " + std::to_string(text.size()) +
                                                     " bytes is longer than the limit of " +
                                                     std::to_string(kMaxQueryBytes));
  }
  PKG_TRY(reject_schema_query(text));
  PKG_ASSIGN_OR_RETURN(auto tokens, lex(text));
  Parser parser(std::move(tokens));
  return parser.parse_query();
}

}  // namespace pkgcast::wql
