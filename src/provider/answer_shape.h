// How a data query's answer is shaped beyond its rows (internal to the provider): SELECT DISTINCT and COUNT(*).
//
// DISTINCT keeps one row per combination of the selected values (DistinctFilter). Rows in key order: every
// combination seen is remembered. Rows sorted by the database (a DISTINCT with ORDER BY sorts by the ORDER BY terms
// then the rest of the selection): equal combinations arrive together and only the current run of equal sort
// values is remembered. Strings are equal when they are equal ignoring ASCII case, as WQL's `=` says; PostgreSQL
// sorts by lower(), which folds beyond ASCII, so a run only ends where the values certainly differ in the
// database's order too (certainly_apart).
//
// COUNT(*) answers one instance of __Generic with a uint32 Count, as Configuration Manager's provider does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "cim/cim.h"
#include "core/result.h"

namespace pkgcast::provider {

// The registry holding __Generic { uint32 Count; }, built once.
const cim::ClassRegistry& generic_registry();
// A __Generic instance whose Count is `n`. WBEM_E_QUOTA_VIOLATION when n does not fit a uint32.
Result<cim::Instance> count_instance(std::uint64_t n);

// The values of one answer row that DISTINCT compares, and the run bookkeeping. Not thread-safe (one per cursor).
class DistinctFilter {
 public:
  // `props`: the selected properties (indices into the row's class); `sorted`: how many of them lead the
  // database's sort order, in that order (0 when the rows are not sorted: every combination is remembered);
  // `max_remembered`: the most combinations held at once (0 = unlimited).
  DistinctFilter(std::vector<std::size_t> props, std::vector<std::size_t> sorted, std::uint64_t max_remembered);

  // True when the row's combination was not seen (it is remembered); false for a repeat. WBEM_E_QUOTA_VIOLATION
  // when holding it would pass max_remembered.
  Result<bool> admit(const cim::Instance& row);

  std::size_t remembered() const { return seen_.size(); }

 private:
  std::vector<std::size_t> props_;
  std::vector<std::size_t> sorted_;
  std::uint64_t max_;
  std::vector<cim::Value> last_sorted_;  // the sort values of the previous admitted or refused row
  bool have_last_ = false;
  std::unordered_set<std::string> seen_;  // combinations of the current run, encoded
};

// The combination as a string that is equal for equal combinations: strings folded to ASCII lower case, numbers
// and datetimes by value, arrays element by element.
std::string distinct_key(const std::vector<const cim::Value*>& values);

// True when a and b (values of one property) are certainly apart in the database's sort order: different
// non-string values, NULL against a value, or strings that differ ignoring ASCII case while both are ASCII.
bool certainly_apart(const cim::Value& a, const cim::Value& b);

}  // namespace pkgcast::provider
