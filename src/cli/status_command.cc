// `pkgcast status PKGID [--wait] [--timeout S]`: where a package stands on every DP, followed live through events
// (never by polling). On a terminal the view is redrawn in place (a bar per site with bytes and DPs done,
// failures with their error, an ETA); off a terminal it prints a line per change, and with --json an object per
// change. It ends when Installed == Targeted; with --wait the exit code says how: 0 distributed, 1 a DP failed,
// 3 the timeout passed first.
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include <deque>

#include "cli/commands.h"
#include "cli/output.h"
#include "core/mutex.h"
#include "core/strings.h"
#include "wql/literal.h"
#include "pkgcast/pkgcast.h"

namespace pkgcast::cli {
namespace {

using cim::Json;
using SteadyClock = std::chrono::steady_clock;

constexpr int kExitTimedOut = 3;
constexpr std::string_view kStateNames[] = {"INSTALLED",        "INSTALL_PENDING",  "INSTALL_RETRYING",
                                            "INSTALL_FAILED",   "REMOVAL_PENDING",  "REMOVAL_RETRYING",
                                            "REMOVAL_FAILED",   "CONTENT_UPDATING", "CONTENT_MONITORING"};

std::uint64_t num(const Json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}
std::string text(const Json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string bytes_text(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string dp_name(const std::string& nal);

// What the view knows: the package's summary rows, the DistPoints rows and the jobs (bytes), by key.
struct View {
  std::string package_id;
  bool has_source = true;  // SMS_Package.PkgSourceFlag is not STORAGE_NO_SOURCE (1)
  Json root;
  std::map<std::string, Json> details;      // by SiteCode
  std::map<std::string, Json> dist_points;  // by ServerNALPath (lower-case)
  std::map<std::string, Json> jobs;         // by NALPath (lower-case)
  bool package_deleted = false;             // the package's Root row went: it will never be distributed

  void apply(const Json& inst, bool deleted) {
    const std::string cls = text(inst, "__CLASS");
    if (cls == "SMS_PackageStatusRootSummarizer") {
      if (deleted) package_deleted = true; else root = inst;
    } else if (cls == "SMS_PackageStatusDetailSummarizer") {
      if (deleted) details.erase(text(inst, "SiteCode")); else details[text(inst, "SiteCode")] = inst;
    } else if (cls == "SMS_PackageStatusDistPointsSummarizer") {
      const std::string key = to_lower(text(inst, "ServerNALPath"));
      if (deleted) dist_points.erase(key); else dist_points[key] = inst;
    } else if (cls == "PKG_DPJob") {
      const std::string key = to_lower(text(inst, "NALPath"));
      if (deleted) jobs.erase(key); else jobs[key] = inst;
    }
  }

  // Bytes done and total over the DPs that are (or will be) receiving the current version.
  std::pair<std::uint64_t, std::uint64_t> bytes(std::string_view site = {}) const {
    std::uint64_t done = 0, total = 0;
    for (const auto& [key, row] : dist_points) {
      if (!site.empty() && !iequals(text(row, "SiteCode"), site)) continue;
      const auto state = num(row, "State");
      if (state >= 4 && state <= 6) continue;
      auto job = jobs.find(key);
      const std::uint64_t size = job != jobs.end() ? std::max(num(job->second, "BytesTotal"), num(job->second, "ContentSize")) : 0;
      total += size;
      if (state == 0 && num(row, "SourceVersion") == num(root, "SourceVersion")) {
        done += size;
      } else if (job != jobs.end()) {
        done += std::min(num(job->second, "BytesDone"), size);
      }
    }
    return {done, total};
  }

  // classes.md: a package with source files is distributed when Installed == Targeted (> 0); one without source
  // files has nothing to distribute (Targeted stays 0).
  bool distributed() const {
    return !root.is_null() && num(root, "Installed") == num(root, "Targeted") &&
           (num(root, "Targeted") > 0 || !has_source);
  }
  // A targeted DP whose install failed (INSTALL_FAILED): the package cannot become distributed without an
  // administrator. Root's Failed also counts REMOVAL_FAILED, a DP that is no longer a target: it is shown among the
  // failures but neither ends the wait nor stops the package from being distributed on its targets.
  std::size_t install_failures() const {
    std::size_t n = 0;
    for (const auto& [key, row] : dist_points) n += num(row, "State") == 3 ? 1 : 0;
    return n;
  }
  bool failed() const { return !root.is_null() && install_failures() > 0; }

  // What `status --wait` exits 1 with: the failed DPs and their errors, one line.
  Error failure() const {
    std::string message = package_id + " version " + std::to_string(num(root, "SourceVersion")) + ": " +
                          std::to_string(install_failures()) + " of " + std::to_string(num(root, "Targeted")) +
                          " DPs failed";
    for (const auto& [key, row] : dist_points) {
      if (num(row, "State") != 3) continue;  // INSTALL_FAILED
      message += "; " + dp_name(text(row, "ServerNALPath")) + ": " + text(row, "InstallStatus");
    }
    return make_error(WbemCode::kFailed, std::move(message));
  }

  Json summary() const {
    auto [done, total] = bytes();
    Json sites = Json::array();
    for (const auto& [code, d] : details) {
      auto [sd, st] = bytes(code);
      sites.push_back({{"site", code}, {"targeted", num(d, "Targeted")}, {"installed", num(d, "Installed")},
                       {"retrying", num(d, "Retrying")}, {"failed", num(d, "Failed")}, {"bytes_done", sd},
                       {"bytes_total", st}});
    }
    Json failures = Json::array();
    for (const auto& [key, row] : dist_points) {
      const auto state = num(row, "State");
      if (state == 2 || state == 3 || state == 5 || state == 6) {
        failures.push_back({{"dp", text(row, "ServerNALPath")},
                            {"name", dp_name(text(row, "ServerNALPath"))},
                            {"site", text(row, "SiteCode")},
                            {"state", std::string(kStateNames[state])},
                            {"status", text(row, "InstallStatus")}});
      }
    }
    return {{"package_id", package_id},           {"name", text(root, "Name")},
            {"source_version", num(root, "SourceVersion")}, {"targeted", num(root, "Targeted")},
            {"installed", num(root, "Installed")},  {"retrying", num(root, "Retrying")},
            {"failed", num(root, "Failed")},        {"bytes_done", done},
            {"bytes_total", total},                 {"sites", sites},
            {"failures", failures}};
  }
};

// The DP's display name out of its NAL path (`...\\dp1\`).
std::string dp_name(const std::string& nal) {
  std::string n = nal;
  while (!n.empty() && n.back() == '\\') n.pop_back();
  const auto slash = n.rfind('\\');
  return slash == std::string::npos ? n : n.substr(slash + 1);
}

std::string bar(std::uint64_t done, std::uint64_t total, int width = 30) {
  const int filled = total == 0 ? 0 : static_cast<int>(static_cast<double>(done) * width / static_cast<double>(total));
  return "[" + std::string(filled, '#') + std::string(width - filled, '-') + "]";
}

// Bytes per second, smoothed, for the ETA.
class Rate {
 public:
  void observe(std::uint64_t done) {
    const auto now = SteadyClock::now();
    if (last_ && done > last_done_) {
      const double secs = std::chrono::duration<double>(now - *last_).count();
      if (secs > 0) {
        const double r = static_cast<double>(done - last_done_) / secs;
        rate_ = rate_ == 0 ? r : 0.7 * rate_ + 0.3 * r;
      }
    }
    if (!last_ || done != last_done_) {
      last_ = now;
      last_done_ = done;
    }
  }
  std::string eta(std::uint64_t done, std::uint64_t total) const {
    if (rate_ <= 0 || done >= total) return "--:--";
    const auto secs = static_cast<long>(std::ceil(static_cast<double>(total - done) / rate_));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld", secs / 60, secs % 60);
    return buf;
  }

 private:
  std::optional<SteadyClock::time_point> last_;
  std::uint64_t last_done_ = 0;
  double rate_ = 0;
};

class Printer {
 public:
  Printer(bool json, bool tty) : json_(json), tty_(tty) {}

  void show(const View& v) {
    const Json s = v.summary();
    if (json_) {
      const std::string line = s.dump();
      if (line != last_) std::cout << line << std::endl;
      last_ = line;
      return;
    }
    rate_.observe(s["bytes_done"].get<std::uint64_t>());
    if (!tty_) {
      std::string line = s["package_id"].get<std::string>() + " version " + std::to_string(num(s, "source_version")) +
                         ": " + std::to_string(num(s, "installed")) + "/" + std::to_string(num(s, "targeted")) +
                         " installed, " + std::to_string(num(s, "retrying")) + " retrying, " +
                         std::to_string(num(s, "failed")) + " failed, " + bytes_text(double(num(s, "bytes_done"))) +
                         " of " + bytes_text(double(num(s, "bytes_total")));
      for (const auto& f : s["failures"]) line += "; " + dp_name(text(f, "dp")) + " " + text(f, "state") + ": " + text(f, "status");
      if (line != last_) std::cout << line << std::endl;
      last_ = line;
      return;
    }
    // Redrawn in place: up over the previous drawing, each line cleared.
    std::string out;
    for (int i = 0; i < lines_; ++i) out += "\x1b[1A\x1b[2K";
    int lines = 0;
    auto emit = [&](const std::string& l) {
      out += "\r\x1b[2K" + l + "\n";
      ++lines;
    };
    const auto done = num(s, "bytes_done"), total = num(s, "bytes_total");
    emit(text(s, "package_id") + " " + text(s, "name") + " (version " + std::to_string(num(s, "source_version")) +
         "): " + std::to_string(num(s, "installed")) + "/" + std::to_string(num(s, "targeted")) + " DPs installed, " +
         std::to_string(num(s, "retrying")) + " retrying, " + std::to_string(num(s, "failed")) + " failed");
    emit("  all   " + bar(done, total) + " " + bytes_text(double(done)) + " / " + bytes_text(double(total)) +
         "  ETA " + rate_.eta(done, total));
    for (const auto& site : s["sites"]) {
      emit("  " + text(site, "site") + "   " + bar(num(site, "bytes_done"), num(site, "bytes_total")) + " " +
           std::to_string(num(site, "installed")) + "/" + std::to_string(num(site, "targeted")) + " DPs, " +
           bytes_text(double(num(site, "bytes_done"))) + " / " + bytes_text(double(num(site, "bytes_total"))));
    }
    for (const auto& f : s["failures"]) {
      emit("  ! " + dp_name(text(f, "dp")) + " (" + text(f, "site") + ") " + text(f, "state") + ": " + text(f, "status"));
    }
    lines_ = lines;
    std::cout << out << std::flush;
  }

 private:
  bool json_;
  bool tty_;
  std::string last_;
  int lines_ = 0;
  Rate rate_;
};

// The events of every subscription, in one queue the command's thread waits on. The event engine takes one class
// per event query, so the view follows four subscriptions; each delivers in revision order, and the view needs no
// order across classes (each event carries the whole instance).
class EventQueue final : public EventSink {
 public:
  void on_object_ready(const Instance& event) override {
    {
      MutexLock lock(mu_);
      events_.push_back(event.to_json());
    }
    cv_.notify_all();
  }
  void on_completed(const Status& status) override {
    {
      MutexLock lock(mu_);
      if (!status.ok() && status.error().code != WbemCode::kCallCancelled && !ended_) ended_ = status.error();
    }
    cv_.notify_all();
  }
  // The next event, nullopt after `wait` without one; the error that ended a subscription.
  // Events were lost over a gap in the journal (the library resubscribes): the rows are to be read again.
  void on_resync(const Error&) override {
    {
      MutexLock lock(mu_);
      resync_ = true;
    }
    cv_.notify_all();
  }
  // Forgets what the subscriptions of a failed start delivered (they are stopped): the next start reads the rows
  // afresh, and an older event applied after that read could undo a change it holds.
  void clear() {
    MutexLock lock(mu_);
    events_.clear();
    ended_.reset();
    resync_ = false;
  }
  bool take_resync() {
    MutexLock lock(mu_);
    return std::exchange(resync_, false);
  }
  Result<std::optional<std::string>> next(std::chrono::milliseconds wait) {
    MutexLock lock(mu_);
    const auto until = SteadyClock::now() + wait;
    while (events_.empty() && !ended_ && !resync_ && SteadyClock::now() < until) {
      cv_.wait_for(mu_, until - SteadyClock::now());
    }
    if (ended_) return *ended_;
    if (events_.empty()) return std::optional<std::string>();
    std::string e = std::move(events_.front());
    events_.pop_front();
    return std::optional<std::string>(std::move(e));
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::deque<std::string> events_ PKG_GUARDED_BY(mu_);
  std::optional<Error> ended_ PKG_GUARDED_BY(mu_);
  bool resync_ PKG_GUARDED_BY(mu_) = false;
};

// How long the view waits for the rest of a change's events before drawing (the gap between two of them, and the
// whole wait).
constexpr std::chrono::milliseconds kSettleGap{40};
constexpr std::chrono::milliseconds kSettleAtMost{300};

struct StatusOptions {
  std::string package_id;
  bool wait = false;
  std::optional<double> timeout_seconds;
};


int run_status(CliContext& ctx, const StatusOptions& o) {
  // No --timeout: a deadline that never comes.
  const SteadyClock::time_point deadline =
      o.timeout_seconds
          ? SteadyClock::now() +
                std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(*o.timeout_seconds))
          : SteadyClock::time_point::max();
  std::optional<std::chrono::milliseconds> within;
  if (o.timeout_seconds) within = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
  auto scope = ctx.scope(/*resync_on_gap=*/true, within);
  if (!scope.ok()) return ctx.fail(scope.error());
  View view;
  view.package_id = to_upper(o.package_id);
  const std::string where = "PackageID = " + wql::string_literal(view.package_id);
  constexpr std::array<const char*, 4> kClasses = {"SMS_PackageStatusRootSummarizer",
                                                   "SMS_PackageStatusDetailSummarizer",
                                                   "SMS_PackageStatusDistPointsSummarizer", "PKG_DPJob"};
  // The rows as they are now, in place of those held (a row deleted meanwhile goes; no Root row: the package went).
  auto read_rows = [&]() -> Status {
    View fresh;
    fresh.package_id = view.package_id;
    fresh.has_source = view.has_source;
    for (const char* cls : kClasses) {
      auto rows = scope->try_exec_query(std::string("SELECT * FROM ") + cls + " WHERE " + where);
      if (!rows.ok()) return rows.error();
      for (const auto& row : *rows) fresh.apply(Json::parse(row.to_json()), false);
    }
    fresh.package_deleted = fresh.root.is_null();
    view = std::move(fresh);
    return ok_status();
  };
  // Subscribe first, then read the state: every change after the read arrives as an event (some changes may arrive
  // twice, once in the read and once as an event, which is harmless: the event carries the whole instance).
  EventQueue queue;
  std::vector<Subscription> subscriptions;
  // Four subscriptions and the first read (a query answer is a stream too, under the same quota), all or none. A
  // server at its stream quota (WBEM_E_SERVER_TOO_BUSY: `max_streams_per_token` is 32, and a script may follow
  // several packages at once, four streams each) is waited for: what was opened is given back, so that waits running
  // side by side do not hold each other's streams, and the start is tried again after a random delay, until the
  // timeout.
  auto start = [&]() -> Status {
    for (const char* cls : kClasses) {
      auto sub = scope->try_exec_notification_query_async(
          queue, std::string("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA '") + cls +
                     "' AND TargetInstance." + where);
      if (!sub.ok()) return sub.error();
      subscriptions.push_back(std::move(*sub));
    }
    return read_rows();
  };
  std::mt19937 jitter{std::random_device{}()};
  bool told = false;
  for (Status started = start(); !started.ok(); started = start()) {
    const auto delay = std::chrono::milliseconds(250 + std::uniform_int_distribution<int>(0, 1750)(jitter));
    if (o.wait && started.error().code == WbemCode::kTransportFailure && SteadyClock::now() >= deadline) {
      // Connected, and no answer within the timeout: what the package came to is unknown.
      std::cerr << "timed out waiting for the server to answer: " << started.error().message << "\n";
      return kExitTimedOut;
    }
    if (started.error().code != WbemCode::kServerTooBusy) return ctx.fail(started.error());
    if (SteadyClock::now() + delay >= deadline) {
      // Still refused at the timeout: with --wait that is the timeout's exit (what the package came to is unknown).
      if (!o.wait) return ctx.fail(started.error());
      std::cerr << "timed out waiting for the server to admit the event streams\n";
      return kExitTimedOut;
    }
    if (!told) {
      std::cerr << "waiting for the server to admit more event streams: " << started.error().message << "\n";
      told = true;
    }
    subscriptions.clear();
    queue.clear();
    std::this_thread::sleep_for(delay);
  }
  if (view.root.is_null()) return ctx.fail(make_error(WbemCode::kNotFound, "package " + view.package_id + " does not exist"));
  auto package = scope->try_exec_query("SELECT PkgSourceFlag FROM SMS_Package WHERE " + where);
  if (!package.ok()) return ctx.fail(package.error());
  for (const auto& row : *package) view.has_source = num(Json::parse(row.to_json()), "PkgSourceFlag") != 1;

  Printer printer(ctx.options.json, ::isatty(STDOUT_FILENO) == 1);
  printer.show(view);
  // The four subscriptions deliver independently: the Root row can say "done" before the DistPoints and job rows
  // that make the byte counts have arrived. The last view is drawn from one fresh read.
  // The event streams go first: the read is a stream too, under the same per-token quota, and several waits side
  // by side at the quota would each be refused the read that draws their last line. A read refused as busy all the
  // same (a stream given back is freed on the server a moment later) is tried again for a few seconds; one that
  // still fails leaves the last line unprinted and says why.
  auto finish = [&](int code) {
    subscriptions.clear();
    queue.clear();
    Status read = read_rows();
    for (int attempt = 1; !read.ok() && read.error().code == WbemCode::kServerTooBusy && attempt <= 20; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      read = read_rows();
    }
    if (read.ok()) {
      printer.show(view);
    } else {
      std::cerr << "cannot read the package's final state: " << read.error().to_string() << "\n";
    }
    return code;
  };
  auto apply_event = [&](const std::string& text_of_event) {
    const Json e = Json::parse(text_of_event, nullptr, /*allow_exceptions=*/false);
    if (auto t = e.find("TargetInstance"); t != e.end() && t->is_object()) {
      view.apply(*t, text(e, "__CLASS") == "__InstanceDeletionEvent");
    }
  };
  for (;;) {
    if (view.package_deleted) {
      return ctx.fail(make_error(WbemCode::kNotFound, "package " + view.package_id + " was deleted"));
    }
    if (view.distributed()) return finish(kExitOk);
    if (view.failed() && o.wait) {
      finish(kExitError);
      return ctx.fail(view.failure());
    }
    auto wait = std::chrono::milliseconds(1000);
    if (o.timeout_seconds) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) return o.wait ? kExitTimedOut : kExitOk;
      wait = std::min(wait, left);
    }
    auto next = queue.next(wait);
    if (!next.ok()) return ctx.fail(next.error());
    if (queue.take_resync()) {
      // The documented recipe (docs/events.md): after a gap, re-read what is mirrored; later changes come as events.
      if (Status s = read_rows(); !s.ok()) return ctx.fail(s.error());
      printer.show(view);
      continue;
    }
    if (!*next) {
      if (!ctx.options.json) printer.show(view);  // the ETA moves on
      continue;
    }
    apply_event(**next);
    // The four subscriptions deliver one change's rows apart (the Root row can come before the DistPoints and job
    // rows of the same commit): what else arrives within a moment is taken before the view is drawn, so that a line
    // does not say "2/4 installed, 0 B". Bounded, so that a steady stream of events still redraws.
    for (const auto settle_until = SteadyClock::now() + kSettleAtMost; SteadyClock::now() < settle_until;) {
      auto more = queue.next(kSettleGap);
      if (!more.ok() || !*more) break;
      apply_event(**more);
    }
    // The loop's top ends the wait (finish() draws the last line).
    if (view.package_deleted || view.distributed() || (view.failed() && o.wait)) continue;
    printer.show(view);
  }
}

}  // namespace

int run_package_status(CliContext& ctx, const std::string& package_id, bool wait, std::optional<double> timeout) {
  StatusOptions o;
  o.package_id = package_id;
  o.wait = wait;
  o.timeout_seconds = timeout;
  return run_status(ctx, o);
}

void add_status_command(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<StatusOptions>();
  auto* status = app.add_subcommand("status", "Follow a package's distribution live, until every DP has it");
  status->add_option("package_id", o->package_id, "PackageID")->required();
  status->add_flag("--wait", o->wait, "exit 0 when distributed, 1 when a DP failed, 3 on timeout");
  status->add_option("--timeout", o->timeout_seconds, "stop after this many seconds")->check(kPositiveNumber);
  status->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_status(ctx, *o); }; });
}

}  // namespace pkgcast::cli
