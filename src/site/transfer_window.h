// A DP's transfer window (Configuration Manager's per-DP schedule): for each hour of the week, which package
// priorities may send content to the DP. Stored in SMS_DistributionPointInfo.TransferWindow as 168 characters,
// hour h of the week at index h (0 = Sunday 00:00-01:00 UTC):
//   A  open for all priorities        M  medium (normal) and high only
//   H  high only                      C  closed
// The empty string is open at every hour (the default). Priority is SMS_Package's: 1 high, 2 normal, 3 low.
//
// What an administrator writes (docs/distribution.md, "Transfer windows") is either those 168 characters or rules
// applied in order over a week that starts all open: "Mon-Fri 08-18 closed; Sat,Sun * high". A rule is DAYS HOURS
// LEVEL: DAYS is a day (Sun..Sat, English, any case), a range (Mon-Fri, wrapping: Fri-Mon), a comma list of those,
// or "*"; HOURS is "HH-HH" (UTC, the end exclusive, 00-24; wrapping: 22-06) or "*"; LEVEL is all, medium, high or
// closed.
#pragma once

#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/result.h"

namespace pkgcast::site {

inline constexpr std::size_t kHoursPerWeek = 168;

// The stored form of `text` ("" when every hour is open for every priority). WBEM_E_INVALID_PARAMETER naming the
// bad rule otherwise.
Result<std::string> parse_transfer_window(std::string_view text);

// Whether a job of `priority` may be sent at `now` (microseconds since the Unix epoch) through `window` (the stored
// form; anything malformed counts as open, so a bad row never blocks distribution).
bool transfer_window_open(std::string_view window, std::uint32_t priority, Micros now);

// The first start of an hour after `now` at which the window lets `priority` through; 0 when it never does.
Micros next_transfer_window_opening(std::string_view window, std::uint32_t priority, Micros now);

}  // namespace pkgcast::site
