// Query-level binding: the FROM class, the event target class, SELECT, WITHIN and GROUP.
#include "wql/binder.h"

#include <chrono>
#include <string>
#include <utility>

#include "core/strings.h"
#include "wql/lexer.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

constexpr std::string_view kOperationEvent = "__InstanceOperationEvent";
constexpr std::string_view kAggregateEvent = "__AggregateEvent";
constexpr std::string_view kClassEvent = "__ClassOperationEvent";
constexpr std::string_view kNamespaceEvent = "__NamespaceOperationEvent";

Error error_at(WbemCode code, std::string what, ast::Position pos) {
  return make_error(code, std::move(what) + " at " + format_position(pos));
}

bool is_path(const ast::Operand& op, std::string_view a, std::string_view b = {}) {
  const auto* path = std::get_if<ast::PropertyPath>(&op);
  if (path == nullptr || path->parts.size() != (b.empty() ? 1u : 2u)) return false;
  return iequals(path->parts[0], a) && (b.empty() || iequals(path->parts[1], b));
}

const ast::Literal* string_literal(const ast::Operand& op) {
  const auto* lit = std::get_if<ast::Literal>(&op);
  return lit != nullptr && lit->is_string() ? lit : nullptr;
}

// If e names the target class (`TargetInstance ISA 'C'`, `TargetInstance.__CLASS = 'C'`, or the latter mirrored),
// returns the literal naming it and sets *exact for the __CLASS form.
const ast::Literal* target_naming(const ast::Expr& e, bool* exact) {
  if (e.kind == ast::ExprKind::kIsa && is_path(e.lhs, "TargetInstance")) {
    *exact = false;
    return string_literal(e.rhs);
  }
  if (e.kind == ast::ExprKind::kCompare && e.op == ast::CompareOp::kEq) {
    *exact = true;
    if (is_path(e.lhs, "TargetInstance", "__CLASS")) return string_literal(e.rhs);
    if (is_path(e.rhs, "TargetInstance", "__CLASS")) return string_literal(e.lhs);
  }
  return nullptr;
}

// The first TargetInstance ISA / TargetInstance.__CLASS = anywhere in `e`, under OR or NOT included.
const ast::Literal* nested_target_naming(const ast::Expr& e) {
  bool exact = false;
  if (const ast::Literal* name = target_naming(e, &exact)) return name;
  for (const auto& child : e.children) {
    if (const ast::Literal* name = nested_target_naming(child)) return name;
  }
  return nullptr;
}

void collect_classes(const Condition& c, std::vector<std::string>& out) {
  auto add = [&out](const std::string& name) {
    bool seen = false;
    for (const auto& n : out) seen = seen || iequals(n, name);
    if (!seen) out.push_back(name);
  };
  if ((c.kind == ConditionKind::kIsa || c.kind == ConditionKind::kClassEq) && c.cls != nullptr) add(c.cls->name());
  if (c.kind == ConditionKind::kSubqueryIn && c.subquery != nullptr) {
    for (const auto& name : bound_classes(*c.subquery)) add(name);
  }
  for (const auto& child : c.children) collect_classes(child, out);
}

}  // namespace

Result<const cim::ClassDef*> Binder::resolve_class(std::string_view name, ast::Position pos) const {
  const cim::ClassDef* cls = registry_.find(name);
  if (cls == nullptr && iequals(name, "meta_class")) {
    // WMI's schema queries; the classes are listed in docs/classes-reference.md (and __CLASS, __DERIVATION answer
    // for each instance).
    return error_at(WbemCode::kNotSupported, "schema queries (meta_class) are not supported", pos);
  }
  if (cls == nullptr) return error_at(WbemCode::kInvalidClass, "unknown class '" + std::string(name) + "'", pos);
  return cls;
}

Result<BoundQuery> Binder::bind() {
  BoundQuery out;
  out.query_ = query_;
  PKG_ASSIGN_OR_RETURN(out.from_class_, resolve_class(query_.from_class, query_.from_pos));
  const cim::ClassDef& from = *out.from_class_;
  if (from.is_event_class()) {
    if (!from.is_a(kOperationEvent)) {
      constexpr std::string_view kDelivered = "(it delivers __InstanceOperationEvent and its subclasses)";
      if (from.is_a(kClassEvent) || from.is_a(kNamespaceEvent)) {
        const bool class_event = from.is_a(kClassEvent);
        return error_at(WbemCode::kNotSupported,
                        "'" + from.name() + "' is a " +
                            (class_event ? "class event; pkgcast's classes change only with its version"
                                         : "namespace event; pkgcast serves one namespace per site, made with the "
                                           "site") +
                            ", so it delivers none " + std::string(kDelivered),
                        query_.from_pos);
      }
      return error_at(WbemCode::kNotSupported,
                      "pkgcast delivers only __InstanceOperationEvent and its subclasses, not '" + from.name() + "'",
                      query_.from_pos);
    }
    if (!query_.joins.empty() || !query_.from_alias.empty()) {
      return error_at(WbemCode::kInvalidQuery,
                      std::string(query_.joins.empty() ? "aliases" : "joins") +
                          " apply to data queries, not to event queries",
                      query_.joins.empty() ? query_.from_alias_pos : query_.joins.front().pos);
    }
    PKG_TRY(bind_event_target(out));
  } else if (query_.within || query_.group) {
    const ast::Position pos = query_.within ? query_.within_pos : query_.group->pos;
    return error_at(WbemCode::kNotEventClass,
                    std::string(query_.within ? "WITHIN" : "GROUP") + " needs an event class; '" + from.name() +
                        "' is not one",
                    pos);
  }
  if (!out.is_event()) PKG_TRY(bind_tables(out));
  const Scope scope{out.from_class_, out.target_class_, out.is_event() ? nullptr : &out.tables_,
                    out.tables_.size()};
  PKG_TRY(bind_select(out));
  if (out.is_join()) PKG_TRY(bind_joins(out));
  out.within_ = query_.within;
  if (query_.where) {
    PKG_ASSIGN_OR_RETURN(out.where_, bind_expr(*query_.where, scope));
  }
  if (out.is_join()) find_join_keys(out);
  if (query_.group) PKG_TRY(bind_group(out, scope));
  if (!query_.order_by.empty()) PKG_TRY(bind_order_by(out, scope));
  PKG_TRY(bind_aggregate(out));
  return out;
}

// ORDER BY sorts data queries in SQL (store::ScanOptions::order), so it names declared scalar properties only.
Status Binder::bind_order_by(BoundQuery& out, const Scope& scope) {
  if (out.is_event()) {
    return error_at(WbemCode::kInvalidQuery, "ORDER BY applies to data queries, not to event queries",
                    query_.order_pos);
  }
  for (const ast::OrderTerm& term : query_.order_by) {
    PKG_ASSIGN_OR_RETURN(PropertyRef ref, bind_path(term.path, scope));
    if (ref.system != SystemProperty::kNone) {
      return error_at(WbemCode::kNotSupported, "ORDER BY names declared properties, not " + ref.name,
                      term.path.pos());
    }
    if (ref.type.array || ref.type.base == cim::CimType::kObject) {
      return error_at(WbemCode::kInvalidOperator, "ORDER BY cannot sort by " + describe(ref), term.path.pos());
    }
    out.order_by_.push_back(BoundOrder{std::move(ref), term.descending});
  }
  return ok_status();
}

// DISTINCT and COUNT(*) shape a data query's answer; events keep WMI's grammar. As SQL Server (where the SMS
// Provider runs them), an ordered DISTINCT sorts by selected properties only, and COUNT(*) has nothing to sort.
Status Binder::bind_aggregate(BoundQuery& out) {
  out.distinct_ = query_.distinct;
  out.count_ = query_.count;
  if (!query_.distinct && !query_.count) return ok_status();
  const char* what = query_.count ? "COUNT(*)" : "DISTINCT";
  if (out.is_event()) {
    return error_at(WbemCode::kInvalidQuery, std::string(what) + " applies to data queries, not to event queries",
                    query_.select_pos);
  }
  if (query_.distinct && out.is_join() && !out.answer_table()) {
    return error_at(WbemCode::kNotSupported,
                    "DISTINCT over a join compares the properties of one class; select from one class (P.* or "
                    "P.Name, ...)",
                    query_.select_pos);
  }
  if (query_.count && !query_.order_by.empty()) {
    return error_at(WbemCode::kInvalidQuery, "ORDER BY does not apply to COUNT(*)", query_.order_pos);
  }
  if (query_.distinct && !out.select_all_) {
    for (std::size_t i = 0; i < out.selected_.size(); ++i) {
      if (out.selected_[i].system != SystemProperty::kNone) {
        return error_at(WbemCode::kNotSupported, "DISTINCT compares declared properties, not " +
                                                     out.selected_[i].name, query_.select[i].pos());
      }
    }
    for (std::size_t i = 0; i < out.order_by_.size(); ++i) {
      bool selected = false;
      for (const auto& ref : out.selected_) selected = selected || ref.name == out.order_by_[i].property.name;
      if (!selected) {
        return error_at(WbemCode::kInvalidQuery,
                        "ORDER BY of a SELECT DISTINCT names selected properties only, not '" +
                            out.order_by_[i].property.name + "'",
                        query_.order_by[i].path.pos());
      }
    }
  }
  return ok_status();
}

// An event query must say which class it watches, in a conjunct reachable through AND from the top of WHERE, so
// that the engine can index subscriptions by class and TargetInstance.X can be checked against that class.
Status Binder::bind_event_target(BoundQuery& out) {
  const cim::ClassDef& from = *out.from_class_;
  out.target_index_ = from.find_property("TargetInstance");
  out.previous_index_ = from.find_property("PreviousInstance");
  std::vector<const ast::Expr*> conjuncts;
  if (query_.where) {
    if (query_.where->kind == ast::ExprKind::kAnd) {
      for (const auto& child : query_.where->children) conjuncts.push_back(&child);
    } else {
      conjuncts.push_back(&*query_.where);
    }
  }
  for (const ast::Expr* e : conjuncts) {
    bool exact = false;
    const ast::Literal* name = target_naming(*e, &exact);
    if (name == nullptr) continue;
    const auto& text = std::get<std::string>(name->value);
    PKG_ASSIGN_OR_RETURN(const cim::ClassDef* cls, resolve_class(text, name->pos));
    if (out.target_class_ == nullptr || cls->is_a(*out.target_class_)) {
      out.target_exact_ = exact || (out.target_exact_ && cls == out.target_class_);
      out.target_class_ = cls;
    } else if (out.target_class_->is_a(*cls)) {
      // The narrower class already named wins.
    } else {
      return error_at(WbemCode::kInvalidQuery,
                      "TargetInstance cannot be both '" + out.target_class_->name() + "' and '" + cls->name() + "'",
                      name->pos);
    }
  }
  if (out.target_class_ == nullptr) {
    constexpr std::string_view kMustName =
        "an event query must name its class with TargetInstance ISA 'Class' or TargetInstance.__CLASS = 'Class'";
    if (const ast::Literal* nested = query_.where ? nested_target_naming(*query_.where) : nullptr) {
      // Typically `TargetInstance ISA 'A' OR TargetInstance ISA 'B'`: say why it does not count, and what to do.
      return error_at(WbemCode::kInvalidQuery,
                      std::string(kMustName) + " that holds for every event it delivers: '" +
                          std::get<std::string>(nested->value) +
                          "' is named under OR or NOT; an event query watches one class (and its subclasses), so "
                          "watch each class with a query of its own",
                      nested->pos);
    }
    return error_at(WbemCode::kInvalidQuery, std::string(kMustName), query_.from_pos);
  }
  const cim::ClassDef& target = *out.target_class_;
  if (target.is_event_class()) {
    return error_at(WbemCode::kInvalidQuery, "TargetInstance cannot be an event class ('" + target.name() + "')",
                    query_.from_pos);
  }
  // A root with subclasses (SMS_BaseClass) stands for every class: refuse it as WMI refuses unnamed targets.
  if (target.superclass() == nullptr && registry_.subclasses_of(target).size() > 1) {
    return error_at(WbemCode::kInvalidQuery,
                    "'" + target.name() + "' would watch every class; name a more specific class", query_.from_pos);
  }
  return ok_status();
}

Status Binder::bind_select(BoundQuery& out) {
  out.select_all_ = query_.select.empty();
  if (!out.tables_.empty()) return bind_join_select(out);
  const Scope scope{out.from_class_, nullptr, nullptr, 0};
  for (const auto& path : query_.select) {
    if (path.parts.size() > 1) {
      return error_at(WbemCode::kInvalidQuery,
                      "SELECT lists properties of the FROM class, not '" + path.dotted() + "'", path.pos());
    }
    PKG_ASSIGN_OR_RETURN(auto ref, bind_path(path, scope));
    out.selected_.push_back(std::move(ref));
  }
  return ok_status();
}

Status Binder::bind_group(BoundQuery& out, const Scope& scope) {
  const ast::GroupClause& g = *query_.group;
  BoundGroup group;
  group.within = g.within;
  for (const auto& path : g.by) {
    PKG_ASSIGN_OR_RETURN(auto ref, bind_path(path, scope));
    // As WMI: events group by values, never by a whole embedded object (BY TargetInstance).
    if (ref.system == SystemProperty::kNone && ref.type.base == cim::CimType::kObject) {
      return error_at(WbemCode::kAggregatingByObject,
                      "GROUP BY names properties, not the embedded object '" + ref.name + "'", path.pos());
    }
    group.by.push_back(std::move(ref));
  }
  PKG_ASSIGN_OR_RETURN(group.aggregate_class, resolve_class(kAggregateEvent, g.pos));
  if (g.having) {
    const Scope aggregate{group.aggregate_class, nullptr, nullptr, 0};
    PKG_ASSIGN_OR_RETURN(group.having, bind_expr(*g.having, aggregate));
  }
  out.group_ = std::move(group);
  return ok_status();
}

Result<BoundQuery> bind(const ast::Query& q, const cim::ClassRegistry& registry, const BindOptions& options) {
  const cim::DateTime now =
      options.now ? *options.now
                  : cim::DateTime::from_unix_micros(std::chrono::duration_cast<std::chrono::microseconds>(
                                                        std::chrono::system_clock::now().time_since_epoch())
                                                        .count());
  return Binder(q, registry, now).bind();
}

Result<BoundQuery> compile(std::string_view text, const cim::ClassRegistry& registry, const BindOptions& options) {
  PKG_ASSIGN_OR_RETURN(auto q, parse(text));
  return bind(q, registry, options);
}

std::vector<std::string> bound_classes(const BoundQuery& q) {
  std::vector<std::string> out{q.from_class().name()};
  if (q.target_class() != nullptr && !iequals(q.target_class()->name(), out.front())) {
    out.push_back(q.target_class()->name());
  }
  for (std::size_t i = 1; i < q.tables().size(); ++i) {
    bool seen = false;
    for (const auto& n : out) seen = seen || iequals(n, q.tables()[i].cls->name());
    if (!seen) out.push_back(q.tables()[i].cls->name());
  }
  for (const auto& table : q.tables()) {
    if (table.on) collect_classes(*table.on, out);
  }
  if (q.where() != nullptr) collect_classes(*q.where(), out);
  return out;
}

}  // namespace pkgcast::wql
