// Joins: the plan (which conditions each class's scan can take, how partners are looked up) and the paged run.
// join.h explains the shape; provider.h the contract.
#include "provider/join.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include "core/strings.h"
#include "provider/answer_shape.h"

namespace pkgcast::provider {
namespace {

// Values of one lookup scan's IN list: a bound on the statement, so one page's scan stays short. The store sends
// an IN list of strings to PostgreSQL as `= ANY(array)`, which it probes value by value at any length (an OR of
// 256 equalities was planned as a walk of the whole key index).
constexpr std::size_t kLookupBatch = 256;
constexpr std::size_t kNoSlot = SIZE_MAX;

bool value_only_in(const wql::ValueExpr& v, std::size_t t) {
  if (v.kind == wql::ValueExpr::Kind::kProperty) return v.property.table == t;
  for (const auto& a : v.args) {
    if (!value_only_in(a, t)) return false;
  }
  return true;
}

// Whether c reads class t of FROM only (so that it can filter t's scan).
bool only_in(const wql::Condition& c, std::size_t t) {
  using K = wql::ConditionKind;
  switch (c.kind) {
    case K::kAnd:
    case K::kOr:
    case K::kNot:
      for (const auto& child : c.children) {
        if (!only_in(child, t)) return false;
      }
      return true;
    case K::kConstant: return true;
    case K::kIsa:
    case K::kClassEq: return c.object == wql::Source::kSelf && c.table == t;
    case K::kCompare:
      return c.lhs.table == t && (c.rhs.kind == wql::Operand::Kind::kLiteral || c.rhs.property.table == t);
    case K::kValueCompare:
    case K::kValueLike:
      for (const auto& v : c.operands) {
        if (!value_only_in(v, t)) return false;
      }
      return true;
    default: return c.lhs.table == t;
  }
}

void add_conjuncts_of(const wql::Condition& c, std::size_t t, std::vector<wql::Condition>& out) {
  if (c.kind == wql::ConditionKind::kAnd) {
    for (const auto& child : c.children) add_conjuncts_of(child, t, out);
  } else if (only_in(c, t)) {
    out.push_back(c);
  }
}

// What every answer row's instance of class t satisfies, as a condition over t alone: the conjuncts of WHERE and
// of the inner joins' ONs that read only t, where t can never be a LEFT JOIN's missing partner, and of t's own ON.
std::optional<wql::Condition> own_condition(const wql::BoundQuery& q, std::size_t t) {
  std::vector<wql::Condition> terms;
  const auto& tables = q.tables();
  const bool never_missing = tables[t].kind != wql::ast::JoinKind::kLeft;
  if (never_missing && q.where() != nullptr) add_conjuncts_of(*q.where(), t, terms);
  if (tables[t].on) add_conjuncts_of(*tables[t].on, t, terms);
  if (t == 0) {
    for (const auto& other : tables) {
      if (other.kind == wql::ast::JoinKind::kInner && other.on) add_conjuncts_of(*other.on, 0, terms);
    }
  }
  if (terms.empty()) return std::nullopt;
  if (terms.size() == 1) return std::move(terms.front());
  wql::Condition all;
  all.kind = wql::ConditionKind::kAnd;
  all.children = std::move(terms);
  return all;
}

bool stringish(cim::CimType t) { return t == cim::CimType::kString || t == cim::CimType::kReference; }

// A key can go into SQL as an IN list when the outer values are of the inner column's type, as store predicates
// need (strings and references compare as text).
std::optional<JoinTablePlan::Lookup> lookup_of(const wql::JoinKey& key) {
  const cim::CimType a = key.inner.type.base;
  const cim::CimType b = key.outer.type.base;
  if (a != b && !(stringish(a) && stringish(b))) return std::nullopt;
  return JoinTablePlan::Lookup{key.inner.index, key.outer.table, key.outer.index};
}

// inst as the answer shows it: a copy with what the projection leaves out cleared (the step of its class says
// what), or, when it clears nothing, inst itself, shared with `owner` (the rows it lives in) rather than copied.
std::shared_ptr<const cim::Instance> projected(const std::shared_ptr<const void>& owner, const cim::Instance* inst,
                                               const std::vector<ScanStep>& answer_steps) {
  for (const auto& step : answer_steps) {
    if (step.cls != &inst->class_def() || step.nulled.empty()) continue;
    auto out = std::make_shared<cim::Instance>(*inst);
    for (std::size_t index : step.nulled) out->set(index, cim::Value());
    return out;
  }
  return std::shared_ptr<const cim::Instance>(owner, inst);
}

// A join sorted in memory, once its whole answer is made: sorted by the ORDER BY (a stable sort, so ties keep the
// join's own order) and queued to be sent.
void sort_answers(const JoinPlan& plan, JoinState& state) {
  std::stable_sort(state.sorted.begin(), state.sorted.end(), [&](const SortedAnswer& a, const SortedAnswer& b) {
    for (std::size_t i = 0; i < plan.sort_in_memory.size(); ++i) {
      const int c = wql::order_values(a.values[i], b.values[i]);
      if (c != 0) return plan.sort_in_memory[i].descending ? c > 0 : c < 0;
    }
    return false;
  });
  for (auto& sorted : state.sorted) state.pending.push_back(std::move(sorted.answer));
  state.sorted.clear();
  state.sorted.shrink_to_fit();
}

std::string join_limit_text(std::uint64_t max_rows) {
  return "holding " + std::to_string(max_rows) + " rows of a join in memory (QueryLimits::max_join_rows)";
}

// What the join holds at once: this page's rows of every class, classes read whole, rows not yet delivered.
bool over_join_limit(const JoinState& state, const std::vector<std::vector<cim::Instance>>& rows, std::uint64_t max) {
  if (max == 0) return false;
  std::uint64_t held = state.pending.size() + state.sorted.size() + state.kept_page_rows;
  for (const auto& r : rows) held += r.size();
  for (const auto& w : state.whole) held += w ? w->size() : 0;
  return held > max;
}

}  // namespace

Status Provider::plan_join(PreparedQuery& prepared, bool sees_tokens) const {
  const wql::BoundQuery& q = *prepared.query_;
  const cim::ClassDef* token_cls = store_.registry().find("PKG_Token");
  auto plan = std::make_shared<JoinPlan>();
  for (std::size_t t = 0; t < q.tables().size(); ++t) {
    const wql::BoundTable& table = q.tables()[t];
    if (!sees_tokens && token_cls != nullptr && table.cls->is_a(*token_cls)) {
      return make_error(WbemCode::kAccessDenied, "class " + table.cls->name() + " is visible to full-admin tokens "
                                                 "without a site limit only");
    }
    const std::optional<wql::Condition> own = own_condition(q, t);
    JoinTablePlan tp;
    tp.steps = plan_steps(*table.cls, own ? &*own : nullptr, prepared.sites_, sees_tokens);
    if (t > 0 && table.key) tp.lookup = lookup_of(*table.key);
    plan->tables.push_back(std::move(tp));
  }
  // The cursor pages through the first class's steps as a one-class query pages through its class.
  const std::vector<ScanStep>& outer = plan->tables.front().steps;
  if (!q.order_by().empty()) {
    bool first_class_only = outer.size() == 1;
    for (const auto& term : q.order_by()) first_class_only = first_class_only && term.property.table == 0;
    for (const auto& term : q.order_by()) {
      if (first_class_only) {
        prepared.order_.push_back({term.property.index, term.descending});
      } else {
        plan->sort_in_memory.push_back({term.property.table, term.property.index, term.descending});
      }
    }
  }
  // The answer: one class's instances, projected as a one-class query's, or __Generic.
  plan->projections.resize(q.tables().size());
  for (std::size_t t = 0; t < q.tables().size(); ++t) {
    const wql::BoundTable& table = q.tables()[t];
    if (!table.answered) continue;
    for (const cim::ClassDef* cls : store_.registry().subclasses_of(*table.cls)) {
      ScanStep step;
      step.cls = cls;
      plan_projection(step, table.select_all, table.selected);
      plan->projections[t].push_back(std::move(step));
    }
  }
  if (const auto only = q.answer_table()) {
    const wql::BoundTable& table = q.tables()[*only];
    prepared.steps_ = plan->projections[*only];
    if (q.distinct()) {
      prepared.shape_ = PreparedQuery::Shape::kDistinct;
      if (table.select_all) {
        plan->distinct_props = table.cls->key_indices();
      } else {
        for (const auto& ref : table.selected) {
          if (std::find(plan->distinct_props.begin(), plan->distinct_props.end(), ref.index) ==
              plan->distinct_props.end()) {
            plan->distinct_props.push_back(ref.index);
          }
        }
        // As a one-class DISTINCT (Provider::plan_distinct): a row stands for every instance with its values, so
        // it carries only the selected properties, not one of those instances' keys.
        for (ScanStep& step : prepared.steps_) {
          step.nulled.clear();
          for (std::size_t i = 0; i < step.cls->properties().size(); ++i) {
            if (std::find(plan->distinct_props.begin(), plan->distinct_props.end(), i) == plan->distinct_props.end()) {
              step.nulled.push_back(i);
            }
          }
        }
      }
    }
  } else {
    cim::ClassSpec spec;
    spec.name = "__Generic";
    spec.description = "A joined row: one embedded object per class of the join's answer";
    plan->generic_slot.assign(q.tables().size(), kNoSlot);
    for (std::size_t t = 0; t < q.tables().size(); ++t) {
      if (!q.tables()[t].answered) continue;
      plan->generic_slot[t] = spec.properties.size();
      spec.properties.push_back({q.tables()[t].name, cim::Type{cim::CimType::kObject, false}, false, true,
                                 q.tables()[t].cls->name(), false, {}, false});
    }
    PKG_ASSIGN_OR_RETURN(cim::ClassRegistry generic, cim::ClassRegistry::build({spec}));
    plan->generic = std::make_shared<const cim::ClassRegistry>(std::move(generic));
    prepared.embedded_steps_.resize(spec.properties.size());
    for (std::size_t t = 0; t < q.tables().size(); ++t) {
      if (plan->generic_slot[t] != kNoSlot) prepared.embedded_steps_[plan->generic_slot[t]] = plan->projections[t];
    }
  }
  if (q.count()) prepared.shape_ = PreparedQuery::Shape::kCount;
  prepared.join_ = std::move(plan);
  return ok_status();
}

// One page of the first class, as run_page reads a one-class query's: resumes after the cursor's key (and sort
// values), counts rows against max_rows_evaluated, locates each row and keeps the ones the caller may see.
Status Provider::read_outer_page(const PreparedQuery& prepared, QueryCursor& cursor, const PageBounds& bounds,
                                 std::vector<cim::Instance>& rows) const {
  const std::vector<ScanStep>& steps = prepared.join_->tables.front().steps;
  JoinState& state = *cursor.join_;
  if (cursor.step_ >= steps.size()) {
    state.outer_done = true;
    return ok_status();
  }
  const ScanStep& step = steps[cursor.step_];
  const bool keyless = step.cls->key_indices().empty();
  store::ScanOptions options;
  options.limit = std::max<std::size_t>(1, bounds.max_rows);
  options.after = cursor.after_;
  options.order = prepared.order_;
  options.after_sort = cursor.after_sort_;
  std::size_t read = 0;
  std::optional<Error> failure;
  PKG_TRY(store_.scan(*step.cls, step.filter, [&](cim::Instance&& inst) -> bool {
    if (limits_.max_rows_evaluated > 0 && cursor.rows_ >= limits_.max_rows_evaluated) {
      failure = stopped_after(rows_limit_text(limits_.max_rows_evaluated), cursor.rows_);
      return false;
    }
    ++read;
    ++cursor.rows_;
    if (!keyless) remember_position(prepared, cursor, inst);
    inst.set_location(server_name_, prepared.namespace_);
    auto seen = visible(prepared.sites_, step, inst, cursor);
    if (!seen.ok()) {
      failure = std::move(seen).error();
      return false;
    }
    if (*seen) rows.push_back(std::move(inst));
    return true;
  }, options));
  if (failure) return *failure;
  if (keyless || read < *options.limit) {
    ++cursor.step_;
    cursor.after_.reset();
    cursor.after_sort_.reset();
    state.outer_done = cursor.step_ >= steps.size();
  }
  return ok_status();
}

// The candidates of class `table` for the rows of the classes before it: looked up by the key's values in IN
// batches, or read whole once. Every row read counts against max_rows_evaluated and passes the site rule.
Status Provider::read_partners(const PreparedQuery& prepared, QueryCursor& cursor, std::size_t table,
                               std::vector<std::vector<const cim::Instance*>>& candidates,
                               std::vector<std::vector<cim::Instance>>& rows) const {
  const JoinTablePlan& plan = prepared.join_->tables[table];
  JoinState& state = *cursor.join_;
  std::optional<Error> failure;
  auto read = [&](const ScanStep& step, const store::Predicate& filter, std::vector<cim::Instance>& into) -> Status {
    PKG_TRY(store_.scan(*step.cls, filter, [&](cim::Instance&& inst) -> bool {
      if (limits_.max_rows_evaluated > 0 && cursor.rows_ >= limits_.max_rows_evaluated) {
        failure = stopped_after(rows_limit_text(limits_.max_rows_evaluated), cursor.rows_);
        return false;
      }
      ++cursor.rows_;
      inst.set_location(server_name_, prepared.namespace_);
      auto seen = visible(prepared.sites_, step, inst, cursor);
      if (!seen.ok()) {
        failure = std::move(seen).error();
        return false;
      }
      if (!*seen) return true;
      into.push_back(std::move(inst));
      if (over_join_limit(state, rows, limits_.max_join_rows)) {
        failure = stopped_after(join_limit_text(limits_.max_join_rows), cursor.rows_);
        return false;
      }
      return true;
    }));
    if (failure) return *failure;
    return ok_status();
  };
  if (!plan.lookup) {
    if (!state.whole[table]) {
      auto all = std::make_shared<std::vector<cim::Instance>>();
      for (const ScanStep& step : plan.steps) PKG_TRY(read(step, step.filter, *all));
      state.whole[table] = std::move(all);
    }
    for (const auto& inst : *state.whole[table]) candidates[table].push_back(&inst);
    return ok_status();
  }
  const JoinTablePlan::Lookup& lookup = *plan.lookup;
  const wql::JoinKey& key = *prepared.query_->tables()[table].key;
  std::vector<cim::Value> values;
  std::unordered_set<std::string> seen;
  for (const cim::Instance* outer : candidates[lookup.outer_table]) {
    if (outer == nullptr) continue;
    const cim::Value& v = outer->get(lookup.outer);
    auto text = wql::join_key_text(v, key.domain);
    if (text && seen.insert(std::move(*text)).second) values.push_back(v);
  }
  for (std::size_t begin = 0; begin < values.size(); begin += kLookupBatch) {
    std::vector<store::Predicate> any;
    const std::size_t end = std::min(values.size(), begin + kLookupBatch);
    for (std::size_t i = begin; i < end; ++i) {
      any.push_back(store::Predicate::compare(lookup.inner, store::Predicate::Op::kEq, values[i]));
    }
    store::Predicate in = any.size() == 1 ? std::move(any.front()) : store::Predicate::any_of(std::move(any));
    for (const ScanStep& step : plan.steps) {
      const store::Predicate filter =
          step.filter.kind == store::Predicate::Kind::kTrue ? in : store::Predicate::all_of({step.filter, in});
      PKG_TRY(read(step, filter, rows[table]));
    }
  }
  for (const auto& inst : rows[table]) candidates[table].push_back(&inst);
  return ok_status();
}

// One page of a join: the rows left from the previous page first, then one page of the first class, its
// partners, and the joined rows they make.
Status Provider::join_page(const PreparedQuery& prepared, QueryCursor& cursor, const PageBounds& bounds,
                           const InstanceSink& sink) const {
  const JoinPlan& plan = *prepared.join_;
  const wql::BoundQuery& q = *prepared.query_;
  if (!cursor.join_) {
    cursor.join_ = std::make_shared<JoinState>();
    cursor.join_->whole.resize(plan.tables.size());
    if (prepared.shape_ == PreparedQuery::Shape::kDistinct) {
      cursor.distinct_ = std::make_shared<DistinctFilter>(plan.distinct_props, std::vector<std::size_t>{},
                                                          limits_.max_distinct_rows);
    }
  }
  JoinState& state = *cursor.join_;
  auto drain = [&] {
    while (!state.pending.empty()) {
      const std::shared_ptr<const cim::Instance> inst = std::move(state.pending.front());
      state.pending.pop_front();
      if (!sink(*inst)) return false;
    }
    return true;
  };
  if (!drain()) return ok_status();
  if (state.outer_done && !state.page) return finish(prepared, cursor, sink);
  const auto t0 = std::chrono::steady_clock::now();
  auto failed = [&](Error e) {
    cursor.done_ = true;
    cursor.elapsed_ += std::chrono::steady_clock::now() - t0;
    return e;
  };
  const std::size_t n = plan.tables.size();
  if (!state.page) {
    // A new page: the first class's rows, then each joined class's partners for them.
    state.page = std::make_shared<std::vector<std::vector<cim::Instance>>>(n);
    state.candidates.assign(n, {});
    state.shown.assign(n, {});
    state.next_outer = 0;
    auto& rows = *state.page;
    if (Status st = read_outer_page(prepared, cursor, bounds, rows[0]); !st.ok()) return failed(st.error());
    for (const auto& inst : rows[0]) state.candidates[0].push_back(&inst);
    for (std::size_t t = 1; t < n && !rows[0].empty(); ++t) {
      if (Status st = read_partners(prepared, cursor, t, state.candidates, rows); !st.ok()) return failed(st.error());
    }
  }
  const std::vector<std::vector<cim::Instance>>& rows = *state.page;
  auto owner_of = [&](std::size_t t) -> std::shared_ptr<const void> {
    if (state.whole[t]) return state.whole[t];
    return state.page;
  };
  const bool sorting = !plan.sort_in_memory.empty();
  auto shown_row = [&](std::size_t t, const cim::Instance* inst, const std::vector<ScanStep>& steps) {
    auto& answer_row = state.shown[t][inst];
    if (!answer_row) {
      answer_row = projected(owner_of(t), inst, steps);
      // A projected copy is held by the sorted answers; a row shown as it is shares the page (counted below).
      if (sorting && answer_row.get() != inst) state.sorted_bytes += cim::estimated_bytes(*answer_row);
    }
    return answer_row;
  };
  const auto over_bytes = [&] { return limits_.max_join_bytes > 0 && state.sorted_bytes > limits_.max_join_bytes; };
  const auto bytes_limit_text = [&] {
    return "holding " + std::to_string(limits_.max_join_bytes >> 20) +
           " MiB of a join sorted in memory (QueryLimits::max_join_bytes)";
  };
  std::optional<Error> failure;
  // Every candidate the join tries is a row tested against its conditions: it counts against max_rows_evaluated,
  // and the time is checked as the join goes, not after it (a join whose WHERE is never TRUE tries every
  // combination of its classes and finds nothing to send).
  const auto within_budget = [&](std::uint64_t tried) {
    cursor.rows_ += tried;
    if (limits_.max_rows_evaluated > 0 && cursor.rows_ >= limits_.max_rows_evaluated) {
      failure = stopped_after(rows_limit_text(limits_.max_rows_evaluated), cursor.rows_);
      return false;
    }
    if (limits_.max_time.count() > 0 && cursor.elapsed_ + (std::chrono::steady_clock::now() - t0) > limits_.max_time) {
      failure = stopped_after(time_limit_text(limits_.max_time), cursor.rows_);
      return false;
    }
    return true;
  };
  const auto visit = [&](wql::JoinedRow row) {
    if (prepared.shape_ == PreparedQuery::Shape::kCount) {
      ++cursor.count_;
      return true;
    }
    std::shared_ptr<const cim::Instance> answer;
    if (const auto only = q.answer_table()) {
      // A LEFT JOIN's missing partner has no instance to answer with (no key, no path): the row is left out.
      if (row[*only] == nullptr) return true;
      answer = shown_row(*only, row[*only], prepared.steps_);
      if (cursor.distinct_) {
        auto fresh = cursor.distinct_->admit(*answer);
        if (!fresh.ok()) {
          failure = std::move(fresh).error();
          return false;
        }
        if (!*fresh) return true;
      }
    } else {
      auto generic = std::make_shared<cim::Instance>(*plan.generic->find("__Generic"));
      for (std::size_t t = 0; t < n; ++t) {
        if (plan.generic_slot[t] == kNoSlot || row[t] == nullptr) continue;
        generic->set(plan.generic_slot[t], cim::Value::object(shown_row(t, row[t], plan.projections[t])));
      }
      answer = std::move(generic);
    }
    if (plan.sort_in_memory.empty()) {
      state.pending.push_back(std::move(answer));
    } else {
      SortedAnswer sorted{{}, std::move(answer)};
      sorted.values.reserve(plan.sort_in_memory.size());
      for (const auto& term : plan.sort_in_memory) {
        sorted.values.push_back(row[term.table] == nullptr ? cim::Value() : row[term.table]->get(term.index));
      }
      // The answer's own cost: its place in `sorted`, its sort values, a __Generic row's slots.
      state.sorted_bytes += 64 + 48 * sorted.values.size() + (q.answer_table() ? 0 : 32 * n);
      state.sorted.push_back(std::move(sorted));
      if (over_bytes()) {
        failure = stopped_after(bytes_limit_text(), cursor.rows_);
        return false;
      }
    }
    if (over_join_limit(state, rows, limits_.max_join_rows)) {
      failure = stopped_after(join_limit_text(limits_.max_join_rows), cursor.rows_);
      return false;
    }
    return true;
  };
  // The slice ends between two rows of the first class once its time is spent (or its rows are made: they wait
  // in `pending` for the sink).
  const auto slice_spent = [&] {
    return std::chrono::steady_clock::now() - t0 > bounds.slice || state.pending.size() >= bounds.max_rows;
  };
  if (!rows[0].empty()) {
    state.next_outer = wql::join_rows_from(q, state.candidates, state.next_outer, visit, within_budget, slice_spent);
  }
  if (failure) return failed(*failure);
  cursor.elapsed_ += std::chrono::steady_clock::now() - t0;
  if (limits_.max_time.count() > 0 && cursor.elapsed_ > limits_.max_time) {
    return failed(stopped_after(time_limit_text(limits_.max_time), cursor.rows_));
  }
  if (state.next_outer >= state.candidates[0].size()) {
    // The page is joined: it goes, but for the rows the answers held for a sort still share.
    const auto page = std::move(state.page);
    state.candidates.clear();
    state.shown.clear();
    if (!plan.sort_in_memory.empty()) {
      if (page.use_count() > 1) {
        for (const auto& r : *page) {
          state.kept_page_rows += r.size();
          for (const auto& inst : r) state.sorted_bytes += cim::estimated_bytes(inst);
        }
        if (over_bytes()) return failed(stopped_after(bytes_limit_text(), cursor.rows_));
      }
      if (state.outer_done) sort_answers(plan, state);
    }
  }
  if (!drain()) return ok_status();
  if (state.outer_done && !state.page) return finish(prepared, cursor, sink);
  return ok_status();
}

}  // namespace pkgcast::provider
