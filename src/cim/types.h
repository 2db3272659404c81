// CIM types: the property types Configuration Manager's classes use, scalar or array.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pkgcast::cim {

enum class CimType : std::uint8_t {
  kBoolean,
  kSint8,
  kUint8,
  kSint16,
  kUint16,
  kSint32,
  kUint32,
  kSint64,
  kUint64,
  kReal32,
  kReal64,
  kString,
  kDateTime,
  kReference,
  kObject,  // an embedded instance
};

struct Type {
  CimType base = CimType::kString;
  bool array = false;

  friend bool operator==(const Type&, const Type&) = default;
};

bool is_signed_integer(CimType t);
bool is_unsigned_integer(CimType t);
inline bool is_integer(CimType t) { return is_signed_integer(t) || is_unsigned_integer(t); }
inline bool is_real(CimType t) { return t == CimType::kReal32 || t == CimType::kReal64; }
inline bool is_numeric(CimType t) { return is_integer(t) || is_real(t); }

// Inclusive range of an integer type, as int64/uint64 bounds.
std::int64_t integer_min(CimType t);
std::uint64_t integer_max(CimType t);

// MOF names: "boolean", "uint32", "datetime", "object", ...; arrays print as "uint32[]".
std::string_view type_name(CimType t);
std::string type_name(Type t);
std::optional<Type> parse_type_name(std::string_view name);

}  // namespace pkgcast::cim
