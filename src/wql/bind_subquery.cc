// IN (SELECT p FROM C WHERE ...): binding the subquery as a data query of its own, and resolving it with the
// answer its caller (the provider, over the store) computes. The wql layer never reads data, so the subquery's
// rows come from outside; what stays here is the typing and the value set the evaluator searches.
#include <algorithm>
#include <string>
#include <utility>

#include "wql/binder.h"
#include "wql/scalar.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

using namespace bind_detail;

bool has_unresolved(const Condition& c) {
  if (c.kind == ConditionKind::kSubqueryIn && c.resolved == nullptr) return true;
  for (const auto& child : c.children) {
    if (has_unresolved(child)) return true;
  }
  return false;
}

}  // namespace

Result<Condition> Binder::bind_subquery_in(const ast::Expr& e, const Scope& scope) const {
  if (scope.target != nullptr || scope.self->is_event_class()) {
    return error_at(WbemCode::kInvalidQuery, "IN (SELECT ...) applies to data queries, not to event queries", e.pos);
  }
  if (std::holds_alternative<ast::CallBox>(e.lhs)) {
    return error_at(WbemCode::kInvalidQuery, "IN (SELECT ...) needs a property on its left", e.pos);
  }
  PKG_ASSIGN_OR_RETURN(PropertyRef lhs, bind_property_operand(e.lhs, scope, "IN", e.pos));
  const cim::Type element{lhs.type.base, false};
  if (category_of(element) == Category::kObject || (lhs.type.array && lhs.system != SystemProperty::kNone)) {
    return error_at(WbemCode::kInvalidOperator, "IN does not apply to " + describe(lhs), e.pos);
  }
  const ast::Query& sq = e.subquery.front();
  if (!sq.joins.empty()) {
    return error_at(WbemCode::kNotSupported, "a subquery reads one class; joins are for the outer query",
                    sq.joins.front().pos);
  }
  PKG_ASSIGN_OR_RETURN(BoundQuery sub, Binder(sq, registry_, now_).bind());
  if (sub.is_event()) {
    return error_at(WbemCode::kInvalidQuery, "a subquery is a data query, not an event query", sq.from_pos);
  }
  if (sq.count) return error_at(WbemCode::kInvalidQuery, "a subquery selects one property, not COUNT(*)", sq.select_pos);
  if (sq.select.size() != 1) {
    return error_at(WbemCode::kInvalidQuery, "a subquery selects exactly one property",
                    sq.select.empty() ? sq.from_pos : sq.select[1].pos());
  }
  if (!sq.order_by.empty()) {
    return error_at(WbemCode::kInvalidQuery, "ORDER BY does not apply to a subquery", sq.order_pos);
  }
  const PropertyRef& selected = sub.selected().front();
  if (selected.system != SystemProperty::kNone) {
    return error_at(WbemCode::kNotSupported, "a subquery selects a declared property, not " + selected.name,
                    sq.select[0].pos());
  }
  const Category sc = category_of(selected.type);
  if (sc == Category::kArray || sc == Category::kObject) {
    return error_at(WbemCode::kInvalidOperator,
                    "a subquery selects a property with one value per instance, not " + describe(selected),
                    sq.select[0].pos());
  }
  if (category_of(element) != sc) {
    return error_at(WbemCode::kTypeMismatch,
                    "cannot compare " + describe(lhs) + " with the subquery's " + describe(selected), e.pos);
  }
  Condition c;
  c.kind = ConditionKind::kSubqueryIn;
  c.lhs = std::move(lhs);
  c.domain = domain_of(sc);
  c.subquery = std::make_shared<const BoundQuery>(std::move(sub));
  return e.negated ? negate(std::move(c)) : c;
}

// Walks a copy of the query, innermost subqueries first, asking the runner for each answer.
class SubqueryResolver {
 public:
  explicit SubqueryResolver(const SubqueryRunner& run) : run_(run) {}

  Result<BoundQuery> resolve(const BoundQuery& q) const {
    BoundQuery out = q;
    for (auto& table : out.tables_) {
      if (table.on) PKG_TRY(resolve(*table.on));
    }
    if (out.where_) PKG_TRY(resolve(*out.where_));
    return out;
  }

 private:
  Status resolve(Condition& c) const {
    for (auto& child : c.children) PKG_TRY(resolve(child));
    if (c.kind != ConditionKind::kSubqueryIn || c.resolved != nullptr) return ok_status();
    PKG_ASSIGN_OR_RETURN(BoundQuery sub, resolve(*c.subquery));
    PKG_ASSIGN_OR_RETURN(std::vector<cim::Value> values, run_(sub, sub.selected().front()));
    auto answer = std::make_shared<SubqueryValues>();
    for (auto& v : values) {
      if (v.is_null()) {
        answer->has_null = true;
      } else {
        answer->sorted.push_back(std::move(v));
      }
    }
    const Domain domain = c.domain;
    auto less = [domain](const cim::Value& a, const cim::Value& b) {
      return order_scalars(domain, scalar_of(a), scalar_of(b)) < 0;
    };
    std::sort(answer->sorted.begin(), answer->sorted.end(), less);
    answer->sorted.erase(std::unique(answer->sorted.begin(), answer->sorted.end(),
                                     [domain](const cim::Value& a, const cim::Value& b) {
                                       return order_scalars(domain, scalar_of(a), scalar_of(b)) == 0;
                                     }),
                         answer->sorted.end());
    c.subquery = std::make_shared<const BoundQuery>(std::move(sub));
    c.resolved = std::move(answer);
    return ok_status();
  }

  const SubqueryRunner& run_;
};

bool BoundQuery::has_unresolved_subqueries() const {
  for (const auto& table : tables_) {
    if (table.on && has_unresolved(*table.on)) return true;
  }
  return where_ && has_unresolved(*where_);
}

Result<BoundQuery> resolve_subqueries(const BoundQuery& q, const SubqueryRunner& run) {
  return SubqueryResolver(run).resolve(q);
}

}  // namespace pkgcast::wql
