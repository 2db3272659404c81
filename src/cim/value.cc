#include "cim/value.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "cim/instance.h"

namespace pkgcast::cim {

Value Value::boolean(bool b) {
  Value v;
  v.type_ = {CimType::kBoolean, false};
  v.v_ = b;
  return v;
}

Value Value::sint(CimType t, std::int64_t x) {
  Value v;
  v.type_ = {t, false};
  v.v_ = x;
  return v;
}

Value Value::uint(CimType t, std::uint64_t x) {
  Value v;
  v.type_ = {t, false};
  v.v_ = x;
  return v;
}

Value Value::real(CimType t, double x) {
  Value v;
  v.type_ = {t, false};
  v.v_ = x;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.type_ = {CimType::kString, false};
  v.v_ = std::move(s);
  return v;
}

Value Value::datetime(DateTime t) {
  Value v;
  v.type_ = {CimType::kDateTime, false};
  v.v_ = t;
  return v;
}

Value Value::reference(std::string path) {
  Value v;
  v.type_ = {CimType::kReference, false};
  v.v_ = std::move(path);
  return v;
}

Value Value::object(std::shared_ptr<const Instance> inst) {
  if (!inst) return Value();
  Value v;
  v.type_ = {CimType::kObject, false};
  v.v_ = std::move(inst);
  return v;
}

Value Value::array(CimType element, ValueArray items) {
  Value v;
  v.type_ = {element, true};
  v.v_ = std::make_shared<const ValueArray>(std::move(items));
  return v;
}

namespace {

std::string real_text(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  // The shortest text that reads back the same value.
  for (int precision = 1; precision <= 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, d);
    if (std::strtod(shorter, nullptr) == d) return shorter;
  }
  return buf;
}

}  // namespace

std::string Value::to_display() const {
  if (is_null()) return "NULL";
  if (type_.array) {
    std::string out = "{";
    const auto& items = as_array();
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i) out += ", ";
      out += items[i].to_display();
    }
    return out + "}";
  }
  switch (type_.base) {
    case CimType::kBoolean: return as_bool() ? "TRUE" : "FALSE";
    case CimType::kSint8:
    case CimType::kSint16:
    case CimType::kSint32:
    case CimType::kSint64: return std::to_string(as_sint());
    case CimType::kUint8:
    case CimType::kUint16:
    case CimType::kUint32:
    case CimType::kUint64: return std::to_string(as_uint());
    case CimType::kReal32:
    case CimType::kReal64: return real_text(as_real());
    case CimType::kString:
    case CimType::kReference: return as_string();
    case CimType::kDateTime: return as_datetime().to_iso8601();
    case CimType::kObject: return as_object().path();
  }
  return "";
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_null() || b.is_null()) return a.is_null() == b.is_null();
  if (a.type_ != b.type_) return false;
  if (a.type_.array) return a.as_array() == b.as_array();
  if (a.type_.base == CimType::kObject) return a.as_object() == b.as_object();
  return a.v_ == b.v_;
}

namespace {

Error mismatch(const Value& v, Type to) {
  return make_error(WbemCode::kTypeMismatch,
                    "cannot convert " + type_name(v.type()) + " value '" + v.to_display() + "' to " + type_name(to));
}

Error out_of_range(const Value& v, Type to) {
  return make_error(WbemCode::kValueOutOfRange, "value " + v.to_display() + " is out of range for " + type_name(to));
}

Result<Value> coerce_scalar(const Value& v, CimType to) {
  const CimType from = v.type().base;
  const Type target{to, false};
  if (from == to) return v;
  if (is_integer(to) && is_integer(from)) {
    if (is_signed_integer(from)) {
      const std::int64_t x = v.as_sint();
      if (is_signed_integer(to)) {
        if (x < integer_min(to) || x > static_cast<std::int64_t>(integer_max(to))) return out_of_range(v, target);
        return Value::sint(to, x);
      }
      if (x < 0 || static_cast<std::uint64_t>(x) > integer_max(to)) return out_of_range(v, target);
      return Value::uint(to, static_cast<std::uint64_t>(x));
    }
    const std::uint64_t x = v.as_uint();
    if (x > integer_max(to)) return out_of_range(v, target);
    if (is_signed_integer(to)) return Value::sint(to, static_cast<std::int64_t>(x));
    return Value::uint(to, x);
  }
  if (is_real(to)) {
    if (is_signed_integer(from)) return Value::real(to, static_cast<double>(v.as_sint()));
    if (is_unsigned_integer(from)) return Value::real(to, static_cast<double>(v.as_uint()));
    if (is_real(from)) return Value::real(to, v.as_real());
  }
  if (is_integer(to) && is_real(from)) {
    // A real converts to an integer only when it is whole and in range (JSON numbers such as 5.0).
    const double d = v.as_real();
    if (!std::isfinite(d) || std::trunc(d) != d) return mismatch(v, target);
    if (is_signed_integer(to)) {
      if (d < static_cast<double>(integer_min(to)) || d > static_cast<double>(integer_max(to))) {
        return out_of_range(v, target);
      }
      return Value::sint(to, static_cast<std::int64_t>(d));
    }
    if (d < 0 || d > static_cast<double>(integer_max(to))) return out_of_range(v, target);
    return Value::uint(to, static_cast<std::uint64_t>(d));
  }
  if (to == CimType::kDateTime && from == CimType::kString) {
    PKG_ASSIGN_OR_RETURN(DateTime t, DateTime::parse(v.as_string()));
    return Value::datetime(t);
  }
  if (to == CimType::kReference && from == CimType::kString) return Value::reference(v.as_string());
  if (to == CimType::kString && from == CimType::kReference) return Value::string(v.as_string());
  return mismatch(v, target);
}

}  // namespace

Result<Value> coerce(const Value& v, Type to) {
  if (v.is_null()) return v;
  if (v.type().array != to.array) return mismatch(v, to);
  if (!to.array) return coerce_scalar(v, to.base);
  if (v.type() == to) return v;
  ValueArray out;
  out.reserve(v.as_array().size());
  for (const Value& item : v.as_array()) {
    if (item.is_null()) {
      out.push_back(item);
      continue;
    }
    PKG_ASSIGN_OR_RETURN(Value converted, coerce_scalar(item, to.base));
    out.push_back(std::move(converted));
  }
  return Value::array(to.base, std::move(out));
}

}  // namespace pkgcast::cim
