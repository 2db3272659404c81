#include "wql/system_props.h"

#include <array>
#include <utility>

#include "core/strings.h"

namespace pkgcast::wql {
namespace {

struct SystemPropertyInfo {
  SystemProperty id;
  std::string_view name;
  cim::Type type;
};

constexpr cim::Type kString{cim::CimType::kString, false};

constexpr std::array<SystemPropertyInfo, 11> kSystemProperties{{
    {SystemProperty::kClass, "__CLASS", kString},
    {SystemProperty::kSuperclass, "__SUPERCLASS", kString},
    {SystemProperty::kDynasty, "__DYNASTY", kString},
    {SystemProperty::kDerivation, "__DERIVATION", {cim::CimType::kString, true}},
    {SystemProperty::kGenus, "__GENUS", {cim::CimType::kSint32, false}},
    {SystemProperty::kNamespace, "__NAMESPACE", kString},
    {SystemProperty::kServer, "__SERVER", kString},
    {SystemProperty::kPath, "__PATH", kString},
    {SystemProperty::kRelPath, "__RELPATH", kString},
    {SystemProperty::kPropertyCount, "__PROPERTY_COUNT", {cim::CimType::kSint32, false}},
    {SystemProperty::kRevision, "__REVISION", {cim::CimType::kUint64, false}},
}};

// WMI's __GENUS of an instance (a class is 1).
constexpr std::int64_t kGenusInstance = 2;

Scalar string_or_null(std::string_view s) { return s.empty() ? Scalar::null() : Scalar::string(s); }

}  // namespace

std::string_view system_property_name(SystemProperty p) {
  for (const auto& info : kSystemProperties) {
    if (info.id == p) return info.name;
  }
  return {};
}

std::optional<SystemProperty> find_system_property(std::string_view name) {
  for (const auto& info : kSystemProperties) {
    if (iequals(info.name, name)) return info.id;
  }
  return std::nullopt;
}

cim::Type system_property_type(SystemProperty p) {
  for (const auto& info : kSystemProperties) {
    if (info.id == p) return info.type;
  }
  return kString;
}

Scalar system_scalar(SystemProperty p, const cim::Instance& inst, std::string& scratch) {
  const cim::ClassDef& cls = inst.class_def();
  switch (p) {
    case SystemProperty::kNone: break;
    case SystemProperty::kClass: return Scalar::string(cls.name());
    case SystemProperty::kSuperclass:
      return cls.superclass() == nullptr ? Scalar::null() : Scalar::string(cls.superclass()->name());
    case SystemProperty::kDynasty: {
      const cim::ClassDef* root = &cls;
      while (root->superclass() != nullptr) root = root->superclass();
      return Scalar::string(root->name());
    }
    case SystemProperty::kDerivation: {
      Scalar s;
      s.kind = Scalar::Kind::kOther;
      return s;
    }
    case SystemProperty::kGenus: return Scalar::sint(kGenusInstance);
    case SystemProperty::kNamespace: return string_or_null(inst.namespace_path());
    case SystemProperty::kServer: return string_or_null(inst.server());
    case SystemProperty::kPath:
      scratch = inst.path();
      return Scalar::string(scratch);
    case SystemProperty::kRelPath:
      scratch = inst.relpath();
      return Scalar::string(scratch);
    case SystemProperty::kPropertyCount: return Scalar::sint(static_cast<std::int64_t>(cls.properties().size()));
    case SystemProperty::kRevision:
      return inst.revision() ? Scalar::uint(*inst.revision()) : Scalar::null();
  }
  return Scalar::null();
}

}  // namespace pkgcast::wql
