// Class definitions and the class registry. Every class the provider serves is defined once, in classes.cc;
// the provider, the store schema and the documentation all derive from that one table.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cim/types.h"
#include "cim/value.h"
#include "core/result.h"
#include "core/strings.h"

namespace pkgcast::cim {

struct PropertyDef {
  std::string name;
  Type type;
  bool key = false;
  bool read_only = false;  // changed only by the system
  std::string description;
  // WMI's `lazy` qualifier: the provider leaves the property NULL in query answers and events (it is costly to
  // fetch) and fills it in when one instance is read by its object path.
  bool lazy = false;
  // What a new instance holds until it is set (Instance's constructor), and what a database made before the
  // property existed gets for its old rows (the column's DEFAULT). NULL: no default.
  Value default_value;
  // True for a documented property pkgcast gives no meaning: it always holds default_value.
  bool at_default = false;
};

// Immutable once registered. Properties are flattened: a subclass lists its superclass's properties first, in the
// same order, so a property index bound against a class is valid for every instance of its subclasses.
class ClassDef {
 public:
  const std::string& name() const { return name_; }
  // nullptr for a root class.
  const ClassDef* superclass() const { return superclass_; }
  // Superclass chain, nearest first (WMI's __DERIVATION).
  const std::vector<std::string>& derivation() const { return derivation_; }
  const std::vector<PropertyDef>& properties() const { return properties_; }
  // Indices into properties(), in declaration order.
  const std::vector<std::size_t>& key_indices() const { return key_indices_; }
  bool abstract() const { return abstract_; }
  bool is_event_class() const { return event_; }
  const std::string& description() const { return description_; }

  // Case-insensitive lookup of a declared property; nullopt when the class has none of that name.
  std::optional<std::size_t> find_property(std::string_view name) const;
  const PropertyDef& property(std::size_t index) const { return properties_[index]; }

  // True when this class is `other` or derives from it.
  bool is_a(const ClassDef& other) const;
  bool is_a(std::string_view class_name) const;

 private:
  friend class ClassRegistry;
  std::string name_;
  const ClassDef* superclass_ = nullptr;
  std::vector<std::string> derivation_;
  std::vector<PropertyDef> properties_;
  std::vector<std::size_t> key_indices_;
  std::unordered_map<std::string, std::size_t, IHash, IEqual> index_;
  bool abstract_ = false;
  bool event_ = false;
  std::string description_;
};

// What a caller supplies to define a class: its own properties only.
struct ClassSpec {
  std::string name;
  std::string superclass;  // empty for a root
  std::vector<PropertyDef> properties;
  bool abstract = false;
  std::string description;
};

// Thread safety: immutable after construction; safe for concurrent reads.
class ClassRegistry {
 public:
  // Every class of classes.md, the event classes, and SMS_BaseClass.
  static const ClassRegistry& builtin();

  // Builds a registry from specs in dependency order (a superclass before its subclasses).
  static Result<ClassRegistry> build(const std::vector<ClassSpec>& specs);

  ClassRegistry(ClassRegistry&&) noexcept = default;
  ClassRegistry& operator=(ClassRegistry&&) noexcept = default;

  // Case-insensitive; nullptr when unknown.
  const ClassDef* find(std::string_view name) const;
  // As find, with WBEM_E_INVALID_CLASS naming the class when unknown.
  Result<const ClassDef*> get(std::string_view name) const;
  // In registration order.
  const std::vector<const ClassDef*>& all() const { return order_; }
  // Classes that are `base` or derive from it, in registration order.
  std::vector<const ClassDef*> subclasses_of(const ClassDef& base) const;

 private:
  ClassRegistry() = default;
  std::vector<std::unique_ptr<ClassDef>> owned_;
  std::vector<const ClassDef*> order_;
  std::unordered_map<std::string, const ClassDef*, IHash, IEqual> by_name_;
};

// The system properties WQL can name (design.md section 5), upper-case: "__CLASS", "__PATH", ...
bool is_system_property(std::string_view name);

}  // namespace pkgcast::cim
