// The scheduler: one thread that gives QUEUED jobs their slot, finds stalled ones, and sleeps until the next
// retry or stall deadline or until a verb or a status message wakes it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "core/strings.h"
#include "distmgr/internal.h"
#include "site/transfer_window.h"

namespace pkgcast::distmgr {

using namespace internal;

namespace {

constexpr Micros kSecond = 1'000'000;
constexpr Micros kMaxBackoff = 24 * 3600 * kSecond;

bool takes_slot(std::uint64_t action) {
  return action == static_cast<std::uint32_t>(JobAction::kInstall) ||
         action == static_cast<std::uint32_t>(JobAction::kValidate);
}

struct Plan {
  std::vector<cim::Instance> dispatch;  // QUEUED jobs to send, in order, when they can be and a slot is free
  std::vector<std::pair<cim::Instance, std::string>> hold;  // QUEUED jobs and why they wait
  std::vector<cim::Instance> stalled;
};

// Where a DP takes the version from: its source DPs that hold it (a pull DP), then the site server. Empty when a
// pull DP has no source holding it yet.
Result<std::vector<std::string>> sources_for(store::WriteTxn& txn, const cim::Instance& job, const cim::Instance& dp,
                                             const DistOptions& options) {
  const std::string server = options.server_content_url.empty() ? "server" : options.server_content_url;
  if (!is_pull_dp(dp) || get_uint(job, "Action") != static_cast<std::uint32_t>(JobAction::kInstall)) {
    return std::vector<std::string>{server};
  }
  std::vector<std::string> out;
  const cim::Value* source_dps = dp.find("SourceDPs");
  if (source_dps != nullptr && source_dps->is_array()) {
    for (const auto& name : source_dps->as_array()) {
      if (name.is_null()) continue;
      auto source = site::find_dp(txn, name.as_string());
      if (!source.ok()) continue;  // removed since: skip it
      PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, get_string(job, "PackageID"), *source));
      if (!row || get_uint(*row, "State") != 0 || get_uint(*row, "SourceVersion") != get_uint(job, "SourceVersion")) {
        continue;
      }
      PKG_ASSIGN_OR_RETURN(std::string url, site::dp_agent_url(txn, name.as_string()));
      if (!url.empty()) out.push_back(url + (url.ends_with('/') ? "content" : "/content"));
    }
  }
  if (out.empty()) return out;
  out.push_back(server);
  return out;
}

}  // namespace

Manager::Manager(store::Store& s, site::Domain& d, DistOptions o)
    : store(s), domain(d), options(std::move(o)), summaries(s.registry()), started_at(options.clock->now_micros()) {
  // A deleted package gives back its per-DP counts in the command that deletes it.
  domain.set_package_delete_hook([this](store::WriteTxn& txn, const std::string& package_id) {
    return summaries.forget_package(txn, package_id, txn.now());
  });
  MutexLock lock(rng_mu_);
  rng_.seed(options.jitter_seed != 0 ? options.jitter_seed
                                     : static_cast<std::uint64_t>(options.clock->now_micros()));
}

void Manager::heard_from(const std::string& nal, Micros at) {
  MutexLock lock(heard_mu_);
  Micros& last = heard_[to_upper(nal)];
  last = std::max(last, at);
}

Micros Manager::last_heard(const std::string& nal) {
  MutexLock lock(heard_mu_);
  const auto it = heard_.find(to_upper(nal));
  return it == heard_.end() ? 0 : it->second;
}

Manager::~Manager() {
  domain.set_package_delete_hook(nullptr);
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Manager::start() {
  MutexLock lock(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { run(); });
}

void Manager::wake() {
  {
    MutexLock lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

Micros Manager::backoff(std::uint32_t attempt) {
  const Micros base = std::max<Micros>(kSecond, std::chrono::duration_cast<std::chrono::microseconds>(options.retry_delay).count());
  Micros delay = base;
  for (std::uint32_t i = 1; i < attempt && delay < kMaxBackoff; ++i) delay *= 2;
  delay = std::min(delay, std::max(base, kMaxBackoff));
  MutexLock lock(rng_mu_);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return static_cast<Micros>(static_cast<double>(delay) * jitter(rng_));
}

void Manager::run() {
  for (;;) {
    Micros next = 0;
    // No exception may leave the thread: a pass that throws is logged and the next one tries again.
    try {
      if (Status s = pass(next); !s.ok()) {
        spdlog::warn("distribution scheduling failed: {}", s.error().to_string());
        next = options.clock->now_micros() + kSecond;
      }
    } catch (const std::exception& e) {
      spdlog::error("distribution scheduling threw: {}", e.what());
      next = options.clock->now_micros() + kSecond;
    }
    MutexLock lock(mu_);
    if (stopping_) return;
    if (!woken_) {
      if (next == 0) {
        cv_.wait(mu_);
      } else {
        const Micros wait = std::max<Micros>(0, next - options.clock->now_micros());
        // At most a second at a time, so that a manual or adjusted clock is looked at again soon.
        cv_.wait_for(mu_, std::chrono::microseconds(std::min<Micros>(wait, kSecond)));
      }
    }
    if (stopping_) return;
    woken_ = false;
  }
}

Status Manager::pass(Micros& next) {
  next = 0;
  const Micros now = options.clock->now_micros();
  const cim::ClassDef& cls = class_named("PKG_DPJob");
  const auto state_prop = *cls.find_property("JobState");
  std::vector<cim::Instance> active;
  PKG_TRY(store.scan(cls,
                     store::Predicate::any_of(
                         {store::Predicate::compare(state_prop, store::Predicate::Op::kEq, u32_value(0)),
                          store::Predicate::compare(state_prop, store::Predicate::Op::kEq, u32_value(1))}),
                     [&](cim::Instance&& job) {
                       active.push_back(std::move(job));
                       return true;
                     }));
  if (active.empty()) return ok_status();

  // The DPs with a transfer window (most have none): NALPath -> window.
  std::map<std::string, std::string> windows;
  {
    const cim::ClassDef& dps = class_named("SMS_DistributionPointInfo");
    PKG_TRY(store.scan(dps, store::Predicate::always(), [&](cim::Instance&& dp) {
      std::string window = get_string(dp, "TransferWindow");
      if (!window.empty()) windows.emplace(get_string(dp, "NALPath"), std::move(window));
      return true;
    }));
  }

  const Micros stall = std::chrono::duration_cast<std::chrono::microseconds>(options.stall_timeout).count();
  auto earliest = [&](Micros at) { next = next == 0 ? at : std::min(next, at); };
  std::map<std::string, std::size_t> in_flight;  // package -> DPs receiving it
  std::vector<cim::Instance> queued;
  Plan plan;
  for (auto& job : active) {
    const auto state = get_uint(job, "JobState");
    const auto action = get_uint(job, "Action");
    if (state == static_cast<std::uint32_t>(JobState::kSent)) {
      if (takes_slot(action)) ++in_flight[to_upper(get_string(job, "PackageID"))];
      if (action == static_cast<std::uint32_t>(JobAction::kCancel)) continue;  // never retried
      // Silent since the later of its last report and this process's start (a server that was down heard
      // nothing). A job its agent has not reported on yet waits behind the agent's other jobs (it works on one at
      // a time): while the DP reports on those, it is alive and this one is not stalled.
      const auto progressed = get_time(job, "LastProgressTime");
      Micros last = std::max(progressed.value_or(now), started_at);
      if (progressed == get_time(job, "SentTime")) last = std::max(last, last_heard(get_string(job, "NALPath")));
      if (last + stall <= now) {
        plan.stalled.push_back(job);
      } else {
        earliest(last + stall);
      }
    } else {
      const auto at = get_time(job, "NextAttemptTime");
      if (at && *at > now) {
        earliest(*at);
      } else {
        queued.push_back(std::move(job));
      }
    }
  }
  // Higher priority (a lower number) first, then the oldest.
  std::stable_sort(queued.begin(), queued.end(), [](const cim::Instance& a, const cim::Instance& b) {
    const auto pa = get_uint(a, "Priority"), pb = get_uint(b, "Priority");
    if (pa != pb) return pa < pb;
    return get_time(a, "IssuedTime").value_or(0) < get_time(b, "IssuedTime").value_or(0);
  });
  for (auto& job : queued) {
    // A closed transfer window holds an install (not a removal, validation or cancel: those move no content) until
    // it opens; it takes no slot meanwhile.
    if (get_uint(job, "Action") == static_cast<std::uint32_t>(JobAction::kInstall)) {
      if (auto w = windows.find(get_string(job, "NALPath")); w != windows.end()) {
        const auto priority = static_cast<std::uint32_t>(get_uint(job, "Priority"));
        if (!site::transfer_window_open(w->second, priority, now)) {
          const Micros opens = site::next_transfer_window_opening(w->second, priority, now);
          if (opens != 0) earliest(opens);
          plan.hold.emplace_back(std::move(job), "transfer window closed for priority " + std::to_string(priority) +
                                                     (opens != 0 ? " until " + cim::DateTime::from_unix_micros(opens).to_iso8601()
                                                                 : std::string(" at every hour of the week")));
          continue;
        }
      }
    }
    // Slots are given in the transaction below, in this order, and only to jobs that can be sent: a pull DP's
    // install that no source can serve yet waits without a slot, so it never holds back other packages.
    plan.dispatch.push_back(std::move(job));
  }
  if (plan.dispatch.empty() && plan.stalled.empty() && plan.hold.empty()) return ok_status();
  // Why a job that could be sent waits for a slot ("" when it may take one).
  auto slot_wait = [&](const std::string& pkg) -> std::string {
    auto it = in_flight.find(pkg);
    if (it != in_flight.end() && it->second >= options.max_threads_per_package) {
      return "waiting for a slot: " + std::to_string(it->second) +
             " DPs are receiving this package (max_threads_per_package)";
    }
    if (it == in_flight.end() && in_flight.size() >= options.max_packages) {
      return "waiting for a slot: " + std::to_string(in_flight.size()) + " packages are being sent (max_packages)";
    }
    return "";
  };
  bool sent_any = false;

  const std::string stall_text = "stalled: no progress for " + std::to_string(options.stall_timeout.count()) + " s";
  PKG_TRY(store.execute([&](store::WriteTxn& txn) -> Status {
        const Micros at = txn.now();
        // Each job is read again: a status message or a verb may have moved it since the scan.
        auto current = [&](const cim::Instance& seen) -> Result<std::optional<cim::Instance>> {
          PKG_ASSIGN_OR_RETURN(auto job, job_row(txn, get_string(seen, "PackageID"), get_string(seen, "NALPath")));
          if (!job || get_uint(*job, "Generation") != get_uint(seen, "Generation") ||
              get_uint(*job, "JobState") != get_uint(seen, "JobState") ||
              get_time(*job, "LastProgressTime") != get_time(seen, "LastProgressTime")) {
            return std::optional<cim::Instance>();
          }
          return job;
        };
        for (const auto& seen : plan.stalled) {
          PKG_ASSIGN_OR_RETURN(auto job, current(seen));
          if (job) PKG_TRY(fail_job(txn, std::move(*job), stall_text, kMsgInstallFailed, at));
        }
        for (auto& [seen, reason] : plan.hold) {
          PKG_ASSIGN_OR_RETURN(auto job, current(seen));
          if (job && get_string(*job, "WaitReason") != reason) {
            set_prop(*job, "WaitReason", str_value(reason));
            PKG_TRY(txn.put(*job));
            // A closed window is the DP's own state, worth its row's InstallStatus (a slot wait is not).
            if (reason.starts_with("transfer window closed")) {
              PKG_ASSIGN_OR_RETURN(auto dp, txn.get(class_named("SMS_DistributionPointInfo"),
                                                    {str_value(get_string(*job, "NALPath"))}));
              const std::string pkg = get_string(*job, "PackageID");
              if (dp) {
                PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, pkg, *dp));
                if (row) {
                  PKG_TRY(summaries.transition(txn, dp_ref(pkg, *dp),
                                               static_cast<summarizer::DpState>(get_uint(*row, "State")),
                                               static_cast<std::uint32_t>(get_uint(*row, "SourceVersion")), reason,
                                               std::nullopt, at));
                }
              }
            }
          }
        }
        for (const auto& seen : plan.dispatch) {
          PKG_ASSIGN_OR_RETURN(auto job, current(seen));
          if (!job) continue;
          PKG_ASSIGN_OR_RETURN(auto dp, txn.get(class_named("SMS_DistributionPointInfo"),
                                                {str_value(get_string(*job, "NALPath"))}));
          if (!dp) continue;
          PKG_ASSIGN_OR_RETURN(auto sources, sources_for(txn, *job, *dp, options));
          if (sources.empty()) {
            const std::string reason = "no source DP holds " + get_string(*job, "ContentID") + " yet";
            if (get_string(*job, "WaitReason") != reason) {
              set_prop(*job, "WaitReason", str_value(reason));
              PKG_TRY(txn.put(*job));
              const std::string pkg = get_string(*job, "PackageID");
              PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, pkg, *dp));
              if (row) {
                PKG_TRY(summaries.transition(
                    txn, dp_ref(pkg, *dp), static_cast<summarizer::DpState>(get_uint(*row, "State")),
                    static_cast<std::uint32_t>(get_uint(*row, "SourceVersion")), reason,
                    message(kMsgNoPullSource, summarizer::kMessageInProgress, {get_string(*job, "ContentID")}), at));
              }
            }
            continue;
          }
          if (takes_slot(get_uint(*job, "Action"))) {
            const std::string pkg = to_upper(get_string(*job, "PackageID"));
            const std::string wait = slot_wait(pkg);
            if (!wait.empty()) {
              if (get_string(*job, "WaitReason") != wait) {
                set_prop(*job, "WaitReason", str_value(wait));
                PKG_TRY(txn.put(*job));
              }
              continue;
            }
            ++in_flight[pkg];
          }
          sent_any = true;
          cim::ValueArray urls;
          for (auto& s : sources) urls.push_back(str_value(std::move(s)));
          // Every attempt is a generation of its own, so a late message from an earlier attempt is never taken
          // for this one's.
          PKG_ASSIGN_OR_RETURN(const std::uint32_t generation, next_generation(txn, get_uint(*job, "Generation")));
          set_prop(*job, "Generation", u32_value(generation));
          set_prop(*job, "JobState", u32_value(static_cast<std::uint32_t>(JobState::kSent)));
          set_prop(*job, "Sources", cim::Value::array(cim::CimType::kString, std::move(urls)));
          set_prop(*job, "SentTime", time_value(at));
          set_prop(*job, "LastProgressTime", time_value(at));
          set_prop(*job, "NextAttemptTime", cim::Value());
          set_prop(*job, "WaitReason", str_value(""));
          set_prop(*job, "BytesDone", u64_value(0));
          PKG_TRY(txn.put(*job));
          // A retry sent: the DP is back to "not heard from since its job was sent" (INSTALL_PENDING, what
          // NumberUnknown counts) until its first report; INSTALL_RETRYING was the wait before this attempt.
          const auto attempts = get_uint(*job, "Attempts");
          if (attempts > 0 && get_uint(*job, "Action") == static_cast<std::uint32_t>(JobAction::kInstall)) {
            const std::string pkg = get_string(*job, "PackageID");
            PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, pkg, *dp));
            if (row && get_uint(*row, "State") == static_cast<std::uint32_t>(summarizer::DpState::kInstallRetrying)) {
              PKG_TRY(summaries.transition(txn, dp_ref(pkg, *dp), summarizer::DpState::kInstallPending,
                                           static_cast<std::uint32_t>(get_uint(*row, "SourceVersion")),
                                           "Retry " + std::to_string(attempts) + " of " +
                                               std::to_string(options.retry_count) +
                                               " sent: waiting for the distribution point",
                                           std::nullopt, at));
            }
          }
        }
        return ok_status();
      }));
  // What this pass changed (jobs sent, stalled jobs queued for a retry) has deadlines of its own: the next pass,
  // right away, reads them.
  if (sent_any || !plan.stalled.empty()) earliest(now + 1);
  return ok_status();
}

// ---- DistributionManager ----------------------------------------------------------------------------------------

DistributionManager::DistributionManager(store::Store& store, site::Domain& domain, DistOptions options)
    : impl_(std::make_unique<Manager>(store, domain, std::move(options))) {}

DistributionManager::~DistributionManager() = default;

void DistributionManager::start() { impl_->start(); }
void DistributionManager::wake() { impl_->wake(); }

Status DistributionManager::schedule_once_for_test() {
  Micros next = 0;
  return impl_->pass(next);
}

Result<JobList> DistributionManager::jobs_of(std::string_view dp_name) {
  JobList list;
  // The revision first: every change after it reaches the follower as an event, so nothing falls between the
  // list and the stream (a change both listed and delivered is the same generation, acted on once).
  PKG_ASSIGN_OR_RETURN(list.revision, impl_->store.last_revision());
  const cim::ClassDef& cls = class_named("PKG_DPJob");
  PKG_TRY(impl_->store.scan(
      cls, store::Predicate::compare(*cls.find_property("DPName"), store::Predicate::Op::kEq, str_value(std::string(dp_name))),
      [&](cim::Instance&& job) {
        if (iequals(get_string(job, "DPName"), dp_name)) list.jobs.push_back(std::move(job));
        return true;
      }));
  return list;
}

Result<std::vector<std::string>> DistributionManager::live_manifests() {
  PKG_ASSIGN_OR_RETURN(auto records, impl_->store.list_meta("content/"));
  std::vector<std::string> out;
  for (const auto& [key, value] : records) {
    PKG_ASSIGN_OR_RETURN(auto content, site::recorded_content(impl_->store, key.substr(std::string_view("content/").size())));
    if (content) out.push_back(content->manifest_hash);
  }
  return out;
}

}  // namespace pkgcast::distmgr
