// A CIM value: NULL, or a typed scalar, or a typed array. Values are immutable once built and cheap to copy
// except for strings; embedded objects and arrays share their payload.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cim/datetime.h"
#include "cim/types.h"
#include "core/result.h"

namespace pkgcast::cim {

class Instance;
class Value;
using ValueArray = std::vector<Value>;

class Value {
 public:
  // NULL.
  Value() = default;

  static Value boolean(bool b);
  // Precondition: t is a signed integer type and v in its range.
  static Value sint(CimType t, std::int64_t v);
  // Precondition: t is an unsigned integer type and v in its range.
  static Value uint(CimType t, std::uint64_t v);
  static Value uint32(std::uint32_t v) { return uint(CimType::kUint32, v); }
  static Value uint64(std::uint64_t v) { return uint(CimType::kUint64, v); }
  static Value real(CimType t, double v);
  static Value string(std::string s);
  static Value datetime(DateTime t);
  // A reference holds an object path in text form.
  static Value reference(std::string path);
  static Value object(std::shared_ptr<const Instance> inst);
  // Precondition: every element is NULL or of element type `element`.
  static Value array(CimType element, ValueArray items);

  bool is_null() const { return std::holds_alternative<std::monostate>(v_); }
  // Only meaningful when !is_null().
  Type type() const { return type_; }
  bool is_array() const { return !is_null() && type_.array; }

  // Accessors; each has the precondition that the value holds that kind.
  bool as_bool() const { return std::get<bool>(v_); }
  std::int64_t as_sint() const { return std::get<std::int64_t>(v_); }
  std::uint64_t as_uint() const { return std::get<std::uint64_t>(v_); }
  double as_real() const { return std::get<double>(v_); }
  // For kString and kReference.
  const std::string& as_string() const { return std::get<std::string>(v_); }
  DateTime as_datetime() const { return std::get<DateTime>(v_); }
  const Instance& as_object() const { return *std::get<std::shared_ptr<const Instance>>(v_); }
  const std::shared_ptr<const Instance>& object_ptr() const { return std::get<std::shared_ptr<const Instance>>(v_); }
  const ValueArray& as_array() const { return *std::get<std::shared_ptr<const ValueArray>>(v_); }

  // Human text for tables: "TRUE", "42", "ABC00001", ISO-8601 datetimes, "{a, b}" arrays, "NULL".
  std::string to_display() const;

  // Structural equality: same type and same payload (strings compare by bytes). NULL == NULL.
  friend bool operator==(const Value& a, const Value& b);

 private:
  Type type_{};
  std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double, std::string, DateTime,
               std::shared_ptr<const Instance>, std::shared_ptr<const ValueArray>>
      v_;
};

// Converts v to type `to` where CIM allows it without loss: integer widths (range checked), integer to real,
// string to datetime (either text form), string to reference, NULL to anything. Otherwise WBEM_E_TYPE_MISMATCH
// or WBEM_E_VALUE_OUT_OF_RANGE.
Result<Value> coerce(const Value& v, Type to);

}  // namespace pkgcast::cim
