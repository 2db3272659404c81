// Instance access and the job row (internal.h).
#include <algorithm>
#include <cassert>
#include <charconv>
#include <limits>

#include "core/strings.h"
#include "distmgr/internal.h"

namespace pkgcast::distmgr::internal {

const cim::ClassDef& class_named(std::string_view name) {
  const cim::ClassDef* cls = cim::ClassRegistry::builtin().find(name);
  assert(cls != nullptr);
  return *cls;
}

std::string get_string(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  return v == nullptr || v->is_null() ? std::string() : v->as_string();
}

std::uint64_t get_uint(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  return v == nullptr || v->is_null() ? 0 : v->as_uint();
}

std::optional<Micros> get_time(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  if (v == nullptr || v->is_null()) return std::nullopt;
  return v->as_datetime().unix_micros();
}

void set_prop(cim::Instance& inst, std::string_view name, cim::Value v) {
  const auto index = inst.class_def().find_property(name);
  assert(index.has_value());
  inst.set(*index, std::move(v));
}

Result<cim::Instance> require_package(store::WriteTxn& txn, std::string_view package_id) {
  PKG_ASSIGN_OR_RETURN(auto pkg, txn.get(class_named("SMS_Package"), {str_value(to_upper(package_id))}));
  if (!pkg) return make_error(WbemCode::kNotFound, "package '" + std::string(package_id) + "' does not exist");
  return std::move(*pkg);
}

Result<std::optional<cim::Instance>> dist_points_row(store::WriteTxn& txn, std::string_view package_id,
                                                     const cim::Instance& dp_info) {
  return txn.get(class_named("SMS_PackageStatusDistPointsSummarizer"),
                 {str_value(std::string(package_id)), str_value(get_string(dp_info, "NALPath")),
                  str_value(get_string(dp_info, "SiteCode"))});
}

Result<std::optional<cim::Instance>> job_row(store::WriteTxn& txn, std::string_view package_id,
                                             std::string_view nal_path) {
  return txn.get(class_named("PKG_DPJob"), {str_value(std::string(package_id)), str_value(std::string(nal_path))});
}

bool is_pull_dp(const cim::Instance& dp_info) {
  const cim::Value* pull = dp_info.find("IsPullDP");
  return pull != nullptr && !pull->is_null() && pull->as_bool();
}

summarizer::DpRef dp_ref(std::string_view package_id, const cim::Instance& dp_info) {
  summarizer::DpRef ref;
  ref.package_id = std::string(package_id);
  ref.nal_path = get_string(dp_info, "NALPath");
  ref.site_code = get_string(dp_info, "SiteCode");
  ref.dp_name = get_string(dp_info, "Name");
  // A standard DP holds the package's files itself, and Configuration Manager's SourceNALPath of its row names it:
  // administrators' scripts find a DP's rows with `SourceNALPath LIKE '%DP01%'`. A pull DP's names the source DP it
  // takes them from, set when it is targeted (target_ref); left as it is here.
  if (!is_pull_dp(dp_info)) ref.source_nal_path = ref.nal_path;
  return ref;
}

Result<summarizer::DpRef> target_ref(store::WriteTxn& txn, std::string_view package_id, const cim::Instance& dp_info) {
  summarizer::DpRef ref = dp_ref(package_id, dp_info);
  if (!is_pull_dp(dp_info)) return ref;
  // The first source DP in priority order (the site server when none of them is left).
  const cim::Value* sources = dp_info.find("SourceDPs");
  if (sources == nullptr || !sources->is_array()) return ref;
  for (const auto& name : sources->as_array()) {
    if (name.is_null()) continue;
    auto source = site::find_dp(txn, name.as_string());
    if (!source.ok()) continue;  // removed since
    ref.source_nal_path = get_string(*source, "NALPath");
    break;
  }
  return ref;
}

bool is_removal(std::uint64_t state) { return state >= 4 && state <= 6; }

summarizer::StatusMessage message(std::uint32_t id, std::uint32_t state, std::vector<std::string> ins) {
  summarizer::StatusMessage m;
  m.message_id = id;
  m.message_state = state;
  m.severity = state == summarizer::kMessageError ? kSeverityError : kSeverityInfo;
  m.ins_strings = std::move(ins);
  return m;
}

Result<std::uint32_t> next_generation(store::WriteTxn& txn, std::uint64_t current) {
  // The highest generation issued so far (absent in a store from before it was kept: jobs then started at 1).
  constexpr std::string_view kKey = "distmgr/last-generation";
  PKG_ASSIGN_OR_RETURN(auto recorded, txn.get_meta(kKey));
  std::uint64_t last = 0;
  if (recorded) {
    auto [ptr, ec] = std::from_chars(recorded->data(), recorded->data() + recorded->size(), last);
    if (ec != std::errc() || ptr != recorded->data() + recorded->size()) {
      return make_error(WbemCode::kFailed, "corrupt job generation counter '" + *recorded + "'");
    }
  }
  const std::uint64_t next = std::max(last, current) + 1;
  if (next > std::numeric_limits<std::uint32_t>::max()) {
    return make_error(WbemCode::kFailed, "job generations are exhausted");
  }
  PKG_TRY(txn.put_meta(kKey, std::to_string(next)));
  return static_cast<std::uint32_t>(next);
}

Status mark_action(store::WriteTxn& txn, const std::string& package_id, std::uint32_t action) {
  PKG_ASSIGN_OR_RETURN(auto extra, txn.get(class_named("SMS_ObjectContentExtraInfo"), {str_value(package_id)}));
  if (!extra || get_uint(*extra, "NumberInProgress") == 0) return ok_status();
  PKG_ASSIGN_OR_RETURN(auto package, txn.get(class_named("SMS_Package"), {str_value(package_id)}));
  if (!package || get_uint(*package, "ActionInProgress") == action) return ok_status();
  set_prop(*package, "ActionInProgress", u32_value(action));
  return txn.put(std::move(*package));
}

Status issue_job(store::WriteTxn& txn, const cim::Instance& package, const cim::Instance& dp_info, JobAction action,
                 Micros now) {
  const std::string package_id = get_string(package, "PackageID");
  const std::string nal = get_string(dp_info, "NALPath");
  const auto version = static_cast<std::uint32_t>(get_uint(package, "SourceVersion"));
  const std::string cid = site::content_id(package_id, version);
  PKG_ASSIGN_OR_RETURN(auto content, site::recorded_content(txn, cid));
  if (!content && action != JobAction::kCancel && action != JobAction::kRemove) {
    return make_error(WbemCode::kInvalidOperation,
                      "content " + cid + " is not in the content library; update the package's source first");
  }
  PKG_ASSIGN_OR_RETURN(auto previous, job_row(txn, package_id, nal));

  cim::Instance job(class_named("PKG_DPJob"));
  if (previous) job = std::move(*previous);
  PKG_ASSIGN_OR_RETURN(const std::uint32_t generation, next_generation(txn, previous ? get_uint(job, "Generation") : 0));
  set_prop(job, "PackageID", str_value(package_id));
  set_prop(job, "NALPath", str_value(nal));
  set_prop(job, "DPName", str_value(get_string(dp_info, "Name")));
  set_prop(job, "SiteCode", str_value(get_string(dp_info, "SiteCode")));
  set_prop(job, "Action", u32_value(static_cast<std::uint32_t>(action)));
  set_prop(job, "Generation", u32_value(generation));
  const bool at_once = action == JobAction::kCancel;
  set_prop(job, "JobState", u32_value(static_cast<std::uint32_t>(at_once ? JobState::kSent : JobState::kQueued)));
  set_prop(job, "ContentID", str_value(cid));
  set_prop(job, "SourceVersion", u32_value(version));
  set_prop(job, "ManifestHash", str_value(content ? content->manifest_hash : std::string()));
  set_prop(job, "ContentSize", u64_value(content ? content->size : 0));
  set_prop(job, "TransferRate", u32_value(get_uint(dp_info, "TransferRate")));
  set_prop(job, "Priority", u32_value(get_uint(package, "Priority") == 0 ? 2 : get_uint(package, "Priority")));
  set_prop(job, "Attempts", u32_value(0));
  set_prop(job, "NextAttemptTime", cim::Value());
  set_prop(job, "WaitReason", str_value(at_once ? "" : "waiting to be sent"));
  set_prop(job, "IssuedTime", time_value(now));
  set_prop(job, "SentTime", at_once ? time_value(now) : cim::Value());
  set_prop(job, "LastProgressTime", at_once ? time_value(now) : cim::Value());
  set_prop(job, "BytesDone", u64_value(0));
  set_prop(job, "BytesTotal", u64_value(content ? content->size : 0));
  set_prop(job, "LastError", str_value(""));
  if (at_once) set_prop(job, "Sources", cim::Value::array(cim::CimType::kString, {}));
  return txn.put(job);
}

}  // namespace pkgcast::distmgr::internal
