// Literal conversions; the rules are in convert.h. Text is parsed strictly: a string that only starts like a
// number ('3 apples') does not convert, so that a typo is refused rather than silently read as something else.
#include "wql/convert.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

#include "core/strings.h"
#include "wql/binder.h"
#include "wql/lexer.h"

namespace pkgcast::wql {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// A decimal integer with an optional sign, as the integer cim::Value the parser would make for it.
std::optional<cim::Value> integer_text(std::string_view s) {
  s = trim(s);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (!all_digits(s)) return std::nullopt;
  std::uint64_t magnitude = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), magnitude);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  if (!negative || magnitude == 0) return cim::Value::uint64(magnitude);
  if (magnitude > static_cast<std::uint64_t>(INT64_MAX) + 1) return std::nullopt;
  return cim::Value::sint(cim::CimType::kSint64, static_cast<std::int64_t>(0 - magnitude));
}

// A decimal integer, or a finite real in plain or exponent notation ("1.5", "-2e3", ".5").
std::optional<cim::Value> number_text(std::string_view text) {
  if (auto i = integer_text(text)) return i;
  std::string_view s = trim(text);
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) s.remove_prefix(1);
  // An integer too large for 64 bits is refused, as the lexer refuses the same digits unquoted.
  if (s.empty() || all_digits(s)) return std::nullopt;
  for (const char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+') {
      return std::nullopt;  // no "inf", "nan" or hex floats
    }
  }
  double d = 0;
  const std::string_view signed_text = trim(text);
  const char* begin = signed_text.data() + (signed_text.front() == '+' ? 1 : 0);
  const auto [p, ec] = std::from_chars(begin, signed_text.data() + signed_text.size(), d);
  if (ec != std::errc() || p != signed_text.data() + signed_text.size() || !std::isfinite(d)) return std::nullopt;
  return cim::Value::real(cim::CimType::kReal64, d);
}

std::optional<bool> boolean_text(std::string_view s) {
  s = trim(s);
  if (iequals(s, "true")) return true;
  if (iequals(s, "false")) return false;
  if (auto i = integer_text(s)) return i->type().base == cim::CimType::kUint64 ? i->as_uint() != 0 : true;
  return std::nullopt;
}

std::string describe_literal(const ast::Literal& lit) {
  if (const auto* s = std::get_if<std::string>(&lit.value)) return "'" + *s + "'";
  if (const auto* b = std::get_if<bool>(&lit.value)) return *b ? "TRUE" : "FALSE";
  if (const auto* u = std::get_if<std::uint64_t>(&lit.value)) return std::to_string(*u);
  if (const auto* i = std::get_if<std::int64_t>(&lit.value)) return std::to_string(*i);
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, std::get<double>(lit.value));
  return ec == std::errc() ? std::string(buf, end) : "a real number";
}

}  // namespace

std::optional<cim::DateTime> parse_datetime_text(std::string_view text) {
  if (auto dt = cim::DateTime::parse(text); dt.ok()) return *dt;
  std::string s(trim(text));
  // "20240101[ time]": an unseparated SQL Server date.
  if (s.size() >= 8 && all_digits(std::string_view(s).substr(0, 8)) && (s.size() == 8 || s[8] == ' ')) {
    s = s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2) + s.substr(8);
  }
  // "2024/01/01", "2024.01.01": the same separator twice, year first.
  if (s.size() >= 10 && all_digits(std::string_view(s).substr(0, 4)) && (s[4] == '/' || s[4] == '.') &&
      s[7] == s[4]) {
    s[4] = '-';
    s[7] = '-';
  }
  // A date alone, or a date and a time without a zone: UTC.
  if (s.size() > 10 && s.back() != 'Z' && s.back() != 'z' && s.find_first_of("+", 10) == std::string::npos &&
      s.find('-', 11) == std::string::npos) {
    s += 'Z';
  }
  if (auto dt = cim::DateTime::parse_iso8601(s); dt.ok()) return *dt;
  return std::nullopt;
}

Result<cim::Value> convert_literal(const ast::Literal& lit, const PropertyRef& ref, Domain domain) {
  const auto* text = std::get_if<std::string>(&lit.value);
  const auto* boolean = std::get_if<bool>(&lit.value);
  const auto* uint = std::get_if<std::uint64_t>(&lit.value);
  const auto* sint = std::get_if<std::int64_t>(&lit.value);
  const auto* real = std::get_if<double>(&lit.value);
  std::optional<cim::Value> out;
  switch (domain) {
    case Domain::kNumber:
      if (uint != nullptr) out = cim::Value::uint64(*uint);
      if (sint != nullptr) out = cim::Value::sint(cim::CimType::kSint64, *sint);
      if (real != nullptr) out = cim::Value::real(cim::CimType::kReal64, *real);
      if (text != nullptr) out = number_text(*text);
      break;
    case Domain::kString:
      if (text != nullptr) out = cim::Value::string(*text);
      if (uint != nullptr) out = cim::Value::string(std::to_string(*uint));
      if (sint != nullptr) out = cim::Value::string(std::to_string(*sint));
      break;
    case Domain::kBoolean:
      if (boolean != nullptr) out = cim::Value::boolean(*boolean);
      if (uint != nullptr) out = cim::Value::boolean(*uint != 0);
      if (sint != nullptr) out = cim::Value::boolean(true);  // never zero: zero is held unsigned
      if (text != nullptr) {
        if (auto b = boolean_text(*text)) out = cim::Value::boolean(*b);
      }
      break;
    case Domain::kDateTime:
      if (text != nullptr) {
        if (auto dt = parse_datetime_text(*text)) out = cim::Value::datetime(*dt);
      }
      break;
  }
  if (out) return std::move(*out);
  return make_error(WbemCode::kInvalidQuery, describe_literal(lit) + " does not convert to " + describe(ref) +
                                                 " at " + format_position(lit.pos));
}

}  // namespace pkgcast::wql
