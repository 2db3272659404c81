// Provider queries through the real HTTP API, beside the same queries written directly in SQL against the same
// database: key lookup by PackageID (p50/p99 over one kept-alive connection), a full scan of the root summarizer,
// the join of every package with its programs (`SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID =
// G.PackageID`), and the DistPoints rows sorted by SummaryDate DESC. The server runs in this process, so the
// process's resident memory (rss_mb, before and after each run) is the server's.
//
// Scale (environment): PKGCAST_BENCH_PACKAGES (default 100000), PKGCAST_BENCH_PROGRAMS_PER_PACKAGE (3),
// PKGCAST_BENCH_DPS (1000), PKGCAST_BENCH_DPS_PER_PACKAGE (10: 100,000 x 10 = 1,000,000 DistPoints rows).
// PostgreSQL runs when PKGCAST_TEST_PG_URL names a maintenance database (scripts/with-postgres sets it); SQLite
// always runs.
#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cim/cim.h"
#include "client/http_client.h"
#include "core/paths.h"
#include "server/config.h"
#include "server/server_main.h"
#include "store/store.h"

namespace {

using namespace pkgcast;
using Clock = std::chrono::steady_clock;

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? static_cast<std::size_t>(std::strtoull(v, nullptr, 10)) : fallback;
}

std::string package_id(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "ABC%05zX", i + 1);
  return buf;
}

std::string dp_name(std::size_t i) { return "dp" + std::to_string(i + 1) + ".bench"; }
std::string nal_path(const std::string& name) {
  return "[\"Display=\\\\" + name + "\\\"]MSWNET:[\"SMS_SITE=ABC\"]\\\\" + name + "\\";
}

cim::Instance make(const char* cls) { return cim::Instance(*cim::ClassRegistry::builtin().find(cls)); }

void set(cim::Instance& inst, const char* name, cim::Value v) {
  if (!inst.set(name, std::move(v)).ok()) std::abort();
}

// Fills the store the way a distributed site looks: packages with their root and detail rows, DPs, and one
// DistPoints row per package per targeted DP. Written directly through the store's batching writer.
void populate(store::Store& store, std::size_t packages, std::size_t programs, std::size_t dps,
              std::size_t per_package) {
  const auto now = cim::DateTime::from_unix_micros(1'790'000'000'000'000);
  std::vector<std::future<Result<store::CommitInfo>>> pending;
  auto flush = [&](std::vector<cim::Instance> batch) {
    pending.push_back(store.submit([batch = std::move(batch)](store::WriteTxn& txn) -> Status {
      for (const auto& inst : batch) PKG_TRY(txn.put(inst));
      return ok_status();
    }));
    if (pending.size() > 8) {
      for (auto& f : pending) {
        if (!f.get().ok()) std::abort();
      }
      pending.clear();
    }
  };
  std::vector<cim::Instance> batch;
  for (std::size_t d = 0; d < dps; ++d) {
    auto dp = make("SMS_DistributionPointInfo");
    set(dp, "NALPath", cim::Value::string(nal_path(dp_name(d))));
    set(dp, "Name", cim::Value::string(dp_name(d)));
    set(dp, "SiteCode", cim::Value::string("ABC"));
    set(dp, "IsPullDP", cim::Value::boolean(false));
    batch.push_back(std::move(dp));
  }
  flush(std::move(batch));
  batch.clear();
  for (std::size_t p = 0; p < packages; ++p) {
    const std::string id = package_id(p);
    const std::string name = "Package " + std::to_string(p);
    auto pkg = make("SMS_Package");
    set(pkg, "PackageID", cim::Value::string(id));
    set(pkg, "Name", cim::Value::string(name));
    set(pkg, "Version", cim::Value::string("1.0"));
    set(pkg, "Manufacturer", cim::Value::string("Contoso"));
    set(pkg, "PkgSourceFlag", cim::Value::uint32(2));
    set(pkg, "SourceVersion", cim::Value::uint32(1));
    set(pkg, "SourceDate", cim::Value::datetime(now));
    set(pkg, "SourceSite", cim::Value::string("ABC"));
    set(pkg, "PackageSize", cim::Value::uint32(1024));
    batch.push_back(std::move(pkg));
    auto root = make("SMS_PackageStatusRootSummarizer");
    set(root, "PackageID", cim::Value::string(id));
    set(root, "Name", cim::Value::string(name));
    set(root, "SourceSite", cim::Value::string("ABC"));
    set(root, "SourceVersion", cim::Value::uint32(1));
    set(root, "SourceDate", cim::Value::datetime(now));
    set(root, "SourceSize", cim::Value::uint32(1024));
    set(root, "Targeted", cim::Value::uint32(static_cast<std::uint32_t>(per_package)));
    set(root, "Installed", cim::Value::uint32(static_cast<std::uint32_t>(per_package)));
    set(root, "Retrying", cim::Value::uint32(0));
    set(root, "Failed", cim::Value::uint32(0));
    batch.push_back(std::move(root));
    for (std::size_t g = 0; g < programs; ++g) {
      auto program = make("SMS_Program");
      set(program, "PackageID", cim::Value::string(id));
      set(program, "ProgramName", cim::Value::string(g == 0 ? "Install" : "Program " + std::to_string(g)));
      set(program, "CommandLine", cim::Value::string("setup.exe /q /program:" + std::to_string(g)));
      set(program, "Duration", cim::Value::uint32(30));
      batch.push_back(std::move(program));
    }
    for (std::size_t k = 0; k < per_package && dps > 0; ++k) {
      auto row = make("SMS_PackageStatusDistPointsSummarizer");
      set(row, "PackageID", cim::Value::string(id));
      set(row, "ServerNALPath", cim::Value::string(nal_path(dp_name((p * per_package + k) % dps))));
      set(row, "SiteCode", cim::Value::string("ABC"));
      set(row, "SourceVersion", cim::Value::uint32(1));
      set(row, "State", cim::Value::uint32(0));
      // Spread over a day, so that sorting by it is a real sort.
      const auto spread = static_cast<std::int64_t>((p * 7919 + k * 104729) % 86'400);
      set(row, "SummaryDate", cim::Value::datetime(cim::DateTime::from_unix_micros(now.unix_micros() -
                                                                                   spread * 1'000'000)));
      set(row, "InstallStatus", cim::Value::string("Content installed"));
      batch.push_back(std::move(row));
    }
    if (batch.size() >= 4000) {
      flush(std::move(batch));
      batch.clear();
    }
  }
  if (!batch.empty()) flush(std::move(batch));
  for (auto& f : pending) {
    if (!f.get().ok()) std::abort();
  }
}

struct Site {
  std::filesystem::path dir;
  std::unique_ptr<server::SiteServer> server;
  std::string db_url;
  std::string token;
  std::size_t packages = 0;
  std::size_t programs = 0;     // per package
  std::size_t dist_points = 0;  // DistPoints rows
};

// The process's resident set, in MiB (the server runs in this process).
double rss_mb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  double kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "VmRSS: %lf kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb / 1024;
}

Site* open_site(const std::string& backend) {
  static std::map<std::string, std::unique_ptr<Site>> sites;
  if (auto it = sites.find(backend); it != sites.end()) return it->second.get();
  auto site = std::make_unique<Site>();
  site->dir = std::filesystem::temp_directory_path() / ("pkgcast-provider-bench-" + backend);
  std::filesystem::remove_all(site->dir);
  std::filesystem::create_directories(site->dir);
  server::ServerConfig config;
  config.data_dir = site->dir;
  config.listen_port = 0;
  config.site_code = "ABC";
  config.site_name = "Bench";
  config.log_level = "warn";
  config.journal_max_entries = 0;
  if (backend == "postgresql") {
    const char* maintenance = std::getenv("PKGCAST_TEST_PG_URL");
    if (maintenance == nullptr) return nullptr;
    PGconn* conn = PQconnectdb(maintenance);
    PQclear(PQexec(conn, "DROP DATABASE IF EXISTS pkgcast_provider_bench"));
    PQclear(PQexec(conn, "CREATE DATABASE pkgcast_provider_bench"));
    PQfinish(conn);
    std::string url = maintenance;
    site->db_url = url.substr(0, url.rfind('/') + 1) + "pkgcast_provider_bench";
  } else {
    site->db_url = (site->dir / "pkgcast.db").string();
  }
  config.db_url = site->db_url;
  auto started = server::SiteServer::start(config);
  if (!started.ok()) {
    std::fprintf(stderr, "cannot start the server: %s\n", started.error().to_string().c_str());
    std::exit(1);
  }
  site->server = std::move(started).value();
  auto token = read_file(site->server->admin_token_path().string());
  site->token = token.ok() ? *token : "";
  while (!site->token.empty() && site->token.back() == '\n') site->token.pop_back();
  site->packages = env_size("PKGCAST_BENCH_PACKAGES", 100'000);
  site->programs = env_size("PKGCAST_BENCH_PROGRAMS_PER_PACKAGE", 3);
  const std::size_t dps = env_size("PKGCAST_BENCH_DPS", 1000);
  const std::size_t per_package = env_size("PKGCAST_BENCH_DPS_PER_PACKAGE", 10);
  site->dist_points = dps > 0 ? site->packages * per_package : 0;
  const auto t0 = Clock::now();
  populate(site->server->store(), site->packages, site->programs, dps, per_package);
  std::fprintf(stderr, "%s: populated in %.1f s\n", backend.c_str(),
               std::chrono::duration<double>(Clock::now() - t0).count());
  return sites.emplace(backend, std::move(site)).first->second.get();
}

std::unique_ptr<client::HttpClient> connect(const Site& site) {
  client::HttpOptions options;
  options.token = site.token;
  auto url = client::parse_server_url(site.server->url());
  return std::move(client::HttpClient::create(*url, options)).value();
}

void report_percentiles(benchmark::State& state, std::vector<double>& micros) {
  if (micros.empty()) return;
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[std::min(micros.size() - 1, micros.size() * 99 / 100)];
}

void BM_HttpKeyLookup(benchmark::State& state, const std::string& backend) {
  Site* site = open_site(backend);
  if (site == nullptr) return state.SkipWithError("PKGCAST_TEST_PG_URL is not set");
  auto http = connect(*site);
  std::mt19937 rng(42);
  std::vector<double> micros;
  for (auto _ : state) {
    const std::string body = R"({"query": "SELECT * FROM SMS_Package WHERE PackageID = ')" +
                             package_id(rng() % site->packages) + R"('"})";
    const auto t0 = Clock::now();
    auto r = http->call("POST", "/api/v1/query", body);
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!r.ok() || r->find("\"PackageID\"") == std::string::npos) return state.SkipWithError("lookup failed");
  }
  report_percentiles(state, micros);
}

// Streams one query's answer over HTTP and counts its rows without building them: each answered row starts with
// `marker`. The server's resident memory before and after is reported (rss_mb_before / rss_mb_after).
void http_scan(benchmark::State& state, const Site& site, const std::string& wql, std::string_view marker,
               std::size_t expected) {
  auto http = connect(site);
  std::size_t total = 0;
  state.counters["rss_mb_before"] = rss_mb();
  for (auto _ : state) {
    std::size_t rows = 0;
    std::string edge;  // the last marker.size() - 1 bytes received: a marker may start there and end in the next piece
    std::string tail;  // the answer's last bytes, to show an "error" member
    // Counted where the bytes arrive, without copying the answer: the client shares the two cores with the server,
    // and the direct SQL side has no such client to pay for.
    auto count_in = [&](std::string_view text) {
      for (std::size_t pos = text.find(marker); pos != std::string_view::npos; pos = text.find(marker, pos + 1)) {
        ++rows;
      }
    };
    const std::size_t keep = marker.size() - 1;
    auto r = http->request_streaming("POST", "/api/v1/query", R"({"query": ")" + wql + R"("})",
                                     [&](std::string_view piece) {
                                       // Markers across the boundary: neither side alone can hold a whole one.
                                       if (!edge.empty()) {
                                         count_in(edge + std::string(piece.substr(0, keep)));
                                       }
                                       count_in(piece);
                                       edge = piece.size() >= keep
                                                  ? std::string(piece.substr(piece.size() - keep))
                                                  : (edge + std::string(piece)).substr(
                                                        edge.size() + piece.size() > keep
                                                            ? edge.size() + piece.size() - keep
                                                            : 0);
                                       if (piece.size() >= 400) {
                                         tail.assign(piece.substr(piece.size() - 400));
                                       } else {
                                         tail.append(piece);
                                         if (tail.size() > 400) tail.erase(0, tail.size() - 400);
                                       }
                                       return true;
                                     });
    if (!r.ok() || r->status != 200 || rows != expected) {
      return state.SkipWithError(("scan failed: " + std::to_string(rows) + " rows of " + std::to_string(expected) +
                                  "; the answer ends with: " + tail.substr(tail.size() > 200 ? tail.size() - 200 : 0))
                                     .c_str());
    }
    total += rows;
  }
  state.counters["rss_mb_after"] = rss_mb();
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}

// Runs `sql` directly on the same database, reading every column of every row, as the floor to compare with.
void sql_scan(benchmark::State& state, const Site& site, const std::string& backend, const char* sql,
              std::size_t expected) {
  std::size_t total = 0;
  for (auto _ : state) {
    std::size_t rows = 0;
    if (backend == "sqlite") {
      sqlite3* db = nullptr;
      sqlite3_open_v2(site.db_url.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
      sqlite3_stmt* stmt = nullptr;
      sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(stmt); ++c) benchmark::DoNotOptimize(sqlite3_column_text(stmt, c));
        ++rows;
      }
      sqlite3_finalize(stmt);
      sqlite3_close(db);
    } else {
      // Single-row mode streams, as the provider's answer does (PQexec would hold the whole result).
      PGconn* conn = PQconnectdb(site.db_url.c_str());
      PQsendQuery(conn, sql);
      PQsetSingleRowMode(conn);
      while (PGresult* r = PQgetResult(conn)) {
        if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
          for (int c = 0; c < PQnfields(r); ++c) benchmark::DoNotOptimize(PQgetvalue(r, 0, c));
          ++rows;
        }
        PQclear(r);
      }
      PQfinish(conn);
    }
    if (rows != expected) return state.SkipWithError("sql scan failed");
    total += rows;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}

void BM_HttpRootScan(benchmark::State& state, const std::string& backend) {
  Site* site = open_site(backend);
  if (site == nullptr) return state.SkipWithError("PKGCAST_TEST_PG_URL is not set");
  // Each instance starts with {"__CLASS".
  http_scan(state, *site, "SELECT * FROM SMS_PackageStatusRootSummarizer", "{\"__CLASS\"", site->packages);
}

constexpr const char* kJoinWql = "SELECT * FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID";

void BM_HttpJoin(benchmark::State& state, const std::string& backend) {
  Site* site = open_site(backend);
  if (site == nullptr) return state.SkipWithError("PKGCAST_TEST_PG_URL is not set");
  http_scan(state, *site, kJoinWql, "\"__Generic\"", site->packages * site->programs);
}

// PackageID compares ignoring case, as the store compares it: NOCASE on SQLite, lower() on PostgreSQL.
void BM_SqlJoin(benchmark::State& state, const std::string& backend) {
  Site* site = open_site(backend);
  if (site == nullptr) return state.SkipWithError("PKGCAST_TEST_PG_URL is not set");
  sql_scan(state, *site, backend,
           backend == "sqlite"
               ? R"(SELECT * FROM "SMS_Package" p JOIN "SMS_Program" g ON p."PackageID" = g."PackageID")"
               : R"(SELECT * FROM "SMS_Package" p JOIN "SMS_Program" g ON lower(p."PackageID") COLLATE "C" = lower(g."PackageID") COLLATE "C")",
           site->packages * site->programs);
}

void BM_HttpDistPointsBySummaryDate(benchmark::State& state, const std::string& backend) {
  Site* site = open_site(backend);
  if (site == nullptr) return state.SkipWithError("PKGCAST_TEST_PG_URL is not set");
  http_scan(state, *site, "SELECT * FROM SMS_PackageStatusDistPointsSummarizer ORDER BY SummaryDate DESC",
            "{\"__CLASS\"", site->dist_points);
}

void BM_SqlDistPointsBySummaryDate(benchmark::State& state, const std::string& backend) {
  Site* site = open_site(backend);
  if (site == nullptr) return state.SkipWithError("PKGCAST_TEST_PG_URL is not set");
  sql_scan(state, *site, backend,
           R"(SELECT * FROM "SMS_PackageStatusDistPointsSummarizer" ORDER BY "SummaryDate" DESC)", site->dist_points);
}

// The same lookups written directly in SQL against the same database, as the floor to compare against.
void BM_SqlKeyLookup(benchmark::State& state, const std::string& backend) {
  Site* site = open_site(backend);
  if (site == nullptr) return state.SkipWithError("PKGCAST_TEST_PG_URL is not set");
  std::mt19937 rng(42);
  std::vector<double> micros;
  if (backend == "sqlite") {
    sqlite3* db = nullptr;
    sqlite3_open_v2(site->db_url.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, R"(SELECT * FROM "SMS_Package" WHERE "PackageID" = ?)", -1, &stmt, nullptr);
    for (auto _ : state) {
      const std::string id = package_id(rng() % site->packages);
      const auto t0 = Clock::now();
      sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      int n = 0;
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(stmt); ++c) benchmark::DoNotOptimize(sqlite3_column_text(stmt, c));
        ++n;
      }
      sqlite3_reset(stmt);
      micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (n != 1) return state.SkipWithError("sql lookup failed");
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
  } else {
    PGconn* conn = PQconnectdb(site->db_url.c_str());
    PQclear(PQprepare(conn, "lookup", R"(SELECT * FROM "SMS_Package" WHERE lower("PackageID") COLLATE "C" = lower($1))", 1, nullptr));
    for (auto _ : state) {
      const std::string id = package_id(rng() % site->packages);
      const char* params[] = {id.c_str()};
      const auto t0 = Clock::now();
      PGresult* r = PQexecPrepared(conn, "lookup", 1, params, nullptr, nullptr, 0);
      micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      const int n = PQntuples(r);
      PQclear(r);
      if (n != 1) return state.SkipWithError("sql lookup failed");
    }
    PQfinish(conn);
  }
  report_percentiles(state, micros);
}

void BM_SqlRootScan(benchmark::State& state, const std::string& backend) {
  Site* site = open_site(backend);
  if (site == nullptr) return state.SkipWithError("PKGCAST_TEST_PG_URL is not set");
  sql_scan(state, *site, backend, R"(SELECT * FROM "SMS_PackageStatusRootSummarizer" ORDER BY "PackageID")",
           site->packages);
}

}  // namespace

BENCHMARK_CAPTURE(BM_HttpKeyLookup, sqlite, std::string("sqlite"))->Unit(benchmark::kMicrosecond)->Iterations(5000)->UseRealTime();
BENCHMARK_CAPTURE(BM_SqlKeyLookup, sqlite, std::string("sqlite"))->Unit(benchmark::kMicrosecond)->Iterations(5000)->UseRealTime();
BENCHMARK_CAPTURE(BM_HttpRootScan, sqlite, std::string("sqlite"))->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();
BENCHMARK_CAPTURE(BM_SqlRootScan, sqlite, std::string("sqlite"))->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();
BENCHMARK_CAPTURE(BM_HttpJoin, sqlite, std::string("sqlite"))->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_SqlJoin, sqlite, std::string("sqlite"))->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_HttpDistPointsBySummaryDate, sqlite, std::string("sqlite"))->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
BENCHMARK_CAPTURE(BM_SqlDistPointsBySummaryDate, sqlite, std::string("sqlite"))->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
BENCHMARK_CAPTURE(BM_HttpKeyLookup, postgresql, std::string("postgresql"))->Unit(benchmark::kMicrosecond)->Iterations(5000)->UseRealTime();
BENCHMARK_CAPTURE(BM_SqlKeyLookup, postgresql, std::string("postgresql"))->Unit(benchmark::kMicrosecond)->Iterations(5000)->UseRealTime();
BENCHMARK_CAPTURE(BM_HttpRootScan, postgresql, std::string("postgresql"))->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();
BENCHMARK_CAPTURE(BM_SqlRootScan, postgresql, std::string("postgresql"))->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

BENCHMARK_CAPTURE(BM_HttpJoin, postgresql, std::string("postgresql"))->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_SqlJoin, postgresql, std::string("postgresql"))->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_HttpDistPointsBySummaryDate, postgresql, std::string("postgresql"))->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
BENCHMARK_CAPTURE(BM_SqlDistPointsBySummaryDate, postgresql, std::string("postgresql"))->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

BENCHMARK_MAIN();
