// SMS_PackageStatusRootSummarizer: the package's counts over every DP of every site. Its row is read first by
// every operation (it carries the current SourceVersion the Installed rule needs), so the delta is applied to the
// instance in hand and written once.
#include "summarizer/internal.h"

namespace pkgcast::summarizer::internal {

Status apply_root(cim::Instance& root, const Counts& delta) {
  PKG_TRY(add_count(root, "Targeted", delta.targeted));
  PKG_TRY(add_count(root, "Installed", delta.installed));
  PKG_TRY(add_count(root, "Retrying", delta.retrying));
  PKG_TRY(add_count(root, "Failed", delta.failed));
  return ok_status();
}

Status apply_all(store::WriteTxn& txn, const Classes& c, cim::Instance& root, const PackageDeltas& d, Micros now,
                 bool root_changed) {
  if (d.package.moves_targeted_installed_retrying_failed() || root_changed) {
    PKG_TRY(apply_root(root, d.package));
    PKG_TRY(txn.put(std::move(root)));
  }
  if (d.package.moves_extra_info()) PKG_TRY(apply_extra_info(txn, c, d.package_id, d.package, now));
  for (const auto& [site, delta] : d.site) {
    if (delta.moves_targeted_installed_retrying_failed()) PKG_TRY(apply_detail(txn, c, d.package_id, site, delta, now));
  }
  for (const auto& [nal, delta] : d.dp) {
    if (delta.moves_dp_status()) PKG_TRY(apply_dp_status(txn, c, d.dp_nal.at(nal), delta, now));
  }
  return ok_status();
}

}  // namespace pkgcast::summarizer::internal
