// Instance helpers for the domain: the classes it writes are builtin, so property names are checked once, by the
// tests, rather than at every call.
#include <cassert>

#include "core/strings.h"
#include "site/internal.h"

namespace pkgcast::site::internal {

const cim::ClassDef& class_named(std::string_view name) {
  const cim::ClassDef* cls = cim::ClassRegistry::builtin().find(name);
  assert(cls != nullptr);
  return *cls;
}

cim::Instance make_instance(std::string_view class_name) { return cim::Instance(class_named(class_name)); }

void set_prop(cim::Instance& inst, std::string_view name, cim::Value v) {
  const auto index = inst.class_def().find_property(name);
  assert(index.has_value());
  inst.set(*index, std::move(v));
}

std::string get_string(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  return v == nullptr || v->is_null() ? std::string() : v->as_string();
}

std::uint64_t get_uint(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  return v == nullptr || v->is_null() ? 0 : v->as_uint();
}

bool get_bool(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  return v != nullptr && !v->is_null() && v->as_bool();
}

std::optional<cim::DateTime> get_datetime(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  if (v == nullptr || v->is_null()) return std::nullopt;
  return v->as_datetime();
}

store::Predicate where_string(const cim::ClassDef& cls, std::string_view property, std::string_view value) {
  const auto index = cls.find_property(property);
  assert(index.has_value());
  return store::Predicate::compare(*index, store::Predicate::Op::kEq, cim::Value::string(std::string(value)));
}

Result<std::vector<cim::Instance>> txn_scan(store::WriteTxn& txn, const cim::ClassDef& cls,
                                            const store::Predicate& filter) {
  std::vector<cim::Instance> out;
  PKG_TRY(txn.scan(cls, filter, [&](cim::Instance&& inst) {
    out.push_back(std::move(inst));
    return true;
  }));
  return out;
}

Result<std::optional<cim::Instance>> txn_find(store::WriteTxn& txn, std::string_view class_name,
                                              std::string_view property, std::string_view value) {
  const cim::ClassDef& cls = class_named(class_name);
  PKG_ASSIGN_OR_RETURN(auto rows, txn_scan(txn, cls, where_string(cls, property, value)));
  // The predicate is a pre-filter; the exact, case-insensitive comparison is made here.
  for (auto& row : rows) {
    if (iequals(get_string(row, property), value)) return std::optional<cim::Instance>(std::move(row));
  }
  return std::optional<cim::Instance>();
}

Result<cim::Instance> require_site(store::WriteTxn& txn, std::string_view code) {
  PKG_ASSIGN_OR_RETURN(auto site, txn.get(class_named("SMS_Site"), {cim::Value::string(to_upper(code))}));
  if (!site) return not_found("site '" + std::string(code) + "' does not exist");
  return std::move(*site);
}

Result<cim::Instance> require_package(store::WriteTxn& txn, std::string_view package_id) {
  PKG_ASSIGN_OR_RETURN(auto pkg, txn.get(class_named("SMS_Package"), {cim::Value::string(to_upper(package_id))}));
  if (!pkg) return not_found("package '" + std::string(package_id) + "' does not exist");
  return std::move(*pkg);
}

}  // namespace pkgcast::site::internal
