#include "site/identity.h"

#include <array>
#include <utility>

#include "core/strings.h"

namespace pkgcast::site {
namespace {

constexpr std::array<std::pair<Role, std::string_view>, 4> kRoles{{
    {Role::kFullAdmin, "full-admin"},
    {Role::kPackageAdmin, "package-admin"},
    {Role::kReadOnly, "read-only"},
    {Role::kDp, "dp"},
}};

}  // namespace

std::string_view role_name(Role r) {
  for (const auto& [role, name] : kRoles) {
    if (role == r) return name;
  }
  return "read-only";
}

std::optional<Role> parse_role(std::string_view name) {
  for (const auto& [role, n] : kRoles) {
    if (iequals(n, name)) return role;
  }
  return std::nullopt;
}

bool TokenRecord::can_see_site(std::string_view site_code) const {
  if (sites.empty()) return true;
  for (const auto& s : sites) {
    if (iequals(s, site_code)) return true;
  }
  return false;
}

std::string_view site_type_name(SiteType t) {
  switch (t) {
    case SiteType::kSecondary:
      return "secondary";
    case SiteType::kPrimary:
      return "primary";
    case SiteType::kCentral:
      return "central";
  }
  return "primary";
}

std::optional<SiteType> parse_site_type(std::string_view name) {
  for (SiteType t : {SiteType::kSecondary, SiteType::kPrimary, SiteType::kCentral}) {
    if (iequals(site_type_name(t), name)) return t;
  }
  return std::nullopt;
}

}  // namespace pkgcast::site
