#include "pkgcast/instance.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "cim/datetime.h"
#include "pkgcast/error.h"

namespace pkgcast {
namespace {

using Json = nlohmann::ordered_json;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x != y && std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::kNull: return "NULL";
    case Value::Kind::kBool: return "a boolean";
    case Value::Kind::kSigned:
    case Value::Kind::kUnsigned: return "an integer";
    case Value::Kind::kReal: return "a real";
    case Value::Kind::kString: return "a string";
    case Value::Kind::kObject: return "an object";
    case Value::Kind::kArray: return "an array";
  }
  return "a value";
}

Error mismatch(const Value& v, std::string_view wanted) {
  return make_error(WbemCode::kTypeMismatch,
                    std::string("value is ") + kind_name(v.kind()) + ", not " + std::string(wanted));
}

template <typename T>
Result<T> to_integer(const Value& v, std::string_view wanted) {
  if (v.kind() == Value::Kind::kSigned) {
    const std::int64_t x = v.as_int64();
    if constexpr (std::is_signed_v<T>) {
      if (x >= std::numeric_limits<T>::min() && x <= std::numeric_limits<T>::max()) return static_cast<T>(x);
    } else {
      if (x >= 0 && static_cast<std::uint64_t>(x) <= std::numeric_limits<T>::max()) return static_cast<T>(x);
    }
    return make_error(WbemCode::kValueOutOfRange, std::to_string(x) + " does not fit " + std::string(wanted));
  }
  if (v.kind() == Value::Kind::kUnsigned) {
    const std::uint64_t x = v.as_uint64();
    if (x <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(x);
    return make_error(WbemCode::kValueOutOfRange, std::to_string(x) + " does not fit " + std::string(wanted));
  }
  return mismatch(v, wanted);
}

Result<Value> from_json(const Json& j, int depth);

Result<Instance> object_from_json(const Json& j, int depth) {
  if (depth > Instance::kMaxObjectDepth) {
    return make_error(WbemCode::kInvalidObject,
                      "objects nest deeper than " + std::to_string(Instance::kMaxObjectDepth) + " levels");
  }
  InstanceBuilder b;
  for (auto it = j.begin(); it != j.end(); ++it) {
    PKG_ASSIGN_OR_RETURN(Value v, from_json(it.value(), depth + 1));
    b.add(it.key(), std::move(v));
  }
  return std::move(b).build();
}

Result<Value> from_json(const Json& j, int depth) {
  switch (j.type()) {
    case Json::value_t::null: return Value();
    case Json::value_t::boolean: return Value::boolean(j.get<bool>());
    case Json::value_t::number_integer: return Value::signed_integer(j.get<std::int64_t>());
    case Json::value_t::number_unsigned: return Value::unsigned_integer(j.get<std::uint64_t>());
    case Json::value_t::number_float: return Value::real(j.get<double>());
    case Json::value_t::string: return Value::string(j.get<std::string>());
    case Json::value_t::object: {
      PKG_ASSIGN_OR_RETURN(Instance inst, object_from_json(j, depth));
      return Value::object(std::move(inst));
    }
    case Json::value_t::array: {
      if (depth > Instance::kMaxObjectDepth) {
        return make_error(WbemCode::kInvalidObject,
                          "arrays nest deeper than " + std::to_string(Instance::kMaxObjectDepth) + " levels");
      }
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) {
        PKG_ASSIGN_OR_RETURN(Value v, from_json(e, depth + 1));
        items.push_back(std::move(v));
      }
      return Value::array(std::move(items));
    }
    default: return make_error(WbemCode::kInvalidObject, "unexpected JSON value");
  }
}

Json to_json_value(const Value& v);

Json to_json_object(const Instance& inst) {
  Json j = Json::object();
  for (const auto& [name, value] : inst.properties()) j[name] = to_json_value(value);
  return j;
}

Json to_json_value(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull: return nullptr;
    case Value::Kind::kBool: return v.as_bool();
    case Value::Kind::kSigned: return v.as_int64();
    case Value::Kind::kUnsigned: return v.as_uint64();
    case Value::Kind::kReal: return v.as_double();
    case Value::Kind::kString: return v.as_string();
    case Value::Kind::kObject: return to_json_object(v.as_object());
    case Value::Kind::kArray: {
      Json a = Json::array();
      for (const auto& e : v.as_array()) a.push_back(to_json_value(e));
      return a;
    }
  }
  return nullptr;
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

Value Value::boolean(bool b) {
  Value v;
  v.v_ = b;
  return v;
}
Value Value::signed_integer(std::int64_t x) {
  Value v;
  v.v_ = x;
  return v;
}
Value Value::unsigned_integer(std::uint64_t x) {
  Value v;
  v.v_ = x;
  return v;
}
Value Value::real(double x) {
  Value v;
  v.v_ = x;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.v_ = std::move(s);
  return v;
}
Value Value::object(Instance inst) {
  Value v;
  v.v_ = std::make_shared<const Instance>(std::move(inst));
  return v;
}
Value Value::array(std::vector<Value> items) {
  Value v;
  v.v_ = std::make_shared<const std::vector<Value>>(std::move(items));
  return v;
}

Result<bool> Value::to_bool() const {
  if (kind() == Kind::kBool) return std::get<bool>(v_);
  return mismatch(*this, "a boolean");
}
Result<std::int32_t> Value::to_int32() const { return to_integer<std::int32_t>(*this, "sint32"); }
Result<std::uint32_t> Value::to_uint32() const { return to_integer<std::uint32_t>(*this, "uint32"); }
Result<std::int64_t> Value::to_int64() const { return to_integer<std::int64_t>(*this, "sint64"); }
Result<std::uint64_t> Value::to_uint64() const { return to_integer<std::uint64_t>(*this, "uint64"); }

Result<double> Value::to_double() const {
  switch (kind()) {
    case Kind::kReal: return std::get<double>(v_);
    case Kind::kSigned: return static_cast<double>(std::get<std::int64_t>(v_));
    case Kind::kUnsigned: return static_cast<double>(std::get<std::uint64_t>(v_));
    default: return mismatch(*this, "a number");
  }
}

Result<std::string> Value::to_string_value() const {
  if (kind() == Kind::kString) return std::get<std::string>(v_);
  return mismatch(*this, "a string");
}

Result<Value::TimePoint> Value::to_datetime() const {
  if (kind() != Kind::kString) return mismatch(*this, "a datetime string");
  auto dt = cim::DateTime::parse(std::get<std::string>(v_));
  if (!dt.ok()) return make_error(WbemCode::kTypeMismatch, dt.error().message);
  return TimePoint(std::chrono::microseconds(dt->unix_micros()));
}

bool Value::as_bool() const { return value_or_throw(to_bool()); }
std::int32_t Value::as_int32() const { return value_or_throw(to_int32()); }
std::uint32_t Value::as_uint32() const { return value_or_throw(to_uint32()); }
std::int64_t Value::as_int64() const {
  if (kind() == Kind::kSigned) return std::get<std::int64_t>(v_);
  return value_or_throw(to_int64());
}
std::uint64_t Value::as_uint64() const {
  if (kind() == Kind::kUnsigned) return std::get<std::uint64_t>(v_);
  return value_or_throw(to_uint64());
}
double Value::as_double() const { return value_or_throw(to_double()); }
const std::string& Value::as_string() const {
  if (kind() != Kind::kString) throw ManagementError(mismatch(*this, "a string"));
  return std::get<std::string>(v_);
}
Value::TimePoint Value::as_datetime() const { return value_or_throw(to_datetime()); }
const Instance& Value::as_object() const {
  if (kind() != Kind::kObject) throw ManagementError(mismatch(*this, "an object"));
  return *std::get<std::shared_ptr<const Instance>>(v_);
}
const std::vector<Value>& Value::as_array() const {
  if (kind() != Kind::kArray) throw ManagementError(mismatch(*this, "an array"));
  return *std::get<std::shared_ptr<const std::vector<Value>>>(v_);
}

const Value& Value::operator[](std::string_view name) const { return as_object()[name]; }

std::string Value::to_string() const {
  switch (kind()) {
    case Kind::kNull: return "NULL";
    case Kind::kBool: return std::get<bool>(v_) ? "TRUE" : "FALSE";
    case Kind::kString: return std::get<std::string>(v_);
    case Kind::kArray: {
      std::string out = "{";
      const auto& items = as_array();
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ", ";
        out += items[i].to_string();
      }
      return out + "}";
    }
    default: return to_json();
  }
}

std::string Value::to_json() const { return dump(to_json_value(*this)); }

bool operator==(const Value& a, const Value& b) {
  if (a.v_.index() != b.v_.index()) return false;
  switch (a.kind()) {
    case Value::Kind::kObject: return a.as_object() == b.as_object();
    case Value::Kind::kArray: return a.as_array() == b.as_array();
    default: return a.v_ == b.v_;
  }
}

Result<Instance> Instance::from_json(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(WbemCode::kInvalidObject, "not JSON");
  if (!j.is_object()) return make_error(WbemCode::kInvalidObject, "not a JSON object");
  return object_from_json(j, 1);
}

const Value* Instance::find(std::string_view name) const {
  for (const auto& [n, v] : properties_) {
    if (iequals(n, name)) return &v;
  }
  return nullptr;
}

const Value& Instance::operator[](std::string_view name) const {
  if (const Value* v = find(name)) return *v;
  throw ManagementError(make_error(
      WbemCode::kNotFound,
      "no property '" + std::string(name) + "' on " + (class_name_.empty() ? std::string("the object") : class_name_)));
}

std::string Instance::to_json() const { return dump(to_json_object(*this)); }

bool operator==(const Instance& a, const Instance& b) { return a.properties_ == b.properties_; }

InstanceBuilder& InstanceBuilder::add(std::string name, Value value) {
  if (iequals(name, "__CLASS") && value.kind() == Value::Kind::kString) inst_.class_name_ = value.as_string();
  if (iequals(name, "__REVISION") && value.kind() == Value::Kind::kUnsigned) inst_.revision_ = value.as_uint64();
  inst_.properties_.emplace_back(std::move(name), std::move(value));
  return *this;
}

Instance InstanceBuilder::build() && { return std::move(inst_); }

}  // namespace pkgcast
