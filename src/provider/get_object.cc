// GetObject: one instance read by its object path, whole. Its lazy properties (PropertyDef::lazy) are filled in
// here, as WMI's providers do; query answers and events leave them out (provider.cc, event_build.cc).
#include "core/strings.h"
#include "provider/provider.h"
#include "provider/site_scope.h"

namespace pkgcast::provider {
namespace {

Error bad_path(std::string_view path, const std::string& why) {
  return make_error(WbemCode::kInvalidObjectPath, "object path '" + std::string(path) + "': " + why);
}

// The key values of `path` in the class's key order, each converted to its property's type.
Result<std::vector<cim::Value>> key_values(const cim::ClassDef& cls, const cim::ObjectPath& parsed,
                                           std::string_view path) {
  if (cls.key_indices().empty()) return bad_path(path, cls.name() + " has no keys");
  if (parsed.singleton || parsed.keys.size() != cls.key_indices().size()) {
    std::string names;
    for (std::size_t k : cls.key_indices()) names += (names.empty() ? "" : ", ") + cls.property(k).name;
    return bad_path(path, cls.name() + " is named by its keys " + names);
  }
  std::vector<cim::Value> values;
  for (std::size_t k : cls.key_indices()) {
    const cim::PropertyDef& def = cls.property(k);
    const cim::KeyBinding* binding = nullptr;
    for (const auto& b : parsed.keys) {
      if (iequals(b.name, def.name)) binding = &b;
    }
    if (binding == nullptr) return bad_path(path, "key " + def.name + " is missing");
    auto converted = cim::coerce(binding->value, def.type);
    if (!converted.ok()) return bad_path(path, "key " + def.name + ": " + converted.error().message);
    values.push_back(std::move(converted).value());
  }
  return values;
}

}  // namespace

Result<cim::Instance> Provider::get_object(std::string_view ns, std::string_view path,
                                           const site::TokenRecord& caller) const {
  PKG_ASSIGN_OR_RETURN(std::string namespace_path, resolve_namespace(ns));
  PKG_ASSIGN_OR_RETURN(cim::ObjectPath parsed, cim::ObjectPath::parse(path));
  if (!parsed.namespace_path.empty()) PKG_TRY(resolve_namespace(parsed.namespace_path));
  PKG_ASSIGN_OR_RETURN(const cim::ClassDef* cls, store_.registry().get(parsed.class_name));
  PKG_TRY(check_class(namespace_path, cls->name()));
  const bool sees_tokens = caller.role == site::Role::kFullAdmin && caller.sites.empty();
  if (cls->is_a("PKG_Token") && !sees_tokens) {
    return make_error(WbemCode::kAccessDenied, "class " + cls->name() + " is visible to full-admin tokens without a "
                                               "site limit only");
  }
  PKG_ASSIGN_OR_RETURN(std::vector<cim::Value> key, key_values(*cls, parsed, path));
  // A path through an abstract class (`SMS_PackageBaseclass.PackageID="ABC00001"`) names the instance of whichever
  // concrete subclass holds that key, as WMI resolves it; the subclasses share the base's keys (classes are
  // flattened), so the same key values read each one's table.
  std::optional<cim::Instance> found;
  if (cls->abstract()) {
    for (const cim::ClassDef* sub : store_.registry().subclasses_of(*cls)) {
      if (sub->abstract() || sub->key_indices() != cls->key_indices()) continue;
      if (sub->is_a("PKG_Token") && !sees_tokens) continue;
      PKG_ASSIGN_OR_RETURN(found, store_.get(*sub, key));
      if (found) {
        cls = sub;
        break;
      }
    }
  } else {
    PKG_ASSIGN_OR_RETURN(found, store_.get(*cls, key));
  }
  // Outside the caller's sites reads as absent: a site-limited token cannot tell one from the other.
  bool visible = found.has_value();
  if (visible && !caller.sites.empty()) {
    const SiteScope scope = site_scope_of(*cls);
    if (scope.kind == SiteScope::Kind::kProperty) {
      visible = site_listed(caller.sites, found->get(scope.property));
    } else if (scope.kind == SiteScope::Kind::kPackage) {
      visible = site_listed(caller.sites, package_site_of(*found));
    }
  }
  if (!visible) return make_error(WbemCode::kNotFound, "no instance " + parsed.relpath());
  cim::Instance inst = std::move(*found);
  inst.set_location(server_name_, namespace_path);
  return inst;
}

}  // namespace pkgcast::provider
