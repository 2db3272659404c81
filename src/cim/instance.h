// An instance of a CIM class: one value per property of its class, plus where it lives (server, namespace).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cim/class_def.h"
#include "cim/value.h"
#include "core/result.h"

namespace pkgcast::cim {

class Instance {
 public:
  // Every property starts at its default (PropertyDef::default_value; NULL for most). The class definition must outlive the instance (registry classes do).
  explicit Instance(const ClassDef& cls);

  const ClassDef& class_def() const { return *class_; }
  const std::string& class_name() const { return class_->name(); }

  // By property index of class_def(). Precondition: index < class_def().properties().size().
  const Value& get(std::size_t index) const { return values_[index]; }
  // Precondition: the value is NULL or already of the property's type.
  void set(std::size_t index, Value v) { values_[index] = std::move(v); }

  // Case-insensitive. nullptr when the class has no such property (system properties are not found here).
  const Value* find(std::string_view name) const;
  // Sets a property by name, coercing the value to the property's type (see coerce()).
  // WBEM_E_INVALID_PROPERTY for an unknown name; the coercion's error otherwise. Unchanged on error.
  Status set(std::string_view name, Value v);

  // A declared property or a system property (__CLASS, __PATH, __RELPATH, __NAMESPACE, __SERVER, __GENUS,
  // __SUPERCLASS, __DERIVATION, __DYNASTY, __PROPERTY_COUNT, __REVISION). WBEM_E_INVALID_PROPERTY when neither.
  Result<Value> property(std::string_view name) const;

  // Where the instance lives; empty until set. namespace is "root\sms\site_ABC".
  const std::string& server() const { return server_; }
  const std::string& namespace_path() const { return namespace_; }
  void set_location(std::string server, std::string namespace_path);

  // pkgcast's journal revision of an event object; nullopt elsewhere.
  std::optional<std::uint64_t> revision() const { return revision_; }
  void set_revision(std::optional<std::uint64_t> r) { revision_ = r; }

  // `SMS_Package.PackageID="ABC00001"`: keys in declaration order. For a class without keys, `Class=@`.
  std::string relpath() const;
  // `\\SERVER\root\sms\site_ABC:` + relpath(), or relpath() alone when the location is not set.
  std::string path() const;

  // Same class, same property values, same revision. Location is not compared.
  friend bool operator==(const Instance& a, const Instance& b);

 private:
  const ClassDef* class_;
  std::vector<Value> values_;
  std::string server_;
  std::string namespace_;
  std::optional<std::uint64_t> revision_;
};

// About what an instance holds in memory: a fixed cost a property, its strings' text, its arrays' elements, and
// its embedded objects (to four levels). An estimate for the bounds that cap what a client can make the server
// hold, not an allocator's count; an object shared by several instances is counted in each.
std::size_t estimated_bytes(const Instance& inst);

}  // namespace pkgcast::cim
