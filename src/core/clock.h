// Time is injected: production code reads the system clock, tests drive a manual one (WITHIN, back-off, heartbeats).
#pragma once

#include <chrono>
#include <cstdint>

#include "core/mutex.h"
#include "core/thread_annotations.h"

namespace pkgcast {

// Wall-clock time in microseconds since the Unix epoch (UTC).
using Micros = std::int64_t;

// Thread safety: implementations are safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Micros now_micros() const = 0;

  // The process-wide system clock.
  static Clock& system();
};

// A clock that moves only when told to. For tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Micros start) : now_(start) {}
  Micros now_micros() const override {
    MutexLock lock(mu_);
    return now_;
  }
  void advance(std::chrono::microseconds d) {
    MutexLock lock(mu_);
    now_ += d.count();
  }
  void set(Micros t) {
    MutexLock lock(mu_);
    now_ = t;
  }

 private:
  mutable Mutex mu_;
  Micros now_ PKG_GUARDED_BY(mu_);
};

}  // namespace pkgcast
