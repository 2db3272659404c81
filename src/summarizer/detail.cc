// SMS_PackageStatusDetailSummarizer: a package's counts over the DPs of one site. Its row is the one whose
// "distributed" state (offered()) decides the site's advertisement offers, so a delta that crosses the rule flips
// them in the same command.
#include "summarizer/internal.h"

namespace pkgcast::summarizer::internal {

Status apply_detail(store::WriteTxn& txn, const Classes& c, std::string_view package_id, std::string_view site_code,
                    const Counts& delta, Micros now) {
  PKG_ASSIGN_OR_RETURN(cim::Instance row,
                       require(txn, c.detail, {str_value(std::string(package_id)), str_value(std::string(site_code))},
                               "SMS_PackageStatusDetailSummarizer of package " + std::string(package_id) + " at site " +
                                   std::string(site_code)));
  return update_detail(txn, c, std::move(row), delta, now, std::nullopt);
}

Status update_detail(store::WriteTxn& txn, const Classes& c, cim::Instance row, const Counts& delta, Micros now,
                     std::optional<std::uint32_t> new_version) {
  // Packages with DistPoints rows have source files (target() refuses the others), so the rule's first clause
  // never applies here.
  const bool was = offered(true, get_uint(row, "Targeted"), get_uint(row, "Installed"));
  PKG_TRY(add_count(row, "Targeted", delta.targeted));
  PKG_TRY(add_count(row, "Installed", delta.installed));
  PKG_TRY(add_count(row, "Retrying", delta.retrying));
  PKG_TRY(add_count(row, "Failed", delta.failed));
  if (new_version) set_prop(row, "SourceVersion", u32_value(*new_version));
  set_prop(row, "SummaryDate", time_value(now));
  const bool is = offered(true, get_uint(row, "Targeted"), get_uint(row, "Installed"));
  if (was == is) return txn.put(std::move(row));
  const std::string package_id = get_text(row, "PackageID");
  const std::string site_code = get_text(row, "SiteCode");
  PKG_TRY(txn.put(std::move(row)));
  return set_offers(txn, c, package_id, site_code, is, now);
}

Status ensure_detail(store::WriteTxn& txn, const Classes& c, const cim::Instance& root, std::string_view site_code,
                     Micros now) {
  const std::string package_id = get_text(root, "PackageID");
  PKG_ASSIGN_OR_RETURN(auto existing, txn.get(c.detail, {str_value(package_id), str_value(std::string(site_code))}));
  if (existing) return ok_status();
  PKG_ASSIGN_OR_RETURN(cim::Instance site, require(txn, c.site, {str_value(std::string(site_code))},
                                                   "site '" + std::string(site_code) + "'"));
  cim::Instance detail(c.detail);
  set_prop(detail, "PackageID", str_value(package_id));
  set_prop(detail, "SiteCode", str_value(get_text(site, "SiteCode")));
  set_prop(detail, "Name", str_value(get_text(root, "Name")));
  set_prop(detail, "SiteName", str_value(get_text(site, "SiteName")));
  set_prop(detail, "SourceVersion", u32_value(get_uint(root, "SourceVersion")));
  set_prop(detail, "SummaryDate", time_value(now));
  for (const char* count : {"Targeted", "Installed", "Retrying", "Failed"}) set_prop(detail, count, u32_value(0));
  PKG_TRY(txn.insert(detail));

  // Every advertisement of the package gets its offer row at the new site, as advertisements.cc gives one to each
  // site that had a Detail row when it was created. Nothing is installed here yet: not offered.
  PKG_ASSIGN_OR_RETURN(auto ads, scan_where(txn, c.advertisement, "PackageID", package_id));
  for (const auto& ad : ads) {
    cim::Instance offer(c.offer);
    set_prop(offer, "AdvertisementID", str_value(get_text(ad, "AdvertisementID")));
    set_prop(offer, "SiteCode", str_value(get_text(site, "SiteCode")));
    set_prop(offer, "PackageID", str_value(package_id));
    set_prop(offer, "Offered", cim::Value::boolean(false));
    PKG_TRY(txn.put(offer));
  }
  return ok_status();
}

Status drop_detail_if_unused(store::WriteTxn& txn, const Classes& c, const std::string& package_id,
                             std::string_view source_site, std::string_view site_code) {
  if (iequals(source_site, site_code)) return ok_status();  // the source site's row stays
  PKG_ASSIGN_OR_RETURN(auto rows, scan_where(txn, c.dist_points, "PackageID", package_id));
  for (const auto& row : rows) {
    if (iequals(get_text(row, "SiteCode"), site_code)) return ok_status();
  }
  const cim::Value site = str_value(std::string(site_code));
  PKG_ASSIGN_OR_RETURN(auto detail, txn.get(c.detail, {str_value(package_id), site}));
  if (!detail) return ok_status();
  PKG_TRY(txn.remove(c.detail, {str_value(package_id), site}));
  PKG_ASSIGN_OR_RETURN(auto offers, scan_where(txn, c.offer, "PackageID", package_id));
  for (const auto& offer : offers) {
    if (iequals(get_text(offer, "SiteCode"), site_code)) PKG_TRY(txn.remove(c.offer, store::key_of(offer)));
  }
  return ok_status();
}

}  // namespace pkgcast::summarizer::internal
