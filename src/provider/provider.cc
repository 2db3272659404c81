// The query executor: namespace check, compile, scan plan, and the per-row path. See provider.h for the contract.
#include "provider/provider.h"

#include <algorithm>
#include <unordered_map>

#include "core/strings.h"
#include "provider/answer_shape.h"
#include "provider/join.h"
#include "provider/site_scope.h"

namespace pkgcast::provider {
namespace {

constexpr std::string_view kNamespacePrefix = "root\\sms\\site_";
// Configuration Manager's own namespace, where scripts find their site's (SMS_ProviderLocation).
constexpr std::string_view kProviderNamespace = "root\\sms";
constexpr std::string_view kProviderLocationClass = "SMS_ProviderLocation";

bool has_rows(const cim::ClassDef& cls) {
  return !cls.abstract() && !cls.is_event_class() && !starts_with_icase(cls.name(), "__");
}

// Classes the top-level conjuncts `ISA 'C'` / `__CLASS = 'C'` leave possible. wql::matches still decides every row;
// this only avoids scanning tables that cannot contribute.
bool class_possible(const wql::Condition* where, const cim::ClassDef& cls) {
  if (where == nullptr) return true;
  if (where->kind == wql::ConditionKind::kAnd) {
    for (const auto& child : where->children) {
      if (!class_possible(&child, cls)) return false;
    }
    return true;
  }
  if (where->kind == wql::ConditionKind::kIsa && where->object == wql::Source::kSelf && where->cls != nullptr) {
    return cls.is_a(*where->cls);
  }
  if (where->kind == wql::ConditionKind::kClassEq && where->object == wql::Source::kSelf && where->cls != nullptr) {
    return &cls == where->cls || iequals(cls.name(), where->cls->name());
  }
  return true;
}

void plan_scope(ScanStep& step, const std::vector<std::string>& sites) {
  const SiteScope rule = site_scope_of(*step.cls);
  if (rule.kind == SiteScope::Kind::kNone) return;
  if (rule.kind == SiteScope::Kind::kPackage) {
    step.scope = ScanStep::Scope::kPackage;
    return;
  }
  const std::optional<std::size_t> index = rule.property;
  step.scope = ScanStep::Scope::kProperty;
  step.scope_property = *index;
  // The scope is pushed too, so a scoped caller's scan reads only its sites' rows.
  std::vector<store::Predicate> any;
  for (const auto& s : sites) {
    any.push_back(store::Predicate::compare(*index, store::Predicate::Op::kEq, cim::Value::string(s)));
  }
  store::Predicate scope = any.size() == 1 ? std::move(any.front()) : store::Predicate::any_of(std::move(any));
  if (step.filter.kind == store::Predicate::Kind::kTrue) {
    step.filter = std::move(scope);
  } else {
    step.filter = store::Predicate::all_of({std::move(step.filter), std::move(scope)});
  }
}

std::size_t node_count(const store::Predicate& p) {
  std::size_t n = 1;
  for (const auto& c : p.children) n += node_count(c);
  return n;
}

}  // namespace

std::string namespace_for_site(std::string_view site_code) {
  return std::string(kNamespacePrefix) + to_upper(site_code);
}

Provider::Provider(store::Store& store, std::string site_code, std::string server_name, QueryLimits limits)
    : store_(store),
      site_code_(to_upper(site_code)),
      server_name_(std::move(server_name)),
      namespace_(namespace_for_site(site_code_)),
      limits_(limits) {}

NamespaceName parse_namespace(std::string_view ns) {
  std::string text(ns);
  for (char& c : text) {
    if (c == '/') c = '\\';
  }
  if (!text.starts_with("\\\\")) return {false, "", std::move(text)};
  const std::size_t end = text.find('\\', 2);
  if (end == std::string::npos) return {true, text.substr(2), ""};
  return {true, text.substr(2, end - 2), text.substr(end + 1)};
}

bool names_this_server(const NamespaceName& name, std::string_view own) {
  if (!name.has_server) return true;
  const std::string& s = name.server;
  return s == "." || iequals(s, "localhost") || (!s.empty() && iequals(s, own));
}

Result<std::string> Provider::resolve_namespace(std::string_view ns) const {
  if (ns.empty()) return namespace_;
  const NamespaceName name = parse_namespace(ns);
  if (names_this_server(name, server_name_) && iequals(name.path, namespace_)) return namespace_;
  if (names_this_server(name, server_name_) && iequals(name.path, kProviderNamespace)) {
    return std::string(kProviderNamespace);
  }
  std::string shown(ns.substr(0, 128));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  if (!names_this_server(name, server_name_)) {
    return make_error(WbemCode::kInvalidNamespace, "namespace '" + shown + "' names another server than this one ('" +
                                                       server_name_ + "', which serves '" + namespace_ +
                                                       "'): connect to that server's URL");
  }
  return make_error(WbemCode::kInvalidNamespace,
                    "namespace '" + shown + "' is not served here (this server serves '" + namespace_ + "')");
}

Status Provider::check_class(const std::string& ns, std::string_view name) const {
  // root\sms holds one class (and the event classes that watch it).
  if (ns != kProviderNamespace || name.starts_with("__") || name == kProviderLocationClass) return ok_status();
  return make_error(WbemCode::kInvalidClass, "class " + std::string(name) + " is not in namespace " +
                                                 std::string(kProviderNamespace) + ", which holds " +
                                                 std::string(kProviderLocationClass) + "; the site's classes are in " +
                                                 namespace_);
}

Status Provider::check_classes(const std::string& ns, const wql::BoundQuery& q) const {
  for (const std::string& name : wql::bound_classes(q)) PKG_TRY(check_class(ns, name));
  return ok_status();
}

Result<PreparedQuery> Provider::prepare(std::string_view ns, std::string_view wql_text,
                                        const site::TokenRecord& caller) const {
  PKG_ASSIGN_OR_RETURN(std::string namespace_path, resolve_namespace(ns));
  PKG_ASSIGN_OR_RETURN(wql::BoundQuery bound, wql::compile(wql_text, store_.registry()));
  PKG_TRY(check_classes(namespace_path, bound));
  if (bound.has_unresolved_subqueries()) {
    if (subqueries_running_.fetch_add(1) >= limits_.max_concurrent_subqueries && limits_.max_concurrent_subqueries) {
      subqueries_running_.fetch_sub(1);
      return make_error(WbemCode::kServerTooBusy,
                        "too many queries with subqueries are being answered (max_concurrent_subqueries " +
                            std::to_string(limits_.max_concurrent_subqueries) + "); retry later");
    }
    struct Release {
      std::atomic<std::size_t>& running;
      ~Release() { running.fetch_sub(1); }
    } release{subqueries_running_};
    // IN (SELECT ...): each subquery runs now, as the caller (its sites, its class rights), and its values are
    // held for the outer query, within max_subquery_values over all subqueries of the query.
    std::uint64_t held = 0;
    // One budget for all of them (and then the query): each subquery's cursor starts with what those before it
    // spent.
    QueryCursor spent;
    auto run_subquery = [&](const wql::BoundQuery& sub,
                            const wql::PropertyRef& selected) -> Result<std::vector<cim::Value>> {
      PKG_ASSIGN_OR_RETURN(PreparedQuery plan, plan_query(namespace_path, sub, caller));
      std::vector<cim::Value> values;
      bool over = false;
      QueryCursor cursor;
      cursor.rows_ = spent.rows_;
      cursor.elapsed_ = spent.elapsed_;
      const Status answered = run_with(plan, cursor, [&](const cim::Instance& inst) {
        if (limits_.max_subquery_values > 0 && ++held > limits_.max_subquery_values) {
          over = true;
          return false;
        }
        values.push_back(inst.get(selected.index));
        return true;
      });
      spent.rows_ = cursor.rows_;
      spent.elapsed_ = cursor.elapsed_;
      PKG_TRY(answered);
      if (over) {
        return make_error(WbemCode::kQuotaViolation,
                          "the subqueries answered more than " + std::to_string(limits_.max_subquery_values) +
                              " values (QueryLimits::max_subquery_values)");
      }
      return values;
    };
    PKG_ASSIGN_OR_RETURN(bound, wql::resolve_subqueries(bound, run_subquery));
    PKG_ASSIGN_OR_RETURN(PreparedQuery prepared, plan_query(namespace_path, std::move(bound), caller));
    prepared.subqueries_rows_ = spent.rows_;
    prepared.subqueries_elapsed_ = spent.elapsed_;
    return prepared;
  }
  return plan_query(namespace_path, std::move(bound), caller);
}

// Everything of prepare() after compiling: class rights, the scan steps, the answer's shape.
Result<PreparedQuery> Provider::plan_query(const std::string& namespace_path, wql::BoundQuery bound,
                                           const site::TokenRecord& caller) const {
  PreparedQuery prepared;
  prepared.namespace_ = namespace_path;
  // PKG_Token is the tokens' audit trail: only an unrestricted full-admin token may read it, by query or event.
  // Naming it is refused; a query over a superclass simply leaves its rows out (below).
  const bool sees_tokens = caller.role == site::Role::kFullAdmin && caller.sites.empty();
  const cim::ClassDef* token_cls = store_.registry().find("PKG_Token");
  if (!sees_tokens && token_cls != nullptr) {
    const cim::ClassDef* named = bound.is_event() ? bound.target_class() : &bound.from_class();
    if (named != nullptr && named->is_a(*token_cls)) {
      return make_error(WbemCode::kAccessDenied, "class " + named->name() + " is visible to full-admin tokens "
                                                 "without a site limit only");
    }
  }
  if (bound.is_event()) {
    return make_error(WbemCode::kInvalidQueryType,
                      "event queries are subscriptions: watch them (`pkgcast watch`, GET /api/v1/events; the query "
                      "asks for " +
                          bound.from_class().name() + ")");
  }
  prepared.query_ = std::make_shared<const wql::BoundQuery>(std::move(bound));
  prepared.sites_ = caller.sites;
  const wql::BoundQuery& q = *prepared.query_;

  if (q.is_join()) {
    PKG_TRY(plan_join(prepared, sees_tokens));
    return prepared;
  }
  prepared.steps_ = plan_steps(q.from_class(), q.where(), prepared.sites_, sees_tokens);
  for (ScanStep& step : prepared.steps_) plan_projection(step, q.select_all(), q.selected());
  // ORDER BY is the database's sort of one table, streamed and paged by (sort values, key); merging the sorted
  // streams of several classes is not done (yet), so a sorted query over a class whose rows live in several
  // tables is refused rather than answered out of order.
  if (!q.order_by().empty()) {
    if (prepared.steps_.size() > 1) {
      return make_error(WbemCode::kNotSupported, "ORDER BY over " + q.from_class().name() + ", whose instances are "
                                                 "of " + std::to_string(prepared.steps_.size()) +
                                                 " classes, is not supported; query one class");
    }
    for (const auto& term : q.order_by()) prepared.order_.push_back({term.property.index, term.descending});
  }
  if (q.count()) plan_count(prepared);
  if (q.distinct() && !q.select_all()) plan_distinct(prepared);
  return prepared;
}

// One scan step per concrete class of `from` that can hold an answer, each with the part of `condition` the store
// can evaluate and the caller's site limit pushed into it.
std::vector<ScanStep> Provider::plan_steps(const cim::ClassDef& from, const wql::Condition* condition,
                                           const std::vector<std::string>& sites, bool sees_tokens) const {
  const cim::ClassDef* token_cls = store_.registry().find("PKG_Token");
  store::Predicate pushed =
      condition == nullptr ? store::Predicate::always() : push_down(*condition, kBackendsOrderStringsAsWql);
  if (node_count(pushed) > kMaxPushedPredicateNodes) pushed = store::Predicate::always();
  std::vector<ScanStep> steps;
  for (const cim::ClassDef* cls : store_.registry().subclasses_of(from)) {
    if (!has_rows(*cls) || !class_possible(condition, *cls)) continue;
    if (!sees_tokens && token_cls != nullptr && cls->is_a(*token_cls)) continue;
    ScanStep step;
    step.cls = cls;
    step.filter = pushed;
    if (!sites.empty()) plan_scope(step, sites);
    steps.push_back(std::move(step));
  }
  return steps;
}

// `SELECT a, b`: which properties the answer clears (every one but the selected and the keys) and which system
// properties it names. Lazy properties are cleared whatever is selected, as WMI's providers leave them out of
// query answers: GetObject (get_object.cc) fills them in.
void plan_projection(ScanStep& step, bool select_all, const std::vector<wql::PropertyRef>& selected) {
  const cim::ClassDef* cls = step.cls;
  std::vector<bool> keep(cls->properties().size(), select_all);
  if (!select_all) {
    for (std::size_t k : cls->key_indices()) keep[k] = true;
    for (const auto& ref : selected) {
      if (ref.system == wql::SystemProperty::kNone && ref.source == wql::Source::kSelf && ref.index < keep.size()) {
        keep[ref.index] = true;
      } else if (ref.system != wql::SystemProperty::kNone && ref.system != wql::SystemProperty::kClass &&
                 std::find(step.system.begin(), step.system.end(), ref.system) == step.system.end()) {
        step.system.push_back(ref.system);
      }
    }
  }
  // In property order: the JSON writer walks `nulled` alongside the properties.
  for (std::size_t i = 0; i < keep.size(); ++i) {
    if (!keep[i] || cls->property(i).lazy) step.nulled.push_back(i);
  }
}

// The database counts when what decides a row is all in SQL: the whole WHERE, exactly, and the site scope.
void Provider::plan_count(PreparedQuery& prepared) const {
  prepared.shape_ = PreparedQuery::Shape::kCount;
  const wql::BoundQuery& q = *prepared.query_;
  std::optional<store::Predicate> exact =
      q.where() == nullptr ? std::optional<store::Predicate>(store::Predicate::always())
                           : push_down_exact(*q.where(), kBackendsOrderStringsAsWql);
  if (!exact || node_count(*exact) > kMaxPushedPredicateNodes) return;
  for (ScanStep& step : prepared.steps_) {
    if (step.scope == ScanStep::Scope::kPackage) return;
  }
  for (ScanStep& step : prepared.steps_) {
    store::Predicate filter = *exact;
    if (step.scope == ScanStep::Scope::kProperty) {
      std::vector<store::Predicate> any;
      for (const auto& s : prepared.sites_) {
        any.push_back(store::Predicate::compare(step.scope_property, store::Predicate::Op::kEq, cim::Value::string(s)));
      }
      filter = store::Predicate::all_of({std::move(filter), store::Predicate::any_of(std::move(any))});
    }
    step.filter = std::move(filter);
  }
  prepared.count_in_sql_ = true;
}

// DISTINCT over selected properties: rows carry only those (not the keys). Without ORDER BY the rows come in key
// order, which pages cheaply, and every combination is remembered (within max_distinct_rows): having the database
// sort by the selection instead would make each page re-sort the table (measured: 8 s for 200,000 rows in pages
// of 4,096 on SQLite, where a hash set takes 0.4 s). With ORDER BY the database sorts anyway, so the rest of the
// selection is added to the sort and equal combinations come together: only the current run is remembered.
// Arrays cannot be sorted and stay out of the sort.
void Provider::plan_distinct(PreparedQuery& prepared) const {
  prepared.shape_ = PreparedQuery::Shape::kDistinct;
  const wql::BoundQuery& q = *prepared.query_;
  for (const auto& ref : q.selected()) {
    if (std::find(prepared.distinct_props_.begin(), prepared.distinct_props_.end(), ref.index) ==
        prepared.distinct_props_.end()) {
      prepared.distinct_props_.push_back(ref.index);
    }
  }
  for (ScanStep& step : prepared.steps_) {
    step.nulled.clear();
    for (std::size_t i = 0; i < step.cls->properties().size(); ++i) {
      if (std::find(prepared.distinct_props_.begin(), prepared.distinct_props_.end(), i) ==
          prepared.distinct_props_.end()) {
        step.nulled.push_back(i);
      }
    }
  }
  if (prepared.steps_.size() != 1 || prepared.order_.empty()) return;
  for (const auto& ref : q.selected()) {
    if (ref.type.array || ref.type.base == cim::CimType::kObject) continue;
    bool ordered = false;
    for (const auto& key : prepared.order_) ordered = ordered || key.property == ref.index;
    if (!ordered) prepared.order_.push_back({ref.index, false});
  }
  for (const auto& key : prepared.order_) prepared.distinct_sorted_.push_back(key.property);
}

Status Provider::run(const PreparedQuery& prepared, const InstanceSink& sink) const {
  QueryCursor cursor;
  return run_with(prepared, cursor, sink);
}

Status Provider::run_with(const PreparedQuery& prepared, QueryCursor& cursor, const InstanceSink& sink) const {
  const PageBounds bounds{.max_rows = 4096, .slice = std::chrono::milliseconds(250)};
  bool stopped = false;
  while (!cursor.done() && !stopped) {
    PKG_TRY(run_page(prepared, cursor, bounds, [&](const cim::Instance& inst) {
      stopped = !sink(inst);
      return !stopped;
    }));
  }
  return ok_status();
}

Status Provider::run_page(const PreparedQuery& prepared, QueryCursor& cursor, const PageBounds& bounds,
                          const InstanceSink& sink) const {
  if (cursor.done_) return ok_status();
  if (!cursor.started_) {
    cursor.started_ = true;
    cursor.rows_ += prepared.subqueries_rows_;
    cursor.elapsed_ += prepared.subqueries_elapsed_;
  }
  if (prepared.join_) return join_page(prepared, cursor, bounds, sink);
  const auto t0 = std::chrono::steady_clock::now();
  const auto slice_end = t0 + bounds.slice;
  const auto budget_end =
      limits_.max_time.count() > 0 ? t0 + (std::chrono::nanoseconds(limits_.max_time) - cursor.elapsed_)
                                   : std::chrono::steady_clock::time_point::max();
  auto account = [&] { cursor.elapsed_ += std::chrono::steady_clock::now() - t0; };
  auto over = [&](const std::string& what) -> Error {
    cursor.done_ = true;
    return stopped_after(what, cursor.rows_);
  };
  while (cursor.step_ < prepared.steps_.size() && prepared.steps_[cursor.step_].cls == nullptr) ++cursor.step_;
  if (cursor.step_ >= prepared.steps_.size()) return finish(prepared, cursor, sink);
  if (prepared.count_in_sql_) return count_page(prepared, cursor, sink);
  if (prepared.shape_ == PreparedQuery::Shape::kDistinct && !cursor.distinct_) {
    cursor.distinct_ = std::make_shared<DistinctFilter>(prepared.distinct_props_, prepared.distinct_sorted_,
                                                        limits_.max_distinct_rows);
  }
  const ScanStep& step = prepared.steps_[cursor.step_];
  const wql::BoundQuery& q = *prepared.query_;
  const bool keyless = step.cls->key_indices().empty();
  std::size_t read = 0;
  bool stopped = false;   // by the sink, the slice or the budget
  std::optional<Error> failure;
  store::ScanOptions options;
  options.limit = std::max<std::size_t>(1, bounds.max_rows);
  options.after = cursor.after_;
  options.order = prepared.order_;
  options.after_sort = cursor.after_sort_;
  const Status scanned = store_.scan(*step.cls, step.filter, [&](cim::Instance&& inst) -> bool {
    if (limits_.max_rows_evaluated > 0 && cursor.rows_ >= limits_.max_rows_evaluated) {
      failure = over(rows_limit_text(limits_.max_rows_evaluated));
      stopped = true;
      return false;
    }
    ++read;
    ++cursor.rows_;
    if (!keyless) remember_position(prepared, cursor, inst);
    auto keep_going = [&] {
      const auto now = std::chrono::steady_clock::now();
      if (now >= budget_end) {
        failure = over(time_limit_text(limits_.max_time));
      }
      if (failure || now >= slice_end) stopped = true;
      return !stopped;
    };
    inst.set_location(server_name_, prepared.namespace_);  // before WHERE: __PATH, __SERVER, __NAMESPACE
    if (!wql::matches(q, inst)) return keep_going();
    auto seen = visible(prepared.sites_, step, inst, cursor);
    if (!seen.ok()) {
      failure = std::move(seen).error();
      stopped = true;
      return false;
    }
    if (!*seen) return keep_going();
    if (prepared.shape_ == PreparedQuery::Shape::kCount) {
      ++cursor.count_;
      return keep_going();
    }
    if (prepared.shape_ == PreparedQuery::Shape::kDistinct) {
      auto fresh = cursor.distinct_->admit(inst);
      if (!fresh.ok()) {
        cursor.done_ = true;
        failure = std::move(fresh).error();
        stopped = true;
        return false;
      }
      if (!*fresh) return keep_going();
    }
    for (std::size_t index : step.nulled) inst.set(index, cim::Value());
    if (!sink(inst)) {
      stopped = true;
      return false;
    }
    return keep_going();
  }, options);
  account();
  if (!scanned.ok()) {
    cursor.done_ = true;
    return scanned;
  }
  if (failure) {
    cursor.done_ = true;
    return *failure;
  }
  // The class is finished when the page read less than it could without being stopped (or it has one row).
  if (keyless || (!stopped && read < *options.limit)) {
    ++cursor.step_;
    cursor.after_.reset();
    cursor.after_sort_.reset();
    if (cursor.step_ >= prepared.steps_.size()) return finish(prepared, cursor, sink);
  }
  return ok_status();
}

// Where the next page resumes: after this row's key (and, when the database sorts, its sort values).
void Provider::remember_position(const PreparedQuery& prepared, QueryCursor& cursor, const cim::Instance& inst) {
  cursor.after_ = store::key_of(inst);
  if (!prepared.order_.empty()) {
    std::vector<cim::Value> sort_values;
    for (const auto& term : prepared.order_) sort_values.push_back(inst.get(term.property));
    cursor.after_sort_ = std::move(sort_values);
  }
}

Error stopped_after(const std::string& what, std::uint64_t rows_evaluated) {
  return make_error(WbemCode::kQuotaViolation, "the query was stopped after " + what + " (rows evaluated: " +
                                                   std::to_string(rows_evaluated) + ")");
}

std::string rows_limit_text(std::uint64_t max_rows) {
  return "evaluating " + std::to_string(max_rows) + " rows (query_max_rows_evaluated)";
}

std::string time_limit_text(std::chrono::milliseconds max_time) {
  const auto ms = max_time.count();
  return std::to_string(ms / 1000) + (ms % 1000 ? "." + std::to_string(ms % 1000 + 1000).substr(1) : "") +
         " s of evaluation (query_max_seconds)";
}

// The site limit, row by row: the pushed scope already left out most rows of other sites; this decides (strings
// as WQL compares them), and places a program or group content row by its PackageID (site_scope.h).
Result<bool> Provider::visible(const std::vector<std::string>& sites, const ScanStep& step, const cim::Instance& inst,
                               QueryCursor&) const {
  if (sites.empty()) return true;
  if (step.scope == ScanStep::Scope::kProperty) return site_listed(sites, inst.get(step.scope_property));
  if (step.scope != ScanStep::Scope::kPackage) return true;
  return site_listed(sites, package_site_of(inst));
}

// The end of the rows; COUNT(*) answers now.
Status Provider::finish(const PreparedQuery& prepared, QueryCursor& cursor, const InstanceSink& sink) const {
  cursor.done_ = true;
  if (prepared.shape_ != PreparedQuery::Shape::kCount) return ok_status();
  PKG_ASSIGN_OR_RETURN(cim::Instance answer, count_instance(cursor.count_));
  sink(answer);
  return ok_status();
}

// COUNT(*) by the database: one SELECT COUNT(*) per class, each a single statement over an indexed filter.
Status Provider::count_page(const PreparedQuery& prepared, QueryCursor& cursor, const InstanceSink& sink) const {
  const auto t0 = std::chrono::steady_clock::now();
  for (const ScanStep& step : prepared.steps_) {
    auto n = store_.count(*step.cls, step.filter);
    if (!n.ok()) {
      cursor.done_ = true;
      return std::move(n).error();
    }
    cursor.count_ += *n;
  }
  cursor.elapsed_ += std::chrono::steady_clock::now() - t0;
  return finish(prepared, cursor, sink);
}

Status Provider::exec_query(std::string_view ns, std::string_view wql_text, const site::TokenRecord& caller,
                            const InstanceSink& sink) const {
  PKG_ASSIGN_OR_RETURN(PreparedQuery prepared, prepare(ns, wql_text, caller));
  return run(prepared, sink);
}

}  // namespace pkgcast::provider
