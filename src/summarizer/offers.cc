// PKG_AdvertisementOffer: whether clients of a site are offered an advertisement. The rule is offered() in
// counts.cc; this file flips the rows when a Detail row crosses it. The offers of one package at one site are
// found through the PackageID index (and the SiteCode filter), which is a handful of rows, read only on a flip.
#include "summarizer/internal.h"

namespace pkgcast::summarizer::internal {

Status set_offers(store::WriteTxn& txn, const Classes& c, std::string_view package_id, std::string_view site_code,
                  bool offered_now, Micros now) {
  PKG_ASSIGN_OR_RETURN(auto offers, scan_where(txn, c.offer, "PackageID", package_id));
  for (auto& offer : offers) {
    if (!iequals(get_text(offer, "SiteCode"), site_code)) continue;
    const cim::Value* current = offer.find("Offered");
    if (current != nullptr && !current->is_null() && current->as_bool() == offered_now) continue;
    set_prop(offer, "Offered", cim::Value::boolean(offered_now));
    set_prop(offer, "OfferedTime", offered_now ? time_value(now) : cim::Value());
    PKG_TRY(txn.put(offer));
  }
  return ok_status();
}

}  // namespace pkgcast::summarizer::internal
