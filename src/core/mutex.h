// A mutex and condition variable that clang's -Wthread-safety analysis understands. libstdc++'s std::mutex is not
// an annotated capability, so PKG_GUARDED_BY(mu_) on a std::mutex checks nothing; with these it is checked by the
// thread-safety pass that .ci/run runs (scripts/check-thread-safety).
//
// Rules the analysis enforces and the code follows:
// - A member marked PKG_GUARDED_BY(mu_) is read or written only while mu_ is held (a MutexLock in scope, or a
//   function marked PKG_REQUIRES(mu_)).
// - A wait loop is written out (`while (!ready_) cv_.wait(mu_);`) rather than given a predicate lambda: the
//   analysis does not know that a lambda called under the lock holds it.
//
// Thread safety: Mutex and CondVar may be used from any thread, as their std counterparts.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/thread_annotations.h"

namespace pkgcast {

class PKG_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() PKG_ACQUIRE() { mu_.lock(); }
  void unlock() PKG_RELEASE() { mu_.unlock(); }
  bool try_lock() PKG_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the caller holds the lock (in a callback run under it).
  void assert_held() const PKG_ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class PKG_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) PKG_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() PKG_RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// A condition variable waited on with a held Mutex. Spurious wake-ups happen: always wait in a loop.
class CondVar {
 public:
  void wait(Mutex& mu) PKG_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // the caller's MutexLock still owns it
  }
  // False when the deadline passed.
  template <class ClockT, class Duration>
  bool wait_until(Mutex& mu, std::chrono::time_point<ClockT, Duration> deadline) PKG_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  template <class Rep, class Period>
  bool wait_for(Mutex& mu, std::chrono::duration<Rep, Period> timeout) PKG_REQUIRES(mu) {
    return wait_until(mu, std::chrono::steady_clock::now() + timeout);
  }
  void notify_one() { cv_.notify_one(); }
  void notify_all() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace pkgcast
