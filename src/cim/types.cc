#include "cim/types.h"

#include <array>
#include <limits>

#include "core/strings.h"

namespace pkgcast::cim {
namespace {

constexpr std::array<std::string_view, 15> kTypeNames{
    "boolean", "sint8",  "uint8",  "sint16", "uint16",   "sint32",    "uint32", "sint64",
    "uint64",  "real32", "real64", "string", "datetime", "reference", "object",
};

}  // namespace

bool is_signed_integer(CimType t) {
  return t == CimType::kSint8 || t == CimType::kSint16 || t == CimType::kSint32 || t == CimType::kSint64;
}

bool is_unsigned_integer(CimType t) {
  return t == CimType::kUint8 || t == CimType::kUint16 || t == CimType::kUint32 || t == CimType::kUint64;
}

std::int64_t integer_min(CimType t) {
  switch (t) {
    case CimType::kSint8: return std::numeric_limits<std::int8_t>::min();
    case CimType::kSint16: return std::numeric_limits<std::int16_t>::min();
    case CimType::kSint32: return std::numeric_limits<std::int32_t>::min();
    case CimType::kSint64: return std::numeric_limits<std::int64_t>::min();
    default: return 0;
  }
}

std::uint64_t integer_max(CimType t) {
  switch (t) {
    case CimType::kSint8: return std::numeric_limits<std::int8_t>::max();
    case CimType::kSint16: return std::numeric_limits<std::int16_t>::max();
    case CimType::kSint32: return std::numeric_limits<std::int32_t>::max();
    case CimType::kSint64: return std::numeric_limits<std::int64_t>::max();
    case CimType::kUint8: return std::numeric_limits<std::uint8_t>::max();
    case CimType::kUint16: return std::numeric_limits<std::uint16_t>::max();
    case CimType::kUint32: return std::numeric_limits<std::uint32_t>::max();
    case CimType::kUint64: return std::numeric_limits<std::uint64_t>::max();
    default: return 0;
  }
}

std::string_view type_name(CimType t) { return kTypeNames[static_cast<std::size_t>(t)]; }

std::string type_name(Type t) {
  std::string out(type_name(t.base));
  if (t.array) out += "[]";
  return out;
}

std::optional<Type> parse_type_name(std::string_view name) {
  Type t;
  if (name.size() > 2 && name.substr(name.size() - 2) == "[]") {
    t.array = true;
    name.remove_suffix(2);
  }
  for (std::size_t i = 0; i < kTypeNames.size(); ++i) {
    if (iequals(kTypeNames[i], name)) {
      t.base = static_cast<CimType>(i);
      return t;
    }
  }
  return std::nullopt;
}

}  // namespace pkgcast::cim
