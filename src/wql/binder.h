// The binder (internal): ast::Query + cim::ClassRegistry -> BoundQuery.
//
// binder.cc binds the query's clauses (FROM, the event target, SELECT, WITHIN, GROUP); bind_condition.cc binds
// conditions and property paths and does the type checking. Errors carry the position of what they name.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cim/class_def.h"
#include "cim/datetime.h"
#include "core/result.h"
#include "wql/ast.h"
#include "wql/bound.h"

namespace pkgcast::wql {

class Binder {
 public:
  Binder(const ast::Query& query, const cim::ClassRegistry& registry, cim::DateTime now)
      : query_(query), registry_(registry), now_(now) {}

  Result<BoundQuery> bind();

 private:
  // What names resolve against: `self` for plain names, `target` for TargetInstance./PreviousInstance. paths.
  struct Scope {
    const cim::ClassDef* self = nullptr;
    const cim::ClassDef* target = nullptr;  // nullptr outside event queries
    // Data queries: the classes of FROM, of which the first `visible` may be named (an ON reads its own class and
    // those before it). nullptr elsewhere (event queries, HAVING).
    const std::vector<BoundTable>* tables = nullptr;
    std::size_t visible = 0;
  };

  Status bind_event_target(BoundQuery& out);
  Status bind_select(BoundQuery& out);
  Status bind_group(BoundQuery& out, const Scope& scope);
  Status bind_order_by(BoundQuery& out, const Scope& scope);
  Status bind_aggregate(BoundQuery& out);
  // FROM's classes, aliases and joins (bind_join.cc).
  Status bind_tables(BoundQuery& out);
  Status bind_joins(BoundQuery& out);
  static void find_join_keys(BoundQuery& out);
  Status bind_join_select(BoundQuery& out);
  Result<std::optional<PropertyRef>> bind_table_path(const ast::PropertyPath& path, const Scope& scope) const;
  Result<PropertyRef> bind_table_property(const BoundTable& table, std::size_t index, const std::string& name,
                                          ast::Position pos, bool qualify) const;

  Result<const cim::ClassDef*> resolve_class(std::string_view name, ast::Position pos) const;
  Result<PropertyRef> bind_path(const ast::PropertyPath& path, const Scope& scope) const;
  Result<Condition> bind_expr(const ast::Expr& e, const Scope& scope) const;
  Result<Condition> bind_compare(const ast::Expr& e, const Scope& scope) const;
  Result<Condition> bind_like(const ast::Expr& e, const Scope& scope) const;
  Result<Condition> bind_is_null(const ast::Expr& e, const Scope& scope) const;
  Result<Condition> bind_isa(const ast::Expr& e, const Scope& scope) const;
  Result<Condition> bind_in(const ast::Expr& e, const Scope& scope) const;
  Result<Condition> bind_class_eq(const PropertyRef& lhs, const ast::Expr& e, const ast::Literal& name) const;
  Result<PropertyRef> bind_property_operand(const ast::Operand& op, const Scope& scope, std::string_view what,
                                            ast::Position pos) const;

  // Functions (bind_function.cc): a computed operand, and comparisons and LIKE over one.
  Status check_functions_allowed(const ast::Expr& e, const Scope& scope) const;
  Result<ValueExpr> bind_value(const ast::Operand& op, const Scope& scope) const;
  Result<ValueExpr> bind_call(const ast::Call& call, const Scope& scope) const;
  Result<Condition> bind_value_compare(const ast::Expr& e, const Scope& scope) const;
  Result<Condition> bind_value_like(const ast::Expr& e, const Scope& scope) const;
  Result<Condition> bind_value_in(const ast::Expr& e, const Scope& scope) const;
  // IN (SELECT ...) (bind_subquery.cc).
  Result<Condition> bind_subquery_in(const ast::Expr& e, const Scope& scope) const;

  const ast::Query& query_;
  const cim::ClassRegistry& registry_;
  cim::DateTime now_;  // GETDATE()
};

// "an embedded object" / "a string" / "uint32 'Installed'": how errors name an operand.
std::string describe(const PropertyRef& ref);

// Shared by the binder's files (bind_condition.cc defines them).
namespace bind_detail {
enum class Category : std::uint8_t { kString, kNumber, kDateTime, kBoolean, kObject, kArray, kNull };
Category category_of(cim::Type t);
Category category_of(const ast::Literal& lit);
Domain domain_of(Category c);
std::string describe(const ast::Literal& lit);
Error error_at(WbemCode code, std::string what, ast::Position pos);
ast::CompareOp mirror(ast::CompareOp op);
bool is_ordering(ast::CompareOp op);
cim::Value literal_value(const ast::Literal& lit);
Condition constant(Truth t);
Condition negate(Condition inner);
}  // namespace bind_detail

}  // namespace pkgcast::wql
