#include "cim/json.h"

#include <cmath>

namespace pkgcast::cim {
namespace {

// Embedded objects nest (an event holds its target instance); deeper than this is refused, not recursed into.
constexpr int kMaxObjectDepth = 16;

Json scalar_to_json(const Value& v) {
  switch (v.type().base) {
    case CimType::kBoolean: return v.as_bool();
    case CimType::kSint8:
    case CimType::kSint16:
    case CimType::kSint32:
    case CimType::kSint64: return v.as_sint();
    case CimType::kUint8:
    case CimType::kUint16:
    case CimType::kUint32:
    case CimType::kUint64: return v.as_uint();
    case CimType::kReal32:
    case CimType::kReal64: return std::isfinite(v.as_real()) ? Json(v.as_real()) : Json(nullptr);
    case CimType::kString:
    case CimType::kReference: return v.as_string();
    case CimType::kDateTime: return v.as_datetime().to_iso8601();
    case CimType::kObject: return to_json(v.as_object());
  }
  return nullptr;
}

Error mismatch(const Json& j, Type type) {
  std::string shown = j.dump();
  if (shown.size() > 40) shown = shown.substr(0, 40) + "...";
  return make_error(WbemCode::kTypeMismatch, "expected " + type_name(type) + ", got " + shown);
}

Result<Instance> decode_instance(const Json& j, const ClassRegistry& registry, int depth);

Result<Value> decode_scalar(const Json& j, CimType t, const ClassRegistry& registry, int depth) {
  const Type type{t, false};
  if (j.is_null()) return Value();
  switch (t) {
    case CimType::kBoolean:
      if (!j.is_boolean()) return mismatch(j, type);
      return Value::boolean(j.get<bool>());
    case CimType::kSint8:
    case CimType::kSint16:
    case CimType::kSint32:
    case CimType::kSint64:
    case CimType::kUint8:
    case CimType::kUint16:
    case CimType::kUint32:
    case CimType::kUint64:
    case CimType::kReal32:
    case CimType::kReal64: {
      Value raw;
      if (j.is_number_unsigned()) {
        raw = Value::uint(CimType::kUint64, j.get<std::uint64_t>());
      } else if (j.is_number_integer()) {
        raw = Value::sint(CimType::kSint64, j.get<std::int64_t>());
      } else if (j.is_number_float()) {
        raw = Value::real(CimType::kReal64, j.get<double>());
      } else {
        return mismatch(j, type);
      }
      return coerce(raw, type);
    }
    case CimType::kString:
      if (!j.is_string()) return mismatch(j, type);
      return Value::string(j.get<std::string>());
    case CimType::kReference:
      if (!j.is_string()) return mismatch(j, type);
      return Value::reference(j.get<std::string>());
    case CimType::kDateTime: {
      if (!j.is_string()) return mismatch(j, type);
      PKG_ASSIGN_OR_RETURN(DateTime dt, DateTime::parse(j.get<std::string>()));
      return Value::datetime(dt);
    }
    case CimType::kObject: {
      if (!j.is_object()) return mismatch(j, type);
      PKG_ASSIGN_OR_RETURN(Instance inst, decode_instance(j, registry, depth + 1));
      return Value::object(std::make_shared<const Instance>(std::move(inst)));
    }
  }
  return mismatch(j, type);
}

Result<Value> decode_value(const Json& j, Type type, const ClassRegistry& registry, int depth) {
  if (j.is_null()) return Value();
  if (!type.array) return decode_scalar(j, type.base, registry, depth);
  if (!j.is_array()) return mismatch(j, type);
  ValueArray items;
  items.reserve(j.size());
  for (const Json& item : j) {
    PKG_ASSIGN_OR_RETURN(Value v, decode_scalar(item, type.base, registry, depth));
    items.push_back(std::move(v));
  }
  return Value::array(type.base, std::move(items));
}

Result<Instance> decode_instance(const Json& j, const ClassRegistry& registry, int depth) {
  if (depth > kMaxObjectDepth) {
    return make_error(WbemCode::kQuotaViolation,
                      "embedded objects nest deeper than " + std::to_string(kMaxObjectDepth) + " levels");
  }
  if (!j.is_object()) return make_error(WbemCode::kInvalidObject, "an instance must be a JSON object");
  auto cls_it = j.find("__CLASS");
  if (cls_it == j.end() || !cls_it->is_string()) {
    return make_error(WbemCode::kInvalidObject, "an instance needs a \"__CLASS\" string");
  }
  PKG_ASSIGN_OR_RETURN(const ClassDef* cls, registry.get(cls_it->get<std::string>()));
  Instance inst(*cls);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name.size() > 2 && name[0] == '_' && name[1] == '_') {
      if (iequals(name, "__REVISION")) {
        if (!it->is_number_unsigned()) return mismatch(*it, Type{CimType::kUint64, false});
        inst.set_revision(it->get<std::uint64_t>());
        continue;
      }
      if (is_system_property(name)) continue;
    }
    auto index = cls->find_property(name);
    if (!index) {
      return make_error(WbemCode::kInvalidProperty, "class '" + cls->name() + "' has no property '" + name + "'");
    }
    const PropertyDef& def = cls->property(*index);
    auto value = decode_value(*it, def.type, registry, depth);
    if (!value.ok()) {
      Error e = std::move(value).error();
      e.message = cls->name() + "." + def.name + ": " + e.message;
      return e;
    }
    inst.set(*index, std::move(value).value());
  }
  return inst;
}

}  // namespace

Json to_json(const Value& v) {
  if (v.is_null()) return nullptr;
  if (!v.type().array) return scalar_to_json(v);
  Json arr = Json::array();
  for (const Value& item : v.as_array()) arr.push_back(item.is_null() ? Json(nullptr) : scalar_to_json(item));
  return arr;
}

Json to_json(const Instance& inst) {
  Json j = Json::object();
  j["__CLASS"] = inst.class_name();
  if (inst.revision()) j["__REVISION"] = *inst.revision();
  const auto& props = inst.class_def().properties();
  for (std::size_t i = 0; i < props.size(); ++i) j[props[i].name] = to_json(inst.get(i));
  return j;
}

Result<Instance> instance_from_json(const Json& j, const ClassRegistry& registry) {
  return decode_instance(j, registry, 0);
}

Result<Value> value_from_json(const Json& j, Type type, const ClassRegistry& registry) {
  return decode_value(j, type, registry, 0);
}

}  // namespace pkgcast::cim
