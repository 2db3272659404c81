// Site scoping, the one rule shared by data queries and event subscriptions (design.md section 7): a caller whose
// token is limited to sites sees an instance only when the property that places it is one of its sites.
//   - SMS_DistributionPointGroup rows span sites: visible to every caller.
//   - SMS_Program rows take their package's SourceSite (read from the store by the caller of this rule).
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
    kPackage,   // the SourceSite of the SMS_Package named by the instance's PackageID must be
  };
  Kind kind = Kind::kNone;
  std::size_t property = 0;  // kProperty: index into the class's properties
};

// How instances of `cls` are placed on a site.
SiteScope site_scope_of(const cim::ClassDef& cls);

// True when `v` is a string naming one of `sites` (ASCII case-insensitive). NULL and arrays are never listed.
bool site_listed(const std::vector<std::string>& sites, const cim::Value& v);

}  // namespace pkgcast::provider
