#include "dp/job.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "content/content.h"

namespace pkgcast::dp {
namespace {

using nlohmann::json;

Error bad(std::string_view what) {
  return make_error(WbemCode::kInvalidParameter, "PKG_DPJob: " + std::string(what));
}

Result<std::uint64_t> get_uint(const json& j, const char* name, bool required) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    if (required) return bad(std::string("missing ") + name);
    return std::uint64_t{0};
  }
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer() && it->get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(it->get<std::int64_t>());
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) return v;
  }
  return bad(std::string(name) + " is not an unsigned integer");
}

std::string get_string(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

Result<DpJob> from_json(const json& j) {
  if (!j.is_object()) return bad("not a JSON object");
  DpJob job;
  job.package_id = get_string(j, "PackageID");
  if (!valid_package_id(job.package_id)) return bad("PackageID '" + job.package_id + "' is not [A-Za-z0-9]{1,32}");
  job.nal_path = get_string(j, "NALPath");
  PKG_ASSIGN_OR_RETURN(std::uint64_t action, get_uint(j, "Action", true));
  if (action < 1 || action > 4) return bad("Action " + std::to_string(action) + " is not 1..4");
  job.action = static_cast<JobAction>(action);
  PKG_ASSIGN_OR_RETURN(std::uint64_t generation, get_uint(j, "Generation", true));
  if (generation > UINT32_MAX) return bad("Generation out of range");
  job.generation = static_cast<std::uint32_t>(generation);
  PKG_ASSIGN_OR_RETURN(std::uint64_t version, get_uint(j, "SourceVersion", false));
  if (version > UINT32_MAX) return bad("SourceVersion out of range");
  job.source_version = static_cast<std::uint32_t>(version);
  job.content_id = get_string(j, "ContentID");
  const std::string expected = job.package_id + "." + std::to_string(job.source_version);
  const bool needs_content = job.action == JobAction::kInstall || job.action == JobAction::kValidate;
  if (needs_content && job.content_id != expected) {
    return bad("ContentID '" + job.content_id + "' is not '" + expected + "'");
  }
  if (!needs_content) job.content_id = expected;
  job.manifest_hash = get_string(j, "ManifestHash");
  if (needs_content) {
    auto digest = content::Digest::from_hex(job.manifest_hash);
    if (!digest) return bad("ManifestHash '" + job.manifest_hash + "' is not 64 hex digits");
    job.manifest_hash = digest->hex();
  }
  PKG_ASSIGN_OR_RETURN(job.content_size, get_uint(j, "ContentSize", false));
  if (auto it = j.find("Sources"); it != j.end() && it->is_array()) {
    for (const auto& s : *it) {
      if (s.is_string()) job.sources.push_back(s.get<std::string>());
    }
  }
  if (j.contains("JobState")) {
    PKG_ASSIGN_OR_RETURN(std::uint64_t state, get_uint(j, "JobState", false));
    job.sent = state == 1;
  }
  if (job.sent && needs_content && job.action == JobAction::kInstall && job.sources.empty()) return bad("no Sources");
  PKG_ASSIGN_OR_RETURN(std::uint64_t rate, get_uint(j, "TransferRate", false));
  job.transfer_rate_kib = static_cast<std::uint32_t>(std::min<std::uint64_t>(rate, UINT32_MAX));
  return job;
}

}  // namespace

bool valid_package_id(std::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  for (char c : id) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

Result<DpJob> parse_job(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("not JSON");
  try {
    return from_json(j);
  } catch (const std::exception& e) {  // nlohmann's type errors; from_json checks types, so this is a backstop
    return bad(e.what());
  }
}

std::string_view action_name(JobAction action) {
  switch (action) {
    case JobAction::kInstall: return "install";
    case JobAction::kRemove: return "remove";
    case JobAction::kValidate: return "validate";
    case JobAction::kCancel: return "cancel";
  }
  return "unknown";
}

}  // namespace pkgcast::dp
