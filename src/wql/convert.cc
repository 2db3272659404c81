// Literal conversions; the rules are in convert.h. Text is parsed strictly: a string that only starts like a
// number ('3 apples') does not convert, so that a typo is refused rather than silently read as something else.
#include "wql/convert.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

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

// ---- WMI's and SQL Server's month-day-year and month-name forms --------------------------------------------------

int month_number(std::string_view word) {
  static constexpr std::string_view kMonths[] = {"january", "february", "march",     "april",   "may",      "june",
                                                 "july",    "august",   "september", "october", "november", "december"};
  const std::string lower = to_lower(std::string(word));
  for (int m = 0; m < 12; ++m) {
    // The whole name, or its first three letters ("Sept" is neither, as in WMI's table).
    if (lower == kMonths[m] || (lower.size() == 3 && kMonths[m].starts_with(lower))) return m + 1;
  }
  return 0;
}

struct Number {
  int value = 0;
  std::size_t digits = 0;
};

std::optional<Number> small_number(std::string_view s) {
  if (!all_digits(s) || s.size() > 4) return std::nullopt;
  Number n{0, s.size()};
  for (const char c : s) n.value = n.value * 10 + (c - '0');
  return n;
}

// A year of two digits as SQL Server reads it (its default two-digit year cutoff, 2049); four digits as they are.
std::optional<int> year_of(const Number& n) {
  if (n.digits == 4) return n.value;
  if (n.digits == 2) return n.value < 50 ? 2000 + n.value : 1900 + n.value;
  return std::nullopt;
}

struct Civil {
  int year = 0, month = 0, day = 1, hour = 0, minute = 0, second = 0;
  std::string fraction;  // digits after the point, if any
};

// "hh[:mm[:ss[.fff]]]", optionally followed (or not) by a separate AM/PM; `meridiem` is 'A', 'P' or 0.
bool parse_time(std::string_view t, char meridiem, Civil& c) {
  int* fields[] = {&c.hour, &c.minute, &c.second};
  std::size_t i = 0;
  while (true) {
    const std::size_t end = t.find_first_of(":.");
    const auto n = small_number(t.substr(0, end));
    if (!n || n->digits > 2 || i >= 3) return false;
    *fields[i++] = n->value;
    if (end == std::string_view::npos) break;
    if (t[end] == '.') {  // a fraction after the seconds only
      if (i != 3) return false;
      c.fraction = std::string(t.substr(end + 1));
      if (c.fraction.empty() || c.fraction.size() > 6 || !all_digits(c.fraction)) return false;
      break;
    }
    t.remove_prefix(end + 1);
  }
  if (i == 1 && meridiem == 0) return false;  // "10" alone is no time; "4 PM" is
  if (meridiem != 0) {
    if (c.hour < 1 || c.hour > 12) return false;
    c.hour = (c.hour % 12) + (meridiem == 'P' ? 12 : 0);
  }
  return true;
}

// The date forms of WMI's "WQL-Supported Date Formats" that SQL Server reads alike (the order month-day-year where
// the order is not given by a four-digit year or a month's name, as SQL Server's default language, us_english,
// reads it), with an optional time. nullopt for anything else.
std::optional<Civil> parse_wmi_date(std::string_view text) {
  // Words: runs of letters or of digits and separators, split at spaces and commas and where letters meet digits
  // ("21Jan32" is "21 Jan 32").
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (const char ch : text) {
    const bool letter = std::isalpha(static_cast<unsigned char>(ch)) != 0;
    if (ch == ' ' || ch == ',' || ch == '\t') {
      flush();
    } else if (!word.empty() && letter != (std::isalpha(static_cast<unsigned char>(word.back())) != 0)) {
      flush();
      word.push_back(ch);
    } else {
      word.push_back(ch);
    }
  }
  flush();

  Civil c;
  // The time: one word with ':', or a number right before AM/PM; the meridiem last.
  char meridiem = 0;
  if (!words.empty() && (iequals(words.back(), "AM") || iequals(words.back(), "PM"))) {
    meridiem = static_cast<char>(std::toupper(static_cast<unsigned char>(words.back()[0])));
    words.pop_back();
    if (words.empty()) return std::nullopt;
  }
  if (!words.empty() && (words.back().find(':') != std::string::npos || meridiem != 0)) {
    if (!parse_time(words.back(), meridiem, c)) return std::nullopt;
    words.pop_back();
  }

  if (words.size() == 1) {  // m/d/y with one separator used twice
    const std::string& w = words[0];
    const std::size_t a = w.find_first_of("/-.");
    if (a == std::string::npos) return std::nullopt;
    const std::size_t b = w.find(w[a], a + 1);
    if (b == std::string::npos || w.find_first_of("/-.", b + 1) != std::string::npos ||
        w.find_first_of("/-.", a + 1) != b) {
      return std::nullopt;
    }
    const auto f1 = small_number(std::string_view(w).substr(0, a));
    const auto f2 = small_number(std::string_view(w).substr(a + 1, b - a - 1));
    const auto f3 = small_number(std::string_view(w).substr(b + 1));
    if (!f1 || !f2 || !f3 || f1->digits > 2) return std::nullopt;  // year first is ISO's or SQL Server's own form
    std::optional<int> year;
    if (f2->digits == 4) {  // m/yyyy/d
      year = f2->value;
      c.month = f1->value;
      c.day = f3->value;
    } else {  // m/d/[yy]yy
      if (f2->digits > 2) return std::nullopt;
      year = year_of(*f3);
      c.month = f1->value;
      c.day = f2->value;
    }
    if (!year) return std::nullopt;
    c.year = *year;
    return c;
  }

  // A month's name with one or two numbers: the day and the year.
  int month = 0;
  std::vector<Number> numbers;
  for (const std::string& w : words) {
    if (std::isalpha(static_cast<unsigned char>(w[0])) != 0) {
      if (month != 0) return std::nullopt;
      month = month_number(w);
      if (month == 0) return std::nullopt;
    } else {
      const auto n = small_number(w);
      if (!n || numbers.size() == 2) return std::nullopt;
      numbers.push_back(*n);
    }
  }
  if (month == 0 || numbers.empty()) return std::nullopt;
  c.month = month;
  std::optional<int> year;
  if (numbers.size() == 1) {  // "Jan 1932": the first of the month; a year of four digits only
    if (numbers[0].digits != 4) return std::nullopt;
    year = numbers[0].value;
  } else if (numbers[0].digits == 4 || numbers[1].digits == 4) {
    const bool year_first = numbers[0].digits == 4;
    year = numbers[year_first ? 0 : 1].value;
    const Number& day = numbers[year_first ? 1 : 0];
    if (day.digits > 2) return std::nullopt;
    c.day = day.value;
  } else {  // two short numbers: the day first, as WMI's table lists it first
    if (numbers[0].digits > 2) return std::nullopt;
    c.day = numbers[0].value;
    year = year_of(numbers[1]);
  }
  if (!year) return std::nullopt;
  c.year = *year;
  return c;
}

std::string two(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }

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
  // WMI's other forms, written out as ISO-8601 so that one parser judges the ranges (no 31 June, no hour 24).
  if (const auto c = parse_wmi_date(trim(text)); c && c->year >= 1000 && c->year <= 9999) {
    std::string iso = std::to_string(c->year) + "-" + two(c->month) + "-" + two(c->day) + "T" + two(c->hour) + ":" +
                      two(c->minute) + ":" + two(c->second);
    if (!c->fraction.empty()) iso += "." + c->fraction;
    if (auto dt = cim::DateTime::parse_iso8601(iso + "Z"); dt.ok()) return *dt;
  }
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
