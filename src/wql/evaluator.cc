// The evaluator: a bound condition over an instance, in SQL's three-valued logic.
//
// Hot path: no allocation (except reading __PATH/__RELPATH, once per object and evaluation, and computing functions),
// no name lookup, no virtual call. Property values are read by index and viewed as Scalars; recursion depth is bounded
// by kMaxNestingDepth through the parser.
#include <algorithm>

#include "wql/limits.h"

#include "wql/functions.h"
#include "wql/scalar.h"
#include "wql/system_props.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

// The objects a condition can read: one per class of FROM (the instance itself for a plain query, each joined
// class's for a join), then an event's TargetInstance and PreviousInstance. `typed` says whether the object's class
// is (derived from) the class its properties were bound against, so that bound indices are valid for it.
constexpr std::size_t kSlots = kMaxJoinedClasses + 2;
struct Context {
  const cim::Instance* object[kSlots] = {};
  bool typed[kSlots] = {};
  // Each object's __PATH and __RELPATH, built at most once per evaluation: a condition may read them a thousand
  // times (`TargetInstance.__PATH IN (...)` is a disjunction of comparisons), on the event engine's one thread.
  mutable std::string paths[kSlots][2];
  mutable bool have_path[kSlots][2] = {};
};

constexpr std::size_t slot(Source s, std::size_t table = 0) {
  return s == Source::kSelf ? table : kMaxJoinedClasses + static_cast<std::size_t>(s) - 1;
}
constexpr std::size_t slot(const PropertyRef& ref) { return slot(ref.source, ref.table); }

const cim::Instance* embedded(const cim::Instance& event, std::optional<std::size_t> index) {
  if (!index || *index >= event.class_def().properties().size()) return nullptr;
  const cim::Value& v = event.get(*index);
  if (v.is_null() || v.is_array() || v.type().base != cim::CimType::kObject || !v.object_ptr()) return nullptr;
  return v.object_ptr().get();
}

Context event_context(const BoundQuery& q, const cim::Instance& event) {
  Context ctx;
  ctx.object[slot(Source::kSelf)] = &event;
  ctx.typed[slot(Source::kSelf)] = true;
  const cim::ClassDef& target = *q.target_class();
  const cim::Instance* t = embedded(event, q.target_index());
  const cim::Instance* p = embedded(event, q.previous_index());
  ctx.object[slot(Source::kTargetInstance)] = t;
  ctx.typed[slot(Source::kTargetInstance)] = t != nullptr && t->class_def().is_a(target);
  ctx.object[slot(Source::kPreviousInstance)] = p;
  ctx.typed[slot(Source::kPreviousInstance)] = p != nullptr && p->class_def().is_a(target);
  return ctx;
}

Scalar fetch(const PropertyRef& ref, const Context& ctx, std::string& scratch) {
  const std::size_t s = slot(ref);
  const cim::Instance* obj = ctx.object[s];
  if (obj == nullptr) return Scalar::null();
  if (ref.system == SystemProperty::kPath || ref.system == SystemProperty::kRelPath) {
    const std::size_t k = ref.system == SystemProperty::kPath ? 0 : 1;
    if (!ctx.have_path[s][k]) {
      ctx.paths[s][k] = k == 0 ? obj->path() : obj->relpath();
      ctx.have_path[s][k] = true;
    }
    return Scalar::string(ctx.paths[s][k]);
  }
  if (ref.system != SystemProperty::kNone) return system_scalar(ref.system, *obj, scratch);
  if (!ctx.typed[s]) return Scalar::null();
  return scalar_of(obj->get(ref.index));
}

bool is_null(const PropertyRef& ref, const Context& ctx) {
  const std::size_t s = slot(ref);
  const cim::Instance* obj = ctx.object[s];
  if (obj == nullptr) return true;
  if (ref.system != SystemProperty::kNone) {
    std::string scratch;
    return system_scalar(ref.system, *obj, scratch).kind == Scalar::Kind::kNull;
  }
  return !ctx.typed[s] || obj->get(ref.index).is_null();
}

// TRUE when an element equals one of the values; UNKNOWN when the array is NULL (or unreadable); else FALSE.
// A NULL element matches nothing, as `x = NULL` would not.
Truth array_in(const Condition& c, const Context& ctx) {
  const std::size_t s = slot(c.lhs);
  const cim::Instance* obj = ctx.object[s];
  if (obj == nullptr || !ctx.typed[s]) return Truth::kUnknown;
  const cim::Value& v = obj->get(c.lhs.index);
  if (!v.is_array()) return Truth::kUnknown;
  for (const cim::Value& element : v.as_array()) {
    const Scalar a = scalar_of(element);
    for (const cim::Value& value : c.values) {
      if (compare_scalars(c.domain, ast::CompareOp::kEq, a, scalar_of(value)) == Truth::kTrue) return Truth::kTrue;
    }
  }
  return Truth::kFalse;
}

// A computed value (functions): owning, since UPPER and SUBSTRING make new strings. Only data queries reach here,
// so the value's object is the instance itself.
cim::Value value_of(const ValueExpr& v, const Context& ctx) {
  switch (v.kind) {
    case ValueExpr::Kind::kLiteral: return v.literal;
    case ValueExpr::Kind::kProperty: {
      const std::size_t s = slot(v.property);
      const cim::Instance* obj = ctx.object[s];
      if (obj == nullptr || !ctx.typed[s]) return cim::Value();
      return obj->get(v.property.index);
    }
    case ValueExpr::Kind::kCall: {
      std::vector<cim::Value> args;
      args.reserve(v.args.size());
      for (const ValueExpr& a : v.args) args.push_back(value_of(a, ctx));
      return apply_function(v.function, static_cast<DatePart>(v.datepart), args);
    }
  }
  return cim::Value();
}

// IN (SELECT ...): a binary search of the subquery's sorted values. SQL's answers: FALSE for an empty answer
// whatever the left side, UNKNOWN for a NULL left side, and UNKNOWN instead of FALSE when the answer held a NULL.
Truth subquery_in(const Condition& c, const Context& ctx) {
  if (c.resolved == nullptr) return Truth::kUnknown;
  const SubqueryValues& answer = *c.resolved;
  if (answer.sorted.empty() && !answer.has_null) return Truth::kFalse;
  auto found = [&](const Scalar& a) {
    if (a.kind == Scalar::Kind::kNull || a.kind == Scalar::Kind::kOther) return false;
    auto it = std::lower_bound(answer.sorted.begin(), answer.sorted.end(), a,
                               [&](const cim::Value& v, const Scalar& x) {
                                 return order_scalars(c.domain, scalar_of(v), x) < 0;
                               });
    return it != answer.sorted.end() && compare_scalars(c.domain, ast::CompareOp::kEq, scalar_of(*it), a) == Truth::kTrue;
  };
  const Truth missing = answer.has_null ? Truth::kUnknown : Truth::kFalse;
  const std::size_t s = slot(c.lhs);
  const cim::Instance* obj = ctx.object[s];
  if (c.lhs.type.array) {
    if (obj == nullptr || !ctx.typed[s]) return Truth::kUnknown;
    const cim::Value& v = obj->get(c.lhs.index);
    if (!v.is_array()) return Truth::kUnknown;
    for (const cim::Value& element : v.as_array()) {
      if (found(scalar_of(element))) return Truth::kTrue;
    }
    return missing;
  }
  std::string scratch;
  const Scalar a = fetch(c.lhs, ctx, scratch);
  if (a.kind == Scalar::Kind::kNull) return Truth::kUnknown;
  return found(a) ? Truth::kTrue : missing;
}

Truth not_of(Truth t) { return static_cast<Truth>(2 - static_cast<int>(t)); }

Truth eval(const Condition& c, const Context& ctx) {
  switch (c.kind) {
    case ConditionKind::kAnd: {
      Truth result = Truth::kTrue;
      for (const Condition& child : c.children) {
        const Truth t = eval(child, ctx);
        if (t == Truth::kFalse) return t;
        if (t < result) result = t;
      }
      return result;
    }
    case ConditionKind::kOr: {
      Truth result = Truth::kFalse;
      for (const Condition& child : c.children) {
        const Truth t = eval(child, ctx);
        if (t == Truth::kTrue) return t;
        if (t > result) result = t;
      }
      return result;
    }
    case ConditionKind::kNot: return not_of(eval(c.children.front(), ctx));
    case ConditionKind::kCompare: {
      std::string scratch_l;
      std::string scratch_r;
      const Scalar a = fetch(c.lhs, ctx, scratch_l);
      const Scalar b = c.rhs.kind == Operand::Kind::kLiteral ? scalar_of(c.rhs.literal)
                                                             : fetch(c.rhs.property, ctx, scratch_r);
      return compare_scalars(c.domain, c.op, a, b);
    }
    case ConditionKind::kLike: {
      std::string scratch;
      const Scalar a = fetch(c.lhs, ctx, scratch);
      if (a.kind != Scalar::Kind::kString) return Truth::kUnknown;
      return truth(c.pattern.matches(a.s) != c.negated);
    }
    case ConditionKind::kIsNull: return truth(is_null(c.lhs, ctx) != c.negated);
    case ConditionKind::kIsa: {
      const cim::Instance* obj = ctx.object[slot(c.object, c.table)];
      if (obj == nullptr) return Truth::kUnknown;
      return truth(obj->class_def().is_a(*c.cls));
    }
    case ConditionKind::kClassEq: {
      const cim::Instance* obj = ctx.object[slot(c.object, c.table)];
      if (obj == nullptr) return Truth::kUnknown;
      return truth(&obj->class_def() == c.cls || iequals(obj->class_name(), c.cls->name()));
    }
    case ConditionKind::kConstant: return c.constant;
    case ConditionKind::kArrayIn: return array_in(c, ctx);
    case ConditionKind::kSubqueryIn: return subquery_in(c, ctx);
    case ConditionKind::kValueCompare: {
      const cim::Value a = value_of(c.operands[0], ctx);
      const cim::Value b = value_of(c.operands[1], ctx);
      return compare_scalars(c.domain, c.op, scalar_of(a), scalar_of(b));
    }
    case ConditionKind::kValueLike: {
      const cim::Value a = value_of(c.operands[0], ctx);
      if (a.is_null() || a.is_array() || a.type().base != cim::CimType::kString) return Truth::kUnknown;
      return truth(c.pattern.matches(a.as_string()) != c.negated);
    }
  }
  return Truth::kUnknown;
}

Truth eval_where(const BoundQuery& q, const Context& ctx) {
  const Condition* where = q.where();
  return where == nullptr ? Truth::kTrue : eval(*where, ctx);
}

Context row_context(const BoundQuery& q, JoinedRow row) {
  Context ctx;
  for (std::size_t i = 0; i < row.size() && i < q.tables().size(); ++i) {
    ctx.object[i] = row[i];
    ctx.typed[i] = row[i] != nullptr && row[i]->class_def().is_a(*q.tables()[i].cls);
  }
  return ctx;
}

}  // namespace

Truth evaluate_on(const BoundQuery& q, std::size_t table, JoinedRow row) {
  const auto& on = q.tables()[table].on;
  return on ? eval(*on, row_context(q, row)) : Truth::kTrue;
}

bool matches_row(const BoundQuery& q, JoinedRow row) {
  return eval_where(q, row_context(q, row)) == Truth::kTrue;
}

bool matches(const BoundQuery& q, const cim::Instance& inst) {
  if (q.is_event()) return matches_event(q, inst);
  if (q.is_join() || !inst.class_def().is_a(q.from_class())) return false;
  Context ctx;
  ctx.object[slot(Source::kSelf)] = &inst;
  ctx.typed[slot(Source::kSelf)] = true;
  return eval_where(q, ctx) == Truth::kTrue;
}

bool matches_event(const BoundQuery& q, const cim::Instance& event) {
  if (!q.is_event() || !event.class_def().is_a(q.from_class())) return false;
  return eval_where(q, event_context(q, event)) == Truth::kTrue;
}

bool matches_aggregate(const BoundQuery& q, const cim::Instance& aggregate) {
  const auto& group = q.group();
  if (!group || !group->having) return true;
  Context ctx;
  ctx.object[slot(Source::kSelf)] = &aggregate;
  ctx.typed[slot(Source::kSelf)] = aggregate.class_def().is_a(*group->aggregate_class);
  return eval(*group->having, ctx) == Truth::kTrue;
}

Truth evaluate(const BoundQuery& q, const cim::Instance& inst) {
  if (q.is_event()) return eval_where(q, event_context(q, inst));
  Context ctx;
  ctx.object[slot(Source::kSelf)] = &inst;
  ctx.typed[slot(Source::kSelf)] = inst.class_def().is_a(q.from_class());
  return eval_where(q, ctx);
}

}  // namespace pkgcast::wql
