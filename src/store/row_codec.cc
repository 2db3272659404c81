#include "store/row_codec.h"

#include <cmath>
#include <limits>

#include "core/strings.h"

namespace pkgcast::store {
namespace {

constexpr auto kMaxStored = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

Error corrupt(const TableInfo& t, std::size_t i, std::string_view why) {
  return make_error(WbemCode::kFailed, "stored value of " + t.cls->name() + "." + t.cls->property(i).name + " " +
                                           std::string(why) + " (corrupt database?)");
}

Result<std::string> json_text(const cim::Json& j, std::string_view what) {
  try {
    return j.dump();
  } catch (const std::exception& e) {  // nlohmann refuses invalid UTF-8
    return make_error(WbemCode::kInvalidParameter, std::string(what) + ": " + e.what());
  }
}

Result<cim::Value> decode_column(const TableInfo& t, std::size_t i, const SqlRow& row,
                                 const cim::ClassRegistry& registry) {
  using cim::CimType;
  const int col = static_cast<int>(i);  // precondition: not NULL (decode_row leaves NULL columns unset)
  const cim::Type type = t.cls->property(i).type;
  if (type.array || type.base == CimType::kObject) {
    const auto j = cim::Json::parse(row.as_text(col), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return corrupt(t, i, "is not JSON");
    return cim::value_from_json(j, type, registry);
  }
  switch (type.base) {
    case CimType::kString: return cim::Value::string(std::string(row.as_text(col)));
    case CimType::kReference: return cim::Value::reference(std::string(row.as_text(col)));
    case CimType::kBoolean: {
      PKG_ASSIGN_OR_RETURN(bool b, row.as_bool(col));
      return cim::Value::boolean(b);
    }
    case CimType::kDateTime: {
      PKG_ASSIGN_OR_RETURN(std::int64_t us, row.as_int(col));
      return cim::Value::datetime(cim::DateTime::from_unix_micros(us));
    }
    case CimType::kReal32:
    case CimType::kReal64: {
      PKG_ASSIGN_OR_RETURN(double d, row.as_real(col));
      return cim::Value::real(type.base, d);
    }
    default: break;
  }
  PKG_ASSIGN_OR_RETURN(std::int64_t n, row.as_int(col));
  if (cim::is_signed_integer(type.base)) {
    if (n < cim::integer_min(type.base) || n > static_cast<std::int64_t>(cim::integer_max(type.base))) {
      return corrupt(t, i, "is out of range");
    }
    return cim::Value::sint(type.base, n);
  }
  if (n < 0 || static_cast<std::uint64_t>(n) > cim::integer_max(type.base)) return corrupt(t, i, "is out of range");
  return cim::Value::uint(type.base, static_cast<std::uint64_t>(n));
}

}  // namespace

Status check_text(std::string_view s, std::string_view what) {
  if (s.find('\0') != std::string_view::npos) {
    return make_error(WbemCode::kInvalidParameter, std::string(what) + ": text holds a NUL character");
  }
  if (!is_valid_utf8(s)) return make_error(WbemCode::kInvalidParameter, std::string(what) + ": text is not valid UTF-8");
  return ok_status();
}

Result<SqlParam> encode_value(const cim::Value& v, cim::Type type, std::string_view property) {
  using cim::CimType;
  if (v.is_null()) return SqlParam(SqlNull{});
  if (v.type() != type) {
    auto c = cim::coerce(v, type);
    if (!c.ok()) {
      Error e = std::move(c).error();
      e.message = std::string(property) + ": " + e.message;
      return e;
    }
    return encode_value(*c, type, property);
  }
  if (type.array || type.base == CimType::kObject) {
    PKG_ASSIGN_OR_RETURN(std::string text, json_text(cim::to_json(v), property));
    return SqlParam(std::move(text));
  }
  switch (type.base) {
    case CimType::kString:
    case CimType::kReference:
      PKG_TRY(check_text(v.as_string(), property));
      return SqlParam(v.as_string());
    case CimType::kBoolean: return SqlParam(v.as_bool());
    case CimType::kDateTime: return SqlParam(v.as_datetime().unix_micros());
    case CimType::kReal32:
    case CimType::kReal64:
      if (std::isnan(v.as_real())) {
        return make_error(WbemCode::kInvalidParameter, std::string(property) + ": NaN cannot be stored");
      }
      return SqlParam(v.as_real());
    default: break;
  }
  if (cim::is_signed_integer(type.base)) return SqlParam(v.as_sint());
  if (v.as_uint() > kMaxStored) {
    return make_error(WbemCode::kValueOutOfRange, std::string(property) + ": " + std::to_string(v.as_uint()) +
                                                      " is above 9223372036854775807, the largest integer the "
                                                      "store keeps");
  }
  return SqlParam(static_cast<std::int64_t>(v.as_uint()));
}

Result<EncodedInstance> encode_instance(const TableInfo& table, const cim::Instance& inst) {
  const cim::ClassDef& cls = *table.cls;
  EncodedInstance out{cim::Instance(cls), {}};
  out.params.reserve(cls.properties().size());
  for (std::size_t i = 0; i < cls.properties().size(); ++i) {
    const cim::PropertyDef& p = cls.property(i);
    const cim::Value& v = inst.get(i);
    if (p.key && v.is_null()) {
      return make_error(WbemCode::kIllegalNull, "key property " + cls.name() + "." + p.name + " is NULL");
    }
    cim::Value stored = v;
    if (!v.is_null() && v.type() != p.type) {
      auto c = cim::coerce(v, p.type);
      if (!c.ok()) {
        Error e = std::move(c).error();
        e.message = cls.name() + "." + p.name + ": " + e.message;
        return e;
      }
      stored = std::move(c).value();
    }
    PKG_ASSIGN_OR_RETURN(SqlParam param, encode_value(stored, p.type, cls.name() + "." + p.name));
    out.params.push_back(std::move(param));
    out.instance.set(i, std::move(stored));
  }
  return out;
}

Result<SqlParams> encode_key(const TableInfo& table, const std::vector<cim::Value>& key) {
  const cim::ClassDef& cls = *table.cls;
  if (key.size() != cls.key_indices().size()) {
    return make_error(WbemCode::kInvalidParameter, "class " + cls.name() + " has " +
                                                       std::to_string(cls.key_indices().size()) +
                                                       " key properties, got " + std::to_string(key.size()) + " values");
  }
  SqlParams params;
  for (std::size_t k = 0; k < key.size(); ++k) {
    const cim::PropertyDef& p = cls.property(cls.key_indices()[k]);
    if (key[k].is_null()) {
      return make_error(WbemCode::kInvalidParameter, "key value for " + cls.name() + "." + p.name + " is NULL");
    }
    PKG_ASSIGN_OR_RETURN(SqlParam param, encode_value(key[k], p.type, cls.name() + "." + p.name));
    params.push_back(std::move(param));
  }
  return params;
}

Result<cim::Instance> decode_row(const TableInfo& table, const SqlRow& row, const cim::ClassRegistry& registry) {
  cim::Instance inst(*table.cls);
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    if (row.is_null(static_cast<int>(i))) {
      inst.set(i, cim::Value());  // NULL in the row, whatever default a new instance starts with
      continue;
    }
    PKG_ASSIGN_OR_RETURN(cim::Value v, decode_column(table, i, row, registry));
    inst.set(i, std::move(v));
  }
  return inst;
}

Result<std::string> instance_to_json_text(const cim::Instance& inst) {
  return json_text(cim::to_json(inst), inst.class_name());
}

Result<cim::Instance> instance_from_json_text(std::string_view text, const cim::ClassRegistry& registry) {
  const auto j = cim::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(WbemCode::kFailed, "journal entry is not JSON (corrupt database?)");
  return cim::instance_from_json(j, registry);
}

}  // namespace pkgcast::store
