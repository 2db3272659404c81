// The functions' arithmetic. Dates go through C++20's civil calendar (proleptic Gregorian, as SQL Server's
// datetime2), so month lengths and leap years are the library's, not ours.
#include "wql/functions.h"

#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "core/strings.h"
#include "wql/utf8.h"

namespace pkgcast::wql {
namespace {

using namespace std::chrono;

constexpr std::int64_t kMicrosPerSecond = 1'000'000;
constexpr std::int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;
// 1601-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, the range of a cim::DateTime.
constexpr std::int64_t kMinMicros = -11'644'473'600LL * kMicrosPerSecond;
constexpr std::int64_t kMaxMicros = 253'402'300'800LL * kMicrosPerSecond - 1;

constexpr std::array<std::pair<std::string_view, DatePart>, 26> kDateParts{{
    {"year", DatePart::kYear},          {"yy", DatePart::kYear},           {"yyyy", DatePart::kYear},
    {"quarter", DatePart::kQuarter},    {"qq", DatePart::kQuarter},        {"q", DatePart::kQuarter},
    {"month", DatePart::kMonth},        {"mm", DatePart::kMonth},          {"m", DatePart::kMonth},
    {"dayofyear", DatePart::kDayOfYear}, {"dy", DatePart::kDayOfYear},     {"y", DatePart::kDayOfYear},
    {"day", DatePart::kDay},            {"dd", DatePart::kDay},            {"d", DatePart::kDay},
    {"week", DatePart::kWeek},          {"wk", DatePart::kWeek},           {"ww", DatePart::kWeek},
    {"weekday", DatePart::kWeekday},    {"dw", DatePart::kWeekday},        {"hour", DatePart::kHour},
    {"hh", DatePart::kHour},            {"minute", DatePart::kMinute},     {"mi", DatePart::kMinute},
    {"n", DatePart::kMinute},           {"second", DatePart::kSecond},
}};
constexpr std::array<std::pair<std::string_view, DatePart>, 7> kSmallParts{{
    {"w", DatePart::kWeekday},
    {"ss", DatePart::kSecond}, {"s", DatePart::kSecond}, {"millisecond", DatePart::kMillisecond},
    {"ms", DatePart::kMillisecond}, {"microsecond", DatePart::kMicrosecond}, {"mcs", DatePart::kMicrosecond},
}};

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

struct Civil {
  int year;
  unsigned month;
  unsigned day;
  std::int64_t days;       // since 1970-01-01
  std::int64_t time_of_day;  // microseconds
};

Civil civil(std::int64_t us) {
  const std::int64_t days = floor_div(us, kMicrosPerDay);
  const year_month_day ymd{sys_days{std::chrono::days{days}}};
  return Civil{static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
               days, us - days * kMicrosPerDay};
}

std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
  return sys_days{year{y} / month{m} / day{d}}.time_since_epoch().count();
}

// Weeks that start on Sunday: 1970-01-04 was a Sunday, so day 3 starts week 1.
std::int64_t sunday_week(std::int64_t days) { return floor_div(days + 4, 7); }
// 1 = Sunday ... 7 = Saturday (DATEFIRST 7); 1970-01-01 was a Thursday (5).
std::int64_t weekday(std::int64_t days) { return (days + 4) - 7 * floor_div(days + 4, 7) + 1; }

// |n| <= limit, without negating INT64_MIN.
bool within(std::int64_t n, std::int64_t limit) { return n <= limit && n >= -limit; }

cim::Value sint(std::int64_t v) { return cim::Value::sint(cim::CimType::kSint64, v); }

cim::Value datetime(std::int64_t us) {
  if (us < kMinMicros || us > kMaxMicros) return cim::Value();
  return cim::Value::datetime(cim::DateTime::from_unix_micros(us));
}

std::optional<std::int64_t> integer_of(const cim::Value& v) {
  if (v.is_null() || v.is_array()) return std::nullopt;
  const cim::CimType t = v.type().base;
  if (cim::is_unsigned_integer(t)) {
    const std::uint64_t u = v.as_uint();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (cim::is_signed_integer(t)) return v.as_sint();
  if (cim::is_real(t)) {
    // SQL Server truncates a decimal DATEADD number toward zero.
    const double d = std::trunc(v.as_real());
    if (!std::isfinite(d) || std::fabs(d) > 9.0e15) return std::nullopt;
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::int64_t unit_micros(DatePart part) {
  switch (part) {
    case DatePart::kHour: return 3600 * kMicrosPerSecond;
    case DatePart::kMinute: return 60 * kMicrosPerSecond;
    case DatePart::kSecond: return kMicrosPerSecond;
    case DatePart::kMillisecond: return 1000;
    case DatePart::kMicrosecond: return 1;
    case DatePart::kWeek: return 7 * kMicrosPerDay;
    default: return kMicrosPerDay;  // day, dayofyear, weekday
  }
}

// n months later, the day clipped to the last of the month (SQL Server: DATEADD(mm, 1, '2024-01-31') is Feb 29).
cim::Value add_months(std::int64_t us, std::int64_t n) {
  const Civil c = civil(us);
  const std::int64_t total = static_cast<std::int64_t>(c.year) * 12 + (c.month - 1) + n;
  const std::int64_t y = floor_div(total, 12);
  if (y < 1601 || y > 9999) return cim::Value();
  const unsigned m = static_cast<unsigned>(total - y * 12 + 1);
  const unsigned last = static_cast<unsigned>(
      (year_month_day_last{year{static_cast<int>(y)}, month_day_last{month{m}}}).day());
  const std::int64_t days = days_from_civil(static_cast<int>(y), m, std::min(c.day, last));
  return datetime(days * kMicrosPerDay + c.time_of_day);
}

}  // namespace

std::optional<DatePart> find_datepart(std::string_view name) {
  for (const auto& [n, p] : kDateParts) {
    if (iequals(n, name)) return p;
  }
  for (const auto& [n, p] : kSmallParts) {
    if (iequals(n, name)) return p;
  }
  return std::nullopt;
}

std::optional<ast::Function> find_function(std::string_view name) {
  for (auto f : {ast::Function::kUpper, ast::Function::kLower, ast::Function::kSubstring, ast::Function::kDatePart,
                 ast::Function::kDateDiff, ast::Function::kDateAdd, ast::Function::kGetDate}) {
    if (iequals(ast::function_name(f), name)) return f;
  }
  return std::nullopt;
}

std::size_t function_arity(ast::Function f) {
  switch (f) {
    case ast::Function::kUpper:
    case ast::Function::kLower:
    case ast::Function::kDatePart: return 1;
    case ast::Function::kDateDiff:
    case ast::Function::kDateAdd: return 2;
    case ast::Function::kSubstring: return 3;
    case ast::Function::kGetDate: return 0;
  }
  return 0;
}

bool takes_datepart(ast::Function f) {
  return f == ast::Function::kDatePart || f == ast::Function::kDateDiff || f == ast::Function::kDateAdd;
}

// ASCII only, as WQL's comparisons fold only ASCII.
cim::Value fn_upper(const cim::Value& s) {
  if (s.is_null()) return s;
  return cim::Value::string(to_upper(s.as_string()));
}

cim::Value fn_lower(const cim::Value& s) {
  if (s.is_null()) return s;
  return cim::Value::string(to_lower(s.as_string()));
}

// A SUBSTRING position or length beyond what any string holds means "from/to the end", as SQL Server reads it:
// integers past int64 and reals (truncated toward zero) of any finite size saturate instead of giving NULL.
std::optional<std::int64_t> clamped_integer_of(const cim::Value& v) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  if (v.is_null() || v.is_array()) return std::nullopt;
  const cim::CimType t = v.type().base;
  if (cim::is_unsigned_integer(t)) return static_cast<std::int64_t>(std::min<std::uint64_t>(v.as_uint(), kMax));
  if (cim::is_signed_integer(t)) return v.as_sint();
  if (cim::is_real(t)) {
    const double d = std::trunc(v.as_real());
    if (std::isnan(d)) return std::nullopt;
    // 2^63 is the first double past kMax; -2^63 is kMin exactly.
    if (d >= 9223372036854775808.0) return kMax;
    if (d <= -9223372036854775808.0) return kMin;
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

cim::Value fn_substring(const cim::Value& s, const cim::Value& start, const cim::Value& length) {
  const auto from = clamped_integer_of(start);
  const auto count = clamped_integer_of(length);
  if (s.is_null() || !from || !count || *count < 0) return cim::Value();
  const std::string& text = s.as_string();
  if (*count == 0) return cim::Value::string("");
  // Code points first..last (1-based, inclusive), clipped to the string; last = from + count - 1, saturated.
  const std::int64_t first = std::max<std::int64_t>(*from, 1);
  const std::int64_t last = *from > 0 && *count - 1 > std::numeric_limits<std::int64_t>::max() - *from
                                ? std::numeric_limits<std::int64_t>::max()
                                : *from + (*count - 1);
  std::string out;
  std::int64_t index = 0;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t n = 1;
    while (i + n < text.size() && !is_utf8_lead(text[i + n])) ++n;
    ++index;
    if (index > last) break;
    if (index >= first) out.append(text, i, n);
    i += n;
  }
  return cim::Value::string(std::move(out));
}

cim::Value fn_datepart(DatePart part, const cim::Value& date) {
  if (date.is_null()) return cim::Value();
  const std::int64_t us = date.as_datetime().unix_micros();
  const Civil c = civil(us);
  switch (part) {
    case DatePart::kYear: return sint(c.year);
    case DatePart::kQuarter: return sint((c.month - 1) / 3 + 1);
    case DatePart::kMonth: return sint(c.month);
    case DatePart::kDayOfYear: return sint(c.days - days_from_civil(c.year, 1, 1) + 1);
    case DatePart::kDay: return sint(c.day);
    case DatePart::kWeek: return sint(sunday_week(c.days) - sunday_week(days_from_civil(c.year, 1, 1)) + 1);
    case DatePart::kWeekday: return sint(weekday(c.days));
    case DatePart::kHour: return sint(c.time_of_day / (3600 * kMicrosPerSecond));
    case DatePart::kMinute: return sint(c.time_of_day / (60 * kMicrosPerSecond) % 60);
    case DatePart::kSecond: return sint(c.time_of_day / kMicrosPerSecond % 60);
    case DatePart::kMillisecond: return sint(c.time_of_day / 1000 % 1000);
    case DatePart::kMicrosecond: return sint(c.time_of_day % kMicrosPerSecond);
  }
  return cim::Value();
}

cim::Value fn_datediff(DatePart part, const cim::Value& start, const cim::Value& end) {
  if (start.is_null() || end.is_null()) return cim::Value();
  const std::int64_t a = start.as_datetime().unix_micros();
  const std::int64_t b = end.as_datetime().unix_micros();
  const Civil x = civil(a);
  const Civil y = civil(b);
  switch (part) {
    case DatePart::kYear: return sint(y.year - x.year);
    case DatePart::kQuarter:
      return sint((y.year * 4 + (y.month - 1) / 3) - (x.year * 4 + (x.month - 1) / 3));
    case DatePart::kMonth: return sint((y.year * 12 + y.month) - (x.year * 12 + x.month));
    case DatePart::kDayOfYear:
    case DatePart::kDay:
    case DatePart::kWeekday: return sint(y.days - x.days);
    case DatePart::kWeek: return sint(sunday_week(y.days) - sunday_week(x.days));
    default: {
      const std::int64_t unit = unit_micros(part);
      return sint(floor_div(b, unit) - floor_div(a, unit));
    }
  }
}

cim::Value fn_dateadd(DatePart part, const cim::Value& number, const cim::Value& date) {
  const auto n = integer_of(number);
  if (date.is_null() || !n) return cim::Value();
  const std::int64_t us = date.as_datetime().unix_micros();
  switch (part) {
    case DatePart::kYear:
      if (!within(*n, 10000)) return cim::Value();
      return add_months(us, *n * 12);
    case DatePart::kQuarter:
      if (!within(*n, 40000)) return cim::Value();
      return add_months(us, *n * 3);
    case DatePart::kMonth:
      if (!within(*n, 120000)) return cim::Value();
      return add_months(us, *n);
    default: {
      const std::int64_t unit = unit_micros(part);
      // Past the range of a datetime whatever the start: NULL, without overflowing.
      if (!within(*n, (kMaxMicros - kMinMicros) / unit)) return cim::Value();
      return datetime(us + *n * unit);
    }
  }
}

cim::Value apply_function(ast::Function f, DatePart part, const std::vector<cim::Value>& args) {
  switch (f) {
    case ast::Function::kUpper: return fn_upper(args[0]);
    case ast::Function::kLower: return fn_lower(args[0]);
    case ast::Function::kSubstring: return fn_substring(args[0], args[1], args[2]);
    case ast::Function::kDatePart: return fn_datepart(part, args[0]);
    case ast::Function::kDateDiff: return fn_datediff(part, args[0], args[1]);
    case ast::Function::kDateAdd: return fn_dateadd(part, args[0], args[1]);
    case ast::Function::kGetDate: return cim::Value();
  }
  return cim::Value();
}

}  // namespace pkgcast::wql
