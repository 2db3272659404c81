#include "provider/site_scope.h"

#include "core/strings.h"

namespace pkgcast::provider {

SiteScope site_scope_of(const cim::ClassDef& cls) {
  if (iequals(cls.name(), "SMS_DistributionPointGroup")) return {};  // groups span sites
  if (iequals(cls.name(), "SMS_Program") || iequals(cls.name(), "SMS_DPGroupContentInfo")) {
    return {SiteScope::Kind::kPackage, 0};
  }
  auto index = cls.find_property("SiteCode");
  if (!index) index = cls.find_property("SourceSite");
  if (!index) return {};
  return {SiteScope::Kind::kProperty, *index};
}

cim::Value package_site_of(const cim::Instance& inst) {
  const cim::Value* id = inst.find("PackageID");
  if (id == nullptr || id->is_null() || id->is_array() || id->type().base != cim::CimType::kString) return {};
  const std::string& text = id->as_string();
  if (text.size() < 3) return {};
  return cim::Value::string(text.substr(0, 3));
}

bool site_listed(const std::vector<std::string>& sites, const cim::Value& v) {
  if (v.is_null() || v.is_array() || (v.type().base != cim::CimType::kString && v.type().base != cim::CimType::kReference)) return false;
  for (const auto& s : sites) {
    if (iequals(s, v.as_string())) return true;
  }
  return false;
}

}  // namespace pkgcast::provider
