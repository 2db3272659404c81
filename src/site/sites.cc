// Sites: the hierarchy's nodes (SMS_Site). The rules follow Configuration Manager's hierarchy: a central site is
// the top and has no parent; a primary reports to a central, or stands alone at the top when there is no central;
// a secondary reports to a primary. Exactly one site may be without a parent, so the hierarchy is one tree.
#include "core/strings.h"
#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

namespace {

constexpr std::string_view kVersion = "0.1.0";

}  // namespace

Domain::Domain(store::Store& store, std::string own_site_code, std::string server_name)
    : store_(store),
      registry_(store.registry()),
      own_site_(to_upper(own_site_code)),
      server_name_(std::move(server_name)) {}

Result<std::vector<cim::Instance>> Domain::scan_all(std::string_view class_name, const store::Predicate& filter) {
  std::vector<cim::Instance> out;
  PKG_TRY(store_.scan(class_named(class_name), filter, [&](cim::Instance&& inst) {
    out.push_back(std::move(inst));
    return true;
  }));
  return out;
}

Result<cim::Instance> Domain::commit_returning(const std::function<Result<cim::Instance>(store::WriteTxn&)>& body) {
  std::optional<cim::Instance> produced;
  PKG_TRY(store_.execute([&](store::WriteTxn& txn) -> Status {
    PKG_ASSIGN_OR_RETURN(cim::Instance inst, body(txn));
    produced = std::move(inst);
    return ok_status();
  }));
  return std::move(*produced);
}

Result<cim::Instance> Domain::create_site(const SiteSpec& spec) {
  PKG_ASSIGN_OR_RETURN(const std::string code, normalize_site_code("SiteCode", spec.code));
  PKG_TRY(check_text("SiteName", spec.name, 1, kMaxSiteName));
  PKG_TRY(check_text("ServerName", spec.server_name, 0, kMaxShortText));
  std::string parent;
  if (!spec.parent.empty()) {
    PKG_ASSIGN_OR_RETURN(parent, normalize_site_code("ReportingSiteCode", spec.parent));
    if (parent == code) return invalid("ReportingSiteCode", "must not be the site itself");
  }
  if (spec.type == SiteType::kCentral && !parent.empty()) {
    return invalid("ReportingSiteCode", "must be empty: a central site has no parent");
  }
  if (spec.type == SiteType::kSecondary && parent.empty()) {
    return invalid("ReportingSiteCode", "is required: a secondary site reports to a primary site");
  }

  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    const cim::ClassDef& cls = class_named("SMS_Site");
    PKG_ASSIGN_OR_RETURN(auto existing, txn.get(cls, {str_value(code)}));
    if (existing) return make_error(WbemCode::kAlreadyExists, "site " + code + " already exists");
    if (parent.empty()) {
      PKG_ASSIGN_OR_RETURN(auto sites, txn_scan(txn, cls, store::Predicate::always()));
      for (const auto& s : sites) {
        if (get_string(s, "ReportingSiteCode").empty()) {
          return make_error(
              WbemCode::kInvalidOperation,
              "site " + get_string(s, "SiteCode") + " is already the top of the hierarchy; give ReportingSiteCode");
        }
      }
    } else {
      PKG_ASSIGN_OR_RETURN(cim::Instance parent_row, require_site(txn, parent));
      const auto parent_type = static_cast<SiteType>(get_uint(parent_row, "Type"));
      if (spec.type == SiteType::kPrimary && parent_type != SiteType::kCentral) {
        return invalid("ReportingSiteCode", "must be a central site: " + parent + " is a " +
                                                std::string(site_type_name(parent_type)) + " site");
      }
      if (spec.type == SiteType::kSecondary && parent_type != SiteType::kPrimary) {
        return invalid("ReportingSiteCode", "must be a primary site: " + parent + " is a " +
                                                std::string(site_type_name(parent_type)) + " site");
      }
    }
    cim::Instance site(cls);
    set_prop(site, "SiteCode", str_value(code));
    set_prop(site, "SiteName", str_value(spec.name));
    set_prop(site, "Type", u32_value(static_cast<std::uint32_t>(spec.type)));
    set_prop(site, "ReportingSiteCode", str_value(parent));
    set_prop(site, "ServerName", str_value(spec.server_name));
    set_prop(site, "Status", u32_value(1));
    set_prop(site, "Version", str_value(std::string(kVersion)));
    PKG_TRY(txn.insert(site));
    PKG_TRY(put_rows(txn, site_role_rows(site, server_name_)));
    PKG_TRY(offer_no_source_advertisements(txn, code));
    return site;
  });
}

Result<std::vector<cim::Instance>> Domain::list_sites() { return scan_all("SMS_Site"); }

Result<cim::Instance> Domain::get_site(std::string_view code) {
  PKG_ASSIGN_OR_RETURN(const std::string normalized, normalize_site_code("SiteCode", code));
  PKG_ASSIGN_OR_RETURN(auto site, store_.get(class_named("SMS_Site"), {str_value(normalized)}));
  if (!site) return not_found("site '" + normalized + "' does not exist");
  return std::move(*site);
}

}  // namespace pkgcast::site
