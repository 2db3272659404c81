// How long an event subscription waits before its n-th reconnection in a row (internal; a function so that the
// schedule is tested without waiting for it).
#pragma once

#include <algorithm>
#include <chrono>

namespace pkgcast::client_detail {

// attempt >= 1. The delay doubles from `initial` up to `max`; `unit_random` in [0, 1) spreads it over its upper
// half ("equal jitter"), so that the clients of a restarted server do not all come back at the same instant.
inline std::chrono::milliseconds reconnect_delay(unsigned attempt, std::chrono::milliseconds initial,
                                                 std::chrono::milliseconds max, double unit_random) {
  std::chrono::milliseconds d = initial;
  for (unsigned i = 1; i < attempt && d < max; ++i) d *= 2;
  d = std::min(d, max);
  const auto half = d / 2;
  return half + std::chrono::milliseconds(static_cast<long long>(static_cast<double>((d - half).count()) * unit_random));
}

}  // namespace pkgcast::client_detail
