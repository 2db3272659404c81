// WHERE -> store::Predicate. The pushed predicate is a pre-filter: for every row on which the WQL condition is
// TRUE it must be TRUE too (it may admit more). Each rule below keeps that invariant:
// - AND pushes any subset of its children (dropping a conjunct only widens).
// - OR pushes only when every child pushes (a dropped disjunct could be the TRUE one).
// - NOT is pushed inward: over a comparison it flips the operator (in three-valued logic NOT (X < 5) is exactly
//   X >= 5: both are unknown when X is NULL), over IS NULL it flips the test, over AND/OR it applies De Morgan
//   (which three-valued logic keeps). NOT LIKE is not pushed: the store has no negated LIKE.
// - A comparison is pushed only when its literal is exactly representable in the property's type, since the store
//   compares a column with a value of the column's own type.
// - Array properties never compare TRUE in WQL and are not pushed; IS NULL is.
#include <cmath>

#include "provider/provider.h"

namespace pkgcast::provider {
namespace {

using store::Predicate;
using wql::ConditionKind;

std::optional<Predicate::Op> to_store_op(wql::ast::CompareOp op, bool negated) {
  using wql::ast::CompareOp;
  switch (op) {
    case CompareOp::kEq:
      return negated ? Predicate::Op::kNe : Predicate::Op::kEq;
    case CompareOp::kNe:
      return negated ? Predicate::Op::kEq : Predicate::Op::kNe;
    case CompareOp::kLt:
      return negated ? Predicate::Op::kGe : Predicate::Op::kLt;
    case CompareOp::kLe:
      return negated ? Predicate::Op::kGt : Predicate::Op::kLe;
    case CompareOp::kGt:
      return negated ? Predicate::Op::kLe : Predicate::Op::kGt;
    case CompareOp::kGe:
      return negated ? Predicate::Op::kLt : Predicate::Op::kGe;
  }
  return std::nullopt;
}

bool pushable_property(const wql::PropertyRef& ref) {
  return ref.source == wql::Source::kSelf && ref.system == wql::SystemProperty::kNone && ref.def != nullptr &&
         !ref.type.array;
}

// The literal as a value of the property's integer type, when it is one exactly.
std::optional<cim::Value> integer_literal(const cim::Value& lit, cim::CimType target) {
  if (lit.is_null() || lit.is_array()) return std::nullopt;
  const cim::CimType from = lit.type().base;
  if (cim::is_unsigned_integer(from)) {
    const std::uint64_t v = lit.as_uint();
    if (v > cim::integer_max(target)) return std::nullopt;
    if (cim::is_unsigned_integer(target)) return cim::Value::uint(target, v);
    return cim::Value::sint(target, static_cast<std::int64_t>(v));
  }
  if (cim::is_signed_integer(from)) {
    const std::int64_t v = lit.as_sint();
    if (v < cim::integer_min(target)) return std::nullopt;
    if (v > 0 && static_cast<std::uint64_t>(v) > cim::integer_max(target)) return std::nullopt;
    if (cim::is_unsigned_integer(target)) return cim::Value::uint(target, static_cast<std::uint64_t>(v));
    return cim::Value::sint(target, v);
  }
  if (cim::is_real(from)) {
    const double d = lit.as_real();
    // Only integral reals well inside the 2^53 exact range; anything else stays in memory.
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) return std::nullopt;
    const auto v = static_cast<std::int64_t>(d);
    return integer_literal(cim::Value::sint(cim::CimType::kSint64, v), target);
  }
  return std::nullopt;
}

std::optional<cim::Value> store_value(const wql::Condition& c) {
  const cim::Value& lit = c.rhs.literal;
  if (lit.is_null() || lit.is_array()) return std::nullopt;
  const cim::CimType prop = c.lhs.type.base;
  switch (c.domain) {
    case wql::Domain::kString:
      if (prop != cim::CimType::kString || lit.type().base != cim::CimType::kString) return std::nullopt;
      return lit;
    case wql::Domain::kNumber:
      if (!cim::is_integer(prop)) return std::nullopt;
      return integer_literal(lit, prop);
    case wql::Domain::kDateTime:
      if (prop != cim::CimType::kDateTime || lit.type().base != cim::CimType::kDateTime) return std::nullopt;
      return lit;
    case wql::Domain::kBoolean:
      if (prop != cim::CimType::kBoolean || lit.type().base != cim::CimType::kBoolean) return std::nullopt;
      return lit;
  }
  return std::nullopt;
}

// ordered_strings: <, >... on strings may be pushed. exact: every node must translate exactly (no dropped conjunct,
// no widened pattern); exact_strings: string comparisons are exact in the backend.
struct Mode {
  bool ordered_strings = false;
  bool exact = false;
  bool exact_strings = false;
};

std::optional<Predicate> push(const wql::Condition& c, bool negated, const Mode& mode);

// A resolved IN (SELECT ...) over a scalar is an IN list of its values: equalities OR'd (NOT IN: inequalities
// AND'd, or nothing at all when the answer held a NULL). Only small answers are written into SQL.
constexpr std::size_t kMaxPushedSubqueryValues = 32;

std::optional<Predicate> push_subquery_in(const wql::Condition& c, bool negated, const Mode& mode) {
  if (c.resolved == nullptr || !pushable_property(c.lhs)) return std::nullopt;
  const wql::SubqueryValues& answer = *c.resolved;
  if (answer.sorted.size() > kMaxPushedSubqueryValues) return std::nullopt;
  if (answer.sorted.empty() && !answer.has_null) {
    return negated ? Predicate::always() : Predicate::any_of({});  // x IN () is FALSE, x NOT IN () TRUE
  }
  if (negated && answer.has_null) return Predicate::any_of({});   // never TRUE
  std::vector<Predicate> parts;
  for (const cim::Value& v : answer.sorted) {
    wql::Condition eq;
    eq.kind = ConditionKind::kCompare;
    eq.op = wql::ast::CompareOp::kEq;
    eq.lhs = c.lhs;
    eq.domain = c.domain;
    eq.rhs.kind = wql::Operand::Kind::kLiteral;
    eq.rhs.literal = v;
    auto p = push(eq, negated, mode);
    if (!p) {
      if (negated && !mode.exact) continue;  // dropping a conjunct only widens
      return std::nullopt;
    }
    parts.push_back(std::move(*p));
  }
  if (parts.size() == 1) return std::move(parts.front());
  return negated ? Predicate::all_of(std::move(parts)) : Predicate::any_of(std::move(parts));
}

std::optional<Predicate> push(const wql::Condition& c, bool negated, const Mode& mode) {
  const bool ordered_strings = mode.ordered_strings;
  switch (c.kind) {
    case ConditionKind::kAnd:
    case ConditionKind::kOr: {
      // Under negation, De Morgan swaps the connective.
      const bool conjunction = (c.kind == ConditionKind::kAnd) != negated;
      std::vector<Predicate> parts;
      for (const auto& child : c.children) {
        auto p = push(child, negated, mode);
        if (p) {
          parts.push_back(std::move(*p));
        } else if (!conjunction || mode.exact) {
          return std::nullopt;
        }
      }
      if (parts.empty()) return std::nullopt;
      if (parts.size() == 1) return std::move(parts.front());
      return conjunction ? Predicate::all_of(std::move(parts)) : Predicate::any_of(std::move(parts));
    }
    case ConditionKind::kNot:
      return push(c.children.front(), !negated, mode);
    case ConditionKind::kCompare: {
      if (!pushable_property(c.lhs) || c.rhs.kind != wql::Operand::Kind::kLiteral) return std::nullopt;
      if (c.domain == wql::Domain::kBoolean && c.op != wql::ast::CompareOp::kEq && c.op != wql::ast::CompareOp::kNe) {
        return std::nullopt;
      }
      const auto op = to_store_op(c.op, negated);
      if (!op) return std::nullopt;
      const bool ordered = *op != Predicate::Op::kEq && *op != Predicate::Op::kNe;
      if (c.domain == wql::Domain::kString && ordered && !ordered_strings) return std::nullopt;
      if (c.domain == wql::Domain::kString && mode.exact && !mode.exact_strings) return std::nullopt;
      auto value = store_value(c);
      if (!value) return std::nullopt;
      return Predicate::compare(c.lhs.index, *op, std::move(*value));
    }
    case ConditionKind::kLike: {
      if (c.negated != negated) return std::nullopt;  // NOT LIKE
      if (!pushable_property(c.lhs) || c.lhs.type.base != cim::CimType::kString) return std::nullopt;
      // A [set] widens to '_'.
      if (mode.exact && (!mode.exact_strings || c.pattern.text().find('[') != std::string::npos)) return std::nullopt;
      return Predicate::like(c.lhs.index, like_to_store_pattern(c.pattern.text()));
    }
    case ConditionKind::kIsNull: {
      const auto& ref = c.lhs;
      if (ref.source != wql::Source::kSelf || ref.system != wql::SystemProperty::kNone || ref.def == nullptr) {
        return std::nullopt;
      }
      return Predicate::is_null(ref.index, c.negated != negated);
    }
    case ConditionKind::kConstant: {
      if (!mode.exact) return std::nullopt;
      // NOT UNKNOWN is UNKNOWN: only TRUE selects.
      const bool selects = negated ? c.constant == wql::Truth::kFalse : c.constant == wql::Truth::kTrue;
      return selects ? Predicate::always() : Predicate::any_of({});
    }
    case ConditionKind::kSubqueryIn: return push_subquery_in(c, negated, mode);
    case ConditionKind::kValueCompare:  // functions are computed in memory
    case ConditionKind::kValueLike:
    case ConditionKind::kIsa:
    case ConditionKind::kClassEq:
    case ConditionKind::kArrayIn:  // arrays are stored whole; an element test stays in memory
      return std::nullopt;
  }
  return std::nullopt;
}

std::size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace

std::string like_to_store_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 4);
  std::size_t i = 0;
  while (i < p.size()) {
    const char c = p[i];
    if (c == '[') {
      // Same reading as wql::LikePattern: an optional '^', then a first member that may itself be ']', then
      // anything up to the first ']'. The whole set matches exactly one character, as '_' does.
      ++i;
      if (i < p.size() && p[i] == '^') ++i;
      if (i < p.size()) i += utf8_length(static_cast<unsigned char>(p[i]));
      const auto close = p.find(']', std::min(i, p.size()));
      i = close == std::string_view::npos ? p.size() : close + 1;
      out += '_';
      continue;
    }
    if (c == '\\') out += '\\';
    out += c;
    ++i;
  }
  return out;
}

Predicate push_down(const wql::Condition& condition, bool ordered_strings) {
  auto p = push(condition, /*negated=*/false, Mode{.ordered_strings = ordered_strings});
  return p ? std::move(*p) : Predicate::always();
}

std::optional<Predicate> push_down_exact(const wql::Condition& condition, bool exact_strings) {
  return push(condition, /*negated=*/false,
              Mode{.ordered_strings = exact_strings, .exact = true, .exact_strings = exact_strings});
}

}  // namespace pkgcast::provider
