#include "cim/class_def.h"

#include <array>

namespace pkgcast::cim {

std::optional<std::size_t> ClassDef::find_property(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

bool ClassDef::is_a(const ClassDef& other) const {
  for (const ClassDef* c = this; c != nullptr; c = c->superclass_) {
    if (c == &other) return true;
  }
  return false;
}

bool ClassDef::is_a(std::string_view class_name) const {
  for (const ClassDef* c = this; c != nullptr; c = c->superclass_) {
    if (iequals(c->name_, class_name)) return true;
  }
  return false;
}

Result<ClassRegistry> ClassRegistry::build(const std::vector<ClassSpec>& specs) {
  ClassRegistry reg;
  for (const ClassSpec& spec : specs) {
    if (spec.name.empty()) return make_error(WbemCode::kInvalidClass, "a class needs a name");
    if (reg.find(spec.name) != nullptr) {
      return make_error(WbemCode::kAlreadyExists, "class '" + spec.name + "' is defined twice");
    }
    auto def = std::make_unique<ClassDef>();
    def->name_ = spec.name;
    def->abstract_ = spec.abstract;
    def->description_ = spec.description;
    if (!spec.superclass.empty()) {
      const ClassDef* super = reg.find(spec.superclass);
      if (super == nullptr) {
        return make_error(WbemCode::kInvalidClass,
                          "superclass '" + spec.superclass + "' of '" + spec.name + "' is not defined before it");
      }
      def->superclass_ = super;
      def->derivation_.push_back(super->name_);
      def->derivation_.insert(def->derivation_.end(), super->derivation_.begin(), super->derivation_.end());
      def->properties_ = super->properties_;
      def->event_ = super->event_;
    }
    if (iequals(spec.name, "__Event")) def->event_ = true;
    for (const PropertyDef& p : spec.properties) {
      if (!p.default_value.is_null() && !(p.default_value.type() == p.type)) {
        return make_error(WbemCode::kTypeMismatch, "the default of property '" + p.name + "' of '" + spec.name +
                                                       "' is not of its type " + type_name(p.type));
      }
      if (p.at_default && p.default_value.is_null() && !p.type.array && p.type.base != CimType::kObject &&
          p.type.base != CimType::kDateTime) {
        return make_error(WbemCode::kInvalidParameter, "property '" + p.name + "' of '" + spec.name +
                                                           "' is kept at its default but has none");
      }
      if (def->index_.count(p.name) != 0) {
        return make_error(WbemCode::kAlreadyExists, "property '" + p.name + "' of '" + spec.name + "' is defined twice");
      }
      def->index_.emplace(p.name, def->properties_.size());
      def->properties_.push_back(p);
    }
    def->index_.clear();
    for (std::size_t i = 0; i < def->properties_.size(); ++i) {
      def->index_.emplace(def->properties_[i].name, i);
      if (def->properties_[i].key) def->key_indices_.push_back(i);
    }
    reg.by_name_.emplace(def->name_, def.get());
    reg.order_.push_back(def.get());
    reg.owned_.push_back(std::move(def));
  }
  return reg;
}

const ClassDef* ClassRegistry::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Result<const ClassDef*> ClassRegistry::get(std::string_view name) const {
  if (const ClassDef* c = find(name)) return c;
  return make_error(WbemCode::kInvalidClass, "unknown class '" + std::string(name) + "'");
}

std::vector<const ClassDef*> ClassRegistry::subclasses_of(const ClassDef& base) const {
  std::vector<const ClassDef*> out;
  for (const ClassDef* c : order_) {
    if (c->is_a(base)) out.push_back(c);
  }
  return out;
}

bool is_system_property(std::string_view name) {
  static constexpr std::array<std::string_view, 11> kNames{
      "__CLASS",  "__PATH",       "__RELPATH",    "__NAMESPACE",      "__SERVER",  "__GENUS",
      "__SUPERCLASS", "__DERIVATION", "__DYNASTY", "__PROPERTY_COUNT", "__REVISION",
  };
  for (std::string_view n : kNames) {
    if (iequals(n, name)) return true;
  }
  return false;
}

}  // namespace pkgcast::cim
