// CIM datetime: an instant in UTC with microsecond precision.
// Parsed from DMTF ("yyyymmddHHMMSS.mmmmmmsUUU", UUU = minutes offset from UTC) and ISO-8601
// ("2026-11-24T01:19:00Z", "2026-11-24T03:19:00.5+02:00", "2026-11-24"); printed as ISO-8601 UTC.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace pkgcast::cim {

class DateTime {
 public:
  constexpr DateTime() = default;
  static constexpr DateTime from_unix_micros(std::int64_t us) { return DateTime(us); }

  // Years 1601..9999 are accepted; anything else is WBEM_E_INVALID_PARAMETER.
  static Result<DateTime> parse_dmtf(std::string_view text);
  static Result<DateTime> parse_iso8601(std::string_view text);
  // Either form: DMTF when the text has 14 leading digits, else ISO-8601.
  static Result<DateTime> parse(std::string_view text);

  constexpr std::int64_t unix_micros() const { return us_; }
  // "2026-11-24T01:19:00Z", with ".ffffff" when the microseconds are not zero.
  std::string to_iso8601() const;
  // "20261124011900.000000+000".
  std::string to_dmtf() const;
  // 100-ns intervals since 1601-01-01 UTC, as WMI's TIME_CREATED.
  std::uint64_t to_filetime() const;
  static DateTime from_filetime(std::uint64_t ft);

  friend constexpr auto operator<=>(const DateTime&, const DateTime&) = default;

 private:
  constexpr explicit DateTime(std::int64_t us) : us_(us) {}
  std::int64_t us_ = 0;
};

}  // namespace pkgcast::cim
