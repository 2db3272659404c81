// Rows written by an older pkgcast, brought to what this one writes. The store's migration gives new columns their
// defaults (docs/storage.md); what a new property derives from other rows, and the rows of classes added since,
// are the domain's to write, through the one write path so that they are journaled like any change.
#include <unordered_map>

#include "core/strings.h"
#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

namespace {

// The meta entry that records the upgrade level a database has had; bumped when a later change needs rows again.
constexpr std::string_view kUpgradeKey = "site/upgrade_level";
// Level 2: the "SMS Site System" role rows of site servers and DPs. Level 3: the offer rows of advertisements of
// packages without source files at every site (they were written for the package's own site only).
constexpr std::string_view kUpgradeLevel = "3";

}  // namespace

Result<bool> Domain::upgrade_rows() {
  bool ran = false;
  PKG_TRY(store_.execute([&](store::WriteTxn& txn) -> Status {
    PKG_ASSIGN_OR_RETURN(auto level, txn.get_meta(kUpgradeKey));
    ran = !level || *level != kUpgradeLevel;
    if (!ran) return ok_status();

    PKG_ASSIGN_OR_RETURN(auto sites, txn_scan(txn, class_named("SMS_Site"), store::Predicate::always()));
    for (const auto& site : sites) {
      PKG_TRY(put_rows(txn, site_role_rows(site, server_name_)));
      PKG_TRY(offer_no_source_advertisements(txn, get_string(site, "SiteCode")));
    }

    // Group membership is the meta record; each DP's GroupCount and each group's HasMember follow from it.
    std::unordered_map<std::string, std::uint32_t> groups_of;  // lower-case DP name -> groups
    PKG_ASSIGN_OR_RETURN(auto groups,
                         txn_scan(txn, class_named("SMS_DistributionPointGroup"), store::Predicate::always()));
    for (auto& group : groups) {
      PKG_ASSIGN_OR_RETURN(auto members, find_group_members(txn, get_string(group, "GroupID")));
      for (const auto& m : members) ++groups_of[to_lower(m)];
      set_prop(group, "HasMember", cim::Value::boolean(!members.empty()));
      if (get_string(group, "SourceSite").empty()) set_prop(group, "SourceSite", str_value(own_site_));
      PKG_TRY(txn.put(group));
    }

    PKG_ASSIGN_OR_RETURN(auto dps, txn_scan(txn, class_named("SMS_DistributionPointInfo"), store::Predicate::always()));
    for (auto& dp : dps) {
      const std::string name = get_string(dp, "Name");
      PKG_ASSIGN_OR_RETURN(const std::string url, dp_agent_url(txn, name));
      PKG_TRY(txn.put(dp_role_row(dp, url)));
      PKG_TRY(txn.put(dp_site_system_row(dp)));
      const auto it = groups_of.find(to_lower(name));
      set_prop(dp, "GroupCount", u32_value(it == groups_of.end() ? 0 : it->second));
      set_prop(dp, "RateLimitsEnabled", cim::Value::boolean(get_uint(dp, "TransferRate") != 0));
      PKG_TRY(txn.put(dp));
    }

    PKG_ASSIGN_OR_RETURN(auto packages, txn_scan(txn, class_named("SMS_Package"), store::Predicate::always()));
    for (const auto& pkg : packages) PKG_TRY(sync_programs(txn, pkg));
    return txn.put_meta(kUpgradeKey, std::string(kUpgradeLevel));
  }));
  return ran;
}

}  // namespace pkgcast::site
