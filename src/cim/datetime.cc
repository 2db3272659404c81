#include "cim/datetime.h"

#include <cctype>
#include <cstdio>

namespace pkgcast::cim {
namespace {

constexpr std::int64_t kMicrosPerSecond = 1'000'000;
constexpr std::int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;
// Seconds from 1601-01-01 to 1970-01-01 (the FILETIME epoch to the Unix epoch).
constexpr std::int64_t kFiletimeEpochOffsetSeconds = 11'644'473'600;

// Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date.
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
  std::int64_t year;
  unsigned month, day;
};

constexpr Civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp + (mp < 10 ? 3 : -9);
  return {y + (m <= 2), m, d};
}

bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// Reads exactly n digits at text[pos]; false when any is not a digit.
bool read_digits(std::string_view text, std::size_t pos, std::size_t n, std::int64_t& out) {
  if (pos + n > text.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

Error bad(std::string_view text, std::string_view why) {
  return make_error(WbemCode::kInvalidParameter,
                    "invalid datetime '" + std::string(text.substr(0, 64)) + "': " + std::string(why));
}

Result<DateTime> compose(std::string_view text, std::int64_t y, std::int64_t mo, std::int64_t d, std::int64_t h,
                         std::int64_t mi, std::int64_t s, std::int64_t us, std::int64_t offset_minutes) {
  if (y < 1601 || y > 9999) return bad(text, "year out of range 1601..9999");
  if (mo < 1 || mo > 12) return bad(text, "month out of range");
  if (d < 1 || d > days_in_month(y, static_cast<unsigned>(mo))) return bad(text, "day out of range");
  if (h > 23 || mi > 59 || s > 60) return bad(text, "time out of range");
  if (s == 60) s = 59;  // a leap second is folded into the second before it
  const std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const std::int64_t secs = ((h * 60 + mi) - offset_minutes) * 60 + s;
  const std::int64_t instant = days * kMicrosPerDay + secs * kMicrosPerSecond + us;
  // The range holds for the instant in UTC too (an offset can carry 1601-01-01 into 1600): WQL and DMTF cannot
  // write what lies outside it.
  constexpr std::int64_t kFirst = days_from_civil(1601, 1, 1) * kMicrosPerDay;
  constexpr std::int64_t kEnd = days_from_civil(10000, 1, 1) * kMicrosPerDay;
  if (instant < kFirst || instant >= kEnd) return bad(text, "outside 1601..9999 in UTC");
  return DateTime::from_unix_micros(instant);
}

}  // namespace

Result<DateTime> DateTime::parse_dmtf(std::string_view text) {
  // yyyymmddHHMMSS.mmmmmmsUUU, exactly 25 characters. WMI also allows '*' wildcards; a stored instant has none.
  if (text.size() != 25 || text[14] != '.') return bad(text, "expected yyyymmddHHMMSS.mmmmmmsUUU");
  std::int64_t y, mo, d, h, mi, s, us, off;
  if (!read_digits(text, 0, 4, y) || !read_digits(text, 4, 2, mo) || !read_digits(text, 6, 2, d) ||
      !read_digits(text, 8, 2, h) || !read_digits(text, 10, 2, mi) || !read_digits(text, 12, 2, s) ||
      !read_digits(text, 15, 6, us) || !read_digits(text, 22, 3, off)) {
    return bad(text, "expected digits in yyyymmddHHMMSS.mmmmmmsUUU");
  }
  const char sign = text[21];
  if (sign != '+' && sign != '-') return bad(text, "expected '+' or '-' before the UTC offset");
  return compose(text, y, mo, d, h, mi, s, us, sign == '+' ? off : -off);
}

Result<DateTime> DateTime::parse_iso8601(std::string_view text) {
  std::int64_t y, mo, d, h = 0, mi = 0, s = 0, us = 0, off = 0;
  if (!read_digits(text, 0, 4, y) || text.size() < 10 || text[4] != '-' || !read_digits(text, 5, 2, mo) ||
      text[7] != '-' || !read_digits(text, 8, 2, d)) {
    return bad(text, "expected YYYY-MM-DD");
  }
  std::size_t pos = 10;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return bad(text, "expected 'T' after the date");
    if (!read_digits(text, pos + 1, 2, h) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !read_digits(text, pos + 4, 2, mi)) {
      return bad(text, "expected hh:mm after 'T'");
    }
    pos += 6;
    if (pos < text.size() && text[pos] == ':') {
      if (!read_digits(text, pos + 1, 2, s)) return bad(text, "expected seconds");
      pos += 3;
      if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
        ++pos;
        std::int64_t scale = 100'000;
        const std::size_t start = pos;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
          us += (text[pos] - '0') * scale;  // digits past microseconds are dropped
          scale /= 10;
          ++pos;
        }
        if (pos == start) return bad(text, "expected digits after the decimal point");
      }
    }
    if (pos == text.size()) return bad(text, "missing time zone: end with 'Z' or an offset such as +02:00");
    if (text[pos] == 'Z' || text[pos] == 'z') {
      ++pos;
    } else if (text[pos] == '+' || text[pos] == '-') {
      const bool negative = text[pos] == '-';
      std::int64_t oh, om = 0;
      if (!read_digits(text, pos + 1, 2, oh)) return bad(text, "expected an offset such as +02:00");
      pos += 3;
      if (pos < text.size() && text[pos] == ':') ++pos;
      if (pos < text.size()) {
        if (!read_digits(text, pos, 2, om)) return bad(text, "expected offset minutes");
        pos += 2;
      }
      if (oh > 23 || om > 59) return bad(text, "offset out of range");
      off = (oh * 60 + om) * (negative ? -1 : 1);
    } else {
      return bad(text, "expected 'Z' or an offset such as +02:00");
    }
  }
  if (pos != text.size()) return bad(text, "unexpected characters after the datetime");
  return compose(text, y, mo, d, h, mi, s, us, off);
}

Result<DateTime> DateTime::parse(std::string_view text) {
  std::int64_t ignored;
  if (text.size() == 25 && read_digits(text, 0, 14, ignored)) return parse_dmtf(text);
  return parse_iso8601(text);
}

namespace {

struct Fields {
  Civil date;
  std::int64_t h, mi, s, us;
};

Fields split(std::int64_t unix_us) {
  std::int64_t days = unix_us / kMicrosPerDay;
  std::int64_t rem = unix_us % kMicrosPerDay;
  if (rem < 0) {
    rem += kMicrosPerDay;
    --days;
  }
  const std::int64_t secs = rem / kMicrosPerSecond;
  return {civil_from_days(days), secs / 3600, (secs / 60) % 60, secs % 60, rem % kMicrosPerSecond};
}

// Writes `n` as exactly `width` decimal digits (precondition: 0 <= n < 10^width).
char* put_digits(char* p, std::int64_t n, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + n % 10);
    n /= 10;
  }
  return p + width;
}

}  // namespace

std::string DateTime::to_iso8601() const {
  const Fields f = split(us_);
  char buf[48];
  // Every journal row and HTTP answer formats its datetimes here; snprintf cost more than the rest of the
  // journal's JSON, so the common case (years 0..9999) is written digit by digit, byte for byte the same text.
  if (f.date.year >= 0 && f.date.year <= 9999) {
    char* p = put_digits(buf, f.date.year, 4);
    *p++ = '-';
    p = put_digits(p, f.date.month, 2);
    *p++ = '-';
    p = put_digits(p, f.date.day, 2);
    *p++ = 'T';
    p = put_digits(p, f.h, 2);
    *p++ = ':';
    p = put_digits(p, f.mi, 2);
    *p++ = ':';
    p = put_digits(p, f.s, 2);
    if (f.us != 0) {
      *p++ = '.';
      p = put_digits(p, f.us, 6);
    }
    *p++ = 'Z';
    return std::string(buf, p);
  }
  if (f.us == 0) {
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", static_cast<long long>(f.date.year),
                  f.date.month, f.date.day, static_cast<long long>(f.h), static_cast<long long>(f.mi),
                  static_cast<long long>(f.s));
  } else {
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ",
                  static_cast<long long>(f.date.year), f.date.month, f.date.day, static_cast<long long>(f.h),
                  static_cast<long long>(f.mi), static_cast<long long>(f.s), static_cast<long long>(f.us));
  }
  return buf;
}

std::string DateTime::to_dmtf() const {
  const Fields f = split(us_);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld%02u%02u%02lld%02lld%02lld.%06lld+000", static_cast<long long>(f.date.year),
                f.date.month, f.date.day, static_cast<long long>(f.h), static_cast<long long>(f.mi),
                static_cast<long long>(f.s), static_cast<long long>(f.us));
  return buf;
}

std::uint64_t DateTime::to_filetime() const {
  return static_cast<std::uint64_t>((us_ + kFiletimeEpochOffsetSeconds * kMicrosPerSecond) * 10);
}

DateTime DateTime::from_filetime(std::uint64_t ft) {
  return DateTime(static_cast<std::int64_t>(ft / 10) - kFiletimeEpochOffsetSeconds * kMicrosPerSecond);
}

}  // namespace pkgcast::cim
