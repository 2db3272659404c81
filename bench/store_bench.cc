// Store throughput: single-instance puts from 4 threads (the writer batches them), and full scans of a 100k-row
// table, on SQLite and (when PKGCAST_TEST_PG_URL is set, e.g. under scripts/with-postgres) PostgreSQL.
//   build/<preset>/bench/store_bench --benchmark_counters_tabular=true
// items_per_second is changes/s for the put benchmarks and rows/s for the scans.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/backends.h"
#include "store/store.h"

namespace pkgcast::store {
namespace {

constexpr int kInFlightPerThread = 256;
constexpr int kScanRows = 100'000;

// One fresh database per benchmark: a temp SQLite file or a new PostgreSQL database, removed afterwards.
struct BenchDb {
  std::string url;
  std::string dir;
  std::string pg_admin;
  std::string pg_name;

  static std::unique_ptr<BenchDb> make(const std::string& backend, std::string& skip) {
    auto db = std::make_unique<BenchDb>();
    if (backend == "sqlite") {
      std::string tmpl = (std::filesystem::temp_directory_path() / "pkgcast-bench-XXXXXX").string();
      if (mkdtemp(tmpl.data()) == nullptr) return skip = "mkdtemp failed", nullptr;
      db->dir = tmpl;
      db->url = tmpl + "/site.db";
      return db;
    }
    const char* admin = std::getenv("PKGCAST_TEST_PG_URL");
    if (admin == nullptr || *admin == '\0') return skip = "PKGCAST_TEST_PG_URL is not set", nullptr;
    db->pg_admin = admin;
    db->pg_name = "pkgcast_bench_" + std::to_string(getpid());
    auto conn = open_pg_connection(admin);
    if (!conn.ok()) return skip = conn.error().to_string(), nullptr;
    (void)(*conn)->exec("DROP DATABASE IF EXISTS " + db->pg_name, {});
    if (auto r = (*conn)->exec("CREATE DATABASE " + db->pg_name, {}); !r.ok()) return skip = r.error().to_string(), nullptr;
    const std::string a = admin;
    db->url = a.substr(0, a.rfind('/')) + "/" + db->pg_name;
    return db;
  }
  ~BenchDb() {
    if (!dir.empty()) std::filesystem::remove_all(dir);
    if (!pg_name.empty()) {
      if (auto conn = open_pg_connection(pg_admin); conn.ok()) {
        (void)(*conn)->exec("DROP DATABASE IF EXISTS " + pg_name + " WITH (FORCE)", {});
      }
    }
  }
};

struct Fixture {
  std::unique_ptr<BenchDb> db;
  std::unique_ptr<Store> store;
  std::string skip;
  std::atomic<int> next_id{0};
  std::atomic<std::int64_t> changes{0};  // committed by the put benchmarks, every run of them
  double cpu_at_open = 0;
};

// This process's CPU time (user + system), in seconds.
double process_cpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
Fixture* g_fixture = nullptr;

const std::string& backend_of(const benchmark::State& state) {
  static const std::string names[] = {"sqlite", "postgresql"};
  return names[state.range(0)];
}

cim::Instance package(int n) {
  const cim::ClassDef& cls = *cim::ClassRegistry::builtin().find("SMS_Package");
  cim::Instance p(cls);
  char id[16];
  std::snprintf(id, sizeof id, "ABC%05X", n & 0xFFFFF);
  p.set(0, cim::Value::string(std::string(id) + std::to_string(n >> 20)));
  (void)p.set("Name", cim::Value::string("package " + std::to_string(n)));
  (void)p.set("SourceVersion", cim::Value::uint32(static_cast<std::uint32_t>(n % 7)));
  return p;
}

void open_fixture(const benchmark::State& state) {
  g_fixture = new Fixture;
  g_fixture->db = BenchDb::make(backend_of(state), g_fixture->skip);
  if (!g_fixture->db) return;
  OpenOptions o;
  o.url = g_fixture->db->url;
  auto s = Store::open(o);
  if (!s.ok()) {
    g_fixture->skip = s.error().to_string();
    return;
  }
  g_fixture->store = std::move(s).value();
  g_fixture->cpu_at_open = process_cpu();
}

void close_fixture(const benchmark::State& state) {
  if (g_fixture->store) g_fixture->store->close();
  // The whole process's CPU per committed change (the writer, the benchmark's threads, the client library),
  // which the machine's load moves far less than the rate. Printed to stderr beside the table.
  if (const std::int64_t n = g_fixture->changes.load(); n > 0) {
    std::fprintf(stderr, "%s: %lld changes, %.1f us of this process's CPU per change\n", backend_of(state).c_str(),
                 static_cast<long long>(n), (process_cpu() - g_fixture->cpu_at_open) * 1e6 / static_cast<double>(n));
  }
  delete g_fixture;
  g_fixture = nullptr;
}

void BM_ConcurrentPuts(benchmark::State& state) {
  if (!g_fixture->store) {
    state.SkipWithError(g_fixture->skip.c_str());
    return;
  }
  Store& store = *g_fixture->store;
  std::int64_t changes = 0;
  for (auto _ : state) {
    std::vector<std::future<Result<CommitInfo>>> futures;
    futures.reserve(kInFlightPerThread);
    for (int i = 0; i < kInFlightPerThread; ++i) {
      cim::Instance p = package(g_fixture->next_id.fetch_add(1));
      futures.push_back(store.submit([p = std::move(p)](WriteTxn& t) { return t.put(p); }));
    }
    for (auto& f : futures) {
      if (!f.get().ok()) state.SkipWithError("put failed");
    }
    changes += kInFlightPerThread;
  }
  g_fixture->changes += changes;
  state.SetItemsProcessed(changes);
}
BENCHMARK(BM_ConcurrentPuts)
    ->ArgName("backend")
    ->DenseRange(0, 1)
    ->Threads(4)
    ->Setup(open_fixture)
    ->Teardown(close_fixture)
    ->UseRealTime()
    ->MinTime(3.0);

void BM_Scan100k(benchmark::State& state) {
  if (!g_fixture->store) {
    state.SkipWithError(g_fixture->skip.c_str());
    return;
  }
  Store& store = *g_fixture->store;
  for (int base = 0; base < kScanRows; base += 5000) {
    auto r = store.execute([base](WriteTxn& t) -> Status {
      for (int i = base; i < base + 5000; ++i) PKG_TRY(t.put(package(i)));
      return ok_status();
    });
    if (!r.ok()) return state.SkipWithError(r.error().to_string().c_str());
  }
  const cim::ClassDef& cls = *store.registry().find("SMS_Package");
  std::int64_t rows = 0;
  for (auto _ : state) {
    std::int64_t n = 0;
    Status st = store.scan(cls, Predicate::always(), [&](cim::Instance&& i) {
      benchmark::DoNotOptimize(i);
      ++n;
      return true;
    });
    if (!st.ok() || n != kScanRows) state.SkipWithError("scan failed");
    rows += n;
  }
  state.SetItemsProcessed(rows);
}
BENCHMARK(BM_Scan100k)
    ->ArgName("backend")
    ->DenseRange(0, 1)
    ->Setup(open_fixture)
    ->Teardown(close_fixture)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace pkgcast::store

BENCHMARK_MAIN();
