// Condition binding: property paths to indices, literals to cim::Values, and the type rules of docs/wql.md.
#include <string>
#include <utility>

#include "core/strings.h"
#include "wql/binder.h"
#include "wql/convert.h"
#include "wql/lexer.h"
#include "wql/scalar.h"
#include "wql/system_props.h"

namespace pkgcast::wql {
namespace bind_detail {

Category category_of(cim::Type t) {
  if (t.array) return Category::kArray;
  if (t.base == cim::CimType::kObject) return Category::kObject;
  if (t.base == cim::CimType::kString || t.base == cim::CimType::kReference) return Category::kString;
  if (t.base == cim::CimType::kDateTime) return Category::kDateTime;
  if (t.base == cim::CimType::kBoolean) return Category::kBoolean;
  return Category::kNumber;
}

Category category_of(const ast::Literal& lit) {
  if (lit.is_null()) return Category::kNull;
  if (lit.is_string()) return Category::kString;
  if (lit.is_boolean()) return Category::kBoolean;
  return Category::kNumber;
}

std::string describe(const ast::Literal& lit) {
  if (lit.is_string()) return "a string";
  if (lit.is_boolean()) return "a boolean";
  if (std::holds_alternative<double>(lit.value)) return "a real number";
  if (lit.is_null()) return "NULL";
  return "an integer";
}

Error error_at(WbemCode code, std::string what, ast::Position pos) {
  return make_error(code, std::move(what) + " at " + format_position(pos));
}

ast::CompareOp mirror(ast::CompareOp op) {
  switch (op) {
    case ast::CompareOp::kLt: return ast::CompareOp::kGt;
    case ast::CompareOp::kGt: return ast::CompareOp::kLt;
    case ast::CompareOp::kLe: return ast::CompareOp::kGe;
    case ast::CompareOp::kGe: return ast::CompareOp::kLe;
    default: return op;
  }
}

bool is_ordering(ast::CompareOp op) { return op != ast::CompareOp::kEq && op != ast::CompareOp::kNe; }

cim::Value literal_value(const ast::Literal& lit) {
  return std::visit(
      [](const auto& v) -> cim::Value {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return cim::Value::boolean(v);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return cim::Value::sint(cim::CimType::kSint64, v);
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
          return cim::Value::uint64(v);
        } else if constexpr (std::is_same_v<T, double>) {
          return cim::Value::real(cim::CimType::kReal64, v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return cim::Value::string(v);
        } else {
          return cim::Value();
        }
      },
      lit.value);
}

Condition constant(Truth t) {
  Condition c;
  c.kind = ConditionKind::kConstant;
  c.constant = t;
  return c;
}

Condition negate(Condition inner) {
  Condition c;
  c.kind = ConditionKind::kNot;
  c.children.push_back(std::move(inner));
  return c;
}

// Arrays and embedded objects take only IS [NOT] NULL (and ISA, for objects).
Status check_comparable(const PropertyRef& ref, ast::Position pos) {
  switch (category_of(ref.type)) {
    case Category::kArray:
      return error_at(WbemCode::kInvalidOperator,
                      "'" + ref.name + "' is an array; only " +
                          (ref.system == SystemProperty::kNone ? "= a value, IN and IS [NOT] NULL apply"
                                                               : "IS [NOT] NULL applies") +
                          " to it",
                      pos);
    case Category::kObject:
      return error_at(WbemCode::kInvalidOperator,
                      "'" + ref.name + "' is an embedded object; use ISA or IS [NOT] NULL", pos);
    default: return ok_status();
  }
}

Domain domain_of(Category c) {
  switch (c) {
    case Category::kNumber: return Domain::kNumber;
    case Category::kDateTime: return Domain::kDateTime;
    case Category::kBoolean: return Domain::kBoolean;
    default: return Domain::kString;
  }
}

// Two literals: checked as any comparison, then decided now.
Result<Condition> fold_literals(const ast::Expr& e, const ast::Literal& a, const ast::Literal& b) {
  const Category ca = category_of(a);
  const Category cb = category_of(b);
  if (ca == Category::kNull || cb == Category::kNull) return constant(Truth::kUnknown);
  if (ca != cb) {
    return error_at(WbemCode::kTypeMismatch, "cannot compare " + describe(a) + " with " + describe(b), e.pos);
  }
  if (ca == Category::kBoolean && is_ordering(e.op)) {
    return error_at(WbemCode::kInvalidOperator, "ordering operators do not apply to booleans", e.pos);
  }
  const cim::Value va = literal_value(a);
  const cim::Value vb = literal_value(b);
  return constant(compare_scalars(domain_of(ca), e.op, scalar_of(va), scalar_of(vb)));
}

}  // namespace bind_detail

using namespace bind_detail;

std::string describe(const PropertyRef& ref) { return cim::type_name(ref.type) + " '" + ref.name + "'"; }

Result<PropertyRef> Binder::bind_path(const ast::PropertyPath& path, const Scope& scope) const {
  if (path.parts.size() > 2) {
    return error_at(WbemCode::kInvalidQuery,
                    "a property path has at most two parts (TargetInstance.Name), not '" + path.dotted() + "'",
                    path.positions[2]);
  }
  if (scope.tables != nullptr) {
    PKG_ASSIGN_OR_RETURN(std::optional<PropertyRef> joined, bind_table_path(path, scope));
    if (joined) return std::move(*joined);
  }
  PropertyRef ref;
  const cim::ClassDef* cls = scope.self;
  std::size_t part = 0;
  std::string prefix;
  if (path.parts.size() == 2) {
    const auto idx = scope.self->find_property(path.parts[0]);
    if (!idx) return error_at(WbemCode::kInvalidProperty, "unknown property '" + path.parts[0] + "'", path.pos());
    const cim::PropertyDef& outer = scope.self->property(*idx);
    if (outer.type.base != cim::CimType::kObject || outer.type.array) {
      return error_at(WbemCode::kInvalidQuery, "'" + outer.name + "' is not an embedded object", path.pos());
    }
    if (scope.target != nullptr && iequals(outer.name, "TargetInstance")) {
      ref.source = Source::kTargetInstance;
    } else if (scope.target != nullptr && iequals(outer.name, "PreviousInstance")) {
      ref.source = Source::kPreviousInstance;
    } else {
      return error_at(WbemCode::kNotSupported,
                      "only TargetInstance and PreviousInstance properties can be read, not '" + path.dotted() + "'",
                      path.pos());
    }
    cls = scope.target;
    part = 1;
    prefix = outer.name + ".";
  }
  const std::string& name = path.parts[part];
  const ast::Position pos = path.positions[part];
  if (const auto idx = cls->find_property(name)) {
    ref.index = *idx;
    ref.def = &cls->property(*idx);
    ref.type = ref.def->type;
    ref.name = prefix + ref.def->name;
    return ref;
  }
  if (starts_with_icase(name, "__")) {
    const auto sys = find_system_property(name);
    if (!sys) return error_at(WbemCode::kInvalidProperty, "unknown system property '" + name + "'", pos);
    if (*sys == SystemProperty::kRevision && (ref.source != Source::kSelf || !cls->is_event_class())) {
      return error_at(WbemCode::kInvalidProperty, "__REVISION exists only on event objects", pos);
    }
    ref.system = *sys;
    ref.type = system_property_type(*sys);
    ref.name = prefix + std::string(system_property_name(*sys));
    return ref;
  }
  return error_at(WbemCode::kInvalidProperty, "unknown property '" + name + "'", pos);
}

Result<Condition> Binder::bind_expr(const ast::Expr& e, const Scope& scope) const {
  switch (e.kind) {
    case ast::ExprKind::kAnd:
    case ast::ExprKind::kOr: {
      Condition c;
      c.kind = e.kind == ast::ExprKind::kAnd ? ConditionKind::kAnd : ConditionKind::kOr;
      for (const auto& child : e.children) {
        PKG_ASSIGN_OR_RETURN(Condition bound, bind_expr(child, scope));
        // (a AND b) AND c is a AND b AND c: one level for the provider to walk.
        if (bound.kind == c.kind) {
          for (auto& grandchild : bound.children) c.children.push_back(std::move(grandchild));
        } else {
          c.children.push_back(std::move(bound));
        }
      }
      return c;
    }
    case ast::ExprKind::kNot: {
      PKG_ASSIGN_OR_RETURN(Condition inner, bind_expr(e.children.front(), scope));
      return negate(std::move(inner));
    }
    case ast::ExprKind::kCompare: return bind_compare(e, scope);
    case ast::ExprKind::kLike: return bind_like(e, scope);
    case ast::ExprKind::kIsNull: return bind_is_null(e, scope);
    case ast::ExprKind::kIsa: return bind_isa(e, scope);
    case ast::ExprKind::kIn: return bind_in(e, scope);
  }
  return make_error(WbemCode::kFailed, "unknown condition kind");
}

Result<Condition> Binder::bind_compare(const ast::Expr& e, const Scope& scope) const {
  if (std::holds_alternative<ast::CallBox>(e.lhs) || std::holds_alternative<ast::CallBox>(e.rhs)) {
    return bind_value_compare(e, scope);
  }
  const auto* left_lit = std::get_if<ast::Literal>(&e.lhs);
  const auto* right_lit = std::get_if<ast::Literal>(&e.rhs);
  if (left_lit != nullptr && right_lit != nullptr) return fold_literals(e, *left_lit, *right_lit);

  // Put the property on the left: `5 < X` is `X > 5`.
  const bool swap = left_lit != nullptr;
  const ast::Operand& prop_side = swap ? e.rhs : e.lhs;
  const ast::Operand& other_side = swap ? e.lhs : e.rhs;
  const ast::CompareOp op = swap ? mirror(e.op) : e.op;

  Condition c;
  c.kind = ConditionKind::kCompare;
  c.op = op;
  PKG_ASSIGN_OR_RETURN(c.lhs, bind_path(std::get<ast::PropertyPath>(prop_side), scope));
  if (const auto* lit = std::get_if<ast::Literal>(&other_side)) {
    // WMI reads `X = NULL` as `X IS NULL` and `X <> NULL` as `X IS NOT NULL` (scripts write `NetConnectionID !=
    // NULL`); an ordering operator with NULL is UNKNOWN.
    if (lit->is_null()) {
      if (is_ordering(op)) return constant(Truth::kUnknown);
      Condition is_null;
      is_null.kind = ConditionKind::kIsNull;
      is_null.negated = op == ast::CompareOp::kNe;
      is_null.lhs = std::move(c.lhs);
      return is_null;
    }
    // An array property equal to a value is TRUE when an element is (Configuration Manager's "IPAddresses =
    // '10.0.0.1'"): `X IN (value)`.
    if (c.lhs.type.array && c.lhs.system == SystemProperty::kNone && op == ast::CompareOp::kEq) {
      ast::Expr in;
      in.kind = ast::ExprKind::kIn;
      in.pos = e.pos;
      in.lhs = prop_side;
      in.list.push_back(*lit);
      return bind_in(in, scope);
    }
  }
  PKG_TRY(check_comparable(c.lhs, e.pos));
  const Category lc = category_of(c.lhs.type);

  if (const auto* lit = std::get_if<ast::Literal>(&other_side)) {
    if (c.lhs.system == SystemProperty::kClass && lit->is_string() && !is_ordering(op)) {
      return bind_class_eq(c.lhs, e, *lit);
    }
    c.rhs.kind = Operand::Kind::kLiteral;
    PKG_ASSIGN_OR_RETURN(c.rhs.literal, convert_literal(*lit, c.lhs, domain_of(lc)));
  } else {
    c.rhs.kind = Operand::Kind::kProperty;
    PKG_ASSIGN_OR_RETURN(c.rhs.property, bind_path(std::get<ast::PropertyPath>(other_side), scope));
    PKG_TRY(check_comparable(c.rhs.property, e.pos));
    if (category_of(c.rhs.property.type) != lc) {
      return error_at(WbemCode::kTypeMismatch,
                      "cannot compare " + describe(c.lhs) + " with " + describe(c.rhs.property), e.pos);
    }
  }
  c.domain = domain_of(lc);
  if (c.domain == Domain::kBoolean && is_ordering(op)) {
    return error_at(WbemCode::kInvalidOperator, "ordering operators do not apply to " + describe(c.lhs), e.pos);
  }
  return c;
}

Result<Condition> Binder::bind_class_eq(const PropertyRef& lhs, const ast::Expr& e, const ast::Literal& name) const {
  Condition c;
  c.kind = ConditionKind::kClassEq;
  c.object = lhs.source;
  c.table = lhs.table;
  PKG_ASSIGN_OR_RETURN(c.cls, resolve_class(std::get<std::string>(name.value), name.pos));
  if (e.op == ast::CompareOp::kNe) return negate(std::move(c));
  return c;
}

Result<PropertyRef> Binder::bind_property_operand(const ast::Operand& op, const Scope& scope, std::string_view what,
                                                  ast::Position pos) const {
  const auto* path = std::get_if<ast::PropertyPath>(&op);
  if (path == nullptr) {
    return error_at(WbemCode::kInvalidQuery, std::string(what) + " needs a property on its left", pos);
  }
  return bind_path(*path, scope);
}

Result<Condition> Binder::bind_like(const ast::Expr& e, const Scope& scope) const {
  if (std::holds_alternative<ast::CallBox>(e.lhs)) return bind_value_like(e, scope);
  Condition c;
  c.kind = ConditionKind::kLike;
  c.negated = e.negated;
  PKG_ASSIGN_OR_RETURN(c.lhs, bind_property_operand(e.lhs, scope, "LIKE", e.pos));
  if (category_of(c.lhs.type) != Category::kString) {
    return error_at(WbemCode::kInvalidOperator, "LIKE applies to strings, not to " + describe(c.lhs), e.pos);
  }
  const auto& pattern = std::get<ast::Literal>(e.rhs);
  auto compiled = LikePattern::compile(std::get<std::string>(pattern.value));
  if (!compiled.ok()) return error_at(compiled.error().code, compiled.error().message, pattern.pos);
  c.pattern = std::move(compiled).value();
  return c;
}

Result<Condition> Binder::bind_is_null(const ast::Expr& e, const Scope& scope) const {
  Condition c;
  c.kind = ConditionKind::kIsNull;
  c.negated = e.negated;
  PKG_ASSIGN_OR_RETURN(c.lhs, bind_property_operand(e.lhs, scope, "IS NULL", e.pos));
  return c;
}

Result<Condition> Binder::bind_isa(const ast::Expr& e, const Scope& scope) const {
  Condition c;
  c.kind = ConditionKind::kIsa;
  PKG_ASSIGN_OR_RETURN(PropertyRef lhs, bind_property_operand(e.lhs, scope, "ISA", e.pos));
  if (lhs.type.base != cim::CimType::kObject || lhs.type.array || lhs.source != Source::kSelf) {
    return error_at(WbemCode::kInvalidOperator,
                    "ISA applies to TargetInstance or PreviousInstance, not to " + describe(lhs), e.pos);
  }
  if (scope.target != nullptr && iequals(lhs.name, "TargetInstance")) {
    c.object = Source::kTargetInstance;
  } else if (scope.target != nullptr && iequals(lhs.name, "PreviousInstance")) {
    c.object = Source::kPreviousInstance;
  } else {
    return error_at(WbemCode::kNotSupported, "ISA applies to TargetInstance or PreviousInstance, not to '" +
                                                 lhs.name + "'", e.pos);
  }
  const auto& name = std::get<ast::Literal>(e.rhs);
  PKG_ASSIGN_OR_RETURN(c.cls, resolve_class(std::get<std::string>(name.value), name.pos));
  return c;
}

Result<Condition> Binder::bind_in(const ast::Expr& e, const Scope& scope) const {
  if (!e.subquery.empty()) return bind_subquery_in(e, scope);
  if (std::holds_alternative<ast::CallBox>(e.lhs)) return bind_value_in(e, scope);
  PKG_ASSIGN_OR_RETURN(PropertyRef lhs, bind_property_operand(e.lhs, scope, "IN", e.pos));
  const bool array = lhs.type.array;
  const cim::Type element{lhs.type.base, false};
  if (category_of(element) == Category::kObject || (array && lhs.system != SystemProperty::kNone)) {
    return error_at(WbemCode::kInvalidOperator, "IN does not apply to " + describe(lhs), e.pos);
  }
  const Domain domain = domain_of(category_of(element));
  PropertyRef element_ref = lhs;  // for conversion errors: "does not convert to string 'Names'"
  element_ref.type = element;
  bool has_null = false;
  std::vector<cim::Value> values;
  for (const ast::Literal& lit : e.list) {
    if (lit.is_null()) {
      has_null = true;
      continue;
    }
    PKG_ASSIGN_OR_RETURN(cim::Value v, convert_literal(lit, element_ref, domain));
    values.push_back(std::move(v));
  }
  // x IN (a, NULL) is x = a OR x = NULL: TRUE, or else UNKNOWN (never FALSE), as in SQL.
  Condition any;
  any.kind = ConditionKind::kOr;
  if (array) {
    if (!values.empty()) {
      Condition c;
      c.kind = ConditionKind::kArrayIn;
      c.lhs = lhs;
      c.domain = domain;
      c.values = std::move(values);
      any.children.push_back(std::move(c));
    }
  } else {
    for (cim::Value& v : values) {
      Condition c;
      c.kind = ConditionKind::kCompare;
      c.op = ast::CompareOp::kEq;
      c.lhs = lhs;
      c.domain = domain;
      c.rhs.kind = Operand::Kind::kLiteral;
      c.rhs.literal = std::move(v);
      any.children.push_back(std::move(c));
    }
  }
  if (has_null) any.children.push_back(constant(Truth::kUnknown));
  Condition result = any.children.size() == 1 ? std::move(any.children.front()) : std::move(any);
  return e.negated ? negate(std::move(result)) : result;
}

}  // namespace pkgcast::wql
