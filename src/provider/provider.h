// The provider: the namespace `root\sms\site_<CODE>` answering WQL data queries over the site database
// (design.md section 5, docs/http-resources.md for the HTTP form).
//
// A query runs in two steps so that callers can tell errors apart from results:
//   prepare()  checks the namespace, compiles the WQL against the store's class registry and plans the scan:
//              which concrete classes to read (the FROM class and every concrete subclass) and, per class, the
//              part of WHERE the store can evaluate in SQL (a store::Predicate). Every error of the query's own
//              making is reported here, before any row.
//   run()      streams the rows: each pre-filtered row is decoded, tested with the FULL condition by wql::matches
//              (the pushed predicate is only a pre-filter, so the answer is exactly WQL's whichever part was
//              pushed), checked against the caller's site limit, projected, located and handed to the sink.
//              Nothing holds the whole result in memory.
//
// Site scoping (a token limited to sites): a row is visible when the property that places it is one of the
// caller's sites: SiteCode where the class has it, else SourceSite; SMS_Program rows take their package's
// SourceSite; SMS_DistributionPointGroup rows span sites and are visible to every caller.
//
// DISTINCT and COUNT(*) (answer_shape.h): `SELECT DISTINCT a, b` answers rows holding only a and b (no keys), one
// per combination, remembering the combinations seen (with ORDER BY, which sorts in SQL, only the current run of
// equal sort values); what is remembered at once is bounded (QueryLimits::max_distinct_rows). `SELECT COUNT(*)`
// answers one __Generic instance with Count; the database counts (SELECT COUNT(*)) when the whole WHERE and the
// site scope translate exactly into SQL (push_down_exact), else the rows stream through wql::matches and are
// counted, holding nothing.
//
// IN (SELECT p FROM C WHERE ...): prepare() runs each subquery first (innermost first), as the caller, so a
// site-limited token's subquery sees its sites only, and hands the values to the outer query
// (wql::resolve_subqueries); a small answer is pushed into the outer scan as an IN list. Values held: at most
// QueryLimits::max_subquery_values.
//
// Joins (join.h): the first class of FROM streams in pages as a one-class query's class does; each page's partners
// in every joined class are read with the join key's values pushed into SQL as an IN list (with that class's own
// conditions and the caller's site limit); wql::join_rows decides the rows. The answer is __Generic instances with
// one embedded object per answered class, or one class's instances; held at once: QueryLimits::max_join_rows.
//
// Projection: `SELECT a, b` returns instances of the row's class whose unselected properties are NULL, except key
// properties, which are always kept so that every returned instance still has its __PATH / __RELPATH. The HTTP
// answer leaves the unselected properties out of each row's JSON (ScanStep::nulled lists them) and adds the
// system properties the query names (`SELECT __PATH, Name`; ScanStep::system lists them). A join's embedded objects
// are projected the same way, each by its class's step (PreparedQuery::embedded_steps).
//
// Every row is located (server, namespace) before WHERE is evaluated, so __PATH, __SERVER and __NAMESPACE compare
// as the row is answered. System properties are never pushed into the store: the evaluator decides them.
//
// Thread safety: every method may be called from any thread; a PreparedQuery may be run concurrently.
// Lifetime: the Provider references the store, which must outlive it and every PreparedQuery.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cim/cim.h"
#include "core/result.h"
#include "site/tokens.h"
#include "store/store.h"
#include "wql/wql.h"

namespace pkgcast::provider {

// "root\sms\site_ABC".
std::string namespace_for_site(std::string_view site_code);

// A namespace as WMI scripts write it, '/' read as '\': the path, and the server a leading `\\SERVER\` names
// (`\\.\root\sms\site_ABC`, `//sccm01/root/sms/site_ABC`), "" when it names none.
struct NamespaceName {
  bool has_server = false;
  std::string server;  // with has_server; may be empty (`\\\root`), which names no machine
  std::string path;
};
NamespaceName parse_namespace(std::string_view ns);
// True when the name means the machine answering: no server part, or ".", "localhost", or `own` (ASCII
// case-insensitive).
bool names_this_server(const NamespaceName& name, std::string_view own);

// One concrete class to read and the predicate pushed into its scan.
struct ScanStep {
  const cim::ClassDef* cls = nullptr;
  store::Predicate filter;
  std::size_t scope_property = 0;  // index of SiteCode/SourceSite when scope == kProperty
  enum class Scope : std::uint8_t { kNone, kProperty, kPackage } scope = Scope::kNone;
  std::vector<std::size_t> nulled;  // properties the projection clears
  std::vector<wql::SystemProperty> system;  // system properties the projection names, in query order (not __CLASS,
                                            // which every row carries)
};

class DistinctFilter;
struct JoinPlan;
struct JoinState;

class PreparedQuery {
 public:
  enum class Shape : std::uint8_t { kRows, kDistinct, kCount };
  Shape shape() const { return shape_; }
  // kCount: whether the database counts (every step's filter is exactly WHERE and the site scope).
  bool count_in_sql() const { return count_in_sql_; }

  const wql::BoundQuery& query() const { return *query_; }
  // The scans of the FROM class, or for a join the concrete classes of its answer with their projection (what a
  // caller formatting rows needs: ScanStep::nulled and ::system); a join's own scans are in its JoinPlan.
  const std::vector<ScanStep>& steps() const { return steps_; }
  // A join answering __Generic rows: per property of the row, the projection of the object embedded there (one
  // step per concrete class, as steps() for one class), so that each embedded object is written as a one-class
  // query's row. Empty otherwise.
  const std::vector<std::vector<ScanStep>>& embedded_steps() const { return embedded_steps_; }
  const std::string& namespace_path() const { return namespace_; }

 private:
  friend class Provider;
  std::shared_ptr<const wql::BoundQuery> query_;
  std::vector<ScanStep> steps_;
  std::vector<std::vector<ScanStep>> embedded_steps_;  // by __Generic property; see embedded_steps()
  std::vector<store::SortKey> order_;  // ORDER BY, sorted by the database; empty: key order
  std::string namespace_;
  std::vector<std::string> sites_;  // the caller's site limit; empty = every site
  Shape shape_ = Shape::kRows;
  bool count_in_sql_ = false;
  std::vector<std::size_t> distinct_props_;   // kDistinct: the selected properties
  std::vector<std::size_t> distinct_sorted_;  // kDistinct: the sort terms' properties (empty: rows not sorted)
  std::shared_ptr<const JoinPlan> join_;       // a join's plan (join.h); nullptr for one class
  // What its IN (SELECT ...) subqueries cost when prepare() answered them: the query's budget (max_time,
  // max_rows_evaluated) is one for the subqueries and the query together, so its first page starts with it spent.
  std::chrono::nanoseconds subqueries_elapsed_{0};
  std::uint64_t subqueries_rows_ = 0;
};

// Receives each result row; return false to stop early (the client went away). A join's __Generic rows are of a
// class made for their query, which lives as long as its PreparedQuery (for exec_query: until it returns); a sink
// that keeps such rows longer keeps what it needs of them (their JSON, their values).
using InstanceSink = std::function<bool(const cim::Instance&)>;

// What one query may cost (config: query_max_rows_evaluated, query_max_seconds). Exceeding either ends the query
// with WBEM_E_QUOTA_VIOLATION naming the limit. 0 = unlimited.
struct QueryLimits {
  std::uint64_t max_rows_evaluated = 10'000'000;  // rows read from the store and tested against WHERE
  std::chrono::milliseconds max_time{60'000};     // time spent evaluating (not waiting for the client)
  // SELECT DISTINCT: the most combinations held in memory at once (all of them; with ORDER BY, one run of equal
  // sort values).
  std::uint64_t max_distinct_rows = 100'000;
  // IN (SELECT ...): the most values all the subqueries of one query may answer (they are held while it runs).
  std::uint64_t max_subquery_values = 100'000;
  // Joins: the most rows a join holds at once: one page of its first class, the partners looked up for it (or a
  // joined class read whole when its partners cannot be looked up by value), and the joined rows not yet delivered.
  std::uint64_t max_join_rows = 250'000;
  // Bytes a join sorted in memory may hold (its answers, estimated: cim::estimated_bytes), since it holds its whole
  // answer until the first class is read to its end; 0 = unlimited.
  std::uint64_t max_join_bytes = 64ull << 20;
  // Queries whose IN (SELECT ...) subqueries are being answered at once, server-wide: prepare() answers them on
  // the caller's thread (the server's request workers), so past this many it refuses with
  // WBEM_E_SERVER_TOO_BUSY rather than let them take every worker; 0 = unlimited.
  std::size_t max_concurrent_subqueries = 0;
};

// How much one page may do: the store is read for at most `max_rows` rows and for about `slice` (a row is never
// cut short), then the page returns, holding no connection.
struct PageBounds {
  std::size_t max_rows = 512;
  std::chrono::milliseconds slice{20};
};

// Where a paged run stands. Start with a default-constructed cursor; run_page() moves it. Not thread-safe.
class QueryCursor {
 public:
  bool done() const { return done_; }
  std::uint64_t rows_evaluated() const { return rows_; }
  std::chrono::nanoseconds elapsed() const { return elapsed_; }

 private:
  friend class Provider;
  std::size_t step_ = 0;                              // index into PreparedQuery::steps()
  std::optional<std::vector<cim::Value>> after_;     // the last key seen in that step's class
  std::optional<std::vector<cim::Value>> after_sort_;  // with ORDER BY: that row's sort values
  bool done_ = false;
  bool started_ = false;  // the first page has charged the query's subqueries to this cursor
  std::uint64_t rows_ = 0;
  std::chrono::nanoseconds elapsed_{0};
  std::uint64_t count_ = 0;                                // COUNT(*) so far
  std::shared_ptr<DistinctFilter> distinct_;               // SELECT DISTINCT: made by the first page
  std::shared_ptr<JoinState> join_;                        // a join's rows between pages: made by the first page
};

class Provider {
 public:
  Provider(store::Store& store, std::string site_code, std::string server_name, QueryLimits limits = {});

  const std::string& namespace_path() const { return namespace_; }
  const std::string& server_name() const { return server_name_; }

  // The canonical spelling of `ns` when it names this provider's namespace (ASCII case-insensitive, '/' accepted
  // for '\', a leading `\\.\`, `\\localhost\` or `\\<server_name>\` as WMI's scripts write it); "" means the
  // default, this namespace. `root\sms` is served too, for SMS_ProviderLocation only (check_classes).
  // WBEM_E_INVALID_NAMESPACE naming it otherwise (another server included).
  Result<std::string> resolve_namespace(std::string_view ns) const;
  // WBEM_E_INVALID_CLASS when `q` names a class (check_class: the class named) that the resolved namespace `ns`
  // does not hold: `root\sms` holds SMS_ProviderLocation only.
  Status check_classes(const std::string& ns, const wql::BoundQuery& q) const;
  Status check_class(const std::string& ns, std::string_view class_name) const;

  // Errors: WBEM_E_INVALID_NAMESPACE; the compiler's (WBEM_E_INVALID_QUERY / _CLASS / _PROPERTY / _TYPE_MISMATCH
  // / _QUOTA_VIOLATION, with positions); WBEM_E_INVALID_QUERY_TYPE for an event query (those are subscriptions:
  // GET /api/v1/events).
  Result<PreparedQuery> prepare(std::string_view ns, std::string_view wql_text, const site::TokenRecord& caller) const;
  // Streams the whole result, page after page (the connection is held per page only). Errors are the store's,
  // and WBEM_E_QUOTA_VIOLATION past the limits.
  Status run(const PreparedQuery& query, const InstanceSink& sink) const;
  // The next page of the result: resumes the cursor's class strictly after the last key it saw (store::ScanOptions
  // ::after, in the class's key order), reads within `bounds`, hands matching rows to the sink, and returns with
  // no connection held. Afterwards cursor.done() tells whether the result is complete. A sink that returns false
  // ends the page (the row it was given counts as delivered; the next page resumes after it). Past the limits:
  // WBEM_E_QUOTA_VIOLATION, and the cursor is done. Rows committed between pages are seen if their key is still
  // ahead of the cursor: each page is consistent, the whole answer is not a snapshot.
  Status run_page(const PreparedQuery& query, QueryCursor& cursor, const PageBounds& bounds,
                  const InstanceSink& sink) const;

  // WMI's GetObject: the instance `path` names (`SMS_Package.PackageID="ABC00001"`, relative or with this
  // provider's namespace), whole: its lazy properties, which query answers and events leave out, are filled in.
  // WBEM_E_INVALID_NAMESPACE; WBEM_E_INVALID_OBJECT_PATH (malformed, or not the class's keys); WBEM_E_INVALID_CLASS;
  // WBEM_E_ACCESS_DENIED (PKG_Token for a restricted caller); WBEM_E_NOT_FOUND when there is no such instance or
  // it lies outside the caller's sites.
  Result<cim::Instance> get_object(std::string_view ns, std::string_view path, const site::TokenRecord& caller) const;

  // prepare() then run().
  Status exec_query(std::string_view ns, std::string_view wql_text, const site::TokenRecord& caller,
                    const InstanceSink& sink) const;

 private:
  // run() on a cursor that may have spent part of the budget already (the subqueries before it).
  Status run_with(const PreparedQuery& query, QueryCursor& cursor, const InstanceSink& sink) const;
  Result<PreparedQuery> plan_query(const std::string& namespace_path, wql::BoundQuery bound,
                                   const site::TokenRecord& caller) const;
  std::vector<ScanStep> plan_steps(const cim::ClassDef& from, const wql::Condition* condition,
                                   const std::vector<std::string>& sites, bool sees_tokens) const;
  Result<bool> visible(const std::vector<std::string>& sites, const ScanStep& step, const cim::Instance& inst,
                       QueryCursor& cursor) const;
  // Joins (join.cc).
  Status plan_join(PreparedQuery& prepared, bool sees_tokens) const;
  Status join_page(const PreparedQuery& prepared, QueryCursor& cursor, const PageBounds& bounds,
                   const InstanceSink& sink) const;
  Status read_outer_page(const PreparedQuery& prepared, QueryCursor& cursor, const PageBounds& bounds,
                         std::vector<cim::Instance>& rows) const;
  Status read_partners(const PreparedQuery& prepared, QueryCursor& cursor, std::size_t table,
                       std::vector<std::vector<const cim::Instance*>>& candidates,
                       std::vector<std::vector<cim::Instance>>& rows) const;
  static void remember_position(const PreparedQuery& prepared, QueryCursor& cursor, const cim::Instance& inst);
  void plan_count(PreparedQuery& prepared) const;
  void plan_distinct(PreparedQuery& prepared) const;
  Status count_page(const PreparedQuery& prepared, QueryCursor& cursor, const InstanceSink& sink) const;
  Status finish(const PreparedQuery& prepared, QueryCursor& cursor, const InstanceSink& sink) const;

  store::Store& store_;
  std::string site_code_;
  std::string server_name_;
  std::string namespace_;
  QueryLimits limits_;
  mutable std::atomic<std::size_t> subqueries_running_{0};  // queries in prepare()'s subquery step
};

// Both backends compare and order strings as WQL does (ASCII letters folded, then bytes: SQLite's NOCASE,
// PostgreSQL's lower(col COLLATE "C"), docs/storage.md), so string comparisons, ordered ones included, are pushed
// to either, and exactly.
inline constexpr bool kBackendsOrderStringsAsWql = true;

// The most predicate nodes pushed into one scan's SQL. A larger condition (a thousand LIKE terms) is evaluated by
// wql::matches alone: the database would otherwise spend an unbounded time inside one page's statement, where
// neither the budget nor a disconnect can stop it.
inline constexpr std::size_t kMaxPushedPredicateNodes = 64;

// The part of `condition` (bound against `from`) that the store can evaluate, as a pre-filter: every row for which
// the condition is TRUE satisfies the returned predicate. Predicate::always() when nothing can be pushed.
// `ordered_strings`: whether <, <=, >, >= on strings may be pushed (only where the backend orders strings exactly
// as WQL does).
store::Predicate push_down(const wql::Condition& condition, bool ordered_strings);

// The whole of `condition` as a predicate that is TRUE for exactly the rows on which the condition is TRUE, or
// nullopt when some part has no exact translation (system properties, ISA, arrays, NOT LIKE, LIKE sets, reals, a
// literal that does not fit its column; strings unless `exact_strings`). Used to have the database COUNT(*).
std::optional<store::Predicate> push_down_exact(const wql::Condition& condition, bool exact_strings);

// WQL LIKE pattern -> store LIKE pattern ('%', '_', '\' escapes) admitting at least the same strings: a [set]
// becomes '_' (exactly one character either way).
std::string like_to_store_pattern(std::string_view wql_pattern);

}  // namespace pkgcast::provider
