// What a client reads: an instance or an event as the server sent it (design.md section 6's JSON), with
// WMI-style access to properties and embedded objects:
//   const pkgcast::Instance& e = ...;                 // an __InstanceModificationEvent
//   std::uint32_t installed = e["TargetInstance"]["Installed"].as_uint32();
//   std::string name = e["TargetInstance"]["Name"].as_string();
//   e.class_name();  e.revision();                    // __CLASS, __REVISION
// Property names are case-insensitive, as in WMI. The client knows no class definitions: values keep the JSON's
// kinds, and the typed getters convert where no information is lost (an integer to a wider integer or a double,
// an ISO-8601 or DMTF string to a time point). Instances and values are immutable and cheap to copy (embedded
// objects and arrays are shared); safe to read from several threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/result.h"

namespace pkgcast {

class Instance;

class Value {
 public:
  enum class Kind { kNull, kBool, kSigned, kUnsigned, kReal, kString, kObject, kArray };
  using TimePoint = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;

  Value() = default;  // NULL
  static Value boolean(bool b);
  static Value signed_integer(std::int64_t v);
  static Value unsigned_integer(std::uint64_t v);
  static Value real(double v);
  static Value string(std::string s);
  static Value object(Instance inst);
  static Value array(std::vector<Value> items);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }

  // Non-throwing conversions: WBEM_E_TYPE_MISMATCH when the value is of another kind (NULL included),
  // WBEM_E_VALUE_OUT_OF_RANGE when an integer does not fit.
  Result<bool> to_bool() const;
  Result<std::int32_t> to_int32() const;
  Result<std::uint32_t> to_uint32() const;
  Result<std::int64_t> to_int64() const;
  Result<std::uint64_t> to_uint64() const;
  Result<double> to_double() const;
  Result<std::string> to_string_value() const;
  Result<TimePoint> to_datetime() const;

  // The same, throwing ManagementError.
  bool as_bool() const;
  std::int32_t as_int32() const;
  std::uint32_t as_uint32() const;
  std::int64_t as_int64() const;
  std::uint64_t as_uint64() const;
  double as_double() const;
  const std::string& as_string() const;
  TimePoint as_datetime() const;
  const Instance& as_object() const;
  const std::vector<Value>& as_array() const;

  // An embedded object's property: as_object()[name]. Throws ManagementError (WBEM_E_TYPE_MISMATCH when this is
  // not an object, WBEM_E_NOT_FOUND when it has no such property).
  const Value& operator[](std::string_view name) const;

  // Text for people: "TRUE", "42", "ABC00001", "{a, b}", "NULL"; an object as its JSON.
  std::string to_string() const;
  // The JSON form, as the server sent it.
  std::string to_json() const;

  friend bool operator==(const Value& a, const Value& b);

 private:
  std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double, std::string,
               std::shared_ptr<const Instance>, std::shared_ptr<const std::vector<Value>>>
      v_;
};

class Instance {
 public:
  Instance() = default;  // no class, no properties

  // Decodes one instance or event object. WBEM_E_INVALID_OBJECT for text that is not a JSON object (or nests
  // deeper than kMaxObjectDepth).
  static Result<Instance> from_json(std::string_view json);
  static constexpr int kMaxObjectDepth = 64;

  // __CLASS ("" when absent) and __REVISION (events; nullopt elsewhere).
  const std::string& class_name() const { return class_name_; }
  std::optional<std::uint64_t> revision() const { return revision_; }

  // A property by name, case-insensitively; system properties (__CLASS, __REVISION, ...) included.
  // operator[] throws ManagementError(WBEM_E_NOT_FOUND) for a name the object does not carry; find() returns
  // nullptr instead.
  const Value& operator[](std::string_view name) const;
  const Value* find(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }

  // Every member in the server's order, system properties included.
  const std::vector<std::pair<std::string, Value>>& properties() const { return properties_; }

  // The JSON object, as the server sent it (members in order).
  std::string to_json() const;

  friend bool operator==(const Instance& a, const Instance& b);

 private:
  friend class InstanceBuilder;
  std::string class_name_;
  std::optional<std::uint64_t> revision_;
  std::vector<std::pair<std::string, Value>> properties_;
};

// Builds instances member by member (the JSON decoder uses it; tests and programs may too).
class InstanceBuilder {
 public:
  // "__CLASS" sets class_name(), "__REVISION" (an unsigned integer) sets revision(); both stay properties too.
  InstanceBuilder& add(std::string name, Value value);
  Instance build() &&;

 private:
  Instance inst_;
};

}  // namespace pkgcast
