#include "provider/answer_shape.h"

#include <cstring>

#include "core/strings.h"

namespace pkgcast::provider {
namespace {

bool is_ascii(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

void encode(const cim::Value& v, std::string& out) {
  if (v.is_null()) {
    out += 'N';
    return;
  }
  if (v.is_array()) {
    out += 'A';
    out += std::to_string(v.as_array().size());
    out += ':';
    for (const auto& element : v.as_array()) encode(element, out);
    return;
  }
  const cim::CimType t = v.type().base;
  if (t == cim::CimType::kString || t == cim::CimType::kReference) {
    const std::string folded = to_lower(v.as_string());
    out += 'S';
    out += std::to_string(folded.size());
    out += ':';
    out += folded;
    return;
  }
  if (t == cim::CimType::kBoolean) {
    out += v.as_bool() ? "T" : "F";
  } else if (t == cim::CimType::kDateTime) {
    out += 'D' + std::to_string(v.as_datetime().unix_micros());
  } else if (cim::is_unsigned_integer(t)) {
    out += 'U' + std::to_string(v.as_uint());
  } else if (cim::is_signed_integer(t)) {
    out += 'I' + std::to_string(v.as_sint());
  } else if (cim::is_real(t)) {
    double d = v.as_real();
    if (d == 0) d = 0;  // -0.0 is 0.0
    char buf[sizeof d];
    std::memcpy(buf, &d, sizeof d);
    out += 'R';
    out.append(buf, sizeof buf);
  } else {
    const std::string json = cim::to_json(v.as_object()).dump();
    out += 'O' + std::to_string(json.size()) + ':' + json;
  }
  out += ';';
}

}  // namespace

const cim::ClassRegistry& generic_registry() {
  static const cim::ClassRegistry registry = [] {
    cim::ClassSpec spec;
    spec.name = "__Generic";
    spec.description = "An answer that is not an instance of a provider class: COUNT(*)";
    spec.properties.push_back(
        {"Count", cim::Type{cim::CimType::kUint32, false}, false, true, "Matching instances", false, {}, false});
    auto built = cim::ClassRegistry::build({spec});
    return std::move(built).value();
  }();
  return registry;
}

Result<cim::Instance> count_instance(std::uint64_t n) {
  if (n > UINT32_MAX) {
    return make_error(WbemCode::kQuotaViolation, "COUNT(*) of " + std::to_string(n) + " does not fit its uint32");
  }
  cim::Instance inst(*generic_registry().find("__Generic"));
  inst.set(0, cim::Value::uint32(static_cast<std::uint32_t>(n)));
  return inst;
}

std::string distinct_key(const std::vector<const cim::Value*>& values) {
  std::string out;
  for (const cim::Value* v : values) encode(*v, out);
  return out;
}

bool certainly_apart(const cim::Value& a, const cim::Value& b) {
  if (a.is_null() || b.is_null()) return a.is_null() != b.is_null();
  const cim::CimType t = a.type().base;
  if (t == cim::CimType::kString || t == cim::CimType::kReference) {
    return is_ascii(a.as_string()) && is_ascii(b.as_string()) && !iequals(a.as_string(), b.as_string());
  }
  std::string ka;
  std::string kb;
  encode(a, ka);
  encode(b, kb);
  return ka != kb;
}

DistinctFilter::DistinctFilter(std::vector<std::size_t> props, std::vector<std::size_t> sorted,
                               std::uint64_t max_remembered)
    : props_(std::move(props)), sorted_(std::move(sorted)), max_(max_remembered) {}

Result<bool> DistinctFilter::admit(const cim::Instance& row) {
  // A new run starts where the sort values certainly changed from the previous row's: rows come in the database's
  // order, and a combination equal to an earlier one (by WQL) is equal to it in that order too, so it cannot come
  // after a row that is certainly past it.
  if (!sorted_.empty()) {
    bool apart = !have_last_;
    for (std::size_t i = 0; i < sorted_.size() && !apart; ++i) {
      apart = certainly_apart(last_sorted_[i], row.get(sorted_[i]));
    }
    if (apart) seen_.clear();
    last_sorted_.clear();
    for (std::size_t p : sorted_) last_sorted_.push_back(row.get(p));
    have_last_ = true;
  }
  std::vector<const cim::Value*> values;
  values.reserve(props_.size());
  for (std::size_t p : props_) values.push_back(&row.get(p));
  std::string key = distinct_key(values);
  if (seen_.count(key) != 0) return false;
  if (max_ > 0 && seen_.size() >= max_) {
    return make_error(WbemCode::kQuotaViolation,
                      "the query was stopped after holding " + std::to_string(max_) +
                          " distinct rows in memory (QueryLimits::max_distinct_rows)");
  }
  seen_.insert(std::move(key));
  return true;
}

}  // namespace pkgcast::provider
