// Internals shared by the summarizer's files: the counting rules as numbers (counts.cc), row helpers (rows.cc),
// one apply function per summary class (root.cc, detail.cc, extra_info.cc, dp_status_info.cc), the last-message
// rows (dp_messages.cc) and the offers (offers.cc). Not part of the API (summarizer.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cim/cim.h"
#include "core/clock.h"
#include "core/result.h"
#include "store/store.h"
#include "summarizer/summarizer.h"

namespace pkgcast::summarizer::internal {

// ---- counts.cc ------------------------------------------------------------------------------------------------

// What one DistPoints row counts for, or a difference of two such (a delta).
struct Counts {
  std::int64_t targeted = 0;
  std::int64_t installed = 0;  // Installed, NumberSuccess, NumberInstalled
  std::int64_t retrying = 0;
  std::int64_t failed = 0;
  std::int64_t in_progress = 0;  // NumberInProgress
  std::int64_t errors = 0;       // NumberErrors
  std::int64_t unknown = 0;      // NumberUnknown

  Counts& operator+=(const Counts& o);
  friend Counts operator-(const Counts& a, const Counts& b);
  friend bool operator==(const Counts&, const Counts&) = default;
  // Root and Detail move only when one of these does.
  bool moves_targeted_installed_retrying_failed() const;
  bool moves_extra_info() const;  // Targeted, NumberSuccess, NumberInProgress, NumberErrors, NumberUnknown
  bool moves_dp_status() const;   // NumberInstalled, NumberInProgress, NumberErrors, NumberUnknown
};

// The state of one DistPoints row as the counting rules see it.
struct RowFacts {
  DpState state = DpState::kInstallPending;
  std::uint32_t version = 0;
};

// The counting rules of summarizer.h, for one row against the package's current SourceVersion.
Counts contribution(const RowFacts& row, std::uint32_t current_version);

bool targeted_state(DpState s);  // not a removal state

// SMS_DPStatusInfo.MessageState from its counts: the worst over the DP's packages.
std::uint32_t worst_message_state(std::uint64_t errors, std::uint64_t in_progress);

// ---- rows.cc --------------------------------------------------------------------------------------------------

// The classes this module reads and writes, resolved once from the registry.
struct Classes {
  explicit Classes(const cim::ClassRegistry& registry);
  const cim::ClassDef& package;
  const cim::ClassDef& site;
  const cim::ClassDef& advertisement;
  const cim::ClassDef& offer;
  const cim::ClassDef& dist_points;
  const cim::ClassDef& detail;
  const cim::ClassDef& root;
  const cim::ClassDef& extra;
  const cim::ClassDef& dp_message;
  const cim::ClassDef& dp_status;
};

// Property access by name. Precondition for set: the property exists and v is NULL or of its type.
void set_prop(cim::Instance& inst, std::string_view name, cim::Value v);
std::string get_text(const cim::Instance& inst, std::string_view name);    // "" when NULL
std::uint64_t get_uint(const cim::Instance& inst, std::string_view name);  // 0 when NULL
inline cim::Value str_value(std::string s) {
  return cim::Value::string(std::move(s));
}
inline cim::Value u32_value(std::uint64_t v) {
  return cim::Value::uint32(static_cast<std::uint32_t>(v));
}
inline cim::Value time_value(Micros t) {
  return cim::Value::datetime(cim::DateTime::from_unix_micros(t));
}

// Adds `delta` to a uint32 count property. WBEM_E_FAILED naming the row when the result leaves 0..UINT32_MAX
// (the summaries were wrong before this change).
Status add_count(cim::Instance& inst, std::string_view property, std::int64_t delta);

// Equality on one string property (the store compares it without regard to case), for scans.
store::Predicate where_text(const cim::ClassDef& cls, std::string_view property, std::string_view value);
Result<std::vector<cim::Instance>> scan_where(store::WriteTxn& txn, const cim::ClassDef& cls, std::string_view property,
                                              std::string_view value);

// A row that must exist; WBEM_E_NOT_FOUND "<what> does not exist" otherwise.
Result<cim::Instance> require(store::WriteTxn& txn, const cim::ClassDef& cls, std::vector<cim::Value> key,
                              std::string_view what);

// ---- per-class apply (root.cc, detail.cc, extra_info.cc, dp_status_info.cc) ------------------------------------

// Every delta of one operation on one package, gathered so that each summary row is read and written once.
struct PackageDeltas {
  explicit PackageDeltas(std::string id) : package_id(std::move(id)) {}
  std::string package_id;                     // upper case
  Counts package;                             // Root and ObjectContentExtraInfo
  std::map<std::string, Counts> site;         // Detail, by upper-case SiteCode
  std::map<std::string, Counts> dp;           // SMS_DPStatusInfo, by NALPath (lower case)
  std::map<std::string, std::string> dp_nal;  // lower case -> as given

  void add(const DpRef& dp_ref, const Counts& delta);
};

// Applies a delta to the counts of the Root row the caller already holds (read for its SourceVersion); the caller
// writes it.
Status apply_root(cim::Instance& root, const Counts& delta);
// Applies a delta to one Detail row (read by key, written back with SummaryDate = now) and flips the site's
// offers when the row becomes or stops being distributed.
Status apply_detail(store::WriteTxn& txn, const Classes& c, std::string_view package_id, std::string_view site_code,
                    const Counts& delta, Micros now);
// The same on a row in hand, also setting its SourceVersion when `new_version` is given.
Status update_detail(store::WriteTxn& txn, const Classes& c, cim::Instance row, const Counts& delta, Micros now,
                     std::optional<std::uint32_t> new_version);
// ObjectContentExtraInfo by key, also setting its SourceVersion and SourceSize when given.
Status apply_extra_info(store::WriteTxn& txn, const Classes& c, std::string_view package_id, const Counts& delta,
                        Micros now, std::optional<std::uint32_t> new_version = std::nullopt,
                        std::optional<std::uint32_t> new_size_kb = std::nullopt);
Status apply_dp_status(store::WriteTxn& txn, const Classes& c, std::string_view nal_path, const Counts& delta,
                       Micros now);
// All of the above for `d`; the Root row is written when its counts moved or `root_changed` (other properties),
// and is then moved from: `root` is the caller's last use of it.
Status apply_all(store::WriteTxn& txn, const Classes& c, cim::Instance& root, const PackageDeltas& d, Micros now,
                 bool root_changed = false);

// Creates the package's Detail row for `site_code` when it is missing, with zero counts and an offer row per
// advertisement of the package (not offered: nothing is installed there yet).
Status ensure_detail(store::WriteTxn& txn, const Classes& c, const cim::Instance& root, std::string_view site_code,
                     Micros now);
// After the last DistPoints row of the package at `site_code` went (untarget): that site's Detail row and its offer
// rows go too (classes.md: a Detail row for the source site, and one per site with a DP targeted). The source
// site's stays. Scans the package's DistPoints rows: off the per-change path (a removal's end).
Status drop_detail_if_unused(store::WriteTxn& txn, const Classes& c, const std::string& package_id,
                             std::string_view source_site, std::string_view site_code);

// ---- offers.cc ------------------------------------------------------------------------------------------------

// Sets Offered (and OfferedTime: `now` when offered, NULL when not) on every offer of the package at the site.
Status set_offers(store::WriteTxn& txn, const Classes& c, std::string_view package_id, std::string_view site_code,
                  bool offered_now, Micros now);

// ---- dp_messages.cc -------------------------------------------------------------------------------------------

// The package's last status message for a DP lives in SMS_DistributionDPStatus under a uint64 ID; the meta area
// maps (package, NAL path) to it ("summarizer/dpstatus/<PACKAGEID>/<nal lower>") and holds the ID counter
// ("summarizer/dpstatus-next"). The mapping lives as long as the DistPoints row (untarget drops both).
class DpMessages {
 public:
  DpMessages(store::WriteTxn& txn, const Classes& c, const DpRef& dp) : txn_(txn), c_(c), dp_(dp) {}
  // Writes the message (a new ID the first time).
  Status write(const StatusMessage& m, Micros now);
  // Drops the row and its mapping when present.
  Status drop();

 private:
  Result<std::optional<std::uint64_t>> id();
  std::string mapping_key() const;

  store::WriteTxn& txn_;
  const Classes& c_;
  const DpRef& dp_;
  std::optional<std::optional<std::uint64_t>> id_;  // outer: looked up yet
};

}  // namespace pkgcast::summarizer::internal
