// SMS_DPStatusInfo: one DP's health over every package targeted at it. MessageState is derived from the counts
// (the worst state present), so it needs no state of its own and check() can recompute it.
#include "summarizer/internal.h"

namespace pkgcast::summarizer::internal {

Status apply_dp_status(store::WriteTxn& txn, const Classes& c, std::string_view nal_path, const Counts& delta,
                       Micros now) {
  PKG_ASSIGN_OR_RETURN(cim::Instance row, require(txn, c.dp_status, {str_value(std::string(nal_path))},
                                                  "distribution point " + std::string(nal_path)));
  PKG_TRY(add_count(row, "NumberInstalled", delta.installed));
  PKG_TRY(add_count(row, "NumberInProgress", delta.in_progress));
  PKG_TRY(add_count(row, "NumberErrors", delta.errors));
  PKG_TRY(add_count(row, "NumberUnknown", delta.unknown));
  set_prop(row, "MessageState",
           u32_value(worst_message_state(get_uint(row, "NumberErrors"), get_uint(row, "NumberInProgress"))));
  set_prop(row, "LastStatusTime", time_value(now));
  return txn.put(std::move(row));
}

}  // namespace pkgcast::summarizer::internal
