// The incremental status summarizers (design.md sections 1.7 and 9, classes.md): every DP state change is applied
// to the summaries it affects, by deltas, inside the same store transaction as the change itself.
//
// Rows this module keeps:
//   SMS_PackageStatusDistPointsSummarizer  one per package per DP (the source of truth for every count below)
//   SMS_PackageStatusDetailSummarizer      per package per site: Targeted, Installed, Retrying, Failed
//   SMS_PackageStatusRootSummarizer        per package: the same counts over every site
//   SMS_ObjectContentExtraInfo             per package: Targeted, NumberSuccess/InProgress/Errors/Unknown
//   SMS_DPStatusInfo                       per DP: NumberInstalled/InProgress/Errors/Unknown, MessageState
//   SMS_DistributionDPStatus               the last status message per package per DP
//   PKG_AdvertisementOffer                 Offered flips when the site's Detail becomes / stops being distributed
// The site layer creates the Root, Extra and source-site Detail rows with the package, SMS_DPStatusInfo with the
// DP, and the offer rows with the advertisement; this module creates Detail rows for further sites (and their
// offer rows) and every DistPoints and DPStatus row.
//
// Counting rules, per DistPoints row (State s, SourceVersion v, the package's current SourceVersion c):
//   Targeted:    s not in {4, 5, 6}                  Installed / NumberSuccess / NumberInstalled: s == 0 && v == c
//   Retrying:    s in {2, 5}                         Failed:  s in {3, 6}
//   NumberInProgress: s in {1, 2, 4, 5, 7, 8}        NumberErrors: s in {3, 6}
//   NumberUnknown: s == 1 (INSTALL_PENDING): the job was (re)sent and the DP itself has not reported on it since.
//     The Distribution Manager moves a DP out of INSTALL_PENDING on the DP's first report for a job (to
//     CONTENT_UPDATING, INSTALLED, INSTALL_RETRYING, ...), so a pending row is exactly a DP not heard from; a
//     message the server writes while the job waits (8212: no source DP has the content yet) does not change that.
//     The last message itself is kept: SMS_DistributionDPStatus is the last message received, whatever came after.
//   SMS_DPStatusInfo.MessageState: 3 ERROR when NumberErrors > 0, else 2 IN_PROGRESS when NumberInProgress > 0,
//     else 1 SUCCESS (the worst over the DP's packages). Its LastStatusTime moves whenever its counts do.
//   PKG_AdvertisementOffer.Offered: offered() below, the one statement of the rule (see README.md).
// Detail.SummaryDate, Extra.LastUpdateDate and DistPoints.SummaryDate are set to `now` when the row changes.
//
// No count is recomputed by a scan: each operation reads the exact rows it changes by key (txn.get) and writes
// them back (txn.put), so the store journals one entry per changed instance and nothing for an unchanged one.
// Ranges are read only off the per-change path: new_source_version() and forget_package() (the package's
// DistPoints rows), the creation of a Detail row (the package's advertisements) and an offer flip (the package's
// offers); check() recomputes everything from scratch to prove the deltas right.
// The state machine is the Distribution Manager's: any state may follow any other here.
//
// Thread safety: a Summarizer is immutable after construction and holds no cache (see README.md: a write-through
// cache needs a rollback signal the store does not give), so one instance may be used from any command.
// Every function that takes a WriteTxn runs inside a store::WriteCommand; an error leaves the caller to fail its
// command, which rolls back everything, summaries included.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cim/cim.h"
#include "core/clock.h"
#include "core/result.h"
#include "store/store.h"

namespace pkgcast::summarizer {

namespace internal {
struct Classes;
}

// SMS_PackageStatusDistPointsSummarizer.State.
enum class DpState : std::uint32_t {
  kInstalled = 0,
  kInstallPending = 1,
  kInstallRetrying = 2,
  kInstallFailed = 3,
  kRemovalPending = 4,
  kRemovalRetrying = 5,
  kRemovalFailed = 6,
  kContentUpdating = 7,
  kContentMonitoring = 8,
};
// "INSTALLED", "INSTALL_PENDING", ...; "UNKNOWN" outside the enumeration.
std::string_view dp_state_name(DpState s);
// The state a stored State value names; nullopt when it is outside 0..8.
std::optional<DpState> dp_state_from(std::uint64_t value);

// SMS_DistributionDPStatus.MessageState and SMS_DPStatusInfo.MessageState.
inline constexpr std::uint32_t kMessageSuccess = 1;
inline constexpr std::uint32_t kMessageInProgress = 2;
inline constexpr std::uint32_t kMessageError = 3;

// One package on one DP: the key of its DistPoints row (package_id, nal_path, site_code) and the DP's name.
// String keys compare without regard to ASCII case, as in the store.
struct DpRef {
  std::string package_id;
  std::string nal_path;   // ServerNALPath of the DistPoints row; NALPath of SMS_DPStatusInfo
  std::string site_code;  // the DP's site
  std::string dp_name;    // SMS_DistributionDPStatus.Name
  // Where the DP's files are taken from (DistPoints.SourceNALPath: a standard DP's own NAL path, a pull DP's source
  // DP; distmgr's dp_ref and target_ref): written by target(), and by transition() when not empty (empty: the row
  // keeps what it has).
  std::string source_nal_path;
};

// A status message from (or about) a DP: becomes the package's SMS_DistributionDPStatus row for that DP.
struct StatusMessage {
  std::uint32_t message_id = 0;     // 2330 distributed, 2301 processed, 8212 no source for a pull DP, 9000+ ours
  std::uint32_t message_state = 0;  // kMessageSuccess, kMessageInProgress or kMessageError
  std::uint32_t severity = 0;       // 0x40000000 info, 0x80000000 warning, 0xC0000000 error
  std::vector<std::string> ins_strings;
};

// The advertisement rule (design.md 1.9), stated once: an advertisement is offered at a site when its package has
// no source files, or its content is on every targeted DP of the site (Installed == Targeted > 0).
// src/site/advertisements.cc applies the same rule when it creates the offer rows (site and summarizer share a
// rung and cannot include each other); every later flip happens here.
bool offered(bool has_source_files, std::uint64_t targeted, std::uint64_t installed);

// Errors of every operation: WBEM_E_NOT_FOUND when a row it needs is missing (the package's Root, the DP's
// SMS_DPStatusInfo, the DistPoints row for transition/untarget), WBEM_E_INVALID_PARAMETER for a bad argument,
// WBEM_E_INVALID_OPERATION for a package without source files, WBEM_E_FAILED when a count would go below zero
// (the summaries were already wrong: `admin check` names the difference), and the store's own errors.
class Summarizer {
 public:
  // Precondition: `registry` holds the builtin classes (cim::ClassRegistry::builtin() or a superset) and outlives
  // the Summarizer.
  explicit Summarizer(const cim::ClassRegistry& registry);
  ~Summarizer();
  Summarizer(Summarizer&&) noexcept;
  Summarizer& operator=(Summarizer&&) noexcept;

  // The DP becomes a target of the package's current SourceVersion: its DistPoints row is created (SourceVersion 0:
  // it holds no version yet) or moved back in INSTALL_PENDING (its SourceVersion and last message, if any, kept), the
  // site's Detail row created when missing (SiteName from SMS_Site, with an offer row per advertisement of the
  // package), and the counts adjusted. WBEM_E_INVALID_OPERATION for a package without source files (they have no
  // DistPoints rows).
  Status target(store::WriteTxn& txn, const DpRef& dp, Micros now) const;

  // The DP's row moves to `state` for content version `source_version` (the version installed, being installed,
  // or being removed; <= the package's current SourceVersion, and >= 1 for INSTALLED), with `install_status` as its
  // InstallStatus text. The row's SourceVersion is the version the DP holds (classes.md): it becomes
  // `source_version` on a move to INSTALLED and is kept through every other state. `message`, when given, becomes the
  // DP's last status message for the package. A move to INSTALLED sets LastCopied. Counts of Detail, Root,
  // ObjectContentExtraInfo and SMS_DPStatusInfo move by deltas; the site's offers flip when its Detail becomes or stops
  // being distributed. WBEM_E_NOT_FOUND when the DP is not a target of the package (no DistPoints row).
  Status transition(store::WriteTxn& txn, const DpRef& dp, DpState state, std::uint32_t source_version,
                    std::string_view install_status, const std::optional<StatusMessage>& message, Micros now) const;

  // One status change of transition_all().
  struct Change {
    DpRef dp;
    DpState state = DpState::kInstallPending;
    std::uint32_t source_version = 0;
    std::string install_status;
    std::optional<StatusMessage> message;
  };
  // transition() for each change, in order, with the summary rows of each package (Root, ExtraInfo, Detail) and
  // of each DP (SMS_DPStatusInfo) read and written once for all of them: N reports for one package cost N
  // DistPoints writes and one Root write, and the journal shows the summaries' net change. Same errors as
  // transition(); the first one ends it (the caller's command then rolls everything back).
  Status transition_all(store::WriteTxn& txn, const std::vector<Change>& changes, Micros now) const;

  // Removal finished (or the target is forgotten): the DistPoints row goes, with the DP's last message for the
  // package, and its counts are taken back. The site's Detail row stays (with its counts) for history.
  // WBEM_E_NOT_FOUND when there is no such row.
  Status untarget(store::WriteTxn& txn, const DpRef& dp, Micros now) const;

  // untarget() for every DP of the package: for a package about to be deleted, so that each DP's SMS_DPStatusInfo
  // gives back its counts. (src/site's delete_package removes the package's own rows, DistPoints included, but
  // cannot reach the per-DP counts; the caller runs this first, in the same command or the one before.)
  Status forget_package(store::WriteTxn& txn, std::string_view package_id, Micros now) const;

  // What a refresh changes on the package's summaries besides their counts.
  struct NewSource {
    std::uint32_t version = 0;
    Micros date = 0;                                  // Root's SourceDate
    std::optional<std::uint32_t> size_kb;             // Root's and ExtraInfo's SourceSize; kept when empty
    std::optional<std::uint32_t> compressed_size_kb;  // Root's SourceCompressedSize; kept when empty
  };

  // RefreshPkgSource: the package's SourceVersion became `source.version` (> the current one; equal is a no-op,
  // less is WBEM_E_INVALID_PARAMETER). Root (SourceVersion, SourceDate, sizes), every Detail and the ExtraInfo row
  // take the new version, each in one write (so one journal entry, one event), and every targeted DP (a row not in
  // a removal state) moves to INSTALL_PENDING for it, with the deltas that implies: Installed drops to 0
  // everywhere and climbs again as DPs report INSTALLED.
  // Callers need not move the DPs themselves; a later transition() to INSTALL_PENDING is harmless.
  // Cost: one read of the package's DistPoints rows and one write per targeted DP (a refresh touches them all).
  Status new_source_version(store::WriteTxn& txn, std::string_view package_id, const NewSource& source,
                            Micros now) const;

 private:
  std::unique_ptr<const internal::Classes> classes_;  // resolved from the registry once
};

// One summary value that does not match a recomputation from the DistPoints rows.
struct Difference {
  std::string class_name;
  std::string key;       // the instance's relpath
  std::string property;  // "" when the whole row is missing or should not exist
  std::string expected;  // the recomputed value ("present" / "absent" for rows)
  std::string actual;
  // "SMS_PackageStatusRootSummarizer.PackageID=\"ABC00001\" Installed: expected 3, found 2".
  std::string to_string() const;
};

// `pkgcast admin check`: recomputes every count of Root, Detail, ObjectContentExtraInfo and SMS_DPStatusInfo (and
// MessageState) from the DistPoints rows, every Offered flag from the Detail rows, checks that each
// (package, site) with a DistPoints row has its Detail row and that the summaries carry the package's current
// SourceVersion, and returns every difference (none, when the deltas are right), in a stable order.
// Over a WriteTxn: a consistent view (it runs as, or inside, a write command, holding the writer while it reads).
// Over a Store: committed data read class by class; exact only when nothing writes meanwhile.
// `registry`: the classes of the store's rows (the store's registry).
Result<std::vector<Difference>> check(store::WriteTxn& txn,
                                      const cim::ClassRegistry& registry = cim::ClassRegistry::builtin());
Result<std::vector<Difference>> check(store::Store& store);

}  // namespace pkgcast::summarizer
