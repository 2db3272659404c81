// The operations: each reads the DistPoints row it changes and the package's Root row (which carries the current
// SourceVersion), works out the row's contribution before and after (counts.cc), and applies the difference to
// the exact summary rows by key. Nothing here counts rows.
#include <map>
#include <unordered_map>

#include "summarizer/internal.h"

namespace pkgcast::summarizer {

using namespace internal;

namespace {

constexpr std::uint64_t kStorageNoSource = 1;  // SMS_Package.PkgSourceFlag

Status check_ref(const DpRef& dp) {
  if (dp.package_id.empty() || dp.nal_path.empty() || dp.site_code.empty()) {
    return make_error(WbemCode::kInvalidParameter, "a DP reference needs PackageID, NAL path and site code");
  }
  return ok_status();
}

std::vector<cim::Value> dist_points_key(const DpRef& dp) {
  return {str_value(to_upper(dp.package_id)), str_value(dp.nal_path), str_value(to_upper(dp.site_code))};
}

std::string describe(const DpRef& dp) {
  return "package " + to_upper(dp.package_id) + " on DP " + (dp.dp_name.empty() ? dp.nal_path : dp.dp_name);
}

std::string pending_text(std::uint32_t version) {
  return "Waiting to install content version " + std::to_string(version);
}

Result<cim::Instance> load_root(store::WriteTxn& txn, const Classes& c, const std::string& package_id) {
  return require(txn, c.root, {str_value(package_id)}, "package " + package_id);
}

// The counting facts of a stored DistPoints row.
Result<RowFacts> facts_of(const cim::Instance& row) {
  const std::uint64_t stored = get_uint(row, "State");
  const auto state = dp_state_from(stored);
  if (!state) {
    return make_error(WbemCode::kFailed, row.relpath() + " has State " + std::to_string(stored) + ", not 0..8");
  }
  return RowFacts{*state, static_cast<std::uint32_t>(get_uint(row, "SourceVersion"))};
}

}  // namespace

Summarizer::Summarizer(const cim::ClassRegistry& registry) : classes_(std::make_unique<const Classes>(registry)) {}
Summarizer::~Summarizer() = default;
Summarizer::Summarizer(Summarizer&&) noexcept = default;
Summarizer& Summarizer::operator=(Summarizer&&) noexcept = default;

Status Summarizer::target(store::WriteTxn& txn, const DpRef& dp, Micros now) const {
  PKG_TRY(check_ref(dp));
  const Classes& c = *classes_;
  const std::string package_id = to_upper(dp.package_id);
  PKG_ASSIGN_OR_RETURN(cim::Instance pkg, require(txn, c.package, {str_value(package_id)}, "package " + package_id));
  if (get_uint(pkg, "PkgSourceFlag") == kStorageNoSource) {
    return make_error(WbemCode::kInvalidOperation,
                      "package " + package_id + " has no source files: there is no content to distribute");
  }
  PKG_ASSIGN_OR_RETURN(cim::Instance root, load_root(txn, c, package_id));
  const auto current = static_cast<std::uint32_t>(get_uint(root, "SourceVersion"));
  PKG_TRY(ensure_detail(txn, c, root, to_upper(dp.site_code), now));

  PKG_ASSIGN_OR_RETURN(auto existing, txn.get(c.dist_points, dist_points_key(dp)));
  Counts before;
  // The version the DP holds: kept from the row (a DP targeted again may still hold one), 0 for a new target.
  std::uint32_t installed_version = 0;
  cim::Instance row(c.dist_points);
  if (existing) {
    PKG_ASSIGN_OR_RETURN(const RowFacts facts, facts_of(*existing));
    before = contribution(facts, current);
    installed_version = facts.version;
    row = std::move(*existing);
  } else {
    const auto key = dist_points_key(dp);
    set_prop(row, "PackageID", key[0]);
    set_prop(row, "ServerNALPath", key[1]);
    set_prop(row, "SiteCode", key[2]);
    set_prop(row, "PackageType", u32_value(get_uint(pkg, "PackageType")));
    set_prop(row, "SecureObjectID", key[0]);
  }
  set_prop(row, "SourceNALPath", str_value(dp.source_nal_path));
  set_prop(row, "SourceVersion", u32_value(installed_version));
  set_prop(row, "State", u32_value(static_cast<std::uint32_t>(DpState::kInstallPending)));
  set_prop(row, "InstallStatus", str_value(pending_text(current)));
  set_prop(row, "SummaryDate", time_value(now));
  PKG_TRY(txn.put(std::move(row)));

  PackageDeltas d(package_id);
  d.add(dp, contribution(RowFacts{DpState::kInstallPending, installed_version}, current) - before);
  return apply_all(txn, c, root, d, now);
}

namespace {

// The DistPoints row and last message of one transition; its delta goes to `d`. `current` is the package's
// current SourceVersion (from its Root row, which the caller holds).
Status move_row(store::WriteTxn& txn, const Classes& c, const DpRef& dp, DpState state, std::uint32_t source_version,
                std::string_view install_status, const std::optional<StatusMessage>& message, Micros now,
                std::uint32_t current, PackageDeltas& d) {
  PKG_TRY(check_ref(dp));
  if (!dp_state_from(static_cast<std::uint32_t>(state))) {
    return make_error(WbemCode::kInvalidParameter,
                      "State " + std::to_string(static_cast<std::uint32_t>(state)) + " is not 0..8");
  }
  // 0 names no version: allowed for the states that keep the row's (a DP that never installed one holds none).
  if ((source_version < 1 && state == DpState::kInstalled) || source_version > current) {
    return make_error(WbemCode::kInvalidParameter, "content version " + std::to_string(source_version) +
                                                       " of package " + d.package_id +
                                                       " does not exist (current: " + std::to_string(current) + ")");
  }
  PKG_ASSIGN_OR_RETURN(auto existing, txn.get(c.dist_points, dist_points_key(dp)));
  if (!existing) return make_error(WbemCode::kNotFound, describe(dp) + " is not targeted");
  cim::Instance row = std::move(*existing);

  PKG_ASSIGN_OR_RETURN(const RowFacts before, facts_of(row));
  // SourceVersion is the version the DP holds (classes.md): it becomes `source_version` when the DP has installed
  // it, and stays what it was through every other state (the version being sent is in InstallStatus and the job).
  const RowFacts after{state, state == DpState::kInstalled ? source_version : before.version};

  const bool row_moves = before.state != state || before.version != after.version ||
                         get_text(row, "InstallStatus") != install_status ||
                         (!dp.source_nal_path.empty() && get_text(row, "SourceNALPath") != dp.source_nal_path);
  if (row_moves || message) {
    if (state == DpState::kInstalled && (before.state != state || before.version != after.version)) {
      set_prop(row, "LastCopied", time_value(now));
    }
    if (!dp.source_nal_path.empty()) set_prop(row, "SourceNALPath", str_value(dp.source_nal_path));
    set_prop(row, "State", u32_value(static_cast<std::uint32_t>(state)));
    set_prop(row, "SourceVersion", u32_value(after.version));
    set_prop(row, "InstallStatus", str_value(std::string(install_status)));
    set_prop(row, "SummaryDate", time_value(now));
    PKG_TRY(txn.put(std::move(row)));
  }
  if (message) PKG_TRY(DpMessages(txn, c, dp).write(*message, now));
  d.add(dp, contribution(after, current) - contribution(before, current));
  return ok_status();
}

}  // namespace

Status Summarizer::transition(store::WriteTxn& txn, const DpRef& dp, DpState state, std::uint32_t source_version,
                              std::string_view install_status, const std::optional<StatusMessage>& message,
                              Micros now) const {
  PKG_TRY(check_ref(dp));
  const Classes& c = *classes_;
  PackageDeltas d(to_upper(dp.package_id));
  PKG_ASSIGN_OR_RETURN(cim::Instance root, load_root(txn, c, d.package_id));
  const auto current = static_cast<std::uint32_t>(get_uint(root, "SourceVersion"));
  PKG_TRY(move_row(txn, c, dp, state, source_version, install_status, message, now, current, d));
  return apply_all(txn, c, root, d, now);
}

Status Summarizer::transition_all(store::WriteTxn& txn, const std::vector<Change>& changes, Micros now) const {
  const Classes& c = *classes_;
  // Packages in order of first appearance; each change keeps its order within its package (changes to one DP
  // are always of one package, so their order is kept).
  std::vector<std::string> order;
  std::unordered_map<std::string, std::vector<const Change*>> by_package;
  for (const Change& ch : changes) {
    PKG_TRY(check_ref(ch.dp));
    auto [it, fresh] = by_package.try_emplace(to_upper(ch.dp.package_id));
    if (fresh) order.push_back(it->first);
    it->second.push_back(&ch);
  }
  // A DP's SMS_DPStatusInfo gathers the deltas of every package and is written once, at the end.
  std::map<std::string, Counts> dp_deltas;
  std::map<std::string, std::string> dp_nal;
  for (const std::string& package_id : order) {
    PackageDeltas d(package_id);
    PKG_ASSIGN_OR_RETURN(cim::Instance root, load_root(txn, c, package_id));
    const auto current = static_cast<std::uint32_t>(get_uint(root, "SourceVersion"));
    for (const Change* ch : by_package[package_id]) {
      PKG_TRY(
          move_row(txn, c, ch->dp, ch->state, ch->source_version, ch->install_status, ch->message, now, current, d));
    }
    for (const auto& [nal, delta] : d.dp) dp_deltas[nal] += delta;
    dp_nal.merge(d.dp_nal);
    d.dp.clear();
    PKG_TRY(apply_all(txn, c, root, d, now));
  }
  for (const auto& [nal, delta] : dp_deltas) {
    if (delta.moves_dp_status()) PKG_TRY(apply_dp_status(txn, c, dp_nal.at(nal), delta, now));
  }
  return ok_status();
}

Status Summarizer::untarget(store::WriteTxn& txn, const DpRef& dp, Micros now) const {
  PKG_TRY(check_ref(dp));
  const Classes& c = *classes_;
  const std::string package_id = to_upper(dp.package_id);
  PKG_ASSIGN_OR_RETURN(cim::Instance root, load_root(txn, c, package_id));
  const auto current = static_cast<std::uint32_t>(get_uint(root, "SourceVersion"));
  const auto key = dist_points_key(dp);
  PKG_ASSIGN_OR_RETURN(auto existing, txn.get(c.dist_points, key));
  if (!existing) return make_error(WbemCode::kNotFound, describe(dp) + " is not targeted");
  PKG_ASSIGN_OR_RETURN(const RowFacts before, facts_of(*existing));
  PKG_TRY(txn.remove(c.dist_points, key));
  PKG_TRY(DpMessages(txn, c, dp).drop());

  PackageDeltas d(package_id);
  d.add(dp, Counts{} - contribution(before, current));
  const std::string source_site = get_text(root, "SourceSite");  // apply_all may move the row away
  PKG_TRY(apply_all(txn, c, root, d, now));
  return drop_detail_if_unused(txn, c, package_id, source_site, to_upper(dp.site_code));
}

Status Summarizer::forget_package(store::WriteTxn& txn, std::string_view package_id_in, Micros now) const {
  const Classes& c = *classes_;
  const std::string package_id = to_upper(package_id_in);
  PKG_ASSIGN_OR_RETURN(cim::Instance root, load_root(txn, c, package_id));
  const auto current = static_cast<std::uint32_t>(get_uint(root, "SourceVersion"));
  PackageDeltas d(package_id);
  PKG_ASSIGN_OR_RETURN(auto rows, scan_where(txn, c.dist_points, "PackageID", package_id));
  for (const auto& row : rows) {
    const DpRef ref{package_id, get_text(row, "ServerNALPath"), get_text(row, "SiteCode"), {}, {}};
    PKG_ASSIGN_OR_RETURN(const RowFacts before, facts_of(row));
    PKG_TRY(txn.remove(c.dist_points, store::key_of(row)));
    PKG_TRY(DpMessages(txn, c, ref).drop());
    d.add(ref, Counts{} - contribution(before, current));
  }
  return apply_all(txn, c, root, d, now);
}

Status Summarizer::new_source_version(store::WriteTxn& txn, std::string_view package_id_in, const NewSource& source,
                                      Micros now) const {
  const Classes& c = *classes_;
  const std::uint32_t version = source.version;
  const std::string package_id = to_upper(package_id_in);
  PKG_ASSIGN_OR_RETURN(cim::Instance root, load_root(txn, c, package_id));
  const auto current = static_cast<std::uint32_t>(get_uint(root, "SourceVersion"));
  if (version == current) return ok_status();
  if (version < current) {
    return make_error(WbemCode::kInvalidParameter, "package " + package_id + " is at SourceVersion " +
                                                       std::to_string(current) + "; it cannot go back to " +
                                                       std::to_string(version));
  }

  // Every targeted DP goes back to pending for the new version. The before-contributions are taken against the
  // old version and the after-contributions against the new one, which is what makes Installed drop.
  PackageDeltas d(package_id);
  PKG_ASSIGN_OR_RETURN(auto rows, scan_where(txn, c.dist_points, "PackageID", package_id));
  for (auto& row : rows) {
    const DpRef ref{package_id, get_text(row, "ServerNALPath"), get_text(row, "SiteCode"), {}, {}};
    PKG_ASSIGN_OR_RETURN(const RowFacts before, facts_of(row));
    if (!targeted_state(before.state)) continue;
    set_prop(row, "State", u32_value(static_cast<std::uint32_t>(DpState::kInstallPending)));
    set_prop(row, "InstallStatus", str_value(pending_text(version)));
    set_prop(row, "SummaryDate", time_value(now));
    PKG_TRY(txn.put(std::move(row)));
    d.add(ref,
          contribution(RowFacts{DpState::kInstallPending, before.version}, version) - contribution(before, current));
  }

  set_prop(root, "SourceVersion", u32_value(version));
  set_prop(root, "SourceDate", time_value(source.date));
  if (source.size_kb) set_prop(root, "SourceSize", u32_value(*source.size_kb));
  if (source.compressed_size_kb) set_prop(root, "SourceCompressedSize", u32_value(*source.compressed_size_kb));
  PKG_TRY(apply_root(root, d.package));
  PKG_TRY(txn.put(std::move(root)));
  PKG_TRY(apply_extra_info(txn, c, package_id, d.package, now, version, source.size_kb));
  PKG_ASSIGN_OR_RETURN(auto details, scan_where(txn, c.detail, "PackageID", package_id));
  for (auto& detail : details) {
    const auto it = d.site.find(to_upper(get_text(detail, "SiteCode")));
    PKG_TRY(update_detail(txn, c, std::move(detail), it == d.site.end() ? Counts{} : it->second, now, version));
  }
  for (const auto& [nal, delta] : d.dp) {
    if (delta.moves_dp_status()) PKG_TRY(apply_dp_status(txn, c, d.dp_nal.at(nal), delta, now));
  }
  return ok_status();
}

}  // namespace pkgcast::summarizer
