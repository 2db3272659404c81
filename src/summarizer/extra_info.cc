// SMS_ObjectContentExtraInfo: what `pkgcast status` shows for a package (Targeted, NumberSuccess, NumberInProgress,
// NumberErrors, NumberUnknown), kept by the same deltas as the Root row.
#include "summarizer/internal.h"

namespace pkgcast::summarizer::internal {

Status apply_extra_info(store::WriteTxn& txn, const Classes& c, std::string_view package_id, const Counts& delta,
                        Micros now, std::optional<std::uint32_t> new_version,
                        std::optional<std::uint32_t> new_size_kb) {
  PKG_ASSIGN_OR_RETURN(cim::Instance row, require(txn, c.extra, {str_value(std::string(package_id))},
                                                  "SMS_ObjectContentExtraInfo of package " + std::string(package_id)));
  const std::uint64_t in_progress_before = get_uint(row, "NumberInProgress");
  PKG_TRY(add_count(row, "Targeted", delta.targeted));
  PKG_TRY(add_count(row, "NumberSuccess", delta.installed));
  PKG_TRY(add_count(row, "NumberInProgress", delta.in_progress));
  // The last DP in progress is done (installed, failed, removed): the action the Distribution Manager marked on
  // the package (SMS_Package.ActionInProgress, distmgr) is over. Read only on that crossing.
  if (in_progress_before > 0 && get_uint(row, "NumberInProgress") == 0) {
    PKG_ASSIGN_OR_RETURN(auto package, txn.get(c.package, {str_value(std::string(package_id))}));
    if (package && get_uint(*package, "ActionInProgress") != 0) {
      set_prop(*package, "ActionInProgress", u32_value(0));
      PKG_TRY(txn.put(std::move(*package)));
    }
  }
  PKG_TRY(add_count(row, "NumberErrors", delta.errors));
  PKG_TRY(add_count(row, "NumberUnknown", delta.unknown));
  if (new_version) set_prop(row, "SourceVersion", u32_value(*new_version));
  if (new_size_kb) set_prop(row, "SourceSize", u32_value(*new_size_kb));
  set_prop(row, "LastUpdateDate", time_value(now));
  return txn.put(std::move(row));
}

}  // namespace pkgcast::summarizer::internal
