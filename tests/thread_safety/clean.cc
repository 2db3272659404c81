// The pattern the project follows (core/mutex.h): scripts/check-thread-safety must pass this file.
#include <chrono>

#include "core/mutex.h"

namespace {

class Counter {
 public:
  void add() PKG_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    bump_locked();
    changed_.notify_all();
  }
  bool wait_for_one(std::chrono::steady_clock::time_point deadline) PKG_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    while (count_ == 0) {
      if (!changed_.wait_until(mu_, deadline)) return count_ > 0;
    }
    return true;
  }
  int read_in_callback() PKG_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    auto under_lock = [this] {
      mu_.assert_held();
      return count_;
    };
    return under_lock();
  }

 private:
  using Mutex = pkgcast::Mutex;
  using MutexLock = pkgcast::MutexLock;
  void bump_locked() PKG_REQUIRES(mu_) { ++count_; }

  Mutex mu_;
  pkgcast::CondVar changed_;
  int count_ PKG_GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() {
  Counter c;
  c.add();
  return c.wait_for_one(std::chrono::steady_clock::now()) && c.read_in_callback() == 1 ? 0 : 1;
}
