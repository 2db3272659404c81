// Advertisements: a program of a package offered to a collection. Whether clients of a site may see it is
// PKG_AdvertisementOffer's Offered flag: for a package without source files, one row per site of the hierarchy,
// TRUE; for one with source files, one row per site that has the package's Detail summary, TRUE when its content
// is installed on every targeted DP of that site (Installed == Targeted > 0). This command sets the flag as it stands
// at creation; the status summarizer keeps it current as distribution progresses.
#include "core/strings.h"
#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

namespace {

constexpr std::uint32_t kStorageNoSource = 1;

Status check_collection_id(std::string_view value) {
  PKG_TRY(check_text("CollectionID", value, 1, kMaxCollectionId));
  for (char c : value) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return invalid("CollectionID", "may contain only letters, digits, '_', '-' and '.'");
  }
  return ok_status();
}

Status insert_offer(store::WriteTxn& txn, const cim::Instance& ad, const std::string& site_code, bool offered,
                    Micros now) {
  cim::Instance offer = make_instance("PKG_AdvertisementOffer");
  set_prop(offer, "AdvertisementID", str_value(get_string(ad, "AdvertisementID")));
  set_prop(offer, "SiteCode", str_value(site_code));
  set_prop(offer, "PackageID", str_value(get_string(ad, "PackageID")));
  set_prop(offer, "Offered", cim::Value::boolean(offered));
  if (offered) set_prop(offer, "OfferedTime", time_value(now));
  return txn.insert(offer);
}

bool offered_at(const cim::Instance& pkg, const cim::Instance& detail) {
  if (get_uint(pkg, "PkgSourceFlag") == kStorageNoSource) return true;
  const auto targeted = get_uint(detail, "Targeted");
  return targeted > 0 && get_uint(detail, "Installed") == targeted;
}

}  // namespace

Result<cim::Instance> Domain::create_advertisement(const AdvertisementSpec& spec) {
  PKG_ASSIGN_OR_RETURN(const std::string package_id, normalize_object_id("PackageID", spec.package_id));
  PKG_TRY(check_text("ProgramName", spec.program_name, 1, kMaxProgramName));
  PKG_TRY(check_collection_id(spec.collection_id));
  PKG_TRY(check_text("AdvertisementName", spec.name, 0, kMaxShortText));
  PKG_TRY(check_text("Comment", spec.comment, 0, kMaxDescription, TextKind::kMultiLine));
  if (spec.offer_type != 0 && spec.offer_type != 2) {
    return invalid("OfferType", "must be 0 (required) or 2 (available)");
  }
  if (spec.expiration_time && spec.present_time && *spec.expiration_time <= *spec.present_time) {
    return invalid("ExpirationTime", "must be after PresentTime");
  }

  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    PKG_ASSIGN_OR_RETURN(cim::Instance pkg, require_package(txn, package_id));
    const cim::ClassDef& programs_cls = class_named("SMS_Program");
    PKG_ASSIGN_OR_RETURN(auto programs,
                         txn_scan(txn, programs_cls, where_string(programs_cls, "PackageID", package_id)));
    std::string program_name;
    for (const auto& p : programs) {
      if (get_string(p, "PackageID") == package_id && iequals(get_string(p, "ProgramName"), spec.program_name)) {
        program_name = get_string(p, "ProgramName");
      }
    }
    if (program_name.empty()) {
      return not_found("package " + package_id + " has no program named '" + spec.program_name + "'");
    }
    const Micros now = txn.now();
    const cim::DateTime present = spec.present_time.value_or(cim::DateTime::from_unix_micros(now));
    if (spec.expiration_time && *spec.expiration_time <= present) {
      return invalid("ExpirationTime", "must be after PresentTime");
    }
    PKG_ASSIGN_OR_RETURN(const std::string id, allocate_id(txn, "advertisement", own_site_));

    cim::Instance ad = make_instance("SMS_Advertisement");
    set_prop(ad, "AdvertisementID", str_value(id));
    set_prop(ad, "AdvertisementName",
             str_value(spec.name.empty() ? get_string(pkg, "Name") + " - " + program_name : spec.name));
    set_prop(ad, "CollectionID", str_value(spec.collection_id));
    set_prop(ad, "PackageID", str_value(package_id));
    set_prop(ad, "ProgramName", str_value(program_name));
    set_prop(ad, "PresentTime", cim::Value::datetime(present));
    if (spec.expiration_time) set_prop(ad, "ExpirationTime", cim::Value::datetime(*spec.expiration_time));
    set_prop(ad, "ExpirationTimeEnabled", cim::Value::boolean(spec.expiration_time.has_value()));
    set_prop(ad, "OfferType", u32_value(spec.offer_type));
    set_prop(ad, "AdvertFlags", u32_value(spec.flags));
    set_prop(ad, "SourceSite", str_value(own_site_));
    set_prop(ad, "Comment", str_value(spec.comment));
    PKG_TRY(txn.insert(ad));

    // A package without source files has nothing to wait for: offered at every site of the hierarchy (and at each
    // site created later, create_site). One with source files: at each site that has its Detail summary, as the
    // content stands there.
    if (get_uint(pkg, "PkgSourceFlag") == kStorageNoSource) {
      PKG_ASSIGN_OR_RETURN(auto sites, txn_scan(txn, class_named("SMS_Site"), store::Predicate::always()));
      for (const auto& site : sites) PKG_TRY(insert_offer(txn, ad, get_string(site, "SiteCode"), true, now));
      return ad;
    }
    const cim::ClassDef& detail_cls = class_named("SMS_PackageStatusDetailSummarizer");
    PKG_ASSIGN_OR_RETURN(auto details, txn_scan(txn, detail_cls, where_string(detail_cls, "PackageID", package_id)));
    for (const auto& detail : details) {
      if (get_string(detail, "PackageID") != package_id) continue;
      PKG_TRY(insert_offer(txn, ad, get_string(detail, "SiteCode"), offered_at(pkg, detail), now));
    }
    return ad;
  });
}

Status internal::offer_no_source_advertisements(store::WriteTxn& txn, std::string_view site_code) {
  const Micros now = txn.now();
  PKG_ASSIGN_OR_RETURN(auto ads, txn_scan(txn, class_named("SMS_Advertisement"), store::Predicate::always()));
  for (const auto& ad : ads) {
    PKG_ASSIGN_OR_RETURN(auto pkg, txn.get(class_named("SMS_Package"), {str_value(get_string(ad, "PackageID"))}));
    if (!pkg || get_uint(*pkg, "PkgSourceFlag") != kStorageNoSource) continue;
    PKG_ASSIGN_OR_RETURN(auto existing,
                         txn.get(class_named("PKG_AdvertisementOffer"),
                                 {str_value(get_string(ad, "AdvertisementID")), str_value(std::string(site_code))}));
    if (!existing) PKG_TRY(insert_offer(txn, ad, std::string(site_code), true, now));
  }
  return ok_status();
}

Result<std::vector<OfferView>> Domain::list_offers(std::string_view site_code) {
  PKG_ASSIGN_OR_RETURN(const std::string code, normalize_site_code("site", site_code));
  // An unknown site is an error, not an empty list: a mistyped code must not read as "nothing offered yet".
  PKG_TRY(get_site(code));
  const cim::ClassDef& offers_cls = class_named("PKG_AdvertisementOffer");
  PKG_ASSIGN_OR_RETURN(auto offers, scan_all(offers_cls.name(), where_string(offers_cls, "SiteCode", code)));
  std::vector<OfferView> out;
  const cim::ClassDef& ads_cls = class_named("SMS_Advertisement");
  for (const auto& offer : offers) {
    if (get_string(offer, "SiteCode") != code) continue;
    PKG_ASSIGN_OR_RETURN(auto ad, store_.get(ads_cls, {str_value(get_string(offer, "AdvertisementID"))}));
    if (!ad) continue;  // deleted between the two reads
    out.push_back(OfferView{std::move(*ad), get_bool(offer, "Offered"), get_datetime(offer, "OfferedTime")});
  }
  return out;
}

}  // namespace pkgcast::site
