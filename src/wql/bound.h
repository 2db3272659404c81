// A bound WQL query: the AST resolved against class definitions, type-checked, ready to evaluate.
//
// Only bind() (wql.h) makes a BoundQuery, so an unbound query can never reach the evaluator. Every property
// reference is resolved to an index into its class's flattened property list (valid for every subclass too, see
// cim::ClassDef), so evaluation does no name lookups.
//
// The condition tree is public and deliberately small, for the provider to walk (to push WHERE into SQL):
//   kAnd, kOr     children (two or more)
//   kNot          children[0]
//   kCompare      lhs (always a property) op rhs (a property or a literal); domain says how values compare
//   kLike         lhs [NOT] LIKE pattern
//   kIsNull       lhs IS [NOT] NULL
//   kIsa          object ISA cls       (object's class is cls or derives from it)
//   kClassEq      object.__CLASS = cls (exactly cls)
//   kConstant     constant (from a comparison with a NULL literal, or of two literals)
//   kArrayIn      lhs (an array property) holds an element equal to one of values (X IN (...) over an array)
//   kValueCompare operands[0] op operands[1] where a side is a function (UPPER(Name) = 'X'); not pushed into SQL
//   kValueLike    operands[0] [NOT] LIKE pattern, operands[0] a function (LOWER(Name) LIKE 'off%')
//   kSubqueryIn   lhs IN (SELECT p FROM C WHERE ...): TRUE when lhs (or, for an array, an element) equals one of
//                 the subquery's values, as IN (list) would with those values; `NOT IN` is kNot over it
// The binder normalises: a literal on the left of a comparison is moved right (`5 < X` becomes `X > 5`),
// `__CLASS = 'C'` becomes kClassEq, and `__CLASS <> 'C'` becomes kNot over kClassEq. `X IN (a, b)` over a scalar
// becomes `X = a OR X = b` (one kCompare, not an OR, for one value; a NULL value becomes a kConstant UNKNOWN
// disjunct), over an array kArrayIn (OR'd with that constant when a value is NULL); `NOT IN` is kNot over that.
//
// Lifetime: a BoundQuery points into the cim::ClassRegistry it was bound against, which must outlive it.
// Thread safety: immutable; evaluate it from any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cim/class_def.h"
#include "cim/types.h"
#include "cim/value.h"
#include "wql/ast.h"
#include "wql/like.h"

namespace pkgcast::wql {

// Logic is SQL's three-valued logic; a WHERE clause selects only kTrue. The numeric values are an implementation
// detail that makes AND a min, OR a max and NOT a subtraction.
enum class Truth : std::uint8_t { kFalse = 0, kUnknown = 1, kTrue = 2 };

// Which object a property reference reads: the instance itself (data queries, the event object of event
// queries), or the event's embedded TargetInstance / PreviousInstance.
enum class Source : std::uint8_t { kSelf, kTargetInstance, kPreviousInstance };

enum class SystemProperty : std::uint8_t {
  kNone,  // a declared property
  kClass,
  kSuperclass,
  kDynasty,
  kDerivation,
  kGenus,
  kNamespace,
  kServer,
  kPath,
  kRelPath,
  kPropertyCount,
  kRevision,  // pkgcast's journal revision, on event objects only
};

// "__CLASS" for kClass; "" for kNone.
std::string_view system_property_name(SystemProperty p);

struct PropertyRef {
  Source source = Source::kSelf;
  // With source kSelf: which class of FROM the property belongs to (0 for the first; a join's classes follow in
  // query order, see BoundQuery::tables()). Always 0 outside joins.
  std::uint8_t table = 0;
  SystemProperty system = SystemProperty::kNone;
  std::size_t index = 0;                  // when system == kNone: into the bound class's properties()
  const cim::PropertyDef* def = nullptr;  // when system == kNone
  cim::Type type;                         // declared type (for a system property, its type)
  std::string name;  // registry spelling: "Installed", "TargetInstance.Installed", "__CLASS"; in a join the table's
                     // name first, as written: "P.Installed"
};

struct Operand {
  enum class Kind : std::uint8_t { kProperty, kLiteral };
  Kind kind = Kind::kLiteral;
  PropertyRef property;  // kProperty
  cim::Value literal;    // kLiteral: never NULL (comparisons with NULL fold to kConstant); already converted to
                         // the domain of the property it is compared with (convert.h: '3' is a number there)
};

// How the two sides of a comparison compare, decided by the binder from their types.
enum class Domain : std::uint8_t {
  kString,    // strings and references: ASCII case-insensitive, other bytes by value
  kNumber,    // by numeric value across signedness, width and real/integer
  kDateTime,  // by instant
  kBoolean,   // = and <> only
};

// A value that Extended WQL's functions compute (data queries' WHERE only): a declared property, a literal, or a
// function of those. A call whose arguments are all literals (GETDATE() included) is folded to a literal by the
// binder, so `LastUpdateDate > DATEADD(dd, -7, GETDATE())` binds to a plain kCompare the provider pushes into SQL.
struct ValueExpr {
  enum class Kind : std::uint8_t { kProperty, kLiteral, kCall };
  Kind kind = Kind::kLiteral;
  PropertyRef property;  // kProperty: a declared property of the FROM class
  cim::Value literal;    // kLiteral (NULL for a NULL literal or a folded NULL result)
  ast::Function function = ast::Function::kUpper;  // kCall
  std::uint8_t datepart = 0;                       // kCall: a wql::DatePart (functions.h), for the DATE* functions
  std::vector<ValueExpr> args;                     // kCall
  cim::Type type;                                  // the value's type (string, sint64, datetime, ...)
  std::string text;                                // canonical text, for errors: "UPPER(Name)"
};

class BoundQuery;

// The answer of an IN (SELECT ...) subquery, once its caller has run it (resolve_subqueries, wql.h): the selected
// values without NULLs, sorted and without duplicates in the comparison's domain, and whether a NULL was among them.
struct SubqueryValues {
  std::vector<cim::Value> sorted;
  bool has_null = false;
};

enum class ConditionKind : std::uint8_t {
  kAnd,
  kOr,
  kNot,
  kCompare,
  kLike,
  kIsNull,
  kIsa,
  kClassEq,
  kConstant,
  kArrayIn,
  kValueCompare,  // operands[0] op operands[1], either computed by a function (domain as kCompare)
  kValueLike,     // operands[0] (a computed string) [NOT] LIKE pattern
  kSubqueryIn,    // lhs (a property; an array: any element) IN (SELECT ...); UNKNOWN until resolved
};

// One node of a bound condition; fields not listed for its kind keep their defaults (see the file comment).
struct Condition {
  ConditionKind kind = ConditionKind::kConstant;
  std::vector<Condition> children;
  PropertyRef lhs;
  ast::CompareOp op = ast::CompareOp::kEq;
  Domain domain = Domain::kString;  // kCompare; kArrayIn: of the elements
  Operand rhs;
  std::vector<cim::Value> values;  // kArrayIn: converted to the elements' domain, never NULL
  std::vector<ValueExpr> operands;  // kValueCompare (two), kValueLike (one)
  std::shared_ptr<const BoundQuery> subquery;       // kSubqueryIn: a data query selecting one property
  std::shared_ptr<const SubqueryValues> resolved;   // kSubqueryIn: its answer; nullptr until resolved
  bool negated = false;  // kLike: NOT LIKE; kIsNull: IS NOT NULL
  LikePattern pattern;   // kLike
  Source object = Source::kSelf;          // kIsa, kClassEq
  std::uint8_t table = 0;                 // kClassEq with object kSelf: which class of FROM (PropertyRef::table)
  const cim::ClassDef* cls = nullptr;     // kIsa, kClassEq
  Truth constant = Truth::kUnknown;       // kConstant
};

// One ORDER BY term: a declared scalar property of the FROM class.
struct BoundOrder {
  PropertyRef property;
  bool descending = false;
};

struct BoundGroup {
  double within = 0;  // seconds, > 0
  std::vector<PropertyRef> by;
  std::optional<Condition> having;  // bound against aggregate_class
  const cim::ClassDef* aggregate_class = nullptr;  // the registry's __AggregateEvent
};

// An equality between a joined class's property and one of a class before it (`P.PackageID = G.PackageID`), found
// among the top-level conjuncts of the class's ON (and, for inner joins and `FROM A, B`, of WHERE). It lets an
// executor find a row's partners by value instead of trying every pair; the conditions still decide.
struct JoinKey {
  PropertyRef inner;  // of this class
  PropertyRef outer;  // of a class before it
  Domain domain = Domain::kString;
};

// One class of FROM (data queries). For a plain query, the FROM class alone; for a join, each class in query order.
struct BoundTable {
  const cim::ClassDef* cls = nullptr;
  std::string name;  // the alias as written, or the class name as written when there is none
  ast::JoinKind kind = ast::JoinKind::kInner;  // how it meets the classes before it; kInner for the first
  std::optional<Condition> on;  // kInner / kLeft: ON, bound over this class and those before it
  std::optional<JoinKey> key;   // see JoinKey; never for the first class
  // The projection: whether this class is in the answer, and with which properties (all, or `selected`).
  bool answered = false;
  bool select_all = false;
  std::vector<PropertyRef> selected;
};

class BoundQuery {
 public:
  // True for a query over an event class (__InstanceCreationEvent...).
  bool is_event() const { return target_class_ != nullptr; }
  // The FROM class.
  const cim::ClassDef& from_class() const { return *from_class_; }
  // Event queries: the class named by TargetInstance ISA / TargetInstance.__CLASS =; nullptr for data queries.
  const cim::ClassDef* target_class() const { return target_class_; }
  // Event queries: whether TargetInstance must be exactly target_class() (named by __CLASS =) or may derive.
  bool target_exact() const { return target_exact_; }
  // Event queries: indices of TargetInstance and PreviousInstance in from_class() (PreviousInstance only on
  // __InstanceModificationEvent).
  std::optional<std::size_t> target_index() const { return target_index_; }
  std::optional<std::size_t> previous_index() const { return previous_index_; }

  std::optional<double> within() const { return within_; }
  const std::optional<BoundGroup>& group() const { return group_; }

  // SELECT *: every property. Otherwise selected() lists the named ones, in query order.
  bool select_all() const { return select_all_; }
  const std::vector<PropertyRef>& selected() const { return selected_; }

  // SELECT DISTINCT: the answer holds each combination of the selected values once (strings compared ignoring
  // ASCII case, as `=` compares them). With `*` every row is distinct already (its key is in it).
  bool distinct() const { return distinct_; }
  // SELECT COUNT(*): the answer is one __Generic instance whose Count is the number of matching instances.
  bool count() const { return count_; }

  // The WHERE condition; nullptr when there is none (every instance of the FROM class matches).
  const Condition* where() const { return where_ ? &*where_ : nullptr; }

  // ORDER BY terms, in query order; empty when there is none (data queries only).
  const std::vector<BoundOrder>& order_by() const { return order_by_; }

  // Data queries: the classes of FROM, the first one first (exactly one unless the query joins).
  const std::vector<BoundTable>& tables() const { return tables_; }
  // True when FROM names more than one class (JOIN, or `FROM A, B`).
  bool is_join() const { return tables_.size() > 1; }
  // A join's answer: the index of the only class in the projection (`SELECT P.* ...`, `SELECT P.Name, P.Version`),
  // whose instances are the answer; nullopt when several are (the answer is __Generic instances holding one
  // embedded object per answered class, named by BoundTable::name).
  std::optional<std::size_t> answer_table() const;

  // The query as parsed.
  const ast::Query& query() const { return query_; }

  // Whether WHERE holds an IN (SELECT ...) whose answer has not been supplied (resolve_subqueries, wql.h).
  bool has_unresolved_subqueries() const;

 private:
  friend class Binder;
  friend class SubqueryResolver;
  BoundQuery() = default;

  ast::Query query_;
  const cim::ClassDef* from_class_ = nullptr;
  const cim::ClassDef* target_class_ = nullptr;
  bool target_exact_ = false;
  std::optional<std::size_t> target_index_;
  std::optional<std::size_t> previous_index_;
  std::optional<double> within_;
  std::optional<BoundGroup> group_;
  bool select_all_ = true;
  bool distinct_ = false;
  bool count_ = false;
  std::vector<PropertyRef> selected_;
  std::optional<Condition> where_;
  std::vector<BoundOrder> order_by_;
  std::vector<BoundTable> tables_;
};

}  // namespace pkgcast::wql
