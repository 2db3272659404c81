// The Distribution Manager: which content version each distribution point should hold, and the per-DP state
// machine that gets it there (design.md section 1, steps 3-6; classes.md, SMS_PackageStatusDistPointsSummarizer;
// docs/distribution.md is the contract).
//
// Shape:
// - Every verb (distribute, redistribute, remove, validate, cancel, a new source version, a DP's status message)
//   is ONE store command: the SMS_DistributionPoint row, the DP's PKG_DPJob row and every summarizer row it moves
//   change in one transaction, journaled, or nothing changes.
// - The persistent job queue is the PKG_DPJob table itself: a job is QUEUED until the scheduler gives it a slot
//   (at most `max_packages` packages in flight, `max_threads_per_package` DPs per package; higher Priority first,
//   then oldest), then SENT: the DP agent, which follows its jobs through the event API, acts on it. A restart
//   loses nothing: the scheduler reads the table again.
// - Failures retry with exponential back-off and jitter up to `retry_count`, then fail with the last error. A SENT
//   job whose DP reports no progress for `stall_timeout` is retried with the reason "stalled".
// - One scheduler thread; it wakes when a verb or a status message asks it to, and at the next retry or stall
//   deadline. An idle manager does no work.
//
// Thread safety: every method may be called from any thread. Lifetime: the store and the domain outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cim/cim.h"
#include "core/clock.h"
#include "core/result.h"
#include "site/site.h"
#include "store/store.h"

namespace pkgcast::distmgr {

namespace internal {
class Manager;
}

struct DistOptions {
  std::size_t max_packages = 3;             // config distmgr_max_packages
  std::size_t max_threads_per_package = 5;  // config distmgr_max_threads_per_package
  std::uint32_t retry_count = 100;          // config distmgr_retry_count: failed attempts before INSTALL_FAILED
  std::chrono::seconds retry_delay{1800};   // config distmgr_retry_delay_seconds: the first back-off
  std::chrono::seconds stall_timeout{300};  // config distmgr_stall_seconds: no progress for this long = stalled
  // The base URL DP agents take content from the site server with (its /api/v1/content), the last Source of
  // every job. Empty: the agent's own server URL (the Sources list then ends with "server").
  std::string server_content_url;
  // The jitter of a back-off is drawn from this seed's sequence (tests fix it).
  std::uint64_t jitter_seed = 0;  // 0: from the clock
  Clock* clock = &Clock::system();
};

// PKG_DPJob.Action
enum class JobAction : std::uint32_t { kInstall = 1, kRemove = 2, kValidate = 3, kCancel = 4 };
// PKG_DPJob.JobState
enum class JobState : std::uint32_t { kQueued = 0, kSent = 1, kDone = 2, kFailed = 3 };

// Where to distribute: DP names, site codes (every DP of the site) and DP groups (every member), together.
struct Targets {
  std::vector<std::string> dps;
  std::vector<std::string> sites;
  std::vector<std::string> groups;
};

// A status message from a DP agent (docs/dp-protocol.md, POST /api/v1/dp/status).
struct DpStatus {
  std::string key;  // idempotency key
  std::string package_id;
  std::uint32_t generation = 0;
  std::string state;  // progress, installed, failed, removed, remove_failed, repairing, validated,
                      // validation_failed, cancelled
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
  std::string message;
};

struct StatusOutcome {
  bool applied = false;
  std::string reason;  // why not, when not applied
};

// The current jobs of one DP, as of a journal revision.
struct JobList {
  std::uint64_t revision = 0;
  std::vector<cim::Instance> jobs;
};

class DistributionManager {
 public:
  DistributionManager(store::Store& store, site::Domain& domain, DistOptions options);
  ~DistributionManager();  // stops the scheduler
  DistributionManager(const DistributionManager&) = delete;
  DistributionManager& operator=(const DistributionManager&) = delete;

  // Starts the scheduler thread (idempotent).
  void start();

  // Every manifest hash a package version still names (for the content library's garbage collection).
  Result<std::vector<std::string>> live_manifests();

  // distribute: every named DP that does not hold the package yet becomes a target (SMS_DistributionPoint row,
  // DistPoints row INSTALL_PENDING, an INSTALL job). Returns the DistPoints rows of the targets, new and
  // existing. WBEM_E_INVALID_OPERATION for a package without source files; WBEM_E_NOT_FOUND for an unknown
  // package, DP, site or group; WBEM_E_INVALID_PARAMETER when no DP results.
  Result<std::vector<cim::Instance>> distribute(std::string_view package_id, const Targets& targets);
  // RefreshNow: every file again to one DP, same version.
  Result<cim::Instance> redistribute(std::string_view package_id, std::string_view dp_name);
  // A put of an SMS_DistributionPoint instance (WMI's IWbemServices::PutInstance): `properties` are the ones the
  // caller sent, with values already of their types. The keys (PackageID, ServerNALPath, SiteCode) name an existing
  // row (WBEM_E_NOT_FOUND otherwise); RefreshNow = TRUE does what redistribute does, and is stored FALSE again, as
  // Configuration Manager resets it; every other property is read-only and must be sent unchanged or not at all
  // (WBEM_E_READ_ONLY naming it). Returns the row as committed.
  Result<cim::Instance> put_distribution_point(const std::vector<std::pair<std::string, cim::Value>>& properties);
  // REMOVAL_PENDING until the DP reports the content removed; then the DP is no longer a target.
  Result<cim::Instance> remove(std::string_view package_id, std::string_view dp_name);
  // VerifyPackage: the DP re-hashes its installed copy (every installed DP when dp_name is empty).
  Result<std::vector<cim::Instance>> validate(std::string_view package_id, std::string_view dp_name);
  // CancelDistribution: the job stops and the DP becomes INSTALL_FAILED "cancelled".
  Result<cim::Instance> cancel(std::string_view package_id, std::string_view dp_name);

  // RefreshPkgSource: the package's source (its PkgSourcePath, or `new_source` when not empty) is taken again
  // (site::Domain::take_source), SourceVersion + 1, and every targeted DP goes back to pending for the new
  // version. Returns the package as committed. WBEM_E_INVALID_OPERATION for a package without source files.
  Result<cim::Instance> refresh_source(std::string_view package_id, std::string_view new_source = {});

  // A DP's status message, applied once per key. Reports that arrive while the store is busy are applied
  // together, in one command (each with the outcome it would have alone; a group that fails is applied again one
  // report per command, so one bad report fails only itself).
  Result<StatusOutcome> apply_status(std::string_view dp_name, const DpStatus& status);

  // The DP's current jobs (every PKG_DPJob row naming it).
  Result<JobList> jobs_of(std::string_view dp_name);

  // Asks the scheduler to look at the queue now.
  void wake();

  // Runs one scheduling pass on the calling thread (tests with a manual clock).
  Status schedule_once_for_test();
  // DP reports waiting for the next group command (apply_status applies reports that arrive together as one).
  std::size_t queued_reports_for_test();

 private:
  std::unique_ptr<internal::Manager> impl_;
};

}  // namespace pkgcast::distmgr
