// `pkgcast admin check`: every count recomputed from scratch, from the DistPoints rows,
// with the same contribution() the deltas use, and compared with what the summaries hold. The rows are streamed;
// memory is one small record per package, per (package, site) and per DP.
#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "summarizer/internal.h"

namespace pkgcast::summarizer {

using namespace internal;

std::string Difference::to_string() const {
  return key + (property.empty() ? "" : " " + property) + ": expected " + expected + ", found " + actual;
}

namespace {

using Scan = std::function<Status(const cim::ClassDef&, const store::RowSink&)>;

struct PackageFacts {
  bool has_source = true;
  std::uint64_t package_version = 0;          // SMS_Package.SourceVersion
  std::optional<std::uint32_t> root_version;  // the Root row's: the version the counts are taken against
};

std::string relpath_of(const cim::ClassDef& cls, const std::vector<std::pair<std::string, std::string>>& keys) {
  cim::Instance probe(cls);
  for (const auto& [name, value] : keys) set_prop(probe, name, str_value(value));
  return probe.relpath();
}

class Checker {
 public:
  Checker(Scan scan, const cim::ClassRegistry& registry)
      : scan_(std::move(scan)), c_(registry), registry_(registry) {}

  Result<std::vector<Difference>> run() {
    PKG_TRY(read_packages());
    PKG_TRY(read_dist_points());
    PKG_TRY(compare_roots());
    PKG_TRY(compare_extra());
    PKG_TRY(compare_details());
    PKG_TRY(compare_dp_status());
    PKG_TRY(compare_offers());
    PKG_TRY(compare_derived());
    std::sort(out_.begin(), out_.end(), [](const Difference& a, const Difference& b) {
      return std::tie(a.class_name, a.key, a.property) < std::tie(b.class_name, b.key, b.property);
    });
    // A package without its Root row is reported once, not once per DistPoints row.
    out_.erase(std::unique(out_.begin(), out_.end(),
                           [](const Difference& a, const Difference& b) {
                             return std::tie(a.class_name, a.key, a.property, a.expected, a.actual) ==
                                    std::tie(b.class_name, b.key, b.property, b.expected, b.actual);
                           }),
               out_.end());
    return std::move(out_);
  }

 private:
  Status each(const cim::ClassDef& cls, const std::function<Status(const cim::Instance&)>& f) {
    Status inner = ok_status();
    PKG_TRY(scan_(cls, [&](cim::Instance&& row) {
      inner = f(row);
      return inner.ok();
    }));
    return inner;
  }

  void differ(const cim::Instance& row, std::string property, std::string expected, std::string actual) {
    out_.push_back({row.class_name(), row.relpath(), std::move(property), std::move(expected), std::move(actual)});
  }
  void expect_count(const cim::Instance& row, std::string_view property, std::int64_t expected) {
    const std::uint64_t actual = get_uint(row, property);
    if (static_cast<std::int64_t>(actual) != expected) {
      differ(row, std::string(property), std::to_string(expected), std::to_string(actual));
    }
  }
  void expect_version(const cim::Instance& row, const std::string& package_id) {
    const auto it = packages_.find(package_id);
    if (it == packages_.end() || !it->second.root_version) return;
    const std::uint64_t actual = get_uint(row, "SourceVersion");
    if (actual != *it->second.root_version) {
      differ(row, "SourceVersion", std::to_string(*it->second.root_version), std::to_string(actual));
    }
  }
  void missing(const cim::ClassDef& cls, const std::vector<std::pair<std::string, std::string>>& keys) {
    out_.push_back({cls.name(), relpath_of(cls, keys), "", "present", "absent"});
  }

  Status read_packages() {
    PKG_TRY(each(c_.package, [&](const cim::Instance& p) {
      auto& f = packages_[to_upper(get_text(p, "PackageID"))];
      f.has_source = get_uint(p, "PkgSourceFlag") != 1;
      f.package_version = get_uint(p, "SourceVersion");
      return ok_status();
    }));
    return each(c_.root, [&](const cim::Instance& r) {
      const std::string id = to_upper(get_text(r, "PackageID"));
      auto& f = packages_[id];
      f.root_version = static_cast<std::uint32_t>(get_uint(r, "SourceVersion"));
      if (f.package_version != 0 && f.package_version != *f.root_version) {
        differ(r, "SourceVersion", std::to_string(f.package_version), std::to_string(*f.root_version));
      }
      return ok_status();
    });
  }

  Status read_dist_points() {
    return each(c_.dist_points, [&](const cim::Instance& row) {
      const std::string id = to_upper(get_text(row, "PackageID"));
      const std::string site = to_upper(get_text(row, "SiteCode"));
      const std::string nal = to_lower(get_text(row, "ServerNALPath"));
      const auto state = dp_state_from(get_uint(row, "State"));
      if (!state) {
        differ(row, "State", "0..8", std::to_string(get_uint(row, "State")));
        return ok_status();
      }
      const auto pkg = packages_.find(id);
      if (pkg == packages_.end() || !pkg->second.root_version) {
        missing(c_.root, {{"PackageID", id}});
        return ok_status();
      }
      const RowFacts facts{*state, static_cast<std::uint32_t>(get_uint(row, "SourceVersion"))};
      const Counts counts = contribution(facts, *pkg->second.root_version);
      per_package_[id] += counts;
      per_site_[{id, site}] += counts;
      per_dp_[nal] += counts;
      dp_names_.emplace(nal, get_text(row, "ServerNALPath"));
      return ok_status();
    });
  }

  Status compare_roots() {
    return each(c_.root, [&](const cim::Instance& r) {
      const Counts e = per_package_[to_upper(get_text(r, "PackageID"))];
      expect_count(r, "Targeted", e.targeted);
      expect_count(r, "Installed", e.installed);
      expect_count(r, "Retrying", e.retrying);
      expect_count(r, "Failed", e.failed);
      return ok_status();
    });
  }

  Status compare_extra() {
    return each(c_.extra, [&](const cim::Instance& x) {
      const std::string id = to_upper(get_text(x, "PackageID"));
      const Counts e = per_package_[id];
      expect_count(x, "Targeted", e.targeted);
      expect_count(x, "NumberSuccess", e.installed);
      expect_count(x, "NumberInProgress", e.in_progress);
      expect_count(x, "NumberErrors", e.errors);
      expect_count(x, "NumberUnknown", e.unknown);
      expect_version(x, id);
      return ok_status();
    });
  }

  Status compare_details() {
    std::set<std::pair<std::string, std::string>> seen;
    PKG_TRY(each(c_.detail, [&](const cim::Instance& d) {
      const auto key = std::make_pair(to_upper(get_text(d, "PackageID")), to_upper(get_text(d, "SiteCode")));
      seen.insert(key);
      detail_sites_[key.first].push_back(key.second);
      const auto it = per_site_.find(key);
      const Counts e = it == per_site_.end() ? Counts{} : it->second;
      expect_count(d, "Targeted", e.targeted);
      expect_count(d, "Installed", e.installed);
      expect_count(d, "Retrying", e.retrying);
      expect_count(d, "Failed", e.failed);
      expect_version(d, key.first);
      return ok_status();
    }));
    for (const auto& [key, counts] : per_site_) {
      if (!seen.count(key)) missing(c_.detail, {{"PackageID", key.first}, {"SiteCode", key.second}});
    }
    return ok_status();
  }

  Status compare_dp_status() {
    std::set<std::string> seen;
    PKG_TRY(each(c_.dp_status, [&](const cim::Instance& s) {
      const std::string nal = to_lower(get_text(s, "NALPath"));
      seen.insert(nal);
      const auto it = per_dp_.find(nal);
      const Counts e = it == per_dp_.end() ? Counts{} : it->second;
      expect_count(s, "NumberInstalled", e.installed);
      expect_count(s, "NumberInProgress", e.in_progress);
      expect_count(s, "NumberErrors", e.errors);
      expect_count(s, "NumberUnknown", e.unknown);
      expect_count(
          s, "MessageState",
          worst_message_state(static_cast<std::uint64_t>(e.errors), static_cast<std::uint64_t>(e.in_progress)));
      return ok_status();
    }));
    for (const auto& [nal, counts] : per_dp_) {
      if (!seen.count(nal)) missing(c_.dp_status, {{"NALPath", dp_names_[nal]}});
    }
    return ok_status();
  }

  Status compare_offers() {
    std::set<std::pair<std::string, std::string>> seen;  // (AdvertisementID, SiteCode)
    PKG_TRY(each(c_.offer, [&](const cim::Instance& o) {
      const std::string id = to_upper(get_text(o, "PackageID"));
      const std::string site = to_upper(get_text(o, "SiteCode"));
      seen.emplace(to_upper(get_text(o, "AdvertisementID")), site);
      const auto pkg = packages_.find(id);
      const bool has_source = pkg == packages_.end() || pkg->second.has_source;
      const auto it = per_site_.find({id, site});
      const Counts e = it == per_site_.end() ? Counts{} : it->second;
      const bool expected =
          offered(has_source, static_cast<std::uint64_t>(e.targeted), static_cast<std::uint64_t>(e.installed));
      const cim::Value* v = o.find("Offered");
      const bool actual = v != nullptr && !v->is_null() && v->as_bool();
      if (expected != actual) differ(o, "Offered", expected ? "TRUE" : "FALSE", actual ? "TRUE" : "FALSE");
      return ok_status();
    }));
    // A package without source files is offered at every site (site/advertisements.cc); one with source files at
    // each site with its Detail row.
    std::vector<std::string> every_site;
    if (const cim::ClassDef* sites = registry_.find("SMS_Site")) {
      PKG_TRY(each(*sites, [&](const cim::Instance& site) {
        every_site.push_back(to_upper(get_text(site, "SiteCode")));
        return ok_status();
      }));
    }
    return each(c_.advertisement, [&](const cim::Instance& ad) {
      const std::string ad_id = to_upper(get_text(ad, "AdvertisementID"));
      const std::string package_id = to_upper(get_text(ad, "PackageID"));
      const auto pkg = packages_.find(package_id);
      const bool no_source = pkg != packages_.end() && !pkg->second.has_source;
      for (const auto& site : no_source ? every_site : detail_sites_[package_id]) {
        if (!seen.count({ad_id, site})) missing(c_.offer, {{"AdvertisementID", ad_id}, {"SiteCode", site}});
      }
      return ok_status();
    });
  }

  // The rows the site layer derives (docs/domain.md): a group's ContentCount counts its SMS_DPGroupContentInfo
  // rows; every DP has its "SMS Distribution Point" and "SMS Site System" SMS_SystemResourceList rows and no DP role
  // row outlives its DP.
  // A registry without these classes (a test's) has nothing to check.
  Status compare_derived() {
    const cim::ClassDef* groups = registry_.find("SMS_DistributionPointGroup");
    const cim::ClassDef* content = registry_.find("SMS_DPGroupContentInfo");
    const cim::ClassDef* roles = registry_.find("SMS_SystemResourceList");
    const cim::ClassDef* dps = registry_.find("SMS_DistributionPointInfo");
    if (groups == nullptr || content == nullptr || roles == nullptr || dps == nullptr) return ok_status();
    std::unordered_map<std::string, std::int64_t> assigned;  // lower-case GroupID -> rows
    PKG_TRY(each(*content, [&](const cim::Instance& row) {
      ++assigned[to_lower(get_text(row, "GroupID"))];
      return ok_status();
    }));
    PKG_TRY(each(*groups, [&](const cim::Instance& group) {
      const auto it = assigned.find(to_lower(get_text(group, "GroupID")));
      expect_count(group, "ContentCount", it == assigned.end() ? 0 : it->second);
      return ok_status();
    }));
    constexpr std::string_view kDpRole = "SMS Distribution Point";
    constexpr std::string_view kSiteSystemRole = "SMS Site System";
    std::unordered_map<std::string, std::string> dp_roles;  // lower-case NALPath -> the row's relpath
    std::unordered_set<std::string> site_systems;           // lower-case NALPath
    PKG_TRY(each(*roles, [&](const cim::Instance& row) {
      const std::string key = to_lower(get_text(row, "NALPath"));
      if (iequals(get_text(row, "RoleName"), kDpRole)) dp_roles.emplace(key, row.relpath());
      if (iequals(get_text(row, "RoleName"), kSiteSystemRole)) site_systems.insert(key);
      return ok_status();
    }));
    PKG_TRY(each(*dps, [&](const cim::Instance& dp) {
      const std::string nal = get_text(dp, "NALPath");
      if (dp_roles.erase(to_lower(nal)) == 0) {
        missing(*roles, {{"NALPath", nal},
                         {"ResourceType", "Windows NT Server"},
                         {"RoleName", std::string(kDpRole)},
                         {"SiteCode", get_text(dp, "SiteCode")}});
      }
      if (site_systems.count(to_lower(nal)) == 0) {
        missing(*roles, {{"NALPath", nal},
                         {"ResourceType", "Windows NT Server"},
                         {"RoleName", std::string(kSiteSystemRole)},
                         {"SiteCode", get_text(dp, "SiteCode")}});
      }
      return ok_status();
    }));
    for (const auto& [nal, relpath] : dp_roles) out_.push_back({roles->name(), relpath, "", "absent", "present"});
    return ok_status();
  }

  Scan scan_;
  Classes c_;
  const cim::ClassRegistry& registry_;
  std::vector<Difference> out_;
  std::unordered_map<std::string, PackageFacts> packages_;
  std::unordered_map<std::string, Counts> per_package_;
  std::map<std::pair<std::string, std::string>, Counts> per_site_;          // (PACKAGEID, SITE)
  std::map<std::string, Counts> per_dp_;                                    // nal lower
  std::map<std::string, std::string> dp_names_;                             // nal lower -> as stored
  std::unordered_map<std::string, std::vector<std::string>> detail_sites_;  // PACKAGEID -> SITEs with a Detail
};

}  // namespace

Result<std::vector<Difference>> check(store::WriteTxn& txn, const cim::ClassRegistry& registry) {
  Checker checker([&](const cim::ClassDef& cls,
                      const store::RowSink& sink) { return txn.scan(cls, store::Predicate::always(), sink); },
                  registry);
  return checker.run();
}

Result<std::vector<Difference>> check(store::Store& store) {
  Checker checker([&](const cim::ClassDef& cls,
                      const store::RowSink& sink) { return store.scan(cls, store::Predicate::always(), sink); },
                  store.registry());
  return checker.run();
}

}  // namespace pkgcast::summarizer
