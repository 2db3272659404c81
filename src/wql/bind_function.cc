// Binding Extended WQL's functions: argument types, WMI's conversion of literal arguments, folding of calls whose
// arguments are all literals (GETDATE() included), and comparisons, LIKE and IN over a computed value.
#include <string>
#include <utility>

#include "wql/binder.h"
#include "wql/convert.h"
#include "wql/functions.h"
#include "wql/scalar.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

using namespace bind_detail;

cim::Type scalar_type(cim::CimType t) { return cim::Type{t, false}; }

std::string literal_text(const ast::Literal& lit) {
  ast::Expr e;
  e.kind = ast::ExprKind::kIsNull;
  e.lhs = lit;
  std::string text = print(e);
  return text.substr(0, text.size() - std::string(" IS NULL").size());
}

bool is_null_literal(const ValueExpr& v) { return v.kind == ValueExpr::Kind::kLiteral && v.literal.is_null(); }

// "uint32 'Priority'", "string 'UPPER(Name)'", "a string": how an error names a value.
std::string describe_value(const ValueExpr& v) {
  if (v.kind == ValueExpr::Kind::kLiteral && v.text.empty()) return "a literal";
  return cim::type_name(v.type) + " '" + v.text + "'";
}

// A literal argument or operand converted as WMI converts a literal compared with a property of `type`.
Result<ValueExpr> convert_to(const ast::Literal& lit, cim::Type type, const std::string& what) {
  PropertyRef ref;
  ref.type = type;
  ref.name = what;
  PKG_ASSIGN_OR_RETURN(cim::Value v, convert_literal(lit, ref, domain_of(category_of(type))));
  ValueExpr out;
  out.kind = ValueExpr::Kind::kLiteral;
  out.literal = std::move(v);
  out.type = type;
  out.text = literal_text(lit);
  return out;
}

// The first call in a predicate's operands, for the position of an error about functions.
ast::Position call_pos(const ast::Expr& e) {
  if (const auto* call = std::get_if<ast::CallBox>(&e.lhs)) return (*call)->pos;
  if (const auto* call = std::get_if<ast::CallBox>(&e.rhs)) return (*call)->pos;
  return e.pos;
}

}  // namespace

// Event queries keep WMI's grammar (the SMS Provider leaves events to WMI), and so does HAVING.
Status Binder::check_functions_allowed(const ast::Expr& e, const Scope& scope) const {
  if (scope.target != nullptr || scope.self->is_event_class()) {
    return error_at(WbemCode::kInvalidQuery, "functions apply to data queries, not to event queries", call_pos(e));
  }
  return ok_status();
}

Result<ValueExpr> Binder::bind_value(const ast::Operand& op, const Scope& scope) const {
  ValueExpr v;
  if (const auto* path = std::get_if<ast::PropertyPath>(&op)) {
    PKG_ASSIGN_OR_RETURN(v.property, bind_path(*path, scope));
    if (v.property.system != SystemProperty::kNone || v.property.source != Source::kSelf) {
      return error_at(WbemCode::kNotSupported,
                      "functions read declared properties of the FROM class, not " + v.property.name, path->pos());
    }
    v.kind = ValueExpr::Kind::kProperty;
    v.type = v.property.type;
    v.text = v.property.name;
    return v;
  }
  if (const auto* lit = std::get_if<ast::Literal>(&op)) {
    v.kind = ValueExpr::Kind::kLiteral;
    v.literal = literal_value(*lit);
    v.type = lit->is_null() ? scalar_type(cim::CimType::kString) : v.literal.type();
    v.text = literal_text(*lit);
    return v;
  }
  return bind_call(*std::get<ast::CallBox>(op), scope);
}

Result<ValueExpr> Binder::bind_call(const ast::Call& call, const Scope& scope) const {
  const std::string name = ast::function_name(call.function);
  if (scope.target != nullptr || scope.self->is_event_class()) {
    return error_at(WbemCode::kInvalidQuery, "functions apply to data queries, not to event queries", call.pos);
  }
  ValueExpr v;
  v.kind = ValueExpr::Kind::kCall;
  v.function = call.function;
  if (takes_datepart(call.function)) v.datepart = static_cast<std::uint8_t>(*find_datepart(call.datepart));
  {
    ast::Expr e;
    e.kind = ast::ExprKind::kIsNull;
    e.lhs = ast::CallBox(call);
    v.text = print(e);
    v.text.resize(v.text.size() - std::string(" IS NULL").size());
  }
  // Each argument: what category it must have, and its name in errors.
  auto arg = [&](std::size_t i, Category want, const char* role) -> Result<ValueExpr> {
    const ast::Operand& op = call.args[i];
    const ast::Position pos = ast::operand_pos(op);
    const auto* lit = std::get_if<ast::Literal>(&op);
    if (lit != nullptr && !lit->is_null() && category_of(*lit) != want) {
      // WMI's conversions: '2024-01-01' is a datetime here, '3' a number.
      const cim::Type type = scalar_type(want == Category::kDateTime ? cim::CimType::kDateTime
                                         : want == Category::kNumber ? cim::CimType::kSint64
                                                                     : cim::CimType::kString);
      return convert_to(*lit, type, name + "'s " + role);
    }
    PKG_ASSIGN_OR_RETURN(ValueExpr a, bind_value(op, scope));
    if (!is_null_literal(a) && category_of(a.type) != want) {
      const char* wanted = want == Category::kString ? "a string" : want == Category::kNumber ? "a number" : "a datetime";
      return error_at(WbemCode::kInvalidOperator,
                      name + "'s " + role + " is " + wanted + ", not " + describe_value(a), pos);
    }
    return a;
  };
  switch (call.function) {
    case ast::Function::kUpper:
    case ast::Function::kLower: {
      PKG_ASSIGN_OR_RETURN(ValueExpr s, arg(0, Category::kString, "argument"));
      v.args.push_back(std::move(s));
      v.type = scalar_type(cim::CimType::kString);
      break;
    }
    case ast::Function::kSubstring: {
      PKG_ASSIGN_OR_RETURN(ValueExpr s, arg(0, Category::kString, "first argument"));
      PKG_ASSIGN_OR_RETURN(ValueExpr start, arg(1, Category::kNumber, "start"));
      PKG_ASSIGN_OR_RETURN(ValueExpr length, arg(2, Category::kNumber, "length"));
      v.args = {std::move(s), std::move(start), std::move(length)};
      v.type = scalar_type(cim::CimType::kString);
      break;
    }
    case ast::Function::kDatePart: {
      PKG_ASSIGN_OR_RETURN(ValueExpr d, arg(0, Category::kDateTime, "date"));
      v.args.push_back(std::move(d));
      v.type = scalar_type(cim::CimType::kSint64);
      break;
    }
    case ast::Function::kDateDiff: {
      PKG_ASSIGN_OR_RETURN(ValueExpr a, arg(0, Category::kDateTime, "start date"));
      PKG_ASSIGN_OR_RETURN(ValueExpr b, arg(1, Category::kDateTime, "end date"));
      v.args = {std::move(a), std::move(b)};
      v.type = scalar_type(cim::CimType::kSint64);
      break;
    }
    case ast::Function::kDateAdd: {
      PKG_ASSIGN_OR_RETURN(ValueExpr n, arg(0, Category::kNumber, "number"));
      PKG_ASSIGN_OR_RETURN(ValueExpr d, arg(1, Category::kDateTime, "date"));
      v.args = {std::move(n), std::move(d)};
      v.type = scalar_type(cim::CimType::kDateTime);
      break;
    }
    case ast::Function::kGetDate:
      // Read once per query, as SQL Server reads it once per statement.
      v.kind = ValueExpr::Kind::kLiteral;
      v.literal = cim::Value::datetime(now_);
      v.type = scalar_type(cim::CimType::kDateTime);
      return v;
  }
  // A call of literals is a literal: computed once here, and a comparison with it can go to SQL.
  bool constant_args = true;
  for (const auto& a : v.args) constant_args = constant_args && a.kind == ValueExpr::Kind::kLiteral;
  if (constant_args) {
    std::vector<cim::Value> values;
    for (const auto& a : v.args) values.push_back(a.literal);
    v.literal = apply_function(v.function, static_cast<DatePart>(v.datepart), values);
    v.kind = ValueExpr::Kind::kLiteral;
    v.args.clear();
  }
  return v;
}

Result<Condition> Binder::bind_value_compare(const ast::Expr& e, const Scope& scope) const {
  PKG_TRY(check_functions_allowed(e, scope));
  const auto* left_lit = std::get_if<ast::Literal>(&e.lhs);
  const auto* right_lit = std::get_if<ast::Literal>(&e.rhs);
  ValueExpr l;
  ValueExpr r;
  // A literal takes the type of the computed side, as WMI converts a literal to its property's type.
  if (left_lit != nullptr) {
    PKG_ASSIGN_OR_RETURN(r, bind_value(e.rhs, scope));
    if (left_lit->is_null() || is_null_literal(r)) return constant(Truth::kUnknown);
    PKG_ASSIGN_OR_RETURN(l, convert_to(*left_lit, r.type, r.text));
  } else if (right_lit != nullptr) {
    PKG_ASSIGN_OR_RETURN(l, bind_value(e.lhs, scope));
    if (right_lit->is_null() || is_null_literal(l)) return constant(Truth::kUnknown);
    PKG_ASSIGN_OR_RETURN(r, convert_to(*right_lit, l.type, l.text));
  } else {
    PKG_ASSIGN_OR_RETURN(l, bind_value(e.lhs, scope));
    PKG_ASSIGN_OR_RETURN(r, bind_value(e.rhs, scope));
    if (is_null_literal(l) || is_null_literal(r)) return constant(Truth::kUnknown);
  }
  const Category lc = category_of(l.type);
  const Category rc = category_of(r.type);
  for (const ValueExpr* side : {&l, &r}) {
    const Category c = category_of(side->type);
    if (c == Category::kArray || c == Category::kObject) {
      return error_at(WbemCode::kInvalidOperator, "'" + side->text + "' is " +
                                                      (c == Category::kArray ? "an array" : "an embedded object") +
                                                      "; it has no value to compare",
                      e.pos);
    }
  }
  if (lc != rc) {
    return error_at(WbemCode::kTypeMismatch, "cannot compare " + describe_value(l) + " with " + describe_value(r),
                    e.pos);
  }
  const Domain domain = domain_of(lc);
  if (domain == Domain::kBoolean && is_ordering(e.op)) {
    return error_at(WbemCode::kInvalidOperator, "ordering operators do not apply to " + describe_value(l), e.pos);
  }
  // Both folded: decided now. A property against a folded call: an ordinary comparison, which SQL can take.
  if (l.kind == ValueExpr::Kind::kLiteral && r.kind == ValueExpr::Kind::kLiteral) {
    return constant(compare_scalars(domain, e.op, scalar_of(l.literal), scalar_of(r.literal)));
  }
  const bool l_prop = l.kind == ValueExpr::Kind::kProperty && r.kind == ValueExpr::Kind::kLiteral;
  const bool r_prop = r.kind == ValueExpr::Kind::kProperty && l.kind == ValueExpr::Kind::kLiteral;
  Condition c;
  c.domain = domain;
  if (l_prop || r_prop) {
    c.kind = ConditionKind::kCompare;
    c.op = l_prop ? e.op : mirror(e.op);
    c.lhs = (l_prop ? l : r).property;
    c.rhs.kind = Operand::Kind::kLiteral;
    c.rhs.literal = (l_prop ? r : l).literal;
    return c;
  }
  c.kind = ConditionKind::kValueCompare;
  c.op = e.op;
  c.operands.push_back(std::move(l));
  c.operands.push_back(std::move(r));
  return c;
}

Result<Condition> Binder::bind_value_like(const ast::Expr& e, const Scope& scope) const {
  PKG_TRY(check_functions_allowed(e, scope));
  PKG_ASSIGN_OR_RETURN(ValueExpr v, bind_value(e.lhs, scope));
  if (category_of(v.type) != Category::kString) {
    return error_at(WbemCode::kInvalidOperator, "LIKE applies to strings, not to " + describe_value(v), e.pos);
  }
  const auto& pattern = std::get<ast::Literal>(e.rhs);
  auto compiled = LikePattern::compile(std::get<std::string>(pattern.value));
  if (!compiled.ok()) return error_at(compiled.error().code, compiled.error().message, pattern.pos);
  if (v.kind == ValueExpr::Kind::kLiteral) {
    if (v.literal.is_null()) return constant(Truth::kUnknown);
    return constant(truth(compiled->matches(v.literal.as_string()) != e.negated));
  }
  Condition c;
  c.kind = ConditionKind::kValueLike;
  c.negated = e.negated;
  c.pattern = std::move(compiled).value();
  c.operands.push_back(std::move(v));
  return c;
}

// f(x) IN (a, b) is f(x) = a OR f(x) = b, each value converted to f's type; NOT IN negates it.
Result<Condition> Binder::bind_value_in(const ast::Expr& e, const Scope& scope) const {
  PKG_TRY(check_functions_allowed(e, scope));
  Condition any;
  any.kind = ConditionKind::kOr;
  for (const ast::Literal& lit : e.list) {
    ast::Expr eq;
    eq.kind = ast::ExprKind::kCompare;
    eq.op = ast::CompareOp::kEq;
    eq.pos = e.pos;
    eq.lhs = e.lhs;
    eq.rhs = lit;
    PKG_ASSIGN_OR_RETURN(Condition c, bind_value_compare(eq, scope));
    any.children.push_back(std::move(c));
  }
  Condition result = any.children.size() == 1 ? std::move(any.children.front()) : std::move(any);
  return e.negated ? negate(std::move(result)) : result;
}

}  // namespace pkgcast::wql
