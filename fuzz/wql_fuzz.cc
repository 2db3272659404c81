// Fuzzes the whole WQL pipeline on arbitrary bytes:
//   parse -> (error: must be a well-formed Error) or print -> parse again -> must equal the first tree and print
//   the same text -> to_json -> bind against the builtin registry (GETDATE() fixed) -> answer IN (SELECT ...)
//   subqueries over fixed instances -> evaluate over those instances and events, and a join's rows over them.
// Any crash, sanitizer report, hang or broken round trip is a bug; the round trip aborts explicitly.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "cim/cim.h"
#include "wql/wql.h"

namespace {

using pkgcast::cim::ClassRegistry;
using pkgcast::cim::Instance;
using pkgcast::cim::Json;

constexpr const char* kInstances = R"([
  {"__CLASS": "SMS_Package", "PackageID": "ABC00001", "Name": "Office 2021", "Priority": 2, "PackageSize": 2048,
   "SourceDate": "2026-01-15T10:00:00Z", "Description": "it's 100% [free]"},
  {"__CLASS": "SMS_Package", "PackageID": "ABC00002", "Name": "\u00dcber Paket"},
  {"__CLASS": "SMS_PackageStatusRootSummarizer", "PackageID": "ABC00001", "Name": "Office", "Targeted": 5,
   "Installed": 5, "Retrying": 0, "Failed": 0, "SourceDate": "2026-01-15T10:00:00Z"},
  {"__CLASS": "SMS_DPStatusInfo", "NALPath": "DP01", "IsPullDP": true, "NumberErrors": 3},
  {"__CLASS": "SMS_DistributionDPStatus", "ID": 18446744073709551615, "InsStrings": ["a", "b"]},
  {"__CLASS": "__InstanceCreationEvent", "__REVISION": 7, "TIME_CREATED": 1,
   "TargetInstance": {"__CLASS": "SMS_Package", "PackageID": "ABC00003", "Name": "New"}},
  {"__CLASS": "__InstanceModificationEvent", "__REVISION": 8,
   "TargetInstance": {"__CLASS": "SMS_PackageStatusRootSummarizer", "PackageID": "ABC00001", "Installed": 5,
                      "Targeted": 5},
   "PreviousInstance": {"__CLASS": "SMS_PackageStatusRootSummarizer", "PackageID": "ABC00001", "Installed": 4,
                        "Targeted": 5}},
  {"__CLASS": "__InstanceModificationEvent",
   "TargetInstance": {"__CLASS": "SMS_DPStatusInfo", "NALPath": "DP01", "IsPullDP": false}},
  {"__CLASS": "__InstanceDeletionEvent"},
  {"__CLASS": "__AggregateEvent", "NumberOfEvents": 30}
])";

const std::vector<Instance>& instances() {
  static const std::vector<Instance> all = [] {
    std::vector<Instance> out;
    for (const auto& j : Json::parse(kInstances)) {
      auto inst = pkgcast::cim::instance_from_json(j, ClassRegistry::builtin());
      if (!inst.ok()) {
        std::fprintf(stderr, "bad fixture: %s\n", inst.error().to_string().c_str());
        std::abort();
      }
      out.push_back(std::move(inst).value());
    }
    return out;
  }();
  return all;
}

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "%s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace wql = pkgcast::wql;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto q = wql::parse(text);
  if (!q.ok()) {
    if (q.error().message.empty()) fail("error without a message", text);
    return 0;
  }
  const std::string printed = wql::print(*q);
  auto again = wql::parse(printed);
  if (!again.ok()) fail("canonical form does not parse", printed + " -> " + again.error().to_string());
  if (!(*again == *q)) fail("parse(print(q)) != q", printed);
  if (wql::print(*again) != printed) fail("print is not stable", printed);
  (void)wql::to_json(*q).dump();

  const wql::BindOptions options{.now = pkgcast::cim::DateTime::from_unix_micros(1'773'576'000'000'000)};
  auto bound = wql::bind(*q, ClassRegistry::builtin(), options);
  if (!bound.ok()) return 0;
  // IN (SELECT ...): answered over the fixture, as the provider answers it over the store.
  bound = wql::resolve_subqueries(*bound, [](const wql::BoundQuery& sub, const wql::PropertyRef& selected)
                                              -> pkgcast::Result<std::vector<pkgcast::cim::Value>> {
    std::vector<pkgcast::cim::Value> values;
    for (const Instance& inst : instances()) {
      if (wql::matches(sub, inst)) values.push_back(inst.get(selected.index));
    }
    return values;
  });
  if (!bound.ok()) fail("a subquery over the fixture failed", bound.error().to_string());
  (void)wql::bound_classes(*bound);
  if (bound->is_join()) {
    // Joins: every class's candidates from the fixture, nested loops bounded by a number of joined rows.
    std::vector<std::vector<const Instance*>> candidates;
    for (const auto& table : bound->tables()) {
      candidates.emplace_back();
      for (const Instance& inst : instances()) {
        if (inst.class_def().is_a(*table.cls)) candidates.back().push_back(&inst);
      }
    }
    int rows = 0;
    wql::join_rows(*bound, candidates, [&rows](wql::JoinedRow row) {
      for (std::size_t t = 0; t < row.size(); ++t) (void)row[t];
      return ++rows < 10'000;
    });
  }
  for (const Instance& inst : instances()) {
    (void)wql::matches(*bound, inst);
    (void)wql::evaluate(*bound, inst);
    if (bound->group()) (void)wql::matches_aggregate(*bound, inst);
  }
  return 0;
}
