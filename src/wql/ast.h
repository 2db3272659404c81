// The WQL abstract syntax tree: what the parser produces, before any class is looked up.
//
// The AST is plain data, copyable and movable, with names exactly as written in the query. It knows nothing of
// classes or types; bind() (bound.h) turns it into a BoundQuery. print() (wql.h) writes its canonical text, and
// parse(print(q)) == q holds for every q that parse() returns.
//
// Equality (operator==) is structural and ignores source positions, which are diagnostics, not meaning.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace pkgcast::wql::ast {

// 1-based line and column; columns count Unicode code points, a tab counts as one.
struct Position {
  std::uint32_t line = 1;
  std::uint32_t column = 1;
};

// "Name", "TargetInstance.Installed", "__CLASS", "TargetInstance.__CLASS", "P.Name" (an alias's property): one or
// more dot-separated names. Invariant (parser): 1 <= parts.size(), every part a non-empty identifier, except that
// in a SELECT list the last of two parts may be "*" (`P.*`, every property of alias P); positions.size() ==
// parts.size().
struct PropertyPath {
  std::vector<std::string> parts;
  std::vector<Position> positions;  // of each part

  Position pos() const { return positions.empty() ? Position{} : positions.front(); }
  // "TargetInstance.Installed".
  std::string dotted() const;
};

struct Null {
  friend bool operator==(Null, Null) { return true; }
};

// A literal value. Invariant (parser): a non-negative integer is always held as std::uint64_t, a negative one as
// std::int64_t, so that every integer has exactly one representation; a double is always finite.
struct Literal {
  using Payload = std::variant<Null, bool, std::int64_t, std::uint64_t, double, std::string>;
  Payload value;
  Position pos;

  bool is_null() const { return std::holds_alternative<Null>(value); }
  bool is_string() const { return std::holds_alternative<std::string>(value); }
  bool is_boolean() const { return std::holds_alternative<bool>(value); }
  bool is_number() const;
};

// Extended WQL's functions (data queries, WHERE only). GETDATE() takes no argument; DATEPART, DATEDIFF and DATEADD
// take a datepart name first (Call::datepart), then their operands.
enum class Function : std::uint8_t { kUpper, kLower, kSubstring, kDatePart, kDateDiff, kDateAdd, kGetDate };

struct Call;

// An owning pointer to a Call with value semantics (deep copy, deep equality), so that calls nest in operands.
// Never empty.
class CallBox {
 public:
  explicit CallBox(Call call);
  CallBox(const CallBox& other);
  CallBox(CallBox&& other) noexcept;
  CallBox& operator=(const CallBox& other);
  CallBox& operator=(CallBox&& other) noexcept;
  ~CallBox();

  const Call& operator*() const { return *call_; }
  const Call* operator->() const { return call_.get(); }

 private:
  std::unique_ptr<Call> call_;
};

using Operand = std::variant<PropertyPath, Literal, CallBox>;

// FUNCTION(args): `UPPER(Name)`, `DATEDIFF(dd, LastUpdateDate, GETDATE())`. Invariant (parser): args.size() is
// the function's arity; datepart is set (a known datepart name, as written) exactly for the DATE* functions.
struct Call {
  Function function = Function::kUpper;
  Position pos;  // of the function name
  std::string datepart;
  std::vector<Operand> args;
};

enum class ExprKind : std::uint8_t {
  kAnd,      // children: two or more
  kOr,       // children: two or more
  kNot,      // children: exactly one
  kCompare,  // lhs op rhs
  kLike,     // lhs [NOT] LIKE rhs; rhs is a string Literal
  kIsNull,   // lhs IS [NOT] NULL
  kIsa,      // lhs ISA rhs; rhs is a string Literal naming a class
  kIn,       // lhs [NOT] IN (list) or lhs [NOT] IN (SELECT ...) (Extended WQL)
};

// `!=` parses as kNe and prints as `<>`.
enum class CompareOp : std::uint8_t { kEq, kNe, kLt, kGt, kLe, kGe };

struct Query;

// One node of a condition. Fields not listed for a kind keep their defaults.
struct Expr {
  ExprKind kind = ExprKind::kCompare;
  // The operator keyword or symbol (AND, NOT, =, LIKE, IS, ISA), for error messages.
  Position pos;
  std::vector<Expr> children;  // kAnd, kOr, kNot
  Operand lhs;                 // kCompare, kLike, kIsNull, kIsa
  Operand rhs;                 // kCompare, kLike, kIsa
  std::vector<Literal> list;   // kIn: the values, in query order (1 <= size), or none with a subquery
  std::vector<Query> subquery;  // kIn: `IN (SELECT p FROM C ...)`, exactly one (Extended WQL); else empty
  CompareOp op = CompareOp::kEq;  // kCompare
  bool negated = false;           // kLike: NOT LIKE; kIsNull: IS NOT NULL; kIn: NOT IN
};

// GROUP WITHIN interval [BY path, ...] [HAVING condition].
struct GroupClause {
  double within = 0;  // seconds, > 0
  Position pos;       // of GROUP
  Position within_pos;
  std::vector<PropertyPath> by;
  std::optional<Expr> having;
};

// ORDER BY path [ASC|DESC] (Extended WQL, data queries).
struct OrderTerm {
  PropertyPath path;
  bool descending = false;  // DESC; ASC and no word are ascending
};

// How a joined class meets the classes before it (Extended WQL, data queries). `JOIN` and `INNER JOIN` are kInner,
// `LEFT JOIN` and `LEFT OUTER JOIN` kLeft; kList is ANSI-89's `FROM A, B` (every pair; conditions go in WHERE).
enum class JoinKind : std::uint8_t { kInner, kLeft, kList };

// A class in FROM and its alias: `SMS_Package AS P`, `SMS_Package P`, or no alias (alias empty).
struct ClassRef {
  std::string name;
  Position pos;
  std::string alias;  // as written; empty when none
  Position alias_pos;
};

// `[INNER|LEFT [OUTER]] JOIN cls ON condition`, or `, cls` (kList, never an ON).
struct Join {
  JoinKind kind = JoinKind::kInner;
  Position pos;  // of the first word (JOIN, INNER, LEFT) or of the ','
  ClassRef cls;
  std::optional<Expr> on;  // set exactly for kInner and kLeft
};

// SELECT [DISTINCT] select | COUNT(*) FROM from_class [alias] {join} [WITHIN within] [WHERE where] [ORDER BY ...]
// [GROUP ...].
struct Query {
  std::vector<PropertyPath> select;  // empty means `*` (and for COUNT(*))
  bool distinct = false;             // SELECT DISTINCT (Extended WQL)
  bool count = false;                // SELECT COUNT(*) (Extended WQL); never with distinct or a select list
  Position select_pos;               // of DISTINCT or COUNT, for errors
  std::string from_class;
  Position from_pos;
  std::string from_alias;  // `FROM SMS_Package AS P`: "P"; empty when none
  Position from_alias_pos;
  std::vector<Join> joins;  // the classes joined after from_class, in query order (Extended WQL)
  std::optional<double> within;  // seconds, > 0
  Position within_pos;
  std::optional<Expr> where;
  std::optional<GroupClause> group;
  std::vector<OrderTerm> order_by;  // empty: no ORDER BY
  Position order_pos;               // of ORDER
};

bool operator==(const PropertyPath& a, const PropertyPath& b);
bool operator==(const Literal& a, const Literal& b);
bool operator==(const Call& a, const Call& b);
bool operator==(const CallBox& a, const CallBox& b);
bool operator==(const Expr& a, const Expr& b);
bool operator==(const GroupClause& a, const GroupClause& b);
bool operator==(const OrderTerm& a, const OrderTerm& b);
bool operator==(const ClassRef& a, const ClassRef& b);
bool operator==(const Join& a, const Join& b);
bool operator==(const Query& a, const Query& b);

// "AND", "OR", "NOT", "=", "<>", "LIKE", "IS", "ISA", ...
const char* compare_op_text(CompareOp op);
// "UPPER", "DATEDIFF", ...
const char* function_name(Function f);
// The operand's position: a path's first part, a literal's, a call's name.
Position operand_pos(const Operand& op);

}  // namespace pkgcast::wql::ast
