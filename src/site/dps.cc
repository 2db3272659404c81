// Distribution points. A DP is identified by its NAL path, which embeds its name and site; names are unique
// across the hierarchy (case-insensitively) so that a name alone addresses a DP in the API and the CLI.
// The agent URL has no property in Configuration Manager's class, so it is kept in the meta area ("dp/<name>").
#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "site/internal.h"
#include "site/transfer_window.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

namespace {

std::string dp_meta_key(std::string_view name) { return "dp/" + to_lower(name); }

std::string encode_dp_meta(std::string_view url) { return nlohmann::json{{"url", std::string(url)}}.dump(); }

std::string decode_dp_url(const std::optional<std::string>& text) {
  if (!text) return {};
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return {};
  auto it = j.find("url");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Status validate(const DpSpec& spec) {
  PKG_TRY(check_dp_name("Name", spec.name));
  if (!spec.url.empty()) PKG_TRY(check_url("url", spec.url));
  PKG_TRY(check_text("Description", spec.description, 0, kMaxDescription, TextKind::kMultiLine));
  if (spec.transfer_window.size() > 4096) return invalid("TransferWindow", "must be at most 4096 characters");
  if (!spec.pull && !spec.source_dps.empty()) return invalid("SourceDPs", "are only for a pull DP");
  if (spec.pull && spec.source_dps.empty()) return invalid("SourceDPs", "are required for a pull DP");
  if (spec.source_dps.size() > kMaxSourceDps) {
    return invalid("SourceDPs", "must name at most " + std::to_string(kMaxSourceDps) + " DPs");
  }
  for (const auto& source : spec.source_dps) {
    PKG_TRY(check_dp_name("SourceDPs", source));
    if (iequals(source, spec.name)) return invalid("SourceDPs", "must not name the DP itself");
  }
  return ok_status();
}

}  // namespace

std::string dp_nal_path(std::string_view dp_name, std::string_view site_code) {
  std::string out = "[\"Display=\\\\";
  out += dp_name;
  out += "\\\"]MSWNET:[\"SMS_SITE=";
  out += site_code;
  out += "\"]\\\\";
  out += dp_name;
  out += "\\";
  return out;
}

Result<CreatedDp> Domain::create_dp(const DpSpec& spec) {
  PKG_TRY(validate(spec));
  PKG_ASSIGN_OR_RETURN(const std::string site_code, normalize_site_code("SiteCode", spec.site_code));
  PKG_ASSIGN_OR_RETURN(std::string window, parse_transfer_window(spec.transfer_window));
  PKG_ASSIGN_OR_RETURN(std::string token, generate_token());

  CreatedDp created{make_instance("SMS_DistributionPointInfo"), spec.url, std::move(token), {}};
  PKG_ASSIGN_OR_RETURN(
      created.dp, commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
        PKG_ASSIGN_OR_RETURN(cim::Instance site, require_site(txn, site_code));
        PKG_ASSIGN_OR_RETURN(auto existing, txn_find(txn, "SMS_DistributionPointInfo", "Name", spec.name));
        if (existing) {
          return make_error(WbemCode::kAlreadyExists, "DP '" + get_string(*existing, "Name") + "' already exists");
        }
        std::vector<cim::Value> sources;
        for (const auto& source : spec.source_dps) {
          PKG_ASSIGN_OR_RETURN(auto row, txn_find(txn, "SMS_DistributionPointInfo", "Name", source));
          if (!row) return not_found("source DP '" + source + "' does not exist");
          sources.push_back(str_value(get_string(*row, "Name")));
        }
        const std::string nal = dp_nal_path(spec.name, site_code);
        cim::Instance dp = make_instance("SMS_DistributionPointInfo");
        set_prop(dp, "NALPath", str_value(nal));
        set_prop(dp, "Name", str_value(spec.name));
        set_prop(dp, "ServerName", str_value(spec.name));
        set_prop(dp, "SiteCode", str_value(site_code));
        set_prop(dp, "SiteName", str_value(get_string(site, "SiteName")));
        set_prop(dp, "Description", str_value(spec.description));
        set_prop(dp, "IsPullDP", cim::Value::boolean(spec.pull));
        if (spec.pull) set_prop(dp, "SourceDPs", cim::Value::array(cim::CimType::kString, std::move(sources)));
        set_prop(dp, "TransferRate", u32_value(spec.transfer_rate));
        set_prop(dp, "RateLimitsEnabled", cim::Value::boolean(spec.transfer_rate != 0));
        set_prop(dp, "TransferWindow", str_value(window));
        PKG_TRY(txn.insert(dp));

        cim::Instance status = make_instance("SMS_DPStatusInfo");
        set_prop(status, "NALPath", str_value(nal));
        set_prop(status, "Name", str_value(spec.name));
        set_prop(status, "SiteCode", str_value(site_code));
        set_prop(status, "IsPullDP", cim::Value::boolean(spec.pull));
        for (const char* count : {"NumberInstalled", "NumberInProgress", "NumberErrors", "NumberUnknown"}) {
          set_prop(status, count, u32_value(0));
        }
        set_prop(status, "MessageState", u32_value(1));
        PKG_TRY(txn.insert(status));

        PKG_TRY(txn.put_meta(dp_meta_key(spec.name), encode_dp_meta(spec.url)));
        PKG_TRY(txn.insert(dp_role_row(dp, spec.url)));
        PKG_TRY(txn.put(dp_site_system_row(dp)));
        created.token_record = TokenRecord{};
        created.token_record.role = Role::kDp;
        created.token_record.sites = {site_code};
        created.token_record.dp_name = spec.name;
        created.token_record.description = "DP " + spec.name;
        PKG_TRY(save_token(txn, created.token, created.token_record));
        return dp;
      }));
  return created;
}

Result<std::vector<DpView>> Domain::list_dps() {
  PKG_ASSIGN_OR_RETURN(auto rows, scan_all("SMS_DistributionPointInfo"));
  PKG_ASSIGN_OR_RETURN(auto metas, store_.list_meta("dp/"));
  std::unordered_map<std::string, std::string> urls;
  for (const auto& [key, value] : metas) urls[key] = decode_dp_url(value);
  std::vector<DpView> out;
  out.reserve(rows.size());
  for (auto& row : rows) {
    std::string url;
    if (auto it = urls.find(dp_meta_key(get_string(row, "Name"))); it != urls.end()) url = it->second;
    out.push_back(DpView{std::move(row), std::move(url)});
  }
  return out;
}

Result<cim::Instance> find_dp(store::WriteTxn& txn, std::string_view dp_name) {
  // Configuration Manager's scripts name DPs by NAL path (AddDistributionPoints, VerifyPackage, the NALPath of
  // SMS_DistributionPointInfo and SMS_SystemResourceList rows): taken wherever a DP's name is.
  if (dp_name.starts_with("[\"Display=")) return find_dp_by_nal_path(txn, dp_name);
  PKG_TRY(check_dp_name("Name", dp_name));
  PKG_ASSIGN_OR_RETURN(auto row, txn_find(txn, "SMS_DistributionPointInfo", "Name", dp_name));
  if (!row) return not_found("DP '" + std::string(dp_name) + "' does not exist");
  return std::move(*row);
}

Result<cim::Instance> find_dp_by_nal_path(store::WriteTxn& txn, std::string_view nal_path) {
  PKG_ASSIGN_OR_RETURN(auto row, txn_find(txn, "SMS_DistributionPointInfo", "NALPath", nal_path));
  if (!row) return not_found("no DP has the NAL path '" + std::string(nal_path) + "'");
  return std::move(*row);
}

Result<std::vector<cim::Instance>> find_site_dps(store::WriteTxn& txn, std::string_view site_code) {
  PKG_ASSIGN_OR_RETURN(const std::string code, normalize_site_code("SiteCode", site_code));
  PKG_TRY(require_site(txn, code));
  const cim::ClassDef& cls = class_named("SMS_DistributionPointInfo");
  PKG_ASSIGN_OR_RETURN(auto rows, txn_scan(txn, cls, where_string(cls, "SiteCode", code)));
  std::vector<cim::Instance> out;
  for (auto& row : rows) {
    if (iequals(get_string(row, "SiteCode"), code)) out.push_back(std::move(row));
  }
  return out;
}

Result<std::string> dp_agent_url(store::WriteTxn& txn, std::string_view dp_name) {
  PKG_ASSIGN_OR_RETURN(auto meta, txn.get_meta(dp_meta_key(dp_name)));
  return decode_dp_url(meta);
}

Result<DpView> Domain::dp_view(cim::Instance dp) {
  PKG_ASSIGN_OR_RETURN(auto meta, store_.get_meta(dp_meta_key(get_string(dp, "Name"))));
  return DpView{std::move(dp), decode_dp_url(meta)};
}

Result<DpView> Domain::get_dp(std::string_view name) {
  PKG_TRY(check_dp_name("Name", name));
  const cim::ClassDef& cls = class_named("SMS_DistributionPointInfo");
  PKG_ASSIGN_OR_RETURN(auto rows, scan_all(cls.name(), where_string(cls, "Name", name)));
  for (auto& row : rows) {
    if (iequals(get_string(row, "Name"), name)) return dp_view(std::move(row));
  }
  return not_found("DP '" + std::string(name) + "' does not exist");
}

Result<cim::Instance> Domain::update_dp(std::string_view name, const DpChange& change) {
  PKG_TRY(check_dp_name("Name", name));
  if (change.description) {
    PKG_TRY(check_text("Description", *change.description, 0, kMaxDescription, TextKind::kMultiLine));
  }
  if (change.transfer_window && change.transfer_window->size() > 4096) {
    return invalid("TransferWindow", "must be at most 4096 characters");
  }
  std::optional<std::string> window;
  if (change.transfer_window) {
    PKG_ASSIGN_OR_RETURN(window, parse_transfer_window(*change.transfer_window));
  }
  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    PKG_ASSIGN_OR_RETURN(auto found, txn_find(txn, "SMS_DistributionPointInfo", "Name", name));
    if (!found) return not_found("DP '" + std::string(name) + "' does not exist");
    cim::Instance dp = std::move(*found);
    if (change.description) set_prop(dp, "Description", str_value(*change.description));
    if (change.transfer_rate) {
      set_prop(dp, "TransferRate", u32_value(*change.transfer_rate));
      set_prop(dp, "RateLimitsEnabled", cim::Value::boolean(*change.transfer_rate != 0));
    }
    if (window) set_prop(dp, "TransferWindow", str_value(*window));
    PKG_TRY(txn.put(dp));
    return dp;
  });
}

Status Domain::note_dp_contact(std::string_view name) {
  PKG_TRY(store_.execute([&](store::WriteTxn& txn) -> Status {
    PKG_ASSIGN_OR_RETURN(auto found, txn_find(txn, "SMS_DistributionPointInfo", "Name", name));
    if (!found) return not_found("DP '" + std::string(name) + "' does not exist");
    set_prop(*found, "LastContactTime", time_value(txn.now()));
    return txn.put(*found);
  }));
  return ok_status();
}

Result<cim::Instance> Domain::remove_dp(std::string_view name) {
  PKG_TRY(check_dp_name("Name", name));
  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    PKG_ASSIGN_OR_RETURN(auto found, txn_find(txn, "SMS_DistributionPointInfo", "Name", name));
    if (!found) return not_found("DP '" + std::string(name) + "' does not exist");
    cim::Instance dp = std::move(*found);
    const std::string dp_name = get_string(dp, "Name");
    const std::string nal = get_string(dp, "NALPath");

    const cim::ClassDef& targets_cls = class_named("SMS_DistributionPoint");
    PKG_ASSIGN_OR_RETURN(auto targets, txn_scan(txn, targets_cls, where_string(targets_cls, "ServerNALPath", nal)));
    std::string packages;
    for (const auto& t : targets) {
      if (get_string(t, "ServerNALPath") != nal) continue;
      packages += (packages.empty() ? "" : ", ") + get_string(t, "PackageID");
    }
    if (!packages.empty()) {
      return make_error(WbemCode::kInvalidOperation, "DP '" + dp_name + "' still has packages targeted at it (" +
                                                         packages + "); remove them from the DP first");
    }
    PKG_ASSIGN_OR_RETURN(auto all_dps, txn_scan(txn, dp.class_def(), store::Predicate::always()));
    for (const auto& other : all_dps) {
      const cim::Value* sources = other.find("SourceDPs");
      if (sources == nullptr || sources->is_null()) continue;
      for (const auto& s : sources->as_array()) {
        if (!s.is_null() && iequals(s.as_string(), dp_name)) {
          return make_error(WbemCode::kInvalidOperation,
                            "DP '" + dp_name + "' is a source of pull DP '" + get_string(other, "Name") + "'");
        }
      }
    }

    PKG_TRY(remove_dp_from_groups(txn, dp_name));
    PKG_TRY(txn.remove(dp.class_def(), {str_value(nal)}));
    const cim::Instance role = dp_role_row(dp, "");
    PKG_ASSIGN_OR_RETURN(auto role_row, txn.get(role.class_def(), store::key_of(role)));
    if (role_row) PKG_TRY(txn.remove(role.class_def(), store::key_of(role)));
    // The DP's server stops being a site system, unless it is its site's server too.
    const cim::Instance system = dp_site_system_row(dp);
    cim::Instance server_role = system;
    set_prop(server_role, "RoleName", str_value(std::string(kRoleSiteServer)));
    PKG_ASSIGN_OR_RETURN(auto also_server, txn.get(server_role.class_def(), store::key_of(server_role)));
    PKG_ASSIGN_OR_RETURN(auto system_row, txn.get(system.class_def(), store::key_of(system)));
    if (system_row && !also_server) PKG_TRY(txn.remove(system.class_def(), store::key_of(system)));
    const cim::ClassDef& status_cls = class_named("SMS_DPStatusInfo");
    PKG_ASSIGN_OR_RETURN(auto status, txn.get(status_cls, {str_value(nal)}));
    if (status) PKG_TRY(txn.remove(status_cls, {str_value(nal)}));
    const cim::ClassDef& messages_cls = class_named("SMS_DistributionDPStatus");
    PKG_ASSIGN_OR_RETURN(auto messages, txn_scan(txn, messages_cls, where_string(messages_cls, "NALPath", nal)));
    for (const auto& m : messages) {
      if (get_string(m, "NALPath") == nal) PKG_TRY(txn.remove(messages_cls, store::key_of(m)));
    }
    PKG_TRY(txn.remove_meta(dp_meta_key(dp_name)));
    PKG_TRY(revoke_dp_tokens(txn, dp_name));
    return dp;
  });
}

}  // namespace pkgcast::site
