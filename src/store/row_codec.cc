#include "store/row_codec.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <limits>
#include <optional>

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

// The journal's JSON is written straight into a string rather than built as a cim::Json and dumped: it is written
// for every changed instance, and building the tree cost as much as everything else the journal does. The text is
// byte for byte cim::to_json(...).dump()'s (row_codec_test.cc checks it); reals, arrays and embedded objects, which
// the hot classes do not have, still go through cim::to_json.

// Eight bytes of text at once: true when none needs an escape or is outside ASCII (below 0x20, '"', '\\', 0x80
// and up). The tests are Bit Twiddling Hacks' haszero/hasless, exact for "is there such a byte" once no byte has
// its high bit set.
bool plain_word(std::uint64_t w) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  const auto has_zero = [](std::uint64_t x) { return (x - kOnes) & ~x & kHigh; };
  const std::uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
  return ((w & kHigh) | below_space | has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\'))) == 0;
}

bool plain_byte(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

// As nlohmann's dump() escapes (without ensure_ascii): quote, backslash and control characters; the rest as is.
// Invalid UTF-8 is refused, as dump() refuses it. This runs over every text value of every journaled instance,
// so plain text is passed over eight bytes at a time and only text with a byte above ASCII is validated.
Status append_json_string(std::string& out, std::string_view s, std::string_view what) {
  const std::size_t n = s.size();
  std::size_t plain = 0;  // a prefix of plain ASCII: a character boundary, valid UTF-8 on its own
  for (std::uint64_t w = 0; plain + 8 <= n; plain += 8) {
    std::memcpy(&w, s.data() + plain, 8);
    if (!plain_word(w)) break;
  }
  while (plain < n && plain_byte(static_cast<unsigned char>(s[plain]))) ++plain;
  if (plain < n && !is_valid_utf8(s.substr(plain))) {
    return make_error(WbemCode::kInvalidParameter, std::string(what) + ": text is not valid UTF-8");
  }
  out += '"';
  if (plain == n) {
    out += s;
    out += '"';
    return ok_status();
  }
  // Runs of bytes that need no escape are appended whole.
  std::size_t run = 0;
  for (std::size_t i = plain; i < n;) {
    if (std::uint64_t w = 0; i + 8 <= n) {
      std::memcpy(&w, s.data() + i, 8);
      if (plain_word(w)) {
        i += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(s[i++]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - 1 - run);
    run = i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
      }
    }
  }
  out.append(s.data() + run, n - run);
  out += '"';
  return ok_status();
}

template <typename Int>
void append_number(std::string& out, Int n) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, n).ptr;
  out.append(buf, end);
}

// A value of a type written here directly (every scalar but reals and objects, and arrays of those).
bool direct_json(cim::Type type) {
  return type.base != cim::CimType::kReal32 && type.base != cim::CimType::kReal64 &&
         type.base != cim::CimType::kObject;
}

// A non-NULL scalar of a direct_json type.
Status append_json_scalar(std::string& out, const cim::Value& v, std::string_view what) {
  using cim::CimType;
  switch (v.type().base) {
    case CimType::kBoolean: out += v.as_bool() ? "true" : "false"; return ok_status();
    case CimType::kSint8:
    case CimType::kSint16:
    case CimType::kSint32:
    case CimType::kSint64: append_number(out, v.as_sint()); return ok_status();
    case CimType::kUint8:
    case CimType::kUint16:
    case CimType::kUint32:
    case CimType::kUint64: append_number(out, v.as_uint()); return ok_status();
    case CimType::kString:
    case CimType::kReference: return append_json_string(out, v.as_string(), what);
    case CimType::kDateTime: return append_json_string(out, v.as_datetime().to_iso8601(), what);
    default: break;
  }
  return make_error(WbemCode::kFailed, std::string(what) + ": no direct JSON form");  // not reached: direct_json
}

Status append_json_value(std::string& out, const cim::Value& v, std::string_view what) {
  if (v.is_null()) {
    out += "null";
    return ok_status();
  }
  if (!direct_json(v.type())) {
    PKG_ASSIGN_OR_RETURN(std::string text, json_text(cim::to_json(v), what));
    out += text;
    return ok_status();
  }
  if (!v.type().array) return append_json_scalar(out, v, what);
  // An array (SMS_DistributionDPStatus.InsStrings, on every status message) as dump() prints it: no spaces.
  out += '[';
  bool first = true;
  for (const cim::Value& item : v.as_array()) {
    if (!first) out += ',';
    first = false;
    if (item.is_null()) {
      out += "null";
    } else {
      PKG_TRY(append_json_scalar(out, item, what));
    }
  }
  out += ']';
  return ok_status();
}

// `"name":` for a property name. Names are almost always ASCII identifiers, which need no escape and no UTF-8
// check; anything else takes the general path.
Status append_json_name(std::string& out, std::string_view name) {
  const bool plain = std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
  });
  if (plain) {
    out += '"';
    out += name;
    out += "\":";
    return ok_status();
  }
  PKG_TRY(append_json_string(out, name, name));
  out += ':';
  return ok_status();
}

// `,"name":value` (no comma first in an empty object).
Status append_member(std::string& out, std::string_view name, const cim::Value& v) {
  if (out.back() != '{') out += ',';
  PKG_TRY(append_json_name(out, name));
  return append_json_value(out, v, name);
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
    // The column holds cim::to_json(v).dump(), which append_json_value writes (row_codec_test.cc).
    std::string text;
    PKG_TRY(append_json_value(text, v, property));
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

namespace {

// encode_value() for a property of `cls`, its errors naming `Class.Property`. The name is built only for an error:
// building it for every property of every write cost more than the rest of the encoding.
Result<SqlParam> encode_property(const cim::ClassDef& cls, const cim::PropertyDef& p, const cim::Value& v) {
  auto param = encode_value(v, p.type, p.name);
  if (param.ok()) return param;
  Error e = std::move(param).error();
  e.message = cls.name() + "." + e.message;
  return e;
}

// `v` converted to the type of property `p` when it is of another type, nullopt when it is stored as it is; a NULL
// key is refused.
Result<std::optional<cim::Value>> coerced_for_storage(const cim::ClassDef& cls, const cim::PropertyDef& p,
                                                      const cim::Value& v) {
  if (p.key && v.is_null()) {
    return make_error(WbemCode::kIllegalNull, "key property " + cls.name() + "." + p.name + " is NULL");
  }
  if (v.is_null() || v.type() == p.type) return std::optional<cim::Value>();
  auto c = cim::coerce(v, p.type);
  if (!c.ok()) {
    Error e = std::move(c).error();
    e.message = cls.name() + "." + p.name + ": " + e.message;
    return e;
  }
  return std::optional<cim::Value>(std::move(c).value());
}

}  // namespace

Result<EncodedInstance> encode_instance(const TableInfo& table, const cim::Instance& inst) {
  const cim::ClassDef& cls = *table.cls;
  EncodedInstance out{cim::Instance(cls), {}};
  out.params.reserve(cls.properties().size());
  for (std::size_t i = 0; i < cls.properties().size(); ++i) {
    const cim::PropertyDef& p = cls.property(i);
    PKG_ASSIGN_OR_RETURN(std::optional<cim::Value> coerced, coerced_for_storage(cls, p, inst.get(i)));
    cim::Value stored = coerced ? std::move(*coerced) : inst.get(i);
    PKG_ASSIGN_OR_RETURN(SqlParam param, encode_property(cls, p, stored));
    out.params.push_back(std::move(param));
    out.instance.set(i, std::move(stored));
  }
  return out;
}

Result<EncodedInstance> encode_instance(const TableInfo& table, cim::Instance&& inst) {
  const cim::ClassDef& cls = *table.cls;
  if (&inst.class_def() != &cls) return encode_instance(table, static_cast<const cim::Instance&>(inst));
  SqlParams params;
  params.reserve(cls.properties().size());
  for (std::size_t i = 0; i < cls.properties().size(); ++i) {
    const cim::PropertyDef& p = cls.property(i);
    PKG_ASSIGN_OR_RETURN(std::optional<cim::Value> coerced, coerced_for_storage(cls, p, inst.get(i)));
    if (coerced) inst.set(i, std::move(*coerced));
    PKG_ASSIGN_OR_RETURN(SqlParam param, encode_property(cls, p, inst.get(i)));
    params.push_back(std::move(param));
  }
  inst.set_location({}, {});
  inst.set_revision(std::nullopt);
  return EncodedInstance{std::move(inst), std::move(params)};
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
    PKG_ASSIGN_OR_RETURN(SqlParam param, encode_property(cls, p, key[k]));
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
  const auto& props = inst.class_def().properties();
  std::string out;
  out.reserve(64 + 32 * props.size());  // most instances fit: the text is not copied as it grows
  out += "{\"__CLASS\":";
  PKG_TRY(append_json_string(out, inst.class_name(), inst.class_name()));
  if (inst.revision()) {
    out += ",\"__REVISION\":";
    append_number(out, *inst.revision());
  }
  for (std::size_t i = 0; i < props.size(); ++i) PKG_TRY(append_member(out, props[i].name, inst.get(i)));
  out += '}';
  return out;
}

Result<cim::Instance> instance_from_json_text(std::string_view text, const cim::ClassRegistry& registry) {
  const auto j = cim::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(WbemCode::kFailed, "journal entry is not JSON (corrupt database?)");
  return cim::instance_from_json(j, registry);
}

Result<std::string> previous_delta_json_text(const cim::Instance& now, const cim::Instance& previous) {
  std::string out = "{";
  const auto& props = now.class_def().properties();
  for (std::size_t i = 0; i < props.size(); ++i) {
    if (!(now.get(i) == previous.get(i))) PKG_TRY(append_member(out, props[i].name, previous.get(i)));
  }
  out += '}';
  return out;
}

Result<cim::Instance> previous_from_json_text(std::string_view text, const cim::Instance& now,
                                              const cim::ClassRegistry& registry) {
  const auto j = cim::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return make_error(WbemCode::kFailed, "journal entry is not a JSON object (corrupt database?)");
  if (j.contains("__CLASS")) return cim::instance_from_json(j, registry);
  cim::Instance previous = now;
  const cim::ClassDef& cls = now.class_def();
  for (const auto& [name, value] : j.items()) {
    const auto index = cls.find_property(name);
    if (!index) {
      return make_error(WbemCode::kFailed, "journal entry of " + cls.name() + " names an unknown property '" + name +
                                               "' (corrupt database?)");
    }
    auto decoded = cim::value_from_json(value, cls.property(*index).type, registry);
    if (!decoded.ok()) {
      return make_error(WbemCode::kFailed, "journal entry of " + cls.name() + "." + name + ": " +
                                               decoded.error().message + " (corrupt database?)");
    }
    previous.set(*index, std::move(decoded).value());
  }
  return previous;
}

}  // namespace pkgcast::store
