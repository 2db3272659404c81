// Status messages from DP agents: each applied once (by idempotency key) and only to the job generation it was
// sent for, in one command with the summaries it moves.
#include <algorithm>

#include "core/strings.h"
#include "distmgr/internal.h"

namespace pkgcast::distmgr {

using namespace internal;

namespace {

constexpr std::size_t kMaxKey = 128;
constexpr std::size_t kMaxMessage = 2048;

Status check_status(const DpStatus& s) {
  if (s.key.empty() || s.key.size() > kMaxKey ||
      !std::all_of(s.key.begin(), s.key.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == ':' || c == '-';
      })) {
    return make_error(WbemCode::kInvalidParameter, "key must be 1-128 characters of [A-Za-z0-9._:-]");
  }
  static constexpr std::string_view kStates[] = {"progress",  "installed", "failed",            "removed",
                                                 "remove_failed", "repairing", "validated", "validation_failed",
                                                 "cancelled"};
  if (std::find(std::begin(kStates), std::end(kStates), s.state) == std::end(kStates)) {
    return make_error(WbemCode::kInvalidParameter, "state '" + s.state + "' is not a DP status");
  }
  if (s.message.size() > kMaxMessage) return make_error(WbemCode::kInvalidParameter, "message is too long");
  if (s.bytes_total != 0 && s.bytes_done > s.bytes_total) {
    return make_error(WbemCode::kInvalidParameter, "bytes_done exceeds bytes_total");
  }
  return ok_status();
}

// The DistPoints row's text is written once, when the transfer starts (each progress report moving it would cost a
// summarizer write and a journal entry); so it names what does not change, and where the figures that do are kept.
std::string transfer_text(std::uint64_t total) {
  if (total == 0) return "Transferring content";
  return "Transferring content: " + std::to_string(total) + " bytes (progress in PKG_DPJob.BytesDone)";
}

}  // namespace

Status Manager::fail_job(store::WriteTxn& txn, cim::Instance job, const std::string& error,
                         std::uint32_t message_id, Micros now) {
  const std::string package_id = get_string(job, "PackageID");
  PKG_ASSIGN_OR_RETURN(auto dp, txn.get(class_named("SMS_DistributionPointInfo"), {str_value(get_string(job, "NALPath"))}));
  if (!dp) return make_error(WbemCode::kNotFound, "the DP of this job no longer exists");
  const bool removal = get_uint(job, "Action") == static_cast<std::uint32_t>(JobAction::kRemove);
  const auto attempts = static_cast<std::uint32_t>(get_uint(job, "Attempts") + 1);
  const bool final = attempts > options.retry_count;
  set_prop(job, "Attempts", u32_value(attempts));
  set_prop(job, "LastError", str_value(error));
  std::string status_text;
  if (final) {
    set_prop(job, "JobState", u32_value(static_cast<std::uint32_t>(JobState::kFailed)));
    set_prop(job, "WaitReason", str_value(""));
    status_text = "Failed after " + std::to_string(attempts) + " attempts: " + error;
  } else {
    const Micros at = now + backoff(attempts);
    set_prop(job, "JobState", u32_value(static_cast<std::uint32_t>(JobState::kQueued)));
    set_prop(job, "NextAttemptTime", time_value(at));
    set_prop(job, "WaitReason", str_value("retry " + std::to_string(attempts) + " of " +
                                          std::to_string(options.retry_count) + " at " +
                                          cim::DateTime::from_unix_micros(at).to_iso8601()));
    status_text = "Retrying (" + std::to_string(attempts) + " of " + std::to_string(options.retry_count) + "): " + error;
  }
  const auto state = removal ? (final ? summarizer::DpState::kRemovalFailed : summarizer::DpState::kRemovalRetrying)
                             : (final ? summarizer::DpState::kInstallFailed : summarizer::DpState::kInstallRetrying);
  PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, package_id, *dp));
  if (row) {
    const auto version = static_cast<std::uint32_t>(
        removal ? get_uint(*row, "SourceVersion") : get_uint(job, "SourceVersion"));
    PKG_TRY(summaries.transition(txn, dp_ref(package_id, *dp), state, version, status_text,
                                 message(message_id, summarizer::kMessageError, {error}), now));
  }
  return txn.put(job);
}

namespace {

// One report in the caller's command: `outcome` says whether it applied, `wake` whether the scheduler has work.
// Each message is applied at most once without a record per key: a final message (installed, failed, ...) ends its
// generation, so a copy of it finds the job no longer SENT (or gone) and is not applied; progress sets, never adds,
// so a copy changes nothing. Nothing grows with the number of messages.
Status apply_one(Manager& m, store::WriteTxn& txn, std::string_view dp_name, const DpStatus& s, StatusOutcome& outcome,
                 bool& wake) {
  outcome = {};
  wake = false;
  const bool progress = s.state == "progress";
  PKG_ASSIGN_OR_RETURN(cim::Instance dp, site::find_dp(txn, dp_name));
  const std::string nal = get_string(dp, "NALPath");
  m.heard_from(nal, m.options.clock->now_micros());
  const std::string package_id = to_upper(s.package_id);
  PKG_ASSIGN_OR_RETURN(auto job, job_row(txn, package_id, nal));
  if (!job) {
    outcome.reason = "DP '" + std::string(dp_name) + "' has no job for package " + package_id;
    return ok_status();
  }
  if (get_uint(*job, "Generation") != s.generation) {
    outcome.reason = "generation " + std::to_string(s.generation) + " is not the job's current one (" +
                     std::to_string(get_uint(*job, "Generation")) + ")";
    return ok_status();
  }
  const auto action = static_cast<JobAction>(get_uint(*job, "Action"));
  const auto job_state = static_cast<JobState>(get_uint(*job, "JobState"));
  if (job_state != JobState::kSent) {
    outcome.reason = "the job is not in progress";
    return ok_status();
  }
  const Micros now = txn.now();
  const auto version = static_cast<std::uint32_t>(get_uint(*job, "SourceVersion"));
  const summarizer::DpRef ref = dp_ref(package_id, dp);
  auto finish = [&](JobState state) {
    set_prop(*job, "JobState", u32_value(static_cast<std::uint32_t>(state)));
    set_prop(*job, "LastProgressTime", time_value(now));
    set_prop(*job, "WaitReason", str_value(""));
    wake = true;
  };

  if (progress) {
    set_prop(*job, "BytesDone", u64_value(s.bytes_done));
    set_prop(*job, "BytesTotal", u64_value(s.bytes_total));
    set_prop(*job, "LastProgressTime", time_value(now));
    if (action == JobAction::kInstall) {
      PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, package_id, dp));
      if (row && get_uint(*row, "State") != static_cast<std::uint32_t>(summarizer::DpState::kContentUpdating)) {
        PKG_TRY(m.summaries.transition(
            txn, ref, summarizer::DpState::kContentUpdating, version, transfer_text(s.bytes_total),
            message(kMsgTransferring, summarizer::kMessageInProgress, {get_string(*job, "ContentID")}), now));
      }
    }
  } else if (s.state == "installed" && action == JobAction::kInstall) {
    finish(JobState::kDone);
    set_prop(*job, "BytesDone", u64_value(get_uint(*job, "BytesTotal")));
    PKG_TRY(m.summaries.transition(
        txn, ref, summarizer::DpState::kInstalled, version,
        "Content " + get_string(*job, "ContentID") + " is installed on the distribution point",
        message(kMsgDistributed, summarizer::kMessageSuccess, {get_string(*job, "ContentID"), std::string(dp_name)}),
        now));
  } else if (s.state == "repairing" && action == JobAction::kValidate) {
    // The agent found entries that differ and is rewriting them: the job goes on (its outcome follows), the DP
    // stops counting as Installed, and the mismatch is its last message. A repeat finds the row already there.
    set_prop(*job, "LastProgressTime", time_value(now));
    PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, package_id, dp));
    if (row && get_uint(*row, "State") != static_cast<std::uint32_t>(summarizer::DpState::kContentUpdating)) {
      PKG_TRY(m.summaries.transition(txn, ref, summarizer::DpState::kContentUpdating, version,
                                     "Repairing content " + get_string(*job, "ContentID") + ": " + s.message,
                                     message(kMsgValidationFailed, summarizer::kMessageError, {s.message}), now));
    }
  } else if (s.state == "validated" && action == JobAction::kValidate) {
    finish(JobState::kDone);
    PKG_TRY(m.summaries.transition(
        txn, ref, summarizer::DpState::kInstalled, version,
        "Content " + get_string(*job, "ContentID") + " was validated" +
            (s.message.empty() ? std::string() : ": " + s.message),
        message(kMsgValidated, summarizer::kMessageSuccess, {get_string(*job, "ContentID"), s.message}), now));
  } else if (s.state == "removed" && action == JobAction::kRemove) {
    PKG_TRY(m.summaries.untarget(txn, ref, now));
    PKG_TRY(txn.remove(class_named("SMS_DistributionPoint"),
                       {str_value(package_id), str_value(nal), str_value(get_string(dp, "SiteCode"))}));
    PKG_TRY(txn.remove(class_named("PKG_DPJob"), {str_value(package_id), str_value(nal)}));
    wake = true;
    job.reset();
  } else if (s.state == "cancelled" && action == JobAction::kCancel) {
    finish(JobState::kDone);
  } else if ((s.state == "failed" && action == JobAction::kInstall) ||
             (s.state == "remove_failed" && action == JobAction::kRemove) ||
             ((s.state == "validation_failed" || s.state == "failed") && action == JobAction::kValidate)) {
    const std::uint32_t id = action == JobAction::kRemove     ? kMsgRemoveFailed
                             : action == JobAction::kValidate ? kMsgValidationFailed
                                                              : kMsgInstallFailed;
    // A failed validation is repaired by installing again.
    if (action == JobAction::kValidate)
      set_prop(*job, "Action", u32_value(static_cast<std::uint32_t>(JobAction::kInstall)));
    PKG_TRY(m.fail_job(txn, std::move(*job), s.message.empty() ? s.state : s.message, id, now));
    job.reset();
    wake = true;
  } else {
    outcome.reason = "state '" + s.state + "' does not answer a job of this kind";
    return ok_status();
  }
  if (job) PKG_TRY(txn.put(*job));
  outcome.applied = true;
  return ok_status();
}

}  // namespace

Result<StatusOutcome> DistributionManager::apply_status(std::string_view dp_name, const DpStatus& s) {
  PKG_TRY(check_status(s));
  return impl_->apply_status(dp_name, s);
}

// Reports that arrive while the store is busy with the last group wait in a queue; whichever caller finds no group
// pending leads the next one: one command for up to kMaxStatusGroup reports, in arrival order. One transaction
// for all of them, and the summary rows they share (a package's Root, ExtraInfo and Detail, a DP's
// SMS_DPStatusInfo) written and journaled once for the group (the store folds a command's writes of one row).
// A group that fails is applied again one report per command, so one bad report fails only itself.
Result<StatusOutcome> Manager::apply_status(std::string_view dp_name, const DpStatus& s) {
  auto mine = std::make_shared<QueuedStatus>();
  mine->dp_name = std::string(dp_name);
  mine->status = s;
  {
    MutexLock lock(status_mu_);
    status_queue_.push_back(mine);
  }
  for (;;) {
    {
      MutexLock lock(status_mu_);
      while (!mine->finished && status_group_pending_) status_cv_.wait(status_mu_);
      if (mine->finished) return std::move(mine->result);
      status_group_pending_ = true;  // this caller leads the next group
    }
    run_status_group();
  }
}

void Manager::run_status_group() {
  std::vector<std::shared_ptr<QueuedStatus>> group;
  bool ran = false;
  auto done = store.execute([&](store::WriteTxn& txn) -> Status {
    {
      MutexLock lock(status_mu_);
      while (!status_queue_.empty() && group.size() < kMaxStatusGroup) {
        group.push_back(std::move(status_queue_.front()));
        status_queue_.pop_front();
      }
      // Reports that arrive from now on (or did not fit) are the next group's: a waiting caller leads it.
      status_group_pending_ = false;
    }
    status_cv_.notify_all();
    ran = true;
    for (auto& q : group) PKG_TRY(apply_one(*this, txn, q->dp_name, q->status, q->outcome, q->wake));
    return ok_status();
  });
  if (!ran) {
    // The store refused the command (closing): nobody took the queue. Every waiting caller fails the same way when
    // it leads; each reports its own error.
    {
      MutexLock lock(status_mu_);
      status_group_pending_ = false;
      for (auto& q : status_queue_) {
        q->result = done.ok() ? Result<StatusOutcome>(make_error(WbemCode::kFailed, "the report was not applied"))
                              : Result<StatusOutcome>(done.error());
        q->finished = true;
      }
      status_queue_.clear();
    }
    status_cv_.notify_all();
    return;
  }
  if (!done.ok() && group.size() > 1) {
    // Undone whole: each report again, alone, so that only the one at fault fails.
    for (auto& q : group) {
      auto alone = store.execute([&](store::WriteTxn& txn) -> Status {
        return apply_one(*this, txn, q->dp_name, q->status, q->outcome, q->wake);
      });
      q->result = alone.ok() ? Result<StatusOutcome>(q->outcome) : Result<StatusOutcome>(alone.error());
    }
  } else {
    for (auto& q : group)
      q->result = done.ok() ? Result<StatusOutcome>(q->outcome) : Result<StatusOutcome>(done.error());
  }
  settle(group);
}

std::size_t Manager::queued_reports() {
  MutexLock lock(status_mu_);
  return status_queue_.size();
}

std::size_t DistributionManager::queued_reports_for_test() {
  return impl_->queued_reports();
}

void Manager::settle(const std::vector<std::shared_ptr<QueuedStatus>>& group) {
  bool wake_scheduler = false;
  {
    MutexLock lock(status_mu_);
    for (const auto& q : group) {
      wake_scheduler = wake_scheduler || (q->result.ok() && q->wake);
      q->finished = true;
    }
  }
  status_cv_.notify_all();
  if (wake_scheduler) wake();
}

}  // namespace pkgcast::distmgr
