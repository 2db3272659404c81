// Shared by the files of src/distmgr: instance access, the job row, and the manager's state. Internal.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cim/cim.h"
#include "core/mutex.h"
#include "distmgr/distmgr.h"
#include "summarizer/summarizer.h"

namespace pkgcast::distmgr::internal {

// Message IDs of SMS_DistributionDPStatus (classes.md): Configuration Manager's where one exists, ours from 9000.
inline constexpr std::uint32_t kMsgDistributed = 2330;
inline constexpr std::uint32_t kMsgNoPullSource = 8212;
inline constexpr std::uint32_t kMsgTransferring = 9001;
inline constexpr std::uint32_t kMsgInstallFailed = 9002;
inline constexpr std::uint32_t kMsgRemoved = 9003;
inline constexpr std::uint32_t kMsgRemoveFailed = 9004;
inline constexpr std::uint32_t kMsgValidated = 9005;
inline constexpr std::uint32_t kMsgValidationFailed = 9006;
inline constexpr std::uint32_t kMsgCancelled = 9007;
inline constexpr std::uint32_t kSeverityInfo = 0x40000000;
inline constexpr std::uint32_t kSeverityError = 0xC0000000;

const cim::ClassDef& class_named(std::string_view name);  // a builtin class; precondition: it exists
std::string get_string(const cim::Instance& inst, std::string_view name);  // "" when NULL
std::uint64_t get_uint(const cim::Instance& inst, std::string_view name);  // 0 when NULL
std::optional<Micros> get_time(const cim::Instance& inst, std::string_view name);
void set_prop(cim::Instance& inst, std::string_view name, cim::Value v);  // precondition: the property exists
inline cim::Value str_value(std::string s) { return cim::Value::string(std::move(s)); }
inline cim::Value u32_value(std::uint64_t v) { return cim::Value::uint32(static_cast<std::uint32_t>(v)); }
inline cim::Value u64_value(std::uint64_t v) { return cim::Value::uint64(v); }
inline cim::Value time_value(Micros t) { return cim::Value::datetime(cim::DateTime::from_unix_micros(t)); }

Result<cim::Instance> require_package(store::WriteTxn& txn, std::string_view package_id);
// The DistPoints row of a package on a DP, or nullopt.
Result<std::optional<cim::Instance>> dist_points_row(store::WriteTxn& txn, std::string_view package_id,
                                                     const cim::Instance& dp_info);
Result<std::optional<cim::Instance>> job_row(store::WriteTxn& txn, std::string_view package_id,
                                             std::string_view nal_path);
summarizer::DpRef dp_ref(std::string_view package_id, const cim::Instance& dp_info);
// dp_ref, and a pull DP's SourceNALPath: its first source DP that still exists (empty: the site server).
Result<summarizer::DpRef> target_ref(store::WriteTxn& txn, std::string_view package_id, const cim::Instance& dp_info);
bool is_pull_dp(const cim::Instance& dp_info);
bool is_removal(std::uint64_t state);  // REMOVAL_PENDING, REMOVAL_RETRYING, REMOVAL_FAILED

// The generation of a job issued or sent again after `current` (0 for a job not in the store): one above both
// `current` and every generation issued before, of any job. Generations never repeat for a (package, DP) even when
// its job is deleted and issued again, so an agent that was offline meanwhile never takes a new job for one it
// handled.
Result<std::uint32_t> next_generation(store::WriteTxn& txn, std::uint64_t current);

// SMS_Package.ActionInProgress (classes.md: 1 UPDATE, 2 ADD): set to `action` by a verb whose command leaves a DP
// of the package in progress (SMS_ObjectContentExtraInfo.NumberInProgress > 0); the summarizer sets it back to 0
// when the last DP in progress is done (extra_info.cc).
inline constexpr std::uint32_t kActionUpdate = 1;
inline constexpr std::uint32_t kActionAdd = 2;
Status mark_action(store::WriteTxn& txn, const std::string& package_id, std::uint32_t action);

// Writes the DP's job for the package afresh: `action`, the next generation, QUEUED (SENT for a cancel), no
// attempts, the package's current version and its content record.
Status issue_job(store::WriteTxn& txn, const cim::Instance& package, const cim::Instance& dp_info, JobAction action,
                 Micros now);

summarizer::StatusMessage message(std::uint32_t id, std::uint32_t state, std::vector<std::string> ins);

// A DP report waiting to be applied with the others of its group (Manager::apply_status).
struct QueuedStatus {
  std::string dp_name;
  DpStatus status;
  bool finished = false;  // result is final (guarded by Manager::status_mu_)
  Result<StatusOutcome> result = StatusOutcome{};
  // Set by the group command on the writer thread, read by the group's leader after the command.
  StatusOutcome outcome;
  bool wake = false;
};

// At most this many reports in one command: bounds the command's time on the writer and what one failure redoes.
inline constexpr std::size_t kMaxStatusGroup = 256;

class Manager {
 public:
  Manager(store::Store& store, site::Domain& domain, DistOptions options);
  ~Manager();

  // A DP report, applied in one command with the reports that arrived while the store was busy (status.cc).
  Result<StatusOutcome> apply_status(std::string_view dp_name, const DpStatus& status) PKG_EXCLUDES(status_mu_);
  std::size_t queued_reports() PKG_EXCLUDES(status_mu_);

  void start() PKG_EXCLUDES(mu_);
  void wake() PKG_EXCLUDES(mu_);
  // One scheduling pass: stalls, dispatch. Sets `next` to the earliest instant a later pass has work (0: none).
  Status pass(Micros& next);
  // The delay before retry number `attempt` (1-based): retry_delay doubled per attempt, capped, jittered.
  Micros backoff(std::uint32_t attempt) PKG_EXCLUDES(rng_mu_);
  // A failure of the job's current generation (an agent's report, a stall): retry later or fail for good.
  Status fail_job(store::WriteTxn& txn, cim::Instance job, const std::string& error, std::uint32_t message_id,
                  Micros now);

  store::Store& store;
  site::Domain& domain;
  const DistOptions options;
  const summarizer::Summarizer summaries;

  // A report came from the DP at `nal`, about any of its jobs: its agent is alive (status.cc).
  void heard_from(const std::string& nal, Micros at) PKG_EXCLUDES(heard_mu_);
  // When the DP at `nal` last reported since this process started (0: not yet).
  Micros last_heard(const std::string& nal) PKG_EXCLUDES(heard_mu_);
  // This process's start: no job has been silent for longer than the server has been up to hear it.
  const Micros started_at;

 private:
  void run() PKG_EXCLUDES(mu_);
  // Applies the queue's oldest reports in one command and settles them; the caller leads this group.
  void run_status_group() PKG_EXCLUDES(status_mu_);
  void settle(const std::vector<std::shared_ptr<QueuedStatus>>& group) PKG_EXCLUDES(status_mu_);

  Mutex mu_;
  CondVar cv_;
  bool woken_ PKG_GUARDED_BY(mu_) = false;
  bool stopping_ PKG_GUARDED_BY(mu_) = false;
  bool started_ PKG_GUARDED_BY(mu_) = false;
  std::thread thread_;
  Mutex rng_mu_;
  std::mt19937_64 rng_ PKG_GUARDED_BY(rng_mu_);
  // Bound: one entry per DP that reported since the start (DPs are the site's, created by administrators).
  Mutex heard_mu_;
  std::map<std::string, Micros> heard_ PKG_GUARDED_BY(heard_mu_);

  // Reports not yet taken by a group command, oldest first, and whether a submitted command will take them.
  // Invariant: a report stays queued only while status_group_pending_ or some caller of apply_status is about to
  // lead (each waiting caller leads a group when none is pending). Bound: one entry per caller blocked in
  // apply_status (the server's request workers), each removed when a group takes it or the store refuses it.
  Mutex status_mu_;
  CondVar status_cv_;
  std::deque<std::shared_ptr<QueuedStatus>> status_queue_ PKG_GUARDED_BY(status_mu_);
  bool status_group_pending_ PKG_GUARDED_BY(status_mu_) = false;
};

}  // namespace pkgcast::distmgr::internal
