// A DP's transfer window as an administrator writes it (site/transfer_window.h): either refused with
// WBEM_E_INVALID_PARAMETER, or a stored form ("" or 168 of A/M/H/C) that parses to itself, and whose answers agree:
// the next opening it names is open, and every hour before it is closed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "site/transfer_window.h"

namespace {
constexpr pkgcast::Micros kHour = 3'600'000'000;
constexpr pkgcast::Micros kSunday = 1'795'910'400'000'000;  // 2026-11-29 00:00 UTC
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto window = pkgcast::site::parse_transfer_window(text);
  if (!window.ok()) {
    if (window.error().code != pkgcast::WbemCode::kInvalidParameter) std::abort();
    return 0;
  }
  const std::string& w = *window;
  if (!w.empty()) {
    if (w.size() != pkgcast::site::kHoursPerWeek) std::abort();
    for (char c : w) {
      if (c != 'A' && c != 'M' && c != 'H' && c != 'C') std::abort();
    }
  }
  auto again = pkgcast::site::parse_transfer_window(w);
  if (!again.ok() || *again != w) std::abort();
  for (std::uint32_t priority = 1; priority <= 3; ++priority) {
    const pkgcast::Micros now = kSunday + static_cast<pkgcast::Micros>(size % 168) * kHour + 1234;
    const pkgcast::Micros opens = pkgcast::site::next_transfer_window_opening(w, priority, now);
    if (opens == 0) {
      for (int h = 0; h < 168; ++h) {
        if (pkgcast::site::transfer_window_open(w, priority, now + h * kHour)) std::abort();
      }
      continue;
    }
    if (opens <= now || !pkgcast::site::transfer_window_open(w, priority, opens)) std::abort();
    for (pkgcast::Micros t = now - now % kHour + kHour; t < opens; t += kHour) {
      if (pkgcast::site::transfer_window_open(w, priority, t)) std::abort();
    }
  }
  return 0;
}
