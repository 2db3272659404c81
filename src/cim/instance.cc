#include "cim/instance.h"

#include "cim/object_path.h"

namespace pkgcast::cim {

Instance::Instance(const ClassDef& cls) : class_(&cls) {
  values_.reserve(cls.properties().size());
  for (const PropertyDef& p : cls.properties()) values_.push_back(p.default_value);
}

const Value* Instance::find(std::string_view name) const {
  auto index = class_->find_property(name);
  return index ? &values_[*index] : nullptr;
}

Status Instance::set(std::string_view name, Value v) {
  auto index = class_->find_property(name);
  if (!index) {
    return make_error(WbemCode::kInvalidProperty,
                      "class '" + class_->name() + "' has no property '" + std::string(name) + "'");
  }
  const PropertyDef& def = class_->property(*index);
  auto converted = coerce(v, def.type);
  if (!converted.ok()) {
    Error e = std::move(converted).error();
    e.message = def.name + ": " + e.message;
    return e;
  }
  values_[*index] = std::move(converted).value();
  return ok_status();
}

void Instance::set_location(std::string server, std::string namespace_path) {
  server_ = std::move(server);
  namespace_ = std::move(namespace_path);
}

Result<Value> Instance::property(std::string_view name) const {
  if (auto index = class_->find_property(name)) return values_[*index];
  if (name.size() > 2 && name[0] == '_' && name[1] == '_') {
    auto str_or_null = [](const std::string& s) { return s.empty() ? Value() : Value::string(s); };
    if (iequals(name, "__CLASS")) return Value::string(class_->name());
    if (iequals(name, "__RELPATH")) return Value::string(relpath());
    if (iequals(name, "__PATH")) return Value::string(path());
    if (iequals(name, "__NAMESPACE")) return str_or_null(namespace_);
    if (iequals(name, "__SERVER")) return str_or_null(server_);
    if (iequals(name, "__GENUS")) return Value::sint(CimType::kSint32, 2);  // 2 = instance, 1 = class
    if (iequals(name, "__SUPERCLASS")) {
      return class_->superclass() ? Value::string(class_->superclass()->name()) : Value();
    }
    if (iequals(name, "__DYNASTY")) {
      return Value::string(class_->derivation().empty() ? class_->name() : class_->derivation().back());
    }
    if (iequals(name, "__DERIVATION")) {
      ValueArray items;
      for (const auto& c : class_->derivation()) items.push_back(Value::string(c));
      return Value::array(CimType::kString, std::move(items));
    }
    if (iequals(name, "__PROPERTY_COUNT")) {
      return Value::sint(CimType::kSint32, static_cast<std::int64_t>(values_.size()));
    }
    if (iequals(name, "__REVISION")) return revision_ ? Value::uint64(*revision_) : Value();
  }
  return make_error(WbemCode::kInvalidProperty,
                    "class '" + class_->name() + "' has no property '" + std::string(name) + "'");
}


std::string Instance::path() const { return ObjectPath::of(*this).to_string(); }

bool operator==(const Instance& a, const Instance& b) {
  return a.class_ == b.class_ && a.values_ == b.values_ && a.revision_ == b.revision_;
}

namespace {

std::size_t estimated_value_bytes(const Value& v, int depth);

std::size_t estimated_instance_bytes(const Instance& inst, int depth) {
  std::size_t bytes = 64;
  for (std::size_t i = 0; i < inst.class_def().properties().size(); ++i) {
    bytes += estimated_value_bytes(inst.get(i), depth);
  }
  return bytes;
}

std::size_t estimated_value_bytes(const Value& v, int depth) {
  std::size_t bytes = 32;
  if (v.is_null()) return bytes;
  if (v.is_array()) {
    for (const Value& e : v.as_array()) bytes += estimated_value_bytes(e, depth);
    return bytes;
  }
  switch (v.type().base) {
    case CimType::kString: return bytes + v.as_string().size();
    case CimType::kObject:
      return depth < 4 && v.object_ptr() ? bytes + estimated_instance_bytes(*v.object_ptr(), depth + 1) : bytes;
    default: return bytes;
  }
}

}  // namespace

std::size_t estimated_bytes(const Instance& inst) {
  return estimated_instance_bytes(inst, 0);
}

}  // namespace pkgcast::cim
