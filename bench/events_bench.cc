// pkgcast's pushed events beside WMI's WITHIN polling, in one run on one database (issue 7, Benchmark).
//
// The database: P packages x D distribution points of summarizer rows (SMS_PackageStatusDistPointsSummarizer, one
// per package and DP, and SMS_PackageStatusRootSummarizer, one per package), written straight through the store.
// The change stream: status messages at R per second, each moving one DP row between INSTALLED (0) and
// INSTALL_RETRYING (2) and the package's Root row's Installed/Retrying counts with it (two row changes a message).
// A fraction of them is transient: the row goes to RETRYING and back to INSTALLED 50-500 ms later (a retry that
// succeeded), the changes a poller that looks only every interval cannot see.
//
// The subscribers: S = 10,000, as the issue sets them: S - 10 each watch one package's Root and DistPoints rows
// (two subscriptions: `TargetInstance ISA '<class>' AND TargetInstance.PackageID = '<id>'`), 10 watch both whole
// classes. pkgcast's side is the event engine in this process (src/provider/events.h), driven by the store's commit
// listener as in the server; the sinks are threads woken by the engine that poll each subscription, as the
// server's stream producers do (the HTTP framing and sockets are not in this figure: see
// tests/hostile/event_streams_test.cc for 10,000 real SSE streams).
//
// Polling is WMI's WITHIN for a class whose provider has no event support (MS-WMI 3.1.5): every interval it
// enumerates the class through the provider (`SELECT * FROM <class>`, here the same Provider the server answers
// queries with), compares each instance with the previous enumeration by its __RELPATH, and reports creations,
// deletions and modifications. It is measured at its cheapest: one enumeration per class per interval, shared by
// all 10,000 subscribers (WMI polls each event filter's query separately, so a real server does S times the work).
//
// Phases, in one process on one store: seed; subscribe; idle (CPU with every subscription open and no change);
// push under load (latency change-to-sink, CPU); 1 s polling under the same load (latency, CPU per poll, events
// reported); then the same generator replayed offline to count what polling at 1 s and 120 s reports of the
// change stream (the 1 s figure checks the replay against the measured one; 120 s polls are too slow to measure in
// a run, so their CPU a minute is the measured cost of one poll times 0.5, and their latency is the interval's).
//
//   build/release/bench/events_bench [--packages 10000] [--dps 100] [--rate 2500] [--seconds 30]
//       [--idle-seconds 20] [--subscribers 10000] [--sinks 2] [--transient 0.2] [--db URL]
// (also EVENTS_BENCH_PACKAGES, _DPS, _RATE, _SECONDS, _IDLE_SECONDS, _SUBSCRIBERS, _SINKS, _TRANSIENT, _DB).
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/mutex.h"
#include "provider/events.h"
#include "provider/provider.h"
#include "store/store.h"

namespace pkgcast::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---- options ----------------------------------------------------------------------------------------------------

struct Options {
  int packages = 10'000;
  int dps = 100;
  double rate = 2'500;  // status messages a second; two row changes each
  double seconds = 30;  // each loaded phase
  double idle_seconds = 20;
  int subscribers = 10'000;
  int sinks = 2;
  double transient = 0.2;
  std::string db;  // "" = SQLite in a temporary directory
};

Options parse_options(int argc, char** argv) {
  Options o;
  auto env = [](const char* name) -> const char* {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? v : nullptr;
  };
  struct Flag {
    const char* flag;
    const char* var;
    std::function<void(const char*)> set;
  };
  const std::vector<Flag> flags = {
      {"--packages", "EVENTS_BENCH_PACKAGES", [&](const char* v) { o.packages = std::atoi(v); }},
      {"--dps", "EVENTS_BENCH_DPS", [&](const char* v) { o.dps = std::atoi(v); }},
      {"--rate", "EVENTS_BENCH_RATE", [&](const char* v) { o.rate = std::atof(v); }},
      {"--seconds", "EVENTS_BENCH_SECONDS", [&](const char* v) { o.seconds = std::atof(v); }},
      {"--idle-seconds", "EVENTS_BENCH_IDLE_SECONDS", [&](const char* v) { o.idle_seconds = std::atof(v); }},
      {"--subscribers", "EVENTS_BENCH_SUBSCRIBERS", [&](const char* v) { o.subscribers = std::atoi(v); }},
      {"--sinks", "EVENTS_BENCH_SINKS", [&](const char* v) { o.sinks = std::atoi(v); }},
      {"--transient", "EVENTS_BENCH_TRANSIENT", [&](const char* v) { o.transient = std::atof(v); }},
      {"--db", "EVENTS_BENCH_DB", [&](const char* v) { o.db = v; }},
  };
  for (const Flag& f : flags) {
    if (const char* v = env(f.var)) f.set(v);
  }
  for (int i = 1; i < argc; ++i) {
    bool known = false;
    for (const Flag& f : flags) {
      if (std::strcmp(argv[i], f.flag) == 0 && i + 1 < argc) {
        f.set(argv[++i]);
        known = true;
      }
    }
    if (!known) {
      std::fprintf(stderr,
                   "usage: events_bench [--packages N] [--dps N] [--rate MSGS_PER_S] [--seconds S] "
                   "[--idle-seconds S] [--subscribers N] [--sinks N] [--transient FRACTION] [--db URL]\n");
      std::exit(2);
    }
  }
  o.subscribers = std::clamp(o.subscribers, 10, o.packages + 10);
  return o;
}

// ---- measurements -----------------------------------------------------------------------------------------------

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double rusage_seconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long rss_kib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::set<long> task_ids() {
  std::set<long> ids;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ids.insert(std::atol(e->d_name));
    }
    closedir(d);
  }
  return ids;
}

// CPU seconds (user + system) of some threads of this process.
double threads_cpu_seconds(const std::set<long>& tids) {
  double total = 0;
  for (long tid : tids) {
    std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (stat.empty()) continue;
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::vector<std::string> f;
    for (std::string x; fields >> x;) f.push_back(x);
    if (f.size() > 12) total += (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return total;
}

struct Percentiles {
  double p50 = 0, p99 = 0, max = 0;
  std::size_t n = 0;
};

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  p.p50 = v[v.size() / 2];
  p.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  p.max = v.back();
  return p;
}

// ---- the database and the change stream -------------------------------------------------------------------------

std::string package_id(int i) {
  char id[16];
  std::snprintf(id, sizeof id, "ABC%05X", i);
  return id;
}
std::string dp_path(int d) {
  return "[\"Display=\\\\dp" + std::to_string(d) + ".example\\\"]MSWNET:[\"SMS_SITE=ABC\"]\\\\dp" + std::to_string(d) +
         ".example\\";
}

struct Rows {
  const cim::ClassDef* dp = nullptr;
  const cim::ClassDef* root = nullptr;
  int dps = 0;

  cim::Instance dp_row(int p, int d, std::uint32_t state) const {
    cim::Instance r(*dp);
    (void)r.set("PackageID", cim::Value::string(package_id(p)));
    (void)r.set("ServerNALPath", cim::Value::string(dp_path(d)));
    (void)r.set("SiteCode", cim::Value::string("ABC"));
    (void)r.set("SourceVersion", cim::Value::uint32(1));
    (void)r.set("State", cim::Value::uint32(state));
    (void)r.set("PackageType", cim::Value::uint32(0));
    return r;
  }
  cim::Instance root_row(int p, std::uint32_t installed, std::uint32_t retrying) const {
    cim::Instance r(*root);
    (void)r.set("PackageID", cim::Value::string(package_id(p)));
    (void)r.set("Name", cim::Value::string("package " + std::to_string(p)));
    (void)r.set("SourceSite", cim::Value::string("ABC"));
    (void)r.set("SourceVersion", cim::Value::uint32(1));
    (void)r.set("Targeted", cim::Value::uint32(static_cast<std::uint32_t>(dps)));
    (void)r.set("Installed", cim::Value::uint32(installed));
    (void)r.set("Retrying", cim::Value::uint32(retrying));
    (void)r.set("Failed", cim::Value::uint32(0));
    return r;
  }
};

// One status message: DP row (p, d) goes to `state` (0 or 2), and its package's Root counts follow.
struct Message {
  double at = 0;  // seconds from the start of the stream
  int p = 0;
  int d = 0;
  std::uint32_t state = 0;
  std::uint32_t retrying = 0;  // the package's DPs in RETRYING after this message
};

// The change stream, deterministic for a seed: `rate` messages a second, a fraction of them transient (undone 50-500
// ms later by a second message). Keeps the rows' current state, so it can be replayed offline exactly as it ran.
class Generator {
 public:
  Generator(const Options& o, std::uint64_t seed)
      : o_(o), rng_(seed), state_(static_cast<std::size_t>(o.packages) * o.dps, 0), retrying_(o.packages, 0) {}

  // The messages due up to `now` (seconds), in time order.
  void due(double now, std::vector<Message>& out) {
    while (true) {
      const double next_fresh = static_cast<double>(issued_) / o_.rate;
      const bool undo_first = !undo_.empty() && undo_.begin()->first <= next_fresh;
      const double t = undo_first ? undo_.begin()->first : next_fresh;
      if (t > now) return;
      Message m;
      if (undo_first) {
        m = undo_.begin()->second;
        undo_.erase(undo_.begin());
        pending_.erase(key(m.p, m.d));
      } else {
        ++issued_;
        std::uniform_int_distribution<int> pd(0, o_.packages - 1), dd(0, o_.dps - 1);
        m.p = pd(rng_);
        m.d = dd(rng_);
        if (pending_.count(key(m.p, m.d)) != 0) continue;  // a transient in flight on that row: pick again later
        m.state = state_[key(m.p, m.d)] == 0 ? 2 : 0;
        if (m.state == 2 && std::uniform_real_distribution<double>(0, 1)(rng_) < o_.transient) {
          const double later = t + std::uniform_real_distribution<double>(0.05, 0.5)(rng_);
          undo_.emplace(later, Message{later, m.p, m.d, 0});
          pending_.insert(key(m.p, m.d));
        }
      }
      m.at = t;
      state_[key(m.p, m.d)] = static_cast<std::uint8_t>(m.state);
      retrying_[static_cast<std::size_t>(m.p)] += m.state == 2 ? 1 : -1;
      m.retrying = static_cast<std::uint32_t>(retrying_[static_cast<std::size_t>(m.p)]);
      out.push_back(m);
    }
  }

 private:
  std::size_t key(int p, int d) const { return static_cast<std::size_t>(p) * o_.dps + d; }
  const Options& o_;
  std::mt19937_64 rng_;
  std::uint64_t issued_ = 0;
  std::vector<std::uint8_t> state_;
  std::vector<int> retrying_;
  std::multimap<double, Message> undo_;
  std::set<std::size_t> pending_;
};

// Row ids, for the poller's bookkeeping: DP rows 0 .. P*D-1, Root rows after them.
std::size_t dp_row_id(const Options& o, int p, int d) {
  return static_cast<std::size_t>(p) * o.dps + d;
}
std::size_t root_row_id(const Options& o, int p) {
  return static_cast<std::size_t>(o.packages) * o.dps + p;
}

// Applies one message through the store (asynchronously; the writer batches) and returns its future.
std::future<Result<store::CommitInfo>> submit(store::Store& store, const Rows& rows, const Options& o,
                                              const Message& m) {
  cim::Instance dp = rows.dp_row(m.p, m.d, m.state);
  cim::Instance root = rows.root_row(m.p, static_cast<std::uint32_t>(o.dps) - m.retrying, m.retrying);
  return store.submit([dp = std::move(dp), root = std::move(root)](store::WriteTxn& txn) -> Status {
    PKG_TRY(txn.put(dp));
    return txn.put(root);
  });
}

// ---- pkgcast's side: the engine and its sinks -------------------------------------------------------------------

// Sink threads: woken subscriptions are queued here and polled by `threads` threads, like the server's producers.
class Sinks {
 public:
  struct Received {
    std::uint64_t revision;
    Clock::time_point at;
    std::uint32_t subscriber;
  };

  Sinks(int threads, std::size_t subscriptions)
      : subs_(subscriptions), owner_(subscriptions), last_revision_(subscriptions, 0) {
    {
      MutexLock lock(mu_);
      queued_.resize(subscriptions);
      running_.resize(subscriptions);
      rewake_.resize(subscriptions);
      received_.resize(static_cast<std::size_t>(threads));
    }
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, i] { run(i); });
    }
  }
  ~Sinks() {
    {
      MutexLock lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // The engine's wake callback for subscription `i`: quick, never blocks for long.
  provider::WakeFn waker(std::size_t i) {
    return [this, i] { wake(i); };
  }
  void set(std::size_t i, std::unique_ptr<provider::Subscription> s, std::uint32_t subscriber) {
    {
      MutexLock lock(mu_);
      subs_[i] = std::move(s);
      owner_[i] = subscriber;
    }
    wake(i);  // poll once, so that the engine knows it is idle and wakes it when something comes
  }
  void wake(std::size_t i) {
    {
      MutexLock lock(mu_);
      if (running_[i]) {
        rewake_[i] = true;  // its thread queues it again when it is done with it
        return;
      }
      if (queued_[i]) return;
      queued_[i] = true;
      ready_.push_back(i);
    }
    cv_.notify_one();
  }
  void start_recording() { recording_ = true; }
  // Events a subscription received at or below a revision it had already received.
  std::uint64_t out_of_order() const { return out_of_order_; }
  void stop_recording() { recording_ = false; }
  std::vector<Received> take_received() {
    MutexLock lock(mu_);
    std::vector<Received> all;
    for (auto& r : received_) {
      all.insert(all.end(), r.begin(), r.end());
      r.clear();
    }
    return all;
  }
  std::set<long> tids() {
    MutexLock lock(mu_);
    return tids_;
  }

 private:
  void run(int index) {
    {
      MutexLock lock(mu_);
      tids_.insert(static_cast<long>(gettid()));
    }
    std::vector<Received> local;
    while (true) {
      std::size_t i = 0;
      provider::Subscription* sub = nullptr;
      std::uint32_t owner = 0;
      {
        MutexLock lock(mu_);
        if (!local.empty()) {
          auto& r = received_[static_cast<std::size_t>(index)];
          r.insert(r.end(), local.begin(), local.end());
          local.clear();
        }
        while (ready_.empty() && !stop_) cv_.wait(mu_);
        if (stop_) return;
        i = ready_.front();
        ready_.pop_front();
        queued_[i] = false;
        running_[i] = true;
        sub = subs_[i].get();
        owner = owner_[i];
      }
      // A subscription is handled by one thread at a time: while it runs here, a wake only marks it, and it is
      // queued again below.
      auto done = [&] {
        MutexLock lock(mu_);
        running_[i] = false;
        if (rewake_[i]) {
          rewake_[i] = false;
          queued_[i] = true;
          ready_.push_back(i);
          cv_.notify_one();
        }
      };
      if (sub == nullptr) {
        done();
        continue;
      }
      while (true) {
        provider::PollResult r = sub->poll(256);
        for (const auto& e : r.events) {
          // Revision order per subscription (last_revision_[i] belongs to the thread running i).
          if (e.revision <= last_revision_[i]) ++out_of_order_;
          last_revision_[i] = e.revision;
        }
        if (recording_) {
          const auto now = Clock::now();
          for (const auto& e : r.events) local.push_back({e.revision, now, owner});
        }
        if (r.state != provider::PollState::kReady) break;
      }
      done();
    }
  }

  Mutex mu_;
  CondVar cv_;
  std::vector<std::unique_ptr<provider::Subscription>> subs_ PKG_GUARDED_BY(mu_);
  std::vector<std::uint32_t> owner_ PKG_GUARDED_BY(mu_);
  std::vector<bool> queued_ PKG_GUARDED_BY(mu_);
  std::vector<bool> running_ PKG_GUARDED_BY(mu_);
  std::vector<bool> rewake_ PKG_GUARDED_BY(mu_);
  std::deque<std::size_t> ready_ PKG_GUARDED_BY(mu_);
  std::vector<std::vector<Received>> received_ PKG_GUARDED_BY(mu_);
  std::set<long> tids_ PKG_GUARDED_BY(mu_);
  bool stop_ PKG_GUARDED_BY(mu_) = false;
  std::atomic<bool> recording_{false};
  std::vector<std::uint64_t> last_revision_;
  std::atomic<std::uint64_t> out_of_order_{0};
  std::vector<std::thread> threads_;
};

// ---- the load -----------------------------------------------------------------------------------------------------

// What a loaded phase committed: for each message, when it was submitted, when its commit was acknowledged and the
// revision of its Root row (the DP row's is the one before it).
struct Committed {
  std::vector<Message> messages;
  std::vector<Clock::time_point> submitted;
  std::vector<Clock::time_point> acknowledged;
  std::vector<std::uint64_t> revisions;
};

// Runs the generator against the store for `seconds`, in 1 ms steps; `on_message` sees each message as it is
// submitted (the poller's bookkeeping). A second thread waits for the commits in order and notes when each is
// acknowledged.
Committed run_load(store::Store& store, const Rows& rows, const Options& o, Generator& gen, double& clock_offset,
                   double seconds, const std::function<void(const Message&, Clock::time_point)>& on_message,
                   double& writer_lag_max) {
  Committed c;
  Mutex mu;
  CondVar cv;
  std::deque<std::future<Result<store::CommitInfo>>> inflight;
  bool done = false;
  std::vector<Clock::time_point> acked;
  std::vector<std::uint64_t> revisions;
  std::thread acker([&] {
    while (true) {
      std::future<Result<store::CommitInfo>> f;
      {
        MutexLock lock(mu);
        while (inflight.empty() && !done) cv.wait(mu);
        if (inflight.empty()) return;
        f = std::move(inflight.front());
        inflight.pop_front();
      }
      auto r = f.get();
      if (!r.ok()) {
        std::fprintf(stderr, "write failed: %s\n", r.error().to_string().c_str());
        std::exit(1);
      }
      acked.push_back(Clock::now());
      revisions.push_back(r->revision);
    }
  });
  const auto start = Clock::now();
  std::vector<Message> due;
  writer_lag_max = 0;
  while (seconds_since(start) < seconds) {
    due.clear();
    gen.due(clock_offset + seconds_since(start), due);
    std::size_t waiting = 0;
    for (const Message& m : due) {
      const auto now = Clock::now();
      on_message(m, now);
      auto f = submit(store, rows, o, m);
      c.messages.push_back(m);
      c.submitted.push_back(now);
      MutexLock lock(mu);
      inflight.push_back(std::move(f));
      waiting = inflight.size();
    }
    cv.notify_one();
    writer_lag_max = std::max(writer_lag_max, static_cast<double>(waiting) / o.rate);
    std::this_thread::sleep_for(1ms);
  }
  {
    MutexLock lock(mu);
    done = true;
  }
  cv.notify_one();
  acker.join();
  c.acknowledged = std::move(acked);
  c.revisions = std::move(revisions);
  clock_offset += seconds_since(start);
  return c;
}

// ---- WITHIN polling -----------------------------------------------------------------------------------------------

// Enumerates both classes through the provider and diffs each instance against the previous enumeration by
// __RELPATH (a fingerprint of its property values stands for the instance WMI keeps). Reports modifications with
// the row id they concern.
class Poller {
 public:
  Poller(const provider::Provider& provider, const Options& o) : provider_(provider), o_(o) {}

  struct Poll {
    double seconds = 0;
    double cpu_seconds = 0;
    std::size_t instances = 0;
    std::vector<std::size_t> modified;  // row ids
    Clock::time_point done;
  };

  Poll poll() {
    Poll out;
    const auto t0 = Clock::now();
    const double c0 = rusage_seconds(RUSAGE_THREAD);
    site::TokenRecord caller;
    caller.role = site::Role::kReadOnly;
    for (const char* cls : {"SMS_PackageStatusDistPointsSummarizer", "SMS_PackageStatusRootSummarizer"}) {
      const bool root = std::strcmp(cls, "SMS_PackageStatusRootSummarizer") == 0;
      Status s = provider_.exec_query("", std::string("SELECT * FROM ") + cls, caller, [&](const cim::Instance& inst) {
        ++out.instances;
        std::string values;
        for (std::size_t i = 0; i < inst.class_def().properties().size(); ++i) {
          values += inst.get(i).to_display();
          values += '\x1f';
        }
        const std::size_t fp = std::hash<std::string>{}(values);
        auto [it, fresh] = snapshot_.try_emplace(inst.relpath(), fp);
        if (!fresh && it->second != fp) {
          it->second = fp;
          out.modified.push_back(row_id(inst, root));
        }
        return true;
      });
      if (!s.ok()) {
        std::fprintf(stderr, "poll failed: %s\n", s.error().to_string().c_str());
        std::exit(1);
      }
    }
    out.done = Clock::now();
    out.seconds = std::chrono::duration<double>(out.done - t0).count();
    out.cpu_seconds = rusage_seconds(RUSAGE_THREAD) - c0;
    return out;
  }

 private:
  std::size_t row_id(const cim::Instance& inst, bool root) const {
    const int p = static_cast<int>(std::strtol(inst.find("PackageID")->as_string().c_str() + 3, nullptr, 16));
    if (root) return root_row_id(o_, p);
    const std::string& nal = inst.find("ServerNALPath")->as_string();
    const int d = std::atoi(nal.c_str() + nal.find("\\\\dp") + 4);
    return dp_row_id(o_, p, d);
  }

  const provider::Provider& provider_;
  const Options& o_;
  std::unordered_map<std::string, std::size_t> snapshot_;
};

// What WITHIN `interval` reports of a message stream, replayed offline: a poll every interval sees each row's value
// then; a row whose value differs from the previous poll's is one reported modification. Changes that are superseded
// or undone before a poll are never reported.
struct Replay {
  std::uint64_t changes = 0;
  std::uint64_t reported = 0;
};

Replay replay_polling(const Options& o, double seconds, double interval, std::uint64_t seed) {
  Generator gen(o, seed);
  std::vector<Message> due;
  std::unordered_map<std::size_t, std::uint32_t> current, seen;  // row id -> value (absent = initial)
  Replay r;
  std::vector<std::uint32_t> root_value(static_cast<std::size_t>(o.packages), 0);
  for (double t = interval; t <= seconds + 1e-9; t += interval) {
    due.clear();
    gen.due(t, due);
    for (const Message& m : due) {
      current[dp_row_id(o, m.p, m.d)] = m.state;
      current[root_row_id(o, m.p)] = m.retrying + 1;  // any distinct encoding of the counts
      r.changes += 2;
    }
    for (const auto& [row, value] : current) {
      auto it = seen.find(row);
      const std::uint32_t before = it == seen.end() ? (row < root_row_id(o, 0) ? 0u : 1u) : it->second;
      if (value != before) ++r.reported;
      seen[row] = value;
    }
    current.clear();
  }
  return r;
}

// ---- the run --------------------------------------------------------------------------------------------------------

int run(const Options& o) {
  std::string dir;
  store::OpenOptions open;
  if (o.db.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pkgcast-events-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return 1;
    dir = tmpl;
    open.url = "sqlite:" + dir + "/site.db";
  } else {
    open.url = o.db;
  }
  open.retention.max_entries = 0;  // the catch-up path must never find its revision compacted during the run
  const std::set<long> tids_0 = task_ids();
  auto opened = store::Store::open(open);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.error().to_string().c_str());
    return 1;
  }
  std::unique_ptr<store::Store> store = std::move(opened).value();
  Rows rows{store->registry().find("SMS_PackageStatusDistPointsSummarizer"),
            store->registry().find("SMS_PackageStatusRootSummarizer"), o.dps};
  std::printf(
      "# events_bench: %d packages x %d DPs (%d summarizer rows), %g messages/s (%g row changes/s), "
      "%d subscribers, %s\n",
      o.packages, o.dps, o.packages * (o.dps + 1), o.rate, 2 * o.rate, o.subscribers,
      std::string(store->backend_name()).c_str());

  // Seed.
  auto t = Clock::now();
  for (int first = 0; first < o.packages; first += 100) {
    auto r = store->execute([&](store::WriteTxn& txn) -> Status {
      for (int p = first; p < std::min(o.packages, first + 100); ++p) {
        for (int d = 0; d < o.dps; ++d) PKG_TRY(txn.put(rows.dp_row(p, d, 0)));
        PKG_TRY(txn.put(rows.root_row(p, static_cast<std::uint32_t>(o.dps), 0)));
      }
      return ok_status();
    });
    if (!r.ok()) {
      std::fprintf(stderr, "seed: %s\n", r.error().to_string().c_str());
      return 1;
    }
  }
  std::printf("seeded in %.1f s\n", seconds_since(t));

  provider::Provider provider(*store, "ABC", "server1");
  const std::set<long> tids_store = task_ids();
  provider::EventOptions eo;
  eo.max_subscriptions = static_cast<std::size_t>(o.subscribers) * 2 + 16;
  auto engine = std::move(provider::EventEngine::create(*store, provider, eo)).value();
  std::set<long> engine_tids;
  for (long id : task_ids()) {
    if (tids_store.count(id) == 0) engine_tids.insert(id);
  }
  std::set<long> store_tids;
  for (long id : tids_store) {
    if (tids_0.count(id) == 0) store_tids.insert(id);
  }

  // Subscribe.
  const int keyed = o.subscribers - 10;
  const std::size_t nsubs = static_cast<std::size_t>(o.subscribers) * 2;
  const long rss_before = rss_kib();
  auto sinks_owner = std::make_unique<Sinks>(o.sinks, nsubs);
  Sinks& sinks = *sinks_owner;
  site::TokenRecord caller;
  caller.role = site::Role::kReadOnly;
  t = Clock::now();
  const char* classes[2] = {"SMS_PackageStatusRootSummarizer", "SMS_PackageStatusDistPointsSummarizer"};
  for (int s = 0; s < o.subscribers; ++s) {
    for (int c = 0; c < 2; ++c) {
      std::string q = std::string("SELECT * FROM __InstanceModificationEvent WITHIN 120 WHERE TargetInstance ISA '") +
                      classes[c] + "'";
      if (s < keyed) q += " AND TargetInstance.PackageID = '" + package_id(s) + "'";
      const std::size_t i = static_cast<std::size_t>(s) * 2 + c;
      auto sub = engine->subscribe("", q, caller, std::nullopt, sinks.waker(i));
      if (!sub.ok()) {
        std::fprintf(stderr, "subscribe: %s\n", sub.error().to_string().c_str());
        return 1;
      }
      sinks.set(i, std::move(sub).value(), static_cast<std::uint32_t>(s));
    }
  }
  std::this_thread::sleep_for(1s);  // the first polls (each subscription polled once) are done
  const long rss_subscribed = rss_kib();
  std::printf("subscribed %zu subscriptions for %d subscribers in %.1f s\n", nsubs, o.subscribers, seconds_since(t));

  // Idle.
  t = Clock::now();
  double c0 = rusage_seconds(RUSAGE_SELF);
  double e0 = threads_cpu_seconds(engine_tids);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.idle_seconds));
  const double idle_wall = seconds_since(t);
  const double idle_cpu_min = (rusage_seconds(RUSAGE_SELF) - c0) * 60 / idle_wall;
  const double idle_engine_min = (threads_cpu_seconds(engine_tids) - e0) * 60 / idle_wall;

  // Push under load.
  constexpr std::uint64_t kSeed = 7;
  Generator gen(o, kSeed);
  double clock_offset = 0;
  sinks.start_recording();
  const std::set<long> sink_tids = sinks.tids();
  c0 = rusage_seconds(RUSAGE_SELF);
  e0 = threads_cpu_seconds(engine_tids);
  const double s0 = threads_cpu_seconds(sink_tids);
  const double w0 = threads_cpu_seconds(store_tids);
  const double g0 = rusage_seconds(RUSAGE_THREAD);
  double lag = 0;
  t = Clock::now();
  Committed pushed = run_load(
      *store, rows, o, gen, clock_offset, o.seconds, [](const Message&, Clock::time_point) {}, lag);
  engine->wait_dispatched_for_test();
  std::this_thread::sleep_for(500ms);  // the sinks drain what was dispatched
  const double push_wall = seconds_since(t);
  const double push_engine_min = (threads_cpu_seconds(engine_tids) - e0) * 60 / push_wall;
  const double push_sinks_min = (threads_cpu_seconds(sink_tids) - s0) * 60 / push_wall;
  const double push_writer_min = (threads_cpu_seconds(store_tids) - w0) * 60 / push_wall;
  const double push_gen_min = (rusage_seconds(RUSAGE_THREAD) - g0) * 60 / push_wall;
  const double push_total_min = (rusage_seconds(RUSAGE_SELF) - c0) * 60 / push_wall;
  sinks.stop_recording();
  const auto received = sinks.take_received();
  const provider::EventStats stats = engine->stats();
  const std::uint64_t out_of_order = sinks.out_of_order();

  // Latency and completeness of push: every row change must reach the subscriber watching its package (if any) and
  // the 10 class-wide subscribers, once.
  // revision -> message index
  std::unordered_map<std::uint64_t, std::size_t> by_revision;
  std::vector<double> commit_ms;
  for (std::size_t i = 0; i < pushed.messages.size(); ++i) {
    by_revision[pushed.revisions[i] - 1] = i;
    by_revision[pushed.revisions[i]] = i;
    commit_ms.push_back(
        std::chrono::duration<double, std::milli>(pushed.acknowledged[i] - pushed.submitted[i]).count());
  }
  const Percentiles pc = percentiles(commit_ms);
  std::vector<double> lat_keyed, lat_all, lat_submit;
  std::uint64_t expected = 0, got_keyed = 0, got_wide = 0, stray = 0;
  for (const Message& m : pushed.messages) expected += (m.p < keyed ? 2 : 0) + 10 * 2;
  std::set<std::pair<std::uint64_t, std::uint32_t>> unique;
  for (const auto& r : received) {
    auto it = by_revision.find(r.revision);
    if (it == by_revision.end()) {
      ++stray;
      continue;
    }
    unique.insert({r.revision, r.subscriber});
    const double ms = std::chrono::duration<double, std::milli>(r.at - pushed.acknowledged[it->second]).count();
    lat_all.push_back(ms);
    if (static_cast<int>(r.subscriber) < keyed) {
      lat_keyed.push_back(ms);
      lat_submit.push_back(std::chrono::duration<double, std::milli>(r.at - pushed.submitted[it->second]).count());
      ++got_keyed;
    } else {
      ++got_wide;
    }
  }
  const Percentiles pk = percentiles(lat_keyed), pa = percentiles(lat_all), ps = percentiles(lat_submit);
  const std::uint64_t push_changes = pushed.messages.size() * 2;
  const std::uint64_t push_missing = expected - std::min<std::uint64_t>(expected, unique.size());
  const std::uint64_t push_duplicates = received.size() - stray - unique.size();

  // 1 s polling under the same load (the same generator, going on).
  Poller poller(provider, o);
  // Per row, the index of the last message submitted for it; a poll that reports the row is matched with that
  // message's commit acknowledgement afterwards (latency from the commit, as for push).
  constexpr std::size_t kNone = ~std::size_t{0};
  std::vector<std::size_t> last_change(root_row_id(o, o.packages), kNone);
  std::size_t submitted_count = 0;
  std::vector<std::pair<std::size_t, Clock::time_point>> reports;  // (message index, poll done)
  Mutex last_mu;
  (void)poller.poll();  // the first enumeration is the baseline WITHIN diffs against
  std::atomic<bool> stop_polling{false};
  std::vector<double> poll_latency;
  std::vector<Poller::Poll> polls;
  std::thread polling([&] {
    auto next = Clock::now() + 1s;
    while (!stop_polling) {
      std::this_thread::sleep_until(next);
      next = std::max(next + 1s, Clock::now());
      Poller::Poll p = poller.poll();
      {
        MutexLock lock(last_mu);
        for (std::size_t row : p.modified) {
          if (last_change[row] != kNone) reports.emplace_back(last_change[row], p.done);
        }
      }
      p.modified.shrink_to_fit();
      polls.push_back(std::move(p));
    }
  });
  Committed polled = run_load(
      *store, rows, o, gen, clock_offset, o.seconds,
      [&](const Message& m, Clock::time_point) {
        MutexLock lock(last_mu);
        last_change[dp_row_id(o, m.p, m.d)] = submitted_count;
        last_change[root_row_id(o, m.p)] = submitted_count;
        ++submitted_count;
      },
      lag);
  stop_polling = true;
  polling.join();
  double poll_cpu = 0, poll_wall = 0;
  std::size_t poll_reported = 0, poll_instances = 0;
  for (const auto& p : polls) {
    poll_cpu += p.cpu_seconds;
    poll_wall += p.seconds;
    poll_reported += p.modified.size();
    poll_instances = p.instances;
  }
  const double per_poll_cpu = polls.empty() ? 0 : poll_cpu / static_cast<double>(polls.size());
  const double per_poll_wall = polls.empty() ? 0 : poll_wall / static_cast<double>(polls.size());
  // A poll can report a row before the row's last submitted message committed (it saw an earlier one): such a
  // report's latency is not known and is left out (they are few unless the writer falls behind).
  std::size_t poll_unmatched = 0;
  for (const auto& [index, done] : reports) {
    const double ms = std::chrono::duration<double, std::milli>(done - polled.acknowledged[index]).count();
    if (ms < 0) {
      ++poll_unmatched;
    } else {
      poll_latency.push_back(ms);
    }
  }
  const Percentiles pp = percentiles(poll_latency);
  const std::uint64_t poll_changes = polled.messages.size() * 2;

  // Offline replays of the push phase's stream (same seed, same duration).
  const Replay r1 = replay_polling(o, o.seconds, 1, kSeed);
  const Replay r120 = replay_polling(o, std::max(o.seconds, 600.0), 120, kSeed);

  const long rss_end = rss_kib();
  std::printf("\n");
  std::printf("| | pkgcast push | WITHIN 1 (polling, measured) | WITHIN 120 (polling, extrapolated) |\n");
  std::printf("|---|---|---|---|\n");
  std::printf(
      "| change-to-sink latency p50 / p99 / max, keyed subscribers | %.2f / %.2f / %.1f ms | %.0f / %.0f / "
      "%.0f ms | ~%.0f s / ~%.0f s (half and 99%% of the interval, plus a poll) |\n",
      pk.p50, pk.p99, pk.max, pp.p50, pp.p99, pp.max, 60 + per_poll_wall, 118.8 + per_poll_wall);
  std::printf("| same, all subscribers (class-wide included) | %.2f / %.2f / %.1f ms | | |\n", pa.p50, pa.p99, pa.max);
  std::printf("| submitted-to-sink (the durable commit included), keyed | %.2f / %.2f / %.1f ms | | |\n", ps.p50,
              ps.p99, ps.max);
  std::printf(
      "| server CPU s/min, %d idle subscribers | %.3f (engine thread %.3f) | %.1f (%.2f s a poll, %zu "
      "instances) | %.2f |\n",
      o.subscribers, idle_cpu_min, idle_engine_min, per_poll_cpu * 60, per_poll_cpu, poll_instances,
      per_poll_cpu * 0.5);
  std::printf("| server CPU s/min under load | engine %.2f (+ sinks %.2f) | %.1f | %.2f |\n", push_engine_min,
              push_sinks_min, per_poll_cpu * 60, per_poll_cpu * 0.5);
  std::printf("| RSS per idle subscriber (2 subscriptions) | %.2f KiB | | |\n",
              static_cast<double>(rss_subscribed - rss_before) / o.subscribers);
  std::printf("| row changes in the phase | %llu | %llu | (replay of the push phase's stream) |\n",
              static_cast<unsigned long long>(push_changes), static_cast<unsigned long long>(poll_changes));
  std::printf(
      "| changes reported (one event each) | %llu of %llu deliveries owed, %llu missing, %llu duplicated, %llu out of "
      "order | "
      "%zu reported (%.1f%% of changes missed); replay: %llu of %llu (%.1f%% missed) | replay: %llu of %llu "
      "(%.1f%% missed) |\n",
      static_cast<unsigned long long>(unique.size()), static_cast<unsigned long long>(expected),
      static_cast<unsigned long long>(push_missing), static_cast<unsigned long long>(push_duplicates),
      static_cast<unsigned long long>(out_of_order), poll_reported,
      100.0 * (1.0 - static_cast<double>(poll_reported) / static_cast<double>(poll_changes)),
      static_cast<unsigned long long>(r1.reported), static_cast<unsigned long long>(r1.changes),
      100.0 * (1.0 - static_cast<double>(r1.reported) / static_cast<double>(r1.changes)),
      static_cast<unsigned long long>(r120.reported), static_cast<unsigned long long>(r120.changes),
      100.0 * (1.0 - static_cast<double>(r120.reported) / static_cast<double>(r120.changes)));
  std::printf(
      "\nother figures: commit (submit to acknowledgement) p50 %.2f ms, p99 %.2f ms; process CPU s/min idle %.3f; push "
      "phase: process %.2f, store writer %.2f, load "
      "generator %.2f; %zu polls at 1 s took %.2f s each (wall), %zu of their reports left out of the latency; events "
      "serialized %llu, evaluations %llu, "
      "overflows to catch-up %llu, catch-up pages %llu; writer backlog max %.2f s; RSS %ld KiB before "
      "subscribing, %ld after, %ld at the end\n",
      pc.p50, pc.p99, idle_cpu_min, push_total_min, push_writer_min, push_gen_min, polls.size(), per_poll_wall,
      poll_unmatched, static_cast<unsigned long long>(stats.events_serialized),
      static_cast<unsigned long long>(stats.evaluations), static_cast<unsigned long long>(stats.overflows),
      static_cast<unsigned long long>(stats.catch_up_pages), lag, rss_before, rss_subscribed, rss_end);
  (void)got_keyed;
  (void)got_wide;

  sinks_owner.reset();  // its subscriptions end before the engine and the store
  engine.reset();
  store->close();
  if (!dir.empty()) std::filesystem::remove_all(dir);
  return push_missing == 0 && push_duplicates == 0 && out_of_order == 0 ? 0 : 3;
}

}  // namespace
}  // namespace pkgcast::bench

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines show as they happen, in a log file too
  return pkgcast::bench::run(pkgcast::bench::parse_options(argc, argv));
}
