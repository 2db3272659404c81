// How the provider answers a join (internal; provider.h states the contract, docs/wql.md the semantics).
//
// A join streams its first class in pages, as a one-class query streams its class (same pushed pre-filter, same
// ORDER BY in SQL, same resume after the last key). For each page, every joined class in turn gets its partner
// candidates from the store in one scan per batch of values: the JoinKey's equality (`P.PackageID =
// G.PackageID`) becomes `G.PackageID IN (the page's values)` pushed into SQL beside the class's own conditions and
// the caller's site limit, so the database finds partners by index and nothing is read twice. A class without a
// usable key (no equality, or one whose two sides have different types) is read once, whole, for the query.
// wql::join_rows then decides each page's rows with the full ON and WHERE conditions, so the answer is WQL's
// whatever the pre-filters let through; pushdown_property_test checks this against brute force.
//
// Time: a page is joined in slices (PageBounds::slice), cut between two rows of the first class, so a join whose
// combinations are costly shares the producer threads as a one-class scan does.
// Memory: one page of the first class, its partners, and the page's joined rows not yet delivered (or a class
// read whole): at most QueryLimits::max_join_rows at once, else WBEM_E_QUOTA_VIOLATION. A join sorted in memory
// (JoinPlan::sort_in_memory) holds its whole answer, and the rows it shares, under the same bound. Site scoping:
// each class's rows pass the caller's site rule (Provider::visible), exactly as in a one-class query, before they
// can join.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cim/cim.h"
#include "provider/provider.h"

namespace pkgcast::provider {

// How partners of one joined class are found.
struct JoinTablePlan {
  std::vector<ScanStep> steps;  // its concrete classes, each with its own conditions and the site limit pushed
  // The JoinKey pushed as an IN list: this class's property, the class before it and that class's property.
  // nullopt: the class is read whole (once per query).
  struct Lookup {
    std::size_t inner = 0;
    std::size_t outer_table = 0;
    std::size_t outer = 0;
  };
  std::optional<Lookup> lookup;
};

struct JoinPlan {
  std::vector<JoinTablePlan> tables;  // [0]: the first class, streamed (its steps are the cursor's)
  // Several classes answered: __Generic with one embedded object per answered class, named as the query names it.
  std::shared_ptr<const cim::ClassRegistry> generic;
  std::vector<std::size_t> generic_slot;  // per class of FROM: its property in __Generic, or SIZE_MAX
  // Per class of FROM: the projection of its answered instances, one step per concrete class (nulled, system).
  std::vector<std::vector<ScanStep>> projections;
  // DISTINCT over the one answered class: the properties it compares (the selected ones, or the keys for P.*).
  std::vector<std::size_t> distinct_props;
  // ORDER BY that the database cannot make while the first class streams (a term on a later class, or a first
  // class whose instances live in several tables): the whole answer is made, held, sorted (wql::order_values,
  // ties in the join's own order) and then sent. Empty: the database sorts the first class, or nothing is sorted.
  struct SortTerm {
    std::size_t table = 0;
    std::size_t index = 0;
    bool descending = false;
  };
  std::vector<SortTerm> sort_in_memory;
};

// An answer row of a join sorted in memory, with the values it sorts by (one per JoinPlan::SortTerm).
struct SortedAnswer {
  std::vector<cim::Value> values;
  std::shared_ptr<const cim::Instance> answer;
};

// A join's progress between pages (QueryCursor::join_). Not thread-safe (one per cursor).
struct JoinState {
  // Joined answer rows made but not yet taken by the sink. An unprojected embedded object shares the page's rows
  // (aliasing shared_ptr) instead of copying them.
  std::deque<std::shared_ptr<const cim::Instance>> pending;
  bool outer_done = false;            // every page of the first class has been read
  // Classes read whole (no lookup): their rows, read on the first page and kept for the query.
  std::vector<std::shared_ptr<std::vector<cim::Instance>>> whole;  // nullptr: not read (yet)
  // A join sorted in memory: every answer made so far (sent once the first class is read to its end), and the
  // rows of earlier pages those answers keep alive (an unprojected embedded object shares its page's rows).
  std::vector<SortedAnswer> sorted;
  std::uint64_t kept_page_rows = 0;
  std::uint64_t sorted_bytes = 0;  // what `sorted` and the rows it keeps hold, estimated (QueryLimits::max_join_bytes)
  // The page being joined, kept between slices: a page's join is cut between two rows of the first class once the
  // slice's time is spent (PageBounds::slice), so that no page holds a producer thread for longer. nullptr: none.
  std::shared_ptr<std::vector<std::vector<cim::Instance>>> page;  // per class of FROM: the page's rows
  std::vector<std::vector<const cim::Instance*>> candidates;      // per class: the rows that may stand for it
  std::size_t next_outer = 0;                                     // the first row of candidates[0] not joined yet
  // Each row of the page as the answer shows it, projected once however many joined rows it is part of (a package
  // with three programs is copied once, not three times).
  std::vector<std::unordered_map<const cim::Instance*, std::shared_ptr<const cim::Instance>>> shown;
};

// WBEM_E_QUOTA_VIOLATION: "the query was stopped after <what> (rows evaluated: n)", and the limits' <what>
// (provider.cc).
Error stopped_after(const std::string& what, std::uint64_t rows_evaluated);
std::string rows_limit_text(std::uint64_t max_rows);
std::string time_limit_text(std::chrono::milliseconds max_time);

// `SELECT a, b` over step's class: the properties the answer clears (all but the selected and the keys) and the
// system properties it names (provider.cc).
void plan_projection(ScanStep& step, bool select_all, const std::vector<wql::PropertyRef>& selected);

}  // namespace pkgcast::provider
