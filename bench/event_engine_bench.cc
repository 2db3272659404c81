// The event engine alone (no HTTP): 10,000 subscriptions open on an SQLite store (9,990 each watching one
// package's Root summarizer row, 10 watching the whole DistPoints class), then
//   BM_ChangeToQueued  one committed Root change until the dispatcher has queued it for its subscriber; counters:
//                      evaluations per change (the index's selectivity) and the dispatch time after the commit
//                      returned (commit_to_dispatched_us, the engine's share of the latency);
//   BM_IdleCpu         process CPU time per wall second while the 10,000 subscriptions sit idle.
//   build/release/bench/event_engine_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "provider/events.h"
#include "store/store.h"

namespace pkgcast::provider {
namespace {

constexpr int kKeyed = 9'990;
constexpr int kClassWide = 10;

std::string package_id(int i) {
  char id[16];
  std::snprintf(id, sizeof id, "ABC%05X", i);
  return id;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The store, the engine and the 10,000 subscriptions, built once for both benchmarks.
struct World {
  std::string dir;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Provider> provider;
  std::unique_ptr<EventEngine> engine;
  std::vector<std::unique_ptr<Subscription>> subs;
  const cim::ClassDef* root = nullptr;

  cim::Instance root_row(int i, std::uint32_t installed) const {
    cim::Instance r(*root);
    (void)r.set("PackageID", cim::Value::string(package_id(i)));
    (void)r.set("Name", cim::Value::string("package " + std::to_string(i)));
    (void)r.set("Targeted", cim::Value::uint32(100));
    (void)r.set("Installed", cim::Value::uint32(installed));
    return r;
  }

  static World& get() {
    static World* w = [] {
      auto* world = new World;
      std::string tmpl = (std::filesystem::temp_directory_path() / "pkgcast-events-bench-XXXXXX").string();
      if (mkdtemp(tmpl.data()) == nullptr) std::abort();
      world->dir = tmpl;
      store::OpenOptions o;
      o.url = "sqlite:" + tmpl + "/site.db";
      world->store = std::move(store::Store::open(o)).value();
      world->root = world->store->registry().find("SMS_PackageStatusRootSummarizer");
      world->provider = std::make_unique<Provider>(*world->store, "ABC", "server1");
      world->engine = std::move(EventEngine::create(*world->store, *world->provider)).value();
      auto seeded = world->store->execute([world](store::WriteTxn& txn) -> Status {
        for (int i = 0; i < kKeyed; ++i) PKG_TRY(txn.put(world->root_row(i, 0)));
        return ok_status();
      });
      if (!seeded.ok()) std::abort();
      site::TokenRecord admin;
      admin.role = site::Role::kReadOnly;
      for (int i = 0; i < kKeyed; ++i) {
        world->subs.push_back(std::move(world->engine->subscribe(
                                            "",
                                            "SELECT * FROM __InstanceModificationEvent WITHIN 120 WHERE "
                                            "TargetInstance ISA 'SMS_PackageStatusRootSummarizer' AND "
                                            "TargetInstance.PackageID = '" +
                                                package_id(i) + "'",
                                            admin, std::nullopt, {}))
                                      .value());
      }
      for (int i = 0; i < kClassWide; ++i) {
        world->subs.push_back(std::move(world->engine->subscribe(
                                            "",
                                            "SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA "
                                            "'SMS_PackageStatusDistPointsSummarizer'",
                                            admin, std::nullopt, {}))
                                      .value());
      }
      return world;
    }();
    return *w;
  }
};

void BM_ChangeToQueued(benchmark::State& state) {
  World& w = World::get();
  const EventStats before = w.engine->stats();
  // Every change must change something: the counter goes on across the library's repeated runs.
  static std::uint32_t n = 0;
  double dispatch_us = 0;

  for (auto _ : state) {
    const int i = static_cast<int>(n % kKeyed);
    ++n;
    auto r = w.store->execute([&](store::WriteTxn& txn) { return txn.put(w.root_row(i, n)); });
    if (!r.ok()) state.SkipWithError(r.error().to_string().c_str());
    const auto t0 = std::chrono::steady_clock::now();
    w.engine->wait_dispatched_for_test();
    dispatch_us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    PollResult got = w.subs[static_cast<std::size_t>(i)]->poll(4);
    if (got.events.size() != 1) {
      state.SkipWithError("the subscriber did not get exactly its event");
      break;
    }
  }
  const EventStats after = w.engine->stats();
  const double changes = static_cast<double>(state.iterations());
  state.counters["evaluations_per_change"] = static_cast<double>(after.evaluations - before.evaluations) / changes;
  state.counters["commit_to_dispatched_us"] = dispatch_us / changes;
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ChangeToQueued)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_IdleCpu(benchmark::State& state) {
  World& w = World::get();
  double cpu = 0;
  double wall = 0;
  for (auto _ : state) {
    const double c0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cpu += cpu_seconds() - c0;
  }
  state.counters["subscriptions"] = static_cast<double>(w.engine->stats().subscriptions);
  state.counters["cpu_ms_per_s"] = cpu * 1e3 / wall;
}
BENCHMARK(BM_IdleCpu)->Unit(benchmark::kMillisecond)->Iterations(4)->UseRealTime();

}  // namespace
}  // namespace pkgcast::provider

BENCHMARK_MAIN();
