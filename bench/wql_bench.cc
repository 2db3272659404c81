// WQL engine benchmarks. Targets (docs/wql.md, "Performance"): parse+bind of the SDK's event query under 5 us;
// evaluation of a 3-term condition at 10 million instances per second or more on one core.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "cim/cim.h"
#include "wql/wql.h"

namespace {

using pkgcast::cim::ClassRegistry;
using pkgcast::cim::Instance;
using pkgcast::cim::Value;
namespace wql = pkgcast::wql;

constexpr const char* kSdkEventQuery =
    "SELECT * FROM __InstanceModificationEvent WITHIN 120 WHERE TargetInstance ISA "
    "'SMS_PackageStatusRootSummarizer'";
constexpr const char* kThreeTerms =
    "SELECT * FROM SMS_PackageStatusRootSummarizer WHERE Installed = Targeted AND Targeted > 0 AND "
    "Name LIKE 'Office%'";

// 1024 root summarizer rows with a realistic mix: about a quarter fail each of the three terms in turn.
std::vector<Instance> root_rows() {
  const auto& reg = ClassRegistry::builtin();
  const auto& cls = *reg.find("SMS_PackageStatusRootSummarizer");
  const std::size_t id = *cls.find_property("PackageID");
  const std::size_t name = *cls.find_property("Name");
  const std::size_t targeted = *cls.find_property("Targeted");
  const std::size_t installed = *cls.find_property("Installed");
  std::vector<Instance> rows;
  for (std::uint32_t i = 0; i < 1024; ++i) {
    Instance row(cls);
    row.set(id, Value::string("ABC" + std::to_string(10000 + i)));
    row.set(name, Value::string(i % 4 == 3 ? "Visio Professional" : "Office Professional Plus"));
    const std::uint32_t t = i % 4 == 1 ? 0 : 5 + i % 7;
    row.set(targeted, Value::uint32(t));
    row.set(installed, Value::uint32(i % 4 == 2 ? t / 2 : t));
    rows.push_back(std::move(row));
  }
  return rows;
}

void BM_ParseOnly(benchmark::State& state) {
  for (auto _ : state) {
    auto q = wql::parse(kSdkEventQuery);
    benchmark::DoNotOptimize(q);
  }
}
BENCHMARK(BM_ParseOnly);

void BM_ParseAndBindSdkEventQuery(benchmark::State& state) {
  const auto& reg = ClassRegistry::builtin();
  for (auto _ : state) {
    auto q = wql::compile(kSdkEventQuery, reg);
    benchmark::DoNotOptimize(q);
  }
}
BENCHMARK(BM_ParseAndBindSdkEventQuery);

void BM_ParseAndBindThreeTerms(benchmark::State& state) {
  const auto& reg = ClassRegistry::builtin();
  for (auto _ : state) {
    auto q = wql::compile(kThreeTerms, reg);
    benchmark::DoNotOptimize(q);
  }
}
BENCHMARK(BM_ParseAndBindThreeTerms);

void BM_EvaluateThreeTerms(benchmark::State& state) {
  const auto q = wql::compile(kThreeTerms, ClassRegistry::builtin());
  if (!q.ok()) {
    state.SkipWithError(q.error().to_string().c_str());
    return;
  }
  const std::vector<Instance> rows = root_rows();
  std::size_t matched = 0;
  for (auto _ : state) {
    for (const Instance& row : rows) matched += wql::matches(*q, row) ? 1 : 0;
  }
  benchmark::DoNotOptimize(matched);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows.size()));
}
BENCHMARK(BM_EvaluateThreeTerms);

void BM_EvaluateEventQuery(benchmark::State& state) {
  const auto& reg = ClassRegistry::builtin();
  const auto q = wql::compile(
      "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_PackageStatusRootSummarizer' "
      "AND TargetInstance.Installed <> PreviousInstance.Installed AND TargetInstance.Installed = "
      "TargetInstance.Targeted",
      reg);
  if (!q.ok()) {
    state.SkipWithError(q.error().to_string().c_str());
    return;
  }
  const auto& event_cls = *reg.find("__InstanceModificationEvent");
  std::vector<Instance> rows = root_rows();
  std::vector<Instance> events;
  for (std::size_t i = 0; i + 1 < rows.size(); ++i) {
    Instance e(event_cls);
    e.set(*event_cls.find_property("TargetInstance"), Value::object(std::make_shared<const Instance>(rows[i])));
    e.set(*event_cls.find_property("PreviousInstance"), Value::object(std::make_shared<const Instance>(rows[i + 1])));
    events.push_back(std::move(e));
  }
  std::size_t matched = 0;
  for (auto _ : state) {
    for (const Instance& e : events) matched += wql::matches_event(*q, e) ? 1 : 0;
  }
  benchmark::DoNotOptimize(matched);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * events.size()));
}
BENCHMARK(BM_EvaluateEventQuery);

void BM_LikeGeneralPattern(benchmark::State& state) {
  auto pattern = wql::LikePattern::compile("%[0-9]_ro%ssional");
  const std::string text = "Office Professional Plus 2021 x64 Professional";
  for (auto _ : state) benchmark::DoNotOptimize(pattern->matches(text));
}
BENCHMARK(BM_LikeGeneralPattern);

// The worst a subscriber's pattern can make of a long text (a package Description may be up to the request body
// limit): 200 runs of % and 256 set positions against 1 MiB that almost matches. Linear in the text: bytes/s is
// the figure.
void like_over_a_mebibyte(benchmark::State& state, const std::string& pattern, char fill) {
  auto compiled = wql::LikePattern::compile(pattern);
  if (!compiled.ok()) {
    state.SkipWithError(compiled.error().message.c_str());
    return;
  }
  const std::string text(1 << 20, fill);
  for (auto _ : state) benchmark::DoNotOptimize(compiled->matches(text));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}

void BM_LikePathologicalRuns(benchmark::State& state) {
  std::string pattern;
  for (int i = 0; i < 200; ++i) pattern += "%a";
  like_over_a_mebibyte(state, pattern + "%b", 'a');
}
BENCHMARK(BM_LikePathologicalRuns);

void BM_LikePathologicalSets(benchmark::State& state) {
  std::string pattern = "%";
  for (int i = 0; i < 255; ++i) pattern += "[a-c]";
  like_over_a_mebibyte(state, pattern + "d%", 'b');
}
BENCHMARK(BM_LikePathologicalSets);

}  // namespace

BENCHMARK_MAIN();
