// Keeps the change journal within its retention while the server runs. The store knows the retention
// (OpenOptions::retention: journal_max_entries, journal_max_age_seconds) but compacts only when asked; this asks,
// once at start and then every `interval`, on a thread of its own so a long DELETE never holds a request worker or
// the network.
//
// Ownership and threads: the store must outlive stop() (the destructor calls it). stop() wakes the thread at once,
// waits for a pass in progress (one bounded transaction on the store's writer) and joins; call it from one thread,
// before the store closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

#include "core/mutex.h"
#include "core/thread_annotations.h"

namespace pkgcast::store {
class Store;
}

namespace pkgcast::server {

class JournalCompactor {
 public:
  // Starts the thread; the first pass runs right away.
  JournalCompactor(store::Store& store, std::chrono::milliseconds interval);
  ~JournalCompactor();
  JournalCompactor(const JournalCompactor&) = delete;
  JournalCompactor& operator=(const JournalCompactor&) = delete;

  // Idempotent.
  void stop() PKG_EXCLUDES(mu_);

  // Passes finished (successful or not) and entries dropped by them, so far.
  std::uint64_t passes() const PKG_EXCLUDES(mu_);
  std::uint64_t dropped() const PKG_EXCLUDES(mu_);

 private:
  void run() PKG_EXCLUDES(mu_);

  store::Store& store_;
  const std::chrono::milliseconds interval_;
  mutable Mutex mu_;
  CondVar wake_;
  bool stopping_ PKG_GUARDED_BY(mu_) = false;
  std::uint64_t passes_ PKG_GUARDED_BY(mu_) = 0;
  std::uint64_t dropped_ PKG_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // last: started once everything it reads is initialised
};

}  // namespace pkgcast::server
