// Who a caller is and the names sites go by: roles, the record a token grants, site types. This header includes
// nothing from the store, so layers that only need to know the caller (the server's router, the command line) use
// it without reaching the database interface; it is its own library (pkgcast_identity) for the same reason at link
// time. Token storage is site/tokens.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace pkgcast::site {

enum class Role : std::uint8_t {
  kFullAdmin,     // everything
  kPackageAdmin,  // packages, programs, advertisements, distribution; reads
  kReadOnly,      // queries and events
  kDp,            // one DP's own endpoints only
};
std::string_view role_name(Role r);  // "full-admin", "package-admin", "read-only", "dp"
std::optional<Role> parse_role(std::string_view name);  // case-insensitive

// What a token grants. Also the authenticated caller of a request.
struct TokenRecord {
  std::string id;  // short public id: the first 12 hex digits of the hash; safe to log and list
  Role role = Role::kReadOnly;
  std::vector<std::string> sites;  // empty = every site
  std::string dp_name;             // for kDp: the DP it belongs to
  std::string description;
  Micros created = 0;
  Micros expires = 0;  // 0 = never; else the token is refused from this instant on
  Micros revoked = 0;  // 0 = not revoked; else when it was

  // True when the token's site limit admits `site_code` (case-insensitive).
  bool can_see_site(std::string_view site_code) const;
  // Neither revoked nor expired at `now`.
  bool active(Micros now) const { return revoked == 0 && (expires == 0 || now < expires); }
};

// SMS_Site.Type, with Configuration Manager's values.
enum class SiteType : std::uint32_t { kSecondary = 1, kPrimary = 2, kCentral = 4 };
std::string_view site_type_name(SiteType t);                     // "secondary", "primary", "central"
std::optional<SiteType> parse_site_type(std::string_view name);  // case-insensitive

}  // namespace pkgcast::site
