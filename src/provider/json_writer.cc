#include "provider/json_writer.h"

#include <charconv>
#include <cmath>

#include "wql/wql.h"

namespace pkgcast::provider {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one.
std::size_t valid_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  char32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_sint(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_scalar(std::string& out, const cim::Value& v, cim::CimType t) {
  switch (t) {
    case cim::CimType::kBoolean:
      out += v.as_bool() ? "true" : "false";
      return;
    case cim::CimType::kSint8:
    case cim::CimType::kSint16:
    case cim::CimType::kSint32:
    case cim::CimType::kSint64:
      append_sint(out, v.as_sint());
      return;
    case cim::CimType::kUint8:
    case cim::CimType::kUint16:
    case cim::CimType::kUint32:
    case cim::CimType::kUint64:
      append_uint(out, v.as_uint());
      return;
    case cim::CimType::kReal32:
    case cim::CimType::kReal64: {
      const double d = v.as_real();
      if (!std::isfinite(d)) {
        out += "null";
        return;
      }
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, end);
      return;
    }
    case cim::CimType::kString:
    case cim::CimType::kReference:
      append_json_string(out, v.as_string());
      return;
    case cim::CimType::kDateTime:
      append_json_string(out, v.as_datetime().to_iso8601());
      return;
    case cim::CimType::kObject:
      append_instance_json(out, v.as_object());
      return;
  }
  out += "null";
}

void append_value(std::string& out, const cim::Value& v) {
  if (v.is_null()) {
    out += "null";
    return;
  }
  const cim::Type type = v.type();
  if (!type.array) {
    append_scalar(out, v, type.base);
    return;
  }
  out += '[';
  bool first = true;
  for (const cim::Value& item : v.as_array()) {
    if (!first) out += ',';
    first = false;
    if (item.is_null()) {
      out += "null";
    } else {
      append_scalar(out, item, type.base);
    }
  }
  out += ']';
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // start of the pending run of bytes copied as they are
  std::size_t i = 0;
  auto flush = [&](std::size_t upto) { out.append(s.data() + run, upto - run); };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t n = valid_sequence(s, i);
      if (n > 0) {
        i += n;
        continue;
      }
      flush(i);
      out += "\xEF\xBF\xBD";  // U+FFFD
      run = ++i;
      continue;
    }
    flush(i);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
    run = ++i;
  }
  flush(i);
  out += '"';
}

namespace {

const std::vector<std::size_t> kNone;
const std::vector<wql::SystemProperty> kNoSystem;

// The step of `steps` for the object's class; nullptr when none (the object is written whole).
const ScanStep* projection_of(const std::vector<std::vector<ScanStep>>* embedded, std::size_t slot,
                              const cim::Instance& object) {
  if (embedded == nullptr || slot >= embedded->size()) return nullptr;
  for (const ScanStep& step : (*embedded)[slot]) {
    if (step.cls == &object.class_def()) return &step;
  }
  return nullptr;
}

void append_members(std::string& out, const cim::Instance& inst, const std::vector<std::size_t>& omitted,
                    const std::vector<wql::SystemProperty>& system, EmbeddedJsonCache* cache,
                    const std::vector<std::vector<ScanStep>>* embedded = nullptr) {
  out += "{\"__CLASS\":";
  append_json_string(out, inst.class_name());
  if (inst.revision()) {
    out += ",\"__REVISION\":";
    append_uint(out, *inst.revision());
  }
  for (wql::SystemProperty p : system) {
    const std::string_view name = wql::system_property_name(p);
    if (name.empty() || name == "__CLASS" || name == "__REVISION") continue;  // written above
    auto value = inst.property(name);
    out += ',';
    append_json_string(out, name);
    out += ':';
    append_value(out, value.ok() ? value.value() : cim::Value());
  }
  const auto& props = inst.class_def().properties();
  auto skip = omitted.begin();
  for (std::size_t i = 0; i < props.size(); ++i) {
    if (skip != omitted.end() && *skip == i) {
      ++skip;
      continue;
    }
    out += ',';
    append_json_string(out, props[i].name);
    out += ':';
    const cim::Value& value = inst.get(i);
    const bool object = !value.is_null() && !value.type().array && value.type().base == cim::CimType::kObject;
    const ScanStep* projection = object ? projection_of(embedded, i, value.as_object()) : nullptr;
    if (object && cache != nullptr) {
      cache->append(out, i, value.object_ptr(), projection);
    } else if (projection != nullptr) {
      append_members(out, value.as_object(), projection->nulled, projection->system, nullptr);
    } else {
      append_value(out, value);
    }
  }
  out += '}';
}

}  // namespace

void append_instance_json(std::string& out, const cim::Instance& inst, const std::vector<std::size_t>& omitted) {
  append_members(out, inst, omitted, {}, nullptr);
}

void append_instance_json(std::string& out, const cim::Instance& inst) {
  append_members(out, inst, {}, {}, nullptr);
}

void EmbeddedJsonCache::append(std::string& out, std::size_t slot,
                               const std::shared_ptr<const cim::Instance>& object, const ScanStep* projection) {
  if (slot >= entries_.size()) entries_.resize(slot + 1);
  Entry& e = entries_[slot];
  if (e.object != object) {
    e.object = object;
    e.json.clear();
    append_members(e.json, *object, projection != nullptr ? projection->nulled : kNone,
                   projection != nullptr ? projection->system : kNoSystem, nullptr);
  }
  out += e.json;
}

void append_row_json(std::string& out, const cim::Instance& inst, const ScanStep* step, EmbeddedJsonCache* cache,
                     const std::vector<std::vector<ScanStep>>* embedded) {
  if (step == nullptr) {
    append_members(out, inst, kNone, kNoSystem, cache, embedded);
  } else {
    append_members(out, inst, step->nulled, step->system, cache, embedded);
  }
}

}  // namespace pkgcast::provider
