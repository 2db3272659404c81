// The administrative verbs: each is one store command that moves the DistPoints rows (through the summarizer) and
// writes the DP jobs in the same transaction, then wakes the scheduler.
#include <set>

#include "core/strings.h"
#include "distmgr/internal.h"

namespace pkgcast::distmgr {

using namespace internal;

namespace {

// The DPs `targets` names, each once, in the order named. The package is assigned to each group named (in the same
// command), so that SMS_DPGroupContentInfo shows it.
Result<std::vector<cim::Instance>> resolve_targets(store::WriteTxn& txn, const Targets& targets,
                                                   const cim::Instance& package) {
  std::vector<cim::Instance> out;
  std::set<std::string> seen;
  auto add = [&](cim::Instance dp) {
    if (seen.insert(to_lower(get_string(dp, "NALPath"))).second) out.push_back(std::move(dp));
  };
  for (const auto& name : targets.dps) {
    PKG_ASSIGN_OR_RETURN(cim::Instance dp, site::find_dp(txn, name));
    add(std::move(dp));
  }
  for (const auto& code : targets.sites) {
    PKG_ASSIGN_OR_RETURN(auto dps, site::find_site_dps(txn, code));
    for (auto& dp : dps) add(std::move(dp));
  }
  for (const auto& group : targets.groups) {
    PKG_ASSIGN_OR_RETURN(auto members, site::assign_group_content(txn, group, package));
    for (const auto& name : members) {
      PKG_ASSIGN_OR_RETURN(cim::Instance dp, site::find_dp(txn, name));
      add(std::move(dp));
    }
  }
  return out;
}

Status require_source_files(const cim::Instance& package) {
  if (get_uint(package, "PkgSourceFlag") != 2) {
    return make_error(WbemCode::kInvalidOperation,
                      "package " + get_string(package, "PackageID") +
                          " has no source files: it is offered without distribution");
  }
  return ok_status();
}

// The SMS_DistributionPoint row of a target, written with `status` (1 UPDATED, 2 ADDED, 3 DELETED).
Status put_target_row(store::WriteTxn& txn, const cim::Instance& package, const cim::Instance& dp_info,
                      std::uint32_t status, Micros now) {
  const std::string site_code = get_string(dp_info, "SiteCode");
  PKG_ASSIGN_OR_RETURN(auto site, txn.get(class_named("SMS_Site"), {str_value(site_code)}));
  cim::Instance row(class_named("SMS_DistributionPoint"));
  set_prop(row, "PackageID", str_value(get_string(package, "PackageID")));
  set_prop(row, "ServerNALPath", str_value(get_string(dp_info, "NALPath")));
  set_prop(row, "SiteCode", str_value(site_code));
  set_prop(row, "SiteName", str_value(site ? get_string(*site, "SiteName") : std::string()));
  set_prop(row, "SourceSite", str_value(get_string(package, "SourceSite")));
  set_prop(row, "Status", u32_value(status));
  set_prop(row, "LastRefreshTime", time_value(now));
  set_prop(row, "RefreshNow", cim::Value::boolean(false));
  set_prop(row, "PackageType", u32_value(get_uint(package, "PackageType")));
  set_prop(row, "SecureObjectID", str_value(get_string(package, "PackageID")));
  set_prop(row, "ResourceType", str_value(get_string(dp_info, "ResourceType")));
  return txn.put(row);
}

// The DistPoints row of a package on a DP that is a target (not being removed); WBEM_E_INVALID_OPERATION else.
Result<cim::Instance> require_target(store::WriteTxn& txn, std::string_view package_id, const cim::Instance& dp) {
  PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, package_id, dp));
  if (!row || is_removal(get_uint(*row, "State"))) {
    return make_error(WbemCode::kInvalidOperation, "package " + std::string(package_id) + " is not distributed to DP '" +
                                                       get_string(dp, "Name") + "'");
  }
  return std::move(*row);
}

}  // namespace

Result<std::vector<cim::Instance>> DistributionManager::distribute(std::string_view package_id,
                                                                   const Targets& targets) {
  Manager& m = *impl_;
  std::vector<cim::Instance> rows;
  PKG_TRY(m.store.execute([&](store::WriteTxn& txn) -> Status {
    rows.clear();
    PKG_ASSIGN_OR_RETURN(cim::Instance package, require_package(txn, package_id));
    PKG_TRY(require_source_files(package));
    const std::string id = get_string(package, "PackageID");
    PKG_ASSIGN_OR_RETURN(auto dps, resolve_targets(txn, targets, package));
    if (dps.empty()) return make_error(WbemCode::kInvalidParameter, "no distribution point to distribute to");
    const Micros now = txn.now();
    for (const auto& dp : dps) {
      PKG_ASSIGN_OR_RETURN(auto existing, dist_points_row(txn, id, dp));
      if (!existing || is_removal(get_uint(*existing, "State"))) {
        PKG_TRY(put_target_row(txn, package, dp, 2, now));
        PKG_ASSIGN_OR_RETURN(const summarizer::DpRef ref, target_ref(txn, id, dp));
        PKG_TRY(m.summaries.target(txn, ref, now));
        PKG_TRY(issue_job(txn, package, dp, JobAction::kInstall, now));
      }
      PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, id, dp));
      if (row) rows.push_back(std::move(*row));
    }
    return mark_action(txn, id, kActionAdd);
  }));
  m.wake();
  return rows;
}

namespace {

// RefreshNow on one targeted DP, inside the caller's command.
Status redistribute_in(store::WriteTxn& txn, const summarizer::Summarizer& summaries, const cim::Instance& package,
                       const cim::Instance& dp) {
  const std::string id = get_string(package, "PackageID");
  PKG_TRY(require_target(txn, id, dp));
  const Micros now = txn.now();
  PKG_TRY(put_target_row(txn, package, dp, 1, now));
  PKG_TRY(summaries.transition(
      txn, dp_ref(id, dp), summarizer::DpState::kInstallPending,
      static_cast<std::uint32_t>(get_uint(package, "SourceVersion")),
      "Redistribution requested: every file is read and checked again, and what differs is sent", std::nullopt, now));
  return issue_job(txn, package, dp, JobAction::kInstall, now);
}

}  // namespace

Result<cim::Instance> DistributionManager::redistribute(std::string_view package_id, std::string_view dp_name) {
  Manager& m = *impl_;
  std::optional<cim::Instance> out;
  PKG_TRY(m.store.execute([&](store::WriteTxn& txn) -> Status {
    PKG_ASSIGN_OR_RETURN(cim::Instance package, require_package(txn, package_id));
    PKG_TRY(require_source_files(package));
    const std::string id = get_string(package, "PackageID");
    PKG_ASSIGN_OR_RETURN(cim::Instance dp, site::find_dp(txn, dp_name));
    PKG_TRY(redistribute_in(txn, m.summaries, package, dp));
    PKG_TRY(mark_action(txn, get_string(package, "PackageID"), kActionUpdate));
    PKG_ASSIGN_OR_RETURN(out, dist_points_row(txn, id, dp));
    return ok_status();
  }));
  m.wake();
  return std::move(*out);
}

Result<cim::Instance> DistributionManager::put_distribution_point(
    const std::vector<std::pair<std::string, cim::Value>>& properties) {
  Manager& m = *impl_;
  const cim::ClassDef& cls = class_named("SMS_DistributionPoint");
  const auto given = [&](std::string_view name) -> const cim::Value* {
    for (const auto& [n, v] : properties) {
      if (iequals(n, name)) return &v;
    }
    return nullptr;
  };
  std::vector<cim::Value> keys;
  for (const char* key : {"PackageID", "ServerNALPath", "SiteCode"}) {
    const cim::Value* v = given(key);
    if (!v || v->is_null()) {
      return make_error(WbemCode::kInvalidObjectPath, std::string("SMS_DistributionPoint needs its key ") + key);
    }
    keys.push_back(*v);
  }
  for (const auto& [name, value] : properties) {
    if (!cls.find_property(name)) {
      return make_error(WbemCode::kInvalidProperty, "SMS_DistributionPoint has no property " + name);
    }
  }
  const cim::Value* refresh = given("RefreshNow");
  const bool refresh_now = refresh && !refresh->is_null() && refresh->as_bool();
  std::optional<cim::Instance> out;
  PKG_TRY(m.store.execute([&](store::WriteTxn& txn) -> Status {
    PKG_ASSIGN_OR_RETURN(auto row, txn.get(cls, keys));
    if (!row) {
      return make_error(WbemCode::kNotFound, "no SMS_DistributionPoint " + keys[0].as_string() + " at " +
                                                 keys[1].as_string() + " in site " + keys[2].as_string());
    }
    for (const auto& [name, value] : properties) {
      const cim::PropertyDef* def = &cls.property(*cls.find_property(name));
      if (def->key || iequals(def->name, "RefreshNow")) continue;
      const cim::Value* stored = row->find(def->name);
      if (!stored || !(*stored == value)) {
        return make_error(WbemCode::kReadOnly, "SMS_DistributionPoint." + def->name + " is read-only");
      }
    }
    if (refresh_now) {
      PKG_ASSIGN_OR_RETURN(cim::Instance package, require_package(txn, keys[0].as_string()));
      PKG_TRY(require_source_files(package));
      PKG_ASSIGN_OR_RETURN(cim::Instance dp, site::find_dp_by_nal_path(txn, keys[1].as_string()));
      PKG_TRY(redistribute_in(txn, m.summaries, package, dp));
      PKG_TRY(mark_action(txn, get_string(package, "PackageID"), kActionUpdate));
    }
    PKG_ASSIGN_OR_RETURN(out, txn.get(cls, keys));
    return ok_status();
  }));
  m.wake();
  return std::move(*out);
}

Result<cim::Instance> DistributionManager::remove(std::string_view package_id, std::string_view dp_name) {
  Manager& m = *impl_;
  std::optional<cim::Instance> out;
  PKG_TRY(m.store.execute([&](store::WriteTxn& txn) -> Status {
    PKG_ASSIGN_OR_RETURN(cim::Instance package, require_package(txn, package_id));
    const std::string id = get_string(package, "PackageID");
    PKG_ASSIGN_OR_RETURN(cim::Instance dp, site::find_dp(txn, dp_name));
    PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, id, dp));
    if (!row) {
      return make_error(WbemCode::kInvalidOperation,
                        "package " + id + " is not distributed to DP '" + std::string(dp_name) + "'");
    }
    // A removal in progress (pending, retrying) is left to run; one that failed is tried again, with its retries
    // counted afresh, as a new install is after INSTALL_FAILED.
    const auto state = get_uint(*row, "State");
    const bool failed = state == static_cast<std::uint32_t>(summarizer::DpState::kRemovalFailed);
    if (!is_removal(state) || failed) {
      const Micros now = txn.now();
      PKG_TRY(put_target_row(txn, package, dp, 3, now));
      PKG_TRY(m.summaries.transition(txn, dp_ref(id, dp), summarizer::DpState::kRemovalPending,
                                     static_cast<std::uint32_t>(get_uint(*row, "SourceVersion")),
                                     failed ? "Removal requested again" : "Removal requested", std::nullopt, now));
      PKG_TRY(issue_job(txn, package, dp, JobAction::kRemove, now));
    }
    PKG_ASSIGN_OR_RETURN(out, dist_points_row(txn, id, dp));
    return ok_status();
  }));
  m.wake();
  return std::move(*out);
}

Result<std::vector<cim::Instance>> DistributionManager::validate(std::string_view package_id,
                                                                 std::string_view dp_name) {
  Manager& m = *impl_;
  std::vector<cim::Instance> rows;
  PKG_TRY(m.store.execute([&](store::WriteTxn& txn) -> Status {
    rows.clear();
    PKG_ASSIGN_OR_RETURN(cim::Instance package, require_package(txn, package_id));
    PKG_TRY(require_source_files(package));
    const std::string id = get_string(package, "PackageID");
    const auto version = static_cast<std::uint32_t>(get_uint(package, "SourceVersion"));
    std::vector<cim::Instance> dps;
    if (!dp_name.empty()) {
      PKG_ASSIGN_OR_RETURN(cim::Instance dp, site::find_dp(txn, dp_name));
      PKG_ASSIGN_OR_RETURN(cim::Instance row, require_target(txn, id, dp));
      if (get_uint(row, "State") != 0 || get_uint(row, "SourceVersion") != version) {
        return make_error(WbemCode::kInvalidOperation, "DP '" + std::string(dp_name) + "' does not hold " +
                                                           site::content_id(id, version) + " yet: nothing to validate");
      }
      dps.push_back(std::move(dp));
    } else {
      const cim::ClassDef& cls = class_named("SMS_PackageStatusDistPointsSummarizer");
      const auto pkg_prop = *cls.find_property("PackageID");
      std::vector<cim::Instance> installed;
      PKG_TRY(txn.scan(cls, store::Predicate::compare(pkg_prop, store::Predicate::Op::kEq, str_value(id)),
                       [&](cim::Instance&& row) {
                         if (get_uint(row, "State") == 0 && get_uint(row, "SourceVersion") == version) {
                           installed.push_back(std::move(row));
                         }
                         return true;
                       }));
      for (const auto& row : installed) {
        PKG_ASSIGN_OR_RETURN(auto dp, txn.get(class_named("SMS_DistributionPointInfo"),
                                              {str_value(get_string(row, "ServerNALPath"))}));
        if (dp) dps.push_back(std::move(*dp));
      }
      if (dps.empty()) {
        return make_error(WbemCode::kInvalidOperation, "no DP holds " + site::content_id(id, version) + " yet");
      }
    }
    const Micros now = txn.now();
    for (const auto& dp : dps) {
      PKG_TRY(m.summaries.transition(txn, dp_ref(id, dp), summarizer::DpState::kContentMonitoring, version,
                                     "Validation requested", std::nullopt, now));
      PKG_TRY(issue_job(txn, package, dp, JobAction::kValidate, now));
      PKG_ASSIGN_OR_RETURN(auto row, dist_points_row(txn, id, dp));
      if (row) rows.push_back(std::move(*row));
    }
    return ok_status();
  }));
  m.wake();
  return rows;
}

Result<cim::Instance> DistributionManager::cancel(std::string_view package_id, std::string_view dp_name) {
  Manager& m = *impl_;
  std::optional<cim::Instance> out;
  PKG_TRY(m.store.execute([&](store::WriteTxn& txn) -> Status {
    PKG_ASSIGN_OR_RETURN(cim::Instance package, require_package(txn, package_id));
    const std::string id = get_string(package, "PackageID");
    PKG_ASSIGN_OR_RETURN(cim::Instance dp, site::find_dp(txn, dp_name));
    PKG_ASSIGN_OR_RETURN(auto job, job_row(txn, id, get_string(dp, "NALPath")));
    const auto action = job ? get_uint(*job, "Action") : 0;
    const auto state = job ? get_uint(*job, "JobState") : 0;
    const bool running = job && (state == static_cast<std::uint32_t>(JobState::kQueued) ||
                                 state == static_cast<std::uint32_t>(JobState::kSent));
    if (!running || (action != static_cast<std::uint32_t>(JobAction::kInstall) &&
                     action != static_cast<std::uint32_t>(JobAction::kValidate))) {
      return make_error(WbemCode::kInvalidOperation, "no distribution of package " + id + " to DP '" +
                                                         std::string(dp_name) + "' is in progress");
    }
    PKG_ASSIGN_OR_RETURN(cim::Instance row, require_target(txn, id, dp));
    const Micros now = txn.now();
    PKG_TRY(m.summaries.transition(txn, dp_ref(id, dp), summarizer::DpState::kInstallFailed,
                                   static_cast<std::uint32_t>(get_uint(row, "SourceVersion")), "cancelled",
                                   message(kMsgCancelled, summarizer::kMessageError, {"cancelled"}), now));
    PKG_TRY(issue_job(txn, package, dp, JobAction::kCancel, now));
    PKG_ASSIGN_OR_RETURN(out, dist_points_row(txn, id, dp));
    return ok_status();
  }));
  m.wake();
  return std::move(*out);
}

Result<cim::Instance> DistributionManager::refresh_source(std::string_view package_id, std::string_view new_source) {
  Manager& m = *impl_;
  PKG_ASSIGN_OR_RETURN(cim::Instance current, m.domain.get_package(package_id));
  PKG_TRY(require_source_files(current));
  const std::string path = new_source.empty() ? get_string(current, "PkgSourcePath") : std::string(new_source);
  // The ingest runs before the command, on the source walker: the writer never waits on a file system, and the
  // new version's chunks and manifest are stored before any row names them.
  PKG_ASSIGN_OR_RETURN(site::TakenSource taken, m.domain.take_source(path));
  std::optional<cim::Instance> out;
  PKG_TRY(m.store.execute([&](store::WriteTxn& txn) -> Status {
    PKG_ASSIGN_OR_RETURN(cim::Instance package, require_package(txn, package_id));
    PKG_TRY(require_source_files(package));
    const std::string id = get_string(package, "PackageID");
    const auto version = static_cast<std::uint32_t>(get_uint(package, "SourceVersion") + 1);
    const Micros now = txn.now();
    if (taken.content) PKG_TRY(site::record_content(txn, id, version, *taken.content));
    // The site server keeps the new version and the one before it (which DPs still hold until they have the new
    // one); older versions' content is left to the content library's garbage collection.
    PKG_ASSIGN_OR_RETURN(auto records, txn.list_meta("content/" + id + "."));
    for (const auto& [key, value] : records) {
      const std::string v = key.substr(key.rfind('.') + 1);
      const bool number = !v.empty() && v.size() < 10 && v.find_first_not_of("0123456789") == std::string::npos;
      if (number && std::stoul(v) + 1 < version) PKG_TRY(txn.remove_meta(key));
    }
    const Micros source_date = now;  // when this version was taken, as at creation (site/packages.cc)
    set_prop(package, "SourceVersion", u32_value(version));
    set_prop(package, "SourceDate", time_value(source_date));
    set_prop(package, "PackageSize", u32_value(taken.size_kb));
    set_prop(package, "PkgSourcePath", str_value(taken.dir.string()));
    set_prop(package, "LastRefreshTime", time_value(now));
    PKG_TRY(txn.put(package));
    PKG_TRY(site::sync_group_content(txn, package));
    // The summaries take the new version, its date and sizes in one write each: one event per row.
    summarizer::Summarizer::NewSource source;
    source.version = version;
    source.date = source_date;
    source.size_kb = taken.size_kb;
    if (taken.content) source.compressed_size_kb = static_cast<std::uint32_t>((taken.content->compressed_size + 1023) / 1024);
    PKG_TRY(m.summaries.new_source_version(txn, id, source, now));
    // Every targeted DP gets the new version.
    const cim::ClassDef& cls = class_named("SMS_PackageStatusDistPointsSummarizer");
    const auto pkg_prop = *cls.find_property("PackageID");
    std::vector<std::string> nal_paths;
    PKG_TRY(txn.scan(cls, store::Predicate::compare(pkg_prop, store::Predicate::Op::kEq, str_value(id)),
                     [&](cim::Instance&& row) {
                       if (!is_removal(get_uint(row, "State"))) nal_paths.push_back(get_string(row, "ServerNALPath"));
                       return true;
                     }));
    for (const auto& nal : nal_paths) {
      PKG_ASSIGN_OR_RETURN(auto dp, txn.get(class_named("SMS_DistributionPointInfo"), {str_value(nal)}));
      if (!dp) continue;
      PKG_TRY(put_target_row(txn, package, *dp, 1, now));
      PKG_TRY(issue_job(txn, package, *dp, JobAction::kInstall, now));
    }
    PKG_TRY(mark_action(txn, id, kActionUpdate));
    PKG_ASSIGN_OR_RETURN(out, txn.get(class_named("SMS_Package"), {str_value(id)}));
    return ok_status();
  }));
  m.wake();
  return std::move(*out);
}

}  // namespace pkgcast::distmgr
