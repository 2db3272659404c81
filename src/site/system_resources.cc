// SMS_SystemResourceList: one row per site system role. pkgcast's roles are the site server and the SMS Provider of
// each site (the pkgcast server answers both) and the distribution point of each DP, and each of these servers is
// an SMS Site System too. The rows are written in the
// command that creates the site or DP and removed in the one that removes the DP, so the list never disagrees with
// the sites and DPs it describes; admin check verifies it.
#include "core/strings.h"
#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

namespace {

// What Configuration Manager calls every server that holds a role.
constexpr std::string_view kResourceType = "Windows NT Server";
// SslState: 0 HTTP, 1 HTTPS, 2 not applicable (roles that serve no clients).
constexpr std::uint32_t kSslHttp = 0;
constexpr std::uint32_t kSslHttps = 1;
constexpr std::uint32_t kSslNotApplicable = 2;

cim::Instance role_row(std::string_view server, std::string_view site_code, std::string_view role,
                       std::uint32_t ssl_state) {
  cim::Instance row = make_instance("SMS_SystemResourceList");
  set_prop(row, "NALPath", str_value(dp_nal_path(server, site_code)));
  set_prop(row, "ResourceType", str_value(std::string(kResourceType)));
  set_prop(row, "RoleName", str_value(std::string(role)));
  set_prop(row, "SiteCode", str_value(std::string(site_code)));
  set_prop(row, "ServerName", str_value(std::string(server)));
  set_prop(row, "ServerRemoteName", str_value(std::string(server)));
  set_prop(row, "SslState", u32_value(ssl_state));
  return row;
}

}  // namespace

std::vector<cim::Instance> internal::site_role_rows(const cim::Instance& site, std::string_view fallback_server) {
  std::string server = get_string(site, "ServerName");
  if (server.empty()) server = std::string(fallback_server);
  const std::string code = get_string(site, "SiteCode");
  std::vector<cim::Instance> rows;
  for (std::string_view role : {kRoleSiteServer, kRoleProvider, kRoleSiteSystem}) {
    rows.push_back(role_row(server, code, role, kSslNotApplicable));
  }
  return rows;
}

cim::Instance internal::dp_role_row(const cim::Instance& dp, std::string_view agent_url) {
  const bool https = starts_with_icase(agent_url, "https://");
  return role_row(get_string(dp, "Name"), get_string(dp, "SiteCode"), kRoleDistributionPoint,
                  https ? kSslHttps : kSslHttp);
}

cim::Instance internal::dp_site_system_row(const cim::Instance& dp) {
  return role_row(get_string(dp, "Name"), get_string(dp, "SiteCode"), kRoleSiteSystem, kSslNotApplicable);
}

Status internal::put_rows(store::WriteTxn& txn, const std::vector<cim::Instance>& rows) {
  for (const auto& row : rows) PKG_TRY(txn.put(row));
  return ok_status();
}

}  // namespace pkgcast::site
