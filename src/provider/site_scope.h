// Site scoping, the one rule shared by data queries and event subscriptions (design.md section 7): a caller whose
// token is limited to sites sees an instance only when the property that places it is one of its sites.
//   - SMS_DistributionPointGroup rows span sites: visible to every caller.
//   - SMS_Program and SMS_DPGroupContentInfo rows take their package's site: the site code its PackageID begins
//     with (classes.md: site code + 5 hex digits), which is the SourceSite the creating site gives the package.
//     Read from the row itself, so that where a row belongs does not depend on its package still existing (an
//     event delivered or replayed after the package was deleted is placed as it was when it happened).
//   - Otherwise the class's SiteCode property, else its SourceSite; a class with neither is visible to every caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cim/cim.h"

namespace pkgcast::provider {

struct SiteScope {
  enum class Kind : std::uint8_t {
    kNone,      // visible to every caller
    kProperty,  // the value of `property` must be one of the caller's sites
    kPackage,   // the site its PackageID names (package_site_of) must be
  };
  Kind kind = Kind::kNone;
  std::size_t property = 0;  // kProperty: index into the class's properties
};

// How instances of `cls` are placed on a site.
SiteScope site_scope_of(const cim::ClassDef& cls);

// The site a row of a kPackage class belongs to: the first three characters of its PackageID; NULL (listed for no
// site) when it has none.
cim::Value package_site_of(const cim::Instance& inst);

// True when `v` is a string naming one of `sites` (ASCII case-insensitive). NULL and arrays are never listed.
bool site_listed(const std::vector<std::string>& sites, const cim::Value& v);

}  // namespace pkgcast::provider
