#include "core/clock.h"

namespace pkgcast {
namespace {

class SystemClock final : public Clock {
 public:
  Micros now_micros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

Clock& Clock::system() {
  static SystemClock clock;
  return clock;
}

}  // namespace pkgcast
