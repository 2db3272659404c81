// The status summarizer under load: P packages x D DPs (P*D DistPoints rows), DP state changes submitted to the
// store as fast as it takes them (the writer batches them), each applied by Summarizer::transition() in its own
// command; beside two baselines that apply the same kind of changes and recompute the counts after each one:
//   store+scan recompute  a store command per change: the DistPoints row written, then the package's Root, every
//                         Detail and ExtraInfo recomputed from the package's DistPoints rows, journaled alike;
//   SQL GROUP BY          the backend's own SQL: UPDATE the row, one GROUP BY over the package's rows, UPDATE the
//                         summaries; no journal, 512 changes per transaction like the writer's batches.
// Both baselines are generous to themselves: no last-message rows, and SMS_DPStatusInfo is not recomputed (there
// is no index on ServerNALPath; a per-DP GROUP BY would scan every row). Prints one line per backend.
//
//   build/release/bench/summarizer_bench [--packages 100] [--dps 50] [--sites 5] [--changes 20000]
//       [--baseline-changes 2000] [--backend sqlite|postgresql|both] [--window 2048] [--check 1]
//       [--group 1] [--group-each 0] [--active 0]
//                                    (--group N: N reports per command through transition_all(); with
//                                     --group-each 1, through transition() each, in one command, as the
//                                     Distribution Manager applies DP reports that arrive together;
//                                     --active K: reports fall on K packages, as when a few are being sent)
//   scripts/with-postgres build/release/bench/summarizer_bench --backend both        (PostgreSQL needs
//   PKGCAST_TEST_PG_URL, a maintenance URL; the bench creates and drops its own database)
//   --packages 10000 --dps 1000: the 10 million rows.
//   [--sqlite-template FILE]: SQLite runs start from a copy of FILE, a database this bench loaded with the same
//   --packages/--dps/--sites (loaded into FILE first when it does not exist; refused when its sizes differ), so a
//   10-million-row run costs a file copy rather than a minute of loading. The reported load time is the copy's.
//
// The rows a site server would hold are bulk-loaded with SQL (INSERT .. SELECT over a cross join), every DP
// pending and unheard, with the summaries already right; the store is then opened as the server opens it.
// Each DP cycles INSTALL_PENDING -> CONTENT_UPDATING (message) -> INSTALLED (message) -> INSTALL_PENDING (job
// re-sent, message dropped), so two changes in three move Root/Detail (Installed) and every change moves ExtraInfo
// and SMS_DPStatusInfo. "check: exact" is summarizer::check() after the incremental run finding no difference.
// Memory is this process's (the store and summarizer side; PostgreSQL's server is another process). The second
// line puts the incremental run's cost to this process per change: CPU (user + system), write and read calls and
// bytes written (/proc/self/io; SQLite's WAL frames and checkpoint writes are the write calls), which the
// machine's load moves much less than the rate.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "store/backends.h"
#include "store/store.h"
#include "summarizer/summarizer.h"

namespace pkgcast {
namespace {

using Clock = std::chrono::steady_clock;
using store::Connection;

struct Options {
  int packages = 100;
  int dps = 50;
  int sites = 5;
  long changes = 20'000;
  long baseline_changes = 2'000;
  std::string backend = "sqlite";
  int window = 2048;
  bool check = true;
  int group = 1;   // changes per command: 1 = transition() each; more = transition_all() over a group
  bool group_each = false;  // a group's changes by transition() each, in one command
  int active = 0;  // changes fall on the first `active` packages only (0: every package), as when the
                   // Distribution Manager sends a few packages at a time
  std::string sqlite_template;  // a loaded SQLite database to copy rather than load again (made when absent)
};

constexpr Micros kT0 = 1'767'225'600'000'000;

std::string package_id(int p) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "ABC%05X", p + 1);
  return buf;
}
std::string site_code(int s) {  // 0..99
  return std::string("S") + static_cast<char>('0' + s / 10 % 10) + static_cast<char>('0' + s % 10);
}
std::string dp_name(int d) {
  return "dp" + std::to_string(d) + ".example.net";
}
int site_of(int d, const Options& o) {
  return d % o.sites;
}
std::string nal_of(int d, const Options& o) {
  const std::string n = dp_name(d);
  return "[\"Display=\\\\" + n + "\\\"]MSWNET:[\"SMS_SITE=" + site_code(site_of(d, o)) + "\"]\\\\" + n + "\\";
}

std::string rss() {
  std::ifstream f("/proc/self/status");
  std::string line, out;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0 || line.rfind("VmHWM:", 0) == 0) {
      std::string v = line.substr(6);
      v.erase(0, v.find_first_not_of(" \t"));
      out += (out.empty() ? "" : ", ") + line.substr(0, 5) + " " + v;
    }
  }
  return out;
}

// What this process costs: CPU (user + system) and the file I/O it asked for (/proc/self/io: write calls and
// bytes, read calls), so a run can be put per change whatever else the machine is doing.
struct Cost {
  double cpu = 0;
  double syscw = 0, wchar = 0, syscr = 0;
  static Cost now() {
    Cost c;
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    c.cpu = static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
            static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
    std::ifstream f("/proc/self/io");
    std::string name;
    double v = 0;
    while (f >> name >> v) {
      if (name == "syscw:") c.syscw = v;
      if (name == "wchar:") c.wchar = v;
      if (name == "syscr:") c.syscr = v;
    }
    return c;
  }
  // "per change: 41 us CPU, 12.0 writes (48 KB), 3.1 reads"
  static std::string per_change(const Cost& a, const Cost& b, long changes) {
    const double n = static_cast<double>(std::max(1L, changes));
    char buf[160];
    std::snprintf(buf, sizeof buf, "per change: %.0f us CPU, %.1f writes (%.1f KB), %.1f reads",
                  (b.cpu - a.cpu) * 1e6 / n, (b.syscw - a.syscw) / n, (b.wchar - a.wchar) / n / 1024,
                  (b.syscr - a.syscr) / n);
    return buf;
  }
};

[[noreturn]] void die(const std::string& what, const Error& e) {
  std::fprintf(stderr, "summarizer_bench: %s: %s\n", what.c_str(), e.to_string().c_str());
  std::exit(1);
}
template <typename T>
T must(Result<T> r, const std::string& what) {
  if (!r.ok()) die(what, r.error());
  return std::move(r).value();
}
void must(const Status& s, const std::string& what) {
  if (!s.ok()) die(what, s.error());
}

// A fresh database: a temp SQLite file or a new PostgreSQL database, removed afterwards.
struct BenchDb {
  std::string url, dir, pg_admin, pg_name;
  ~BenchDb() {
    if (!dir.empty()) std::filesystem::remove_all(dir);
    if (!pg_name.empty()) {
      if (auto c = store::open_pg_connection(pg_admin); c.ok()) {
        (void)(*c)->exec("DROP DATABASE IF EXISTS " + pg_name + " WITH (FORCE)", {});
      }
    }
  }
};

std::unique_ptr<BenchDb> make_db(const std::string& backend) {
  auto db = std::make_unique<BenchDb>();
  if (backend == "sqlite") {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pkgcast-sumbench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return nullptr;
    db->dir = tmpl;
    db->url = tmpl + "/site.db";
    return db;
  }
  const char* admin = std::getenv("PKGCAST_TEST_PG_URL");
  if (admin == nullptr || *admin == '\0') return nullptr;
  db->pg_admin = admin;
  db->pg_name = "pkgcast_sumbench_" + std::to_string(getpid());
  auto conn = must(store::open_pg_connection(admin), "connect to " + std::string(admin));
  (void)conn->exec("DROP DATABASE IF EXISTS " + db->pg_name, {});
  must(conn->exec("CREATE DATABASE " + db->pg_name + " TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
                  {}),
       "create database");
  const std::string a = admin;
  db->url = a.substr(0, a.rfind('/')) + "/" + db->pg_name;
  return db;
}

std::unique_ptr<Connection> raw(const std::string& backend, const std::string& url) {
  return must(backend == "sqlite" ? store::open_sqlite_connection(url) : store::open_pg_connection(url), "connect");
}

// `col = ?` as the store's key indexes serve it (PostgreSQL's are on lower(col) COLLATE "C").
std::string eq(const store::Dialect& d, const std::string& col, std::size_t n) {
  if (d.postgres()) return "lower(\"" + col + "\") COLLATE \"C\" = lower(" + d.placeholder(n) + ")";
  return "\"" + col + "\" = " + d.placeholder(n);
}

// Every row the site layer and the summarizer would hold with each DP targeted and pending.
void load(Connection& c, const Options& o) {
  const store::Dialect& d = c.dialect();
  auto ph = [&](int n) {
    std::string s;
    for (int i = 1; i <= n; ++i) s += (i > 1 ? ", " : "") + d.placeholder(static_cast<std::size_t>(i));
    return s;
  };
  must(c.begin(true), "begin");
  for (int s = 0; s < o.sites; ++s) {
    must(c.exec("INSERT INTO \"SMS_Site\" (\"SiteCode\", \"SiteName\", \"Type\") VALUES (" + ph(3) + ")",
                {site_code(s), "Site " + site_code(s), std::int64_t{2}}),
         "site");
  }
  const std::int64_t per_dp_packages = o.packages;
  for (int dp = 0; dp < o.dps; ++dp) {
    must(c.exec("INSERT INTO \"SMS_DPStatusInfo\" (\"NALPath\", \"Name\", \"SiteCode\", \"IsPullDP\", "
                "\"NumberInstalled\", \"NumberInProgress\", \"NumberErrors\", \"NumberUnknown\", \"MessageState\") "
                "VALUES (" +
                    ph(9) + ")",
                {nal_of(dp, o), dp_name(dp), site_code(site_of(dp, o)), false, std::int64_t{0}, per_dp_packages,
                 std::int64_t{0}, per_dp_packages, std::int64_t{2}}),
         "dp");
  }
  const std::int64_t all = o.dps;
  for (int p = 0; p < o.packages; ++p) {
    const std::string id = package_id(p);
    must(c.exec("INSERT INTO \"SMS_Package\" (\"PackageID\", \"Name\", \"PkgSourceFlag\", \"PackageType\", "
                "\"SourceVersion\", \"SourceSite\") VALUES (" +
                    ph(6) + ")",
                {id, "Package " + id, std::int64_t{2}, std::int64_t{0}, std::int64_t{1}, std::string("S00")}),
         "package");
    must(c.exec("INSERT INTO \"SMS_PackageStatusRootSummarizer\" (\"PackageID\", \"Name\", \"SourceSite\", "
                "\"SourceVersion\", \"SourceDate\", \"Targeted\", \"Installed\", \"Retrying\", \"Failed\") VALUES (" +
                    ph(9) + ")",
                {id, "Package " + id, std::string("S00"), std::int64_t{1}, kT0, all, std::int64_t{0}, std::int64_t{0},
                 std::int64_t{0}}),
         "root");
    must(c.exec("INSERT INTO \"SMS_ObjectContentExtraInfo\" (\"ObjectID\", \"PackageID\", \"SourceVersion\", "
                "\"Targeted\", \"NumberSuccess\", \"NumberInProgress\", \"NumberErrors\", \"NumberUnknown\") "
                "VALUES (" +
                    ph(8) + ")",
                {id, id, std::int64_t{1}, all, std::int64_t{0}, all, std::int64_t{0}, all}),
         "extra");
  }
  must(c.exec("INSERT INTO \"SMS_PackageStatusDetailSummarizer\" (\"PackageID\", \"SiteCode\", \"Name\", "
              "\"SiteName\", \"SourceVersion\", \"SummaryDate\", \"Targeted\", \"Installed\", \"Retrying\", "
              "\"Failed\") SELECT p.\"PackageID\", s.\"SiteCode\", p.\"Name\", s.\"SiteName\", 1, " +
                  std::to_string(kT0) +
                  ", (SELECT count(*) FROM \"SMS_DPStatusInfo\" i WHERE i.\"SiteCode\" = s.\"SiteCode\"), 0, 0, 0 "
                  "FROM \"SMS_Package\" p CROSS JOIN \"SMS_Site\" s",
              {}),
       "detail");
  must(c.exec("INSERT INTO \"SMS_PackageStatusDistPointsSummarizer\" (\"PackageID\", \"ServerNALPath\", "
              "\"SiteCode\", \"SourceNALPath\", \"SourceVersion\", \"State\", \"SummaryDate\", \"PackageType\", "
              "\"InstallStatus\") SELECT p.\"PackageID\", i.\"NALPath\", i.\"SiteCode\", '', 1, 1, " +
                  std::to_string(kT0) +
                  ", 0, 'Waiting to install content version 1' FROM \"SMS_Package\" p CROSS JOIN "
                  "\"SMS_DPStatusInfo\" i",
              {}),
       "distpoints");
  must(c.commit(), "commit");
  must(c.exec(d.postgres() ? "ANALYZE" : "ANALYZE", {}), "analyze");
}

std::string template_sizes(const Options& o) {
  return std::to_string(o.packages) + "x" + std::to_string(o.dps) + "x" + std::to_string(o.sites);
}

// The schema as the store creates it, then every row loaded with SQL.
void load_fresh(const Options& o, const std::string& backend, const std::string& url) {
  store::OpenOptions opt;
  opt.url = url;
  must(store::Store::open(opt), "open")->close();
  auto c = raw(backend, url);
  load(*c, o);
  if (backend == "sqlite") {
    must(c->exec("INSERT INTO pkgcast_meta (meta_key, meta_value) VALUES ('summarizer_bench/sizes', ?)",
                 {template_sizes(o)}),
         "record the sizes");
  }
}

// `url` becomes a copy of the template (loaded first when absent). The template was closed by its last user, so
// it has no WAL to copy with it.
void copy_template(const Options& o, const std::string& url) {
  namespace fs = std::filesystem;
  if (!fs::exists(o.sqlite_template)) {
    const std::string partial = o.sqlite_template + ".loading";
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(partial + suffix);
    load_fresh(o, "sqlite", partial);
    fs::rename(partial, o.sqlite_template);
  }
  {
    auto c = raw("sqlite", o.sqlite_template);
    std::string sizes;
    must(c->query("SELECT meta_value FROM pkgcast_meta WHERE meta_key = 'summarizer_bench/sizes'", {},
                  [&](const store::SqlRow& row) -> Result<bool> {
                    sizes = std::string(row.as_text(0));
                    return false;
                  }),
         "read the template's sizes");
    if (sizes != template_sizes(o)) {
      die("template " + o.sqlite_template,
          make_error(WbemCode::kInvalidParameter, "it holds " + (sizes.empty() ? std::string("no bench database") : sizes) +
                                                 " (packages x DPs x sites), not " + template_sizes(o)));
    }
  }
  fs::copy_file(o.sqlite_template, url, fs::copy_options::overwrite_existing);
}

// The per-pair state machine both runs follow: 1 -> 7 -> 0 -> 1 -> ...
struct Workload {
  explicit Workload(const Options& o) : o(o), state(static_cast<std::size_t>(o.packages) * o.dps, 1), rng(42) {}
  struct Change {
    int p, d;
    summarizer::DpState to;
  };
  Change next() {
    const std::size_t pairs =
        o.active > 0 ? std::min<std::size_t>(state.size(), static_cast<std::size_t>(o.active) * o.dps) : state.size();
    const auto pair = std::uniform_int_distribution<std::size_t>(0, pairs - 1)(rng);
    std::uint8_t& s = state[pair];
    s = s == 1 ? 7 : s == 7 ? 0 : 1;
    return {static_cast<int>(pair / o.dps), static_cast<int>(pair % o.dps), static_cast<summarizer::DpState>(s)};
  }
  const Options& o;
  std::vector<std::uint8_t> state;
  std::mt19937_64 rng;
};

double run_incremental(store::Store& st, Workload& w, const Options& o, double& per_batch) {
  const summarizer::Summarizer sum(cim::ClassRegistry::builtin());
  auto batches = std::make_shared<std::atomic<long>>(0);
  st.add_commit_listener([batches](const std::vector<store::JournalEntry>&) { ++*batches; });
  std::deque<std::future<Result<store::CommitInfo>>> in_flight;
  long failures = 0;
  auto settle = [&] {
    if (!in_flight.front().get().ok()) ++failures;
    in_flight.pop_front();
  };
  auto change_of = [&](const Workload::Change& c) {
    summarizer::Summarizer::Change ch;
    ch.dp = summarizer::DpRef{package_id(c.p), nal_of(c.d, o), site_code(site_of(c.d, o)), dp_name(c.d), {}};
    ch.state = c.to;
    ch.source_version = 1;
    ch.install_status = std::string(summarizer::dp_state_name(c.to));
    if (c.to == summarizer::DpState::kContentUpdating) ch.message = summarizer::StatusMessage{2301, 2, 0x40000000, {}};
    if (c.to == summarizer::DpState::kInstalled) ch.message = summarizer::StatusMessage{2330, 1, 0x40000000, {}};
    return ch;
  };
  const auto start = Clock::now();
  for (long n = 0; n < o.changes;) {
    if (o.group <= 1) {
      auto ch = change_of(w.next());
      ++n;
      in_flight.push_back(st.submit([&sum, ch = std::move(ch)](store::WriteTxn& txn) {
        return sum.transition(txn, ch.dp, ch.state, ch.source_version, ch.install_status, ch.message, txn.now());
      }));
    } else {
      std::vector<summarizer::Summarizer::Change> group;
      for (int g = 0; g < o.group && n < o.changes; ++g, ++n) group.push_back(change_of(w.next()));
      const bool each = o.group_each;
      in_flight.push_back(st.submit([&sum, each, group = std::move(group)](store::WriteTxn& txn) -> Status {
        if (!each) return sum.transition_all(txn, group, txn.now());
        for (const auto& ch : group) {
          PKG_TRY(sum.transition(txn, ch.dp, ch.state, ch.source_version, ch.install_status, ch.message, txn.now()));
        }
        return ok_status();
      }));
    }
    if (in_flight.size() >= static_cast<std::size_t>(std::max(1, o.window / std::max(1, o.group)))) settle();
  }
  while (!in_flight.empty()) settle();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (failures) {  // a rate of changes that did not happen means nothing
    std::fprintf(stderr, "summarizer_bench: %ld of %ld changes failed\n", failures, o.changes);
    std::exit(1);
  }
  per_batch = static_cast<double>(o.changes) / static_cast<double>(std::max(1L, batches->load()));  // changes
  return static_cast<double>(o.changes) / secs;
}

// The like-for-like baseline: each change is a store command that writes the DistPoints row and then recomputes
// the package's Root, every Detail and the ExtraInfo row from its DistPoints rows (a scan of the package's key
// range), journaled like the incremental path. SMS_DPStatusInfo is not recomputed (see the file comment).
double run_scan_baseline(store::Store& st, Workload& w, const Options& o) {
  const cim::ClassRegistry& reg = cim::ClassRegistry::builtin();
  const cim::ClassDef& dist = *reg.find("SMS_PackageStatusDistPointsSummarizer");
  const cim::ClassDef& root = *reg.find("SMS_PackageStatusRootSummarizer");
  const cim::ClassDef& detail = *reg.find("SMS_PackageStatusDetailSummarizer");
  const cim::ClassDef& extra = *reg.find("SMS_ObjectContentExtraInfo");
  const std::size_t package_col = *dist.find_property("PackageID");
  auto set_u32 = [](cim::Instance& i, const char* name, std::int64_t v) {
    (void)i.set(name, cim::Value::uint32(static_cast<std::uint32_t>(v)));
  };
  auto command = [&](Workload::Change ch, Micros when) {
    return [&, ch, when](store::WriteTxn& txn) -> Status {
      const std::string id = package_id(ch.p);
      const std::vector<cim::Value> key{cim::Value::string(id), cim::Value::string(nal_of(ch.d, o)),
                                        cim::Value::string(site_code(site_of(ch.d, o)))};
      PKG_ASSIGN_OR_RETURN(auto row, txn.get(dist, key));
      if (!row) return make_error(WbemCode::kNotFound, "row");
      PKG_TRY(row->set("State", cim::Value::uint32(static_cast<std::uint32_t>(ch.to))));
      PKG_TRY(row->set("SummaryDate", cim::Value::datetime(cim::DateTime::from_unix_micros(when))));
      PKG_TRY(txn.put(*row));
      std::map<std::string, std::array<std::int64_t, 6>> sites;  // T, I, R, F, InProgress, Errors
      PKG_TRY(txn.scan(dist, store::Predicate::compare(package_col, store::Predicate::Op::kEq, cim::Value::string(id)),
                       [&](cim::Instance&& r) {
                         const auto s = r.find("State")->as_uint();
                         const auto v = r.find("SourceVersion")->as_uint();
                         auto& a = sites[r.find("SiteCode")->as_string()];
                         a[0] += s < 4 || s > 6;
                         a[1] += s == 0 && v == 1;
                         a[2] += s == 2 || s == 5;
                         a[3] += s == 3 || s == 6;
                         a[4] += s == 1 || s == 2 || s == 4 || s == 5 || s == 7 || s == 8;
                         a[5] += s == 3 || s == 6;
                         return true;
                       }));
      std::array<std::int64_t, 6> total{};
      for (const auto& [site, a] : sites) {
        for (std::size_t k = 0; k < a.size(); ++k) total[k] += a[k];
        PKG_ASSIGN_OR_RETURN(auto d, txn.get(detail, {cim::Value::string(id), cim::Value::string(site)}));
        if (!d) continue;
        set_u32(*d, "Targeted", a[0]);
        set_u32(*d, "Installed", a[1]);
        set_u32(*d, "Retrying", a[2]);
        set_u32(*d, "Failed", a[3]);
        PKG_TRY(txn.put(*d));
      }
      PKG_ASSIGN_OR_RETURN(auto r, txn.get(root, {cim::Value::string(id)}));
      set_u32(*r, "Targeted", total[0]);
      set_u32(*r, "Installed", total[1]);
      set_u32(*r, "Retrying", total[2]);
      set_u32(*r, "Failed", total[3]);
      PKG_TRY(txn.put(*r));
      PKG_ASSIGN_OR_RETURN(auto x, txn.get(extra, {cim::Value::string(id)}));
      set_u32(*x, "Targeted", total[0]);
      set_u32(*x, "NumberSuccess", total[1]);
      set_u32(*x, "NumberInProgress", total[4]);
      set_u32(*x, "NumberErrors", total[5]);
      return txn.put(*x);
    };
  };
  std::deque<std::future<Result<store::CommitInfo>>> in_flight;
  const auto start = Clock::now();
  for (long n = 0; n < o.baseline_changes; ++n) {
    in_flight.push_back(st.submit(command(w.next(), kT0 + n)));
    if (in_flight.size() >= static_cast<std::size_t>(o.window)) {
      must(in_flight.front().get(), "scan baseline");
      in_flight.pop_front();
    }
  }
  while (!in_flight.empty()) {
    must(in_flight.front().get(), "scan baseline");
    in_flight.pop_front();
  }
  return static_cast<double>(o.baseline_changes) / std::chrono::duration<double>(Clock::now() - start).count();
}

// The baseline the issue names: the same changes through the backend's own SQL, the package's counts recomputed
// with one GROUP BY per change, no journal, batches of 512 changes per transaction like the writer's.
double run_baseline(Connection& c, Workload& w, const Options& o) {
  const store::Dialect& d = c.dialect();
  const std::string update_dp = "UPDATE \"SMS_PackageStatusDistPointsSummarizer\" SET \"State\" = " + d.placeholder(1) +
                                ", \"SummaryDate\" = " + d.placeholder(2) + " WHERE " + eq(d, "PackageID", 3) +
                                " AND " + eq(d, "ServerNALPath", 4) + " AND " + eq(d, "SiteCode", 5);
  const std::string group =
      "SELECT \"SiteCode\", SUM(CASE WHEN \"State\" NOT IN (4, 5, 6) THEN 1 ELSE 0 END), "
      "SUM(CASE WHEN \"State\" = 0 AND \"SourceVersion\" = 1 THEN 1 ELSE 0 END), "
      "SUM(CASE WHEN \"State\" IN (2, 5) THEN 1 ELSE 0 END), SUM(CASE WHEN \"State\" IN (3, 6) THEN 1 ELSE 0 END), "
      "SUM(CASE WHEN \"State\" IN (1, 2, 4, 5, 7, 8) THEN 1 ELSE 0 END) "
      "FROM \"SMS_PackageStatusDistPointsSummarizer\" WHERE " +
      eq(d, "PackageID", 1) + " GROUP BY \"SiteCode\"";
  const std::string counts = "\"Targeted\" = " + d.placeholder(1) + ", \"Installed\" = " + d.placeholder(2) +
                             ", \"Retrying\" = " + d.placeholder(3) + ", \"Failed\" = " + d.placeholder(4);
  const std::string update_detail = "UPDATE \"SMS_PackageStatusDetailSummarizer\" SET " + counts + " WHERE " +
                                    eq(d, "PackageID", 5) + " AND " + eq(d, "SiteCode", 6);
  const std::string update_root =
      "UPDATE \"SMS_PackageStatusRootSummarizer\" SET " + counts + " WHERE " + eq(d, "PackageID", 5);
  const std::string update_extra = "UPDATE \"SMS_ObjectContentExtraInfo\" SET \"Targeted\" = " + d.placeholder(1) +
                                   ", \"NumberSuccess\" = " + d.placeholder(2) +
                                   ", \"NumberInProgress\" = " + d.placeholder(3) +
                                   ", \"NumberErrors\" = " + d.placeholder(4) + " WHERE " + eq(d, "ObjectID", 5);
  constexpr long kBatch = 512;  // the store writer's default max_batch
  const auto start = Clock::now();
  for (long n = 0; n < o.baseline_changes;) {
    must(c.begin(true), "begin");
    for (long b = 0; b < kBatch && n < o.baseline_changes; ++b, ++n) {
      const auto ch = w.next();
      const std::string id = package_id(ch.p);
      must(c.exec(update_dp,
                  {static_cast<std::int64_t>(ch.to), kT0 + n, id, nal_of(ch.d, o), site_code(site_of(ch.d, o))}),
           "update row");
      std::int64_t total[5] = {0, 0, 0, 0, 0};
      std::vector<std::pair<std::string, std::vector<std::int64_t>>> sites;
      must(c.query(group, {id},
                   [&](const store::SqlRow& row) -> Result<bool> {
                     std::vector<std::int64_t> v;
                     for (int k = 1; k <= 5; ++k) {
                       PKG_ASSIGN_OR_RETURN(std::int64_t x, row.as_int(k));
                       v.push_back(x);
                       total[k - 1] += x;
                     }
                     sites.emplace_back(std::string(row.as_text(0)), std::move(v));
                     return true;
                   }),
           "group by");
      for (const auto& [site, v] : sites) {
        must(c.exec(update_detail, {v[0], v[1], v[2], v[3], id, site}), "update detail");
      }
      must(c.exec(update_root, {total[0], total[1], total[2], total[3], id}), "update root");
      must(c.exec(update_extra, {total[0], total[1], total[4], total[3], id}), "update extra");
    }
    must(c.commit(), "commit");
  }
  return static_cast<double>(o.baseline_changes) / std::chrono::duration<double>(Clock::now() - start).count();
}

void run_backend(const std::string& backend, const Options& o) {
  auto db = make_db(backend);
  if (!db) {
    std::printf("%-10s skipped (%s)\n", backend.c_str(),
                backend == "sqlite" ? "mkdtemp failed" : "PKGCAST_TEST_PG_URL is not set");
    return;
  }
  store::OpenOptions opt;
  opt.url = db->url;
  const auto load_start = Clock::now();
  if (backend == "sqlite" && !o.sqlite_template.empty()) {
    copy_template(o, db->url);
  } else {
    load_fresh(o, backend, db->url);
  }
  const double load_secs = std::chrono::duration<double>(Clock::now() - load_start).count();

  Workload w(o);
  double incremental = 0;
  double per_batch = 0;
  std::string cost;
  double scan_baseline = 0;
  std::string memory;
  std::size_t differences = 0;
  {
    auto st = must(store::Store::open(opt), "open");
    const Cost before = Cost::now();
    incremental = run_incremental(*st, w, o, per_batch);
    cost = Cost::per_change(before, Cost::now(), o.changes);
    memory = rss();
    if (o.check) differences = must(summarizer::check(*st), "check").size();
    if (o.baseline_changes > 0) scan_baseline = run_scan_baseline(*st, w, o);
    st->close();
  }
  // The GROUP BY baseline continues from the same states, with the store closed (it writes through its own
  // connection).
  auto c = raw(backend, db->url);
  const double baseline = o.baseline_changes > 0 ? run_baseline(*c, w, o) : 0;
  std::printf(
      "%-10s %9ld rows  load %6.1fs  incremental %7.0f/s (%.0f per commit)  store+scan recompute "
      "%7.0f/s (x%.1f)  SQL GROUP BY %7.0f/s (x%.1f)  check: %s  %s\n  incremental %s\n",
      backend.c_str(), static_cast<long>(o.packages) * o.dps, load_secs, incremental, per_batch, scan_baseline,
      scan_baseline > 0 ? incremental / scan_baseline : 0.0, baseline, baseline > 0 ? incremental / baseline : 0.0,
      o.check ? (differences == 0 ? "exact" : (std::to_string(differences) + " differences").c_str()) : "skipped",
      memory.c_str(), cost.c_str());
}

}  // namespace
}  // namespace pkgcast

int main(int argc, char** argv) {
  pkgcast::Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string v = argv[i + 1];
    if (flag == "--packages")
      o.packages = std::stoi(v);
    else if (flag == "--dps")
      o.dps = std::stoi(v);
    else if (flag == "--sites")
      o.sites = std::stoi(v);
    else if (flag == "--changes")
      o.changes = std::stol(v);
    else if (flag == "--baseline-changes")
      o.baseline_changes = std::stol(v);
    else if (flag == "--backend")
      o.backend = v;
    else if (flag == "--window")
      o.window = std::stoi(v);
    else if (flag == "--check")
      o.check = v != "0";
    else if (flag == "--group")
      o.group = std::stoi(v);
    else if (flag == "--group-each")
      o.group_each = std::stoi(v) != 0;
    else if (flag == "--active")
      o.active = std::stoi(v);
    else if (flag == "--sqlite-template")
      o.sqlite_template = v;
    else {
      std::fprintf(stderr, "summarizer_bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if ((argc - 1) % 2 != 0 || o.packages < 1 || o.dps < 1 || o.sites < 1 || o.sites > 100 || o.packages > 0xFFFFF) {
    std::fprintf(stderr,
                 "usage: summarizer_bench [--packages P] [--dps D] [--sites S] [--changes N] "
                 "[--baseline-changes M] [--backend sqlite|postgresql|both] [--window W] [--check 0|1] "
                 "[--group N] [--group-each 0|1] [--active K] [--sqlite-template FILE]\n");
    return 2;
  }
  std::printf(
      "summarizer_bench: %d packages x %d DPs at %d sites, %ld changes (baseline %ld), %d per command%s, "
      "%s\n",
      o.packages, o.dps, o.sites, o.changes, o.baseline_changes, o.group,
      o.group > 1 ? (o.group_each ? " (transition() each)" : " (transition_all())") : "",
      o.active > 0 ? (std::to_string(o.active) + " packages active").c_str() : "every package active");
  if (o.backend == "sqlite" || o.backend == "both") pkgcast::run_backend("sqlite", o);
  if (o.backend == "postgresql" || o.backend == "both") pkgcast::run_backend("postgresql", o);
  return 0;
}
