// Planted lock mistakes, one per function: scripts/check-thread-safety must refuse this file, naming each.
#include "core/mutex.h"

namespace {

using pkgcast::CondVar;
using pkgcast::Mutex;
using pkgcast::MutexLock;

class Counter {
 public:
  // A guarded member read with no lock held.
  int read_unlocked() { return unlocked_read_; }
  // A guarded member written with no lock held.
  void write_unlocked() { unlocked_write_ = 1; }
  // A function that needs the lock called without it.
  void call_unlocked() { bump_locked(); }
  // A wait without the lock.
  void wait_unlocked() { changed_.wait(mu_); }
  // The same lock taken twice.
  void lock_twice() {
    MutexLock first(mu_);
    MutexLock second(mu_);
  }
  // A predicate lambda: the analysis does not know it runs under the caller's lock.
  int lambda_under_lock() {
    MutexLock lock(mu_);
    auto predicate = [this] { return lambda_read_; };
    return predicate();
  }

 private:
  void bump_locked() PKG_REQUIRES(mu_) { ++unlocked_write_; }

  Mutex mu_;
  CondVar changed_;
  int unlocked_read_ PKG_GUARDED_BY(mu_) = 0;
  int unlocked_write_ PKG_GUARDED_BY(mu_) = 0;
  int lambda_read_ PKG_GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() {
  Counter c;
  c.write_unlocked();
  c.call_unlocked();
  c.wait_unlocked();
  c.lock_twice();
  return c.read_unlocked() + c.lambda_under_lock();
}
