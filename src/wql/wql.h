// WQL, the query language of WMI, as pkgcast speaks it (docs/wql.md is the specification).
//
// Four stages, each with its own type:
//   text --parse()--> ast::Query --bind()--> BoundQuery --matches()/matches_event()--> bool
// parse() knows only syntax; bind() resolves classes and properties against a cim::ClassRegistry and checks
// types; the evaluator then answers per instance without allocating or looking names up.
//
// Errors are Error{WbemCode, "what at line:column"}: WBEM_E_INVALID_QUERY for syntax, WBEM_E_INVALID_CLASS,
// WBEM_E_INVALID_PROPERTY, WBEM_E_TYPE_MISMATCH, WBEM_E_INVALID_OPERATOR, WBEM_E_NOT_EVENT_CLASS,
// WBEM_E_NOT_SUPPORTED and WBEM_E_QUOTA_VIOLATION (a limit of limits.h). No input crashes, hangs or overflows the
// stack; every function here is safe to call concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cim/datetime.h"
#include "cim/instance.h"
#include "cim/json.h"
#include "core/result.h"
#include "wql/ast.h"
#include "wql/bound.h"
#include "wql/limits.h"

namespace pkgcast::wql {

// Parses one WQL statement (data or event query).
Result<ast::Query> parse(std::string_view text);

// The canonical text: upper-case keywords, single spaces, single-quoted strings with \\ \' \n \t \r escapes,
// names as written in the query, integers in decimal, `<>` for both `<>` and `!=`, parentheses only where the
// tree needs them (and always around the operand of NOT). parse(print(q)) == q.
std::string print(const ast::Query& q);
std::string print(const ast::Expr& e);

// The AST as JSON, for tools (`pkgcast wql parse --json`); docs/wql.md shows the shape.
cim::Json to_json(const ast::Query& q);

// What binding may depend on beyond the query and the classes.
struct BindOptions {
  // GETDATE()'s value, read once per query as SQL Server does; nullopt: the system clock when binding. Tests fix it.
  std::optional<cim::DateTime> now;
};

// Resolves q against registry. The registry must outlive the BoundQuery.
Result<BoundQuery> bind(const ast::Query& q, const cim::ClassRegistry& registry, const BindOptions& options = {});
// parse() then bind().
Result<BoundQuery> compile(std::string_view text, const cim::ClassRegistry& registry,
                           const BindOptions& options = {});

// Data query: true when inst is of the FROM class (or derives from it) and the WHERE condition is TRUE for it.
// Given an event query, same as matches_event(); given a join, false (a joined row is matched by matches_row()).
// inst's class must come from the registry q was bound against.
bool matches(const BoundQuery& q, const cim::Instance& inst);

// Event query: true when event is of the FROM event class (or derives from it), its TargetInstance is of the
// target class, and the WHERE condition is TRUE for it. TargetInstance / PreviousInstance are the event's
// embedded objects; a property read from a missing one, or from one not of the target class, is NULL.
bool matches_event(const BoundQuery& q, const cim::Instance& event);

// GROUP ... HAVING: true when the __AggregateEvent instance satisfies HAVING (or there is no HAVING).
// Precondition: q.group().has_value().
bool matches_aggregate(const BoundQuery& q, const cim::Instance& aggregate);

// The three-valued result of q's WHERE for inst (kTrue when there is no WHERE); for tests and tools.
// Precondition: inst is of q's FROM class or derives from it.
Truth evaluate(const BoundQuery& q, const cim::Instance& inst);

// Joins (Extended WQL). A joined row holds one instance per class of FROM (BoundQuery::tables()), in that order;
// an entry is nullptr where a LEFT JOIN found no partner, and its properties read as NULL. Each instance must be of
// its class (or derive from it) and come from the registry q was bound against.
using JoinedRow = std::span<const cim::Instance* const>;

// The ON condition of q.tables()[table] over row[0..table] (kTrue when the class has none: the first, `FROM A, B`).
Truth evaluate_on(const BoundQuery& q, std::size_t table, JoinedRow row);
// True when q's WHERE is TRUE for the joined row (or there is no WHERE).
bool matches_row(const BoundQuery& q, JoinedRow row);

// The join itself, in memory: every joined row of q over `candidates` (candidates[i]: the instances that may stand
// for class i, in order) whose ONs and WHERE are TRUE, in nested-loop order (the first class's order, then each
// next class's order within it), to `visit`, which returns false to stop. An inner join or `,` keeps the pairs its
// ON makes TRUE; a LEFT JOIN also keeps, with nullptr, a row for which no candidate makes it TRUE. A class with a
// JoinKey is looked up by value in a hash of its candidates rather than tried pair by pair. Precondition:
// candidates.size() == q.tables().size().
//
// The work is not bounded by the rows it finds (a join whose WHERE is never TRUE tries every combination): every
// kJoinTriesPerCheck candidates tried, `keep_going` is called with the number tried since its last call, and the
// join stops when it returns false. Returns the candidates tried in all.
inline constexpr std::uint64_t kJoinTriesPerCheck = 4096;
std::uint64_t join_rows(const BoundQuery& q, const std::vector<std::vector<const cim::Instance*>>& candidates,
                        const std::function<bool(JoinedRow)>& visit,
                        const std::function<bool(std::uint64_t tried)>& keep_going = {});
// join_rows in slices: the first class's candidates from `first_outer` on, each joined in full, and between two of
// them `pause` may end the slice. Returns the first candidate not joined yet, for the next slice's first_outer:
// candidates[0].size() once every one is, or once `visit` or `keep_going` stopped the join. The same rows, in the
// same order, as one join_rows call.
std::size_t join_rows_from(const BoundQuery& q, const std::vector<std::vector<const cim::Instance*>>& candidates,
                           std::size_t first_outer, const std::function<bool(JoinedRow)>& visit,
                           const std::function<bool(std::uint64_t tried)>& keep_going,
                           const std::function<bool()>& pause);

// A JoinKey's value as text that is equal for values the key's `=` finds equal (strings folded to ASCII lower
// case, integers in decimal); nullopt for NULL, which equals nothing.
std::optional<std::string> join_key_text(const cim::Value& v, Domain domain);

// ORDER BY's order of two values of one property, for a sort made in memory (the database makes the others, in the
// same order): NULL before every value, strings by ASCII case-folded bytes, numbers by value, datetimes by instant,
// FALSE before TRUE. Negative, zero or positive; ascending (a descending term negates it). Values that do not
// compare (arrays, embedded objects, different kinds) are equal.
int order_values(const cim::Value& a, const cim::Value& b);

// IN (SELECT p FROM C WHERE ...): a query over a store answers these before its rows can be tested. `run` is called
// once per subquery, innermost first (a subquery's own subqueries are resolved before it runs), with the resolved
// subquery and the property it selects, and returns that property's value on every instance the subquery answers.
// The result is q with every subquery's values in place; matches() treats an unresolved one as UNKNOWN.
// Errors: whatever `run` returns.
using SubqueryRunner = std::function<Result<std::vector<cim::Value>>(const BoundQuery& sub, const PropertyRef& selected)>;
Result<BoundQuery> resolve_subqueries(const BoundQuery& q, const SubqueryRunner& run);

// The classes q names, registry spelling, without duplicates: the FROM class, then for an event query the target
// class, then a join's other classes, then any other class of an ISA or __CLASS = comparison, in query order.
std::vector<std::string> bound_classes(const BoundQuery& q);

}  // namespace pkgcast::wql
