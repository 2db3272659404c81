// SMS_DistributionDPStatus: the last status message per package per DP, under a uint64 ID. The class is keyed by
// ID alone, so the (package, DP) -> ID mapping lives in the meta area beside the ID counter; both are written in
// the caller's transaction and roll back with it. (A row the site layer removes with a package or a DP leaves its
// mapping behind: the next message for that pair writes the row again under the same ID.)
#include <charconv>

#include "summarizer/internal.h"

namespace pkgcast::summarizer::internal {
namespace {

constexpr std::string_view kNextIdKey = "summarizer/dpstatus-next";

Result<std::uint64_t> parse_id(const std::string& text, std::string_view key) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return make_error(WbemCode::kFailed, "meta entry '" + std::string(key) + "' is not a number: '" + text + "'");
  }
  return v;
}

}  // namespace

std::string DpMessages::mapping_key() const {
  return "summarizer/dpstatus/" + to_upper(dp_.package_id) + "/" + to_lower(dp_.nal_path);
}

Result<std::optional<std::uint64_t>> DpMessages::id() {
  if (id_) return *id_;
  const std::string key = mapping_key();
  PKG_ASSIGN_OR_RETURN(auto text, txn_.get_meta(key));
  std::optional<std::uint64_t> found;
  if (text) {
    PKG_ASSIGN_OR_RETURN(found, parse_id(*text, key));
  }
  id_ = found;
  return found;
}

Status DpMessages::write(const StatusMessage& m, Micros now) {
  if (m.message_state < kMessageSuccess || m.message_state > kMessageError) {
    return make_error(
        WbemCode::kInvalidParameter,
        "MessageState must be 1 (success), 2 (in progress) or 3 (error), not " + std::to_string(m.message_state));
  }
  PKG_ASSIGN_OR_RETURN(auto existing, id());
  std::uint64_t message_id = 0;
  if (existing) {
    message_id = *existing;
  } else {
    PKG_ASSIGN_OR_RETURN(auto next_text, txn_.get_meta(kNextIdKey));
    message_id = 1;
    if (next_text) {
      PKG_ASSIGN_OR_RETURN(message_id, parse_id(*next_text, kNextIdKey));
    }
    PKG_TRY(txn_.put_meta(kNextIdKey, std::to_string(message_id + 1)));
    PKG_TRY(txn_.put_meta(mapping_key(), std::to_string(message_id)));
    id_ = std::optional<std::uint64_t>(message_id);
  }
  cim::Instance row(c_.dp_message);
  set_prop(row, "ID", cim::Value::uint64(message_id));
  set_prop(row, "PackageID", str_value(to_upper(dp_.package_id)));
  set_prop(row, "ObjectID", str_value(to_upper(dp_.package_id)));
  set_prop(row, "NALPath", str_value(dp_.nal_path));
  set_prop(row, "Name", str_value(dp_.dp_name));
  set_prop(row, "SiteCode", str_value(to_upper(dp_.site_code)));
  set_prop(row, "MessageID", u32_value(m.message_id));
  set_prop(row, "MessageState", u32_value(m.message_state));
  set_prop(row, "MessageSeverity", u32_value(m.severity));
  cim::ValueArray strings;
  strings.reserve(m.ins_strings.size());
  for (const auto& s : m.ins_strings) strings.push_back(str_value(s));
  set_prop(row, "InsStrings", cim::Value::array(cim::CimType::kString, std::move(strings)));
  set_prop(row, "LastUpdateDate", time_value(now));
  return txn_.put(std::move(row));
}

Status DpMessages::drop() {
  PKG_ASSIGN_OR_RETURN(auto existing, id());
  if (!existing) return ok_status();
  // An absent row (removed with its package or DP) is WBEM_E_NOT_FOUND before any SQL runs: nothing to undo.
  Status removed = txn_.remove(c_.dp_message, {cim::Value::uint64(*existing)});
  if (!removed.ok() && removed.error().code != WbemCode::kNotFound) return removed;
  PKG_TRY(txn_.remove_meta(mapping_key()));
  id_ = std::optional<std::uint64_t>();
  return ok_status();
}

}  // namespace pkgcast::summarizer::internal
