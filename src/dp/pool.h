// A fixed pool of download workers and the token bucket that paces one job's downloads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "core/mutex.h"

namespace pkgcast::dp {

// N threads made once; run() hands them one batch of tasks at a time. The thread count never depends on the
// number of jobs or chunks.
//
// Thread safety: run() may be called from any thread; concurrent calls are served one after the other.
class WorkerPool {
 public:
  explicit WorkerPool(std::size_t threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  std::size_t size() const { return threads_.size(); }

  // Calls task(index, worker) for every index in [0, count), spread over the workers (worker in [0, size())),
  // and returns when all calls returned. `task` must not throw.
  void run(std::size_t count, const std::function<void(std::size_t index, std::size_t worker)>& task);

 private:
  void work(std::size_t worker);

  Mutex run_mu_;  // one batch at a time
  Mutex mu_;
  CondVar cv_;
  const std::function<void(std::size_t, std::size_t)>* task_ PKG_GUARDED_BY(mu_) = nullptr;
  std::size_t count_ PKG_GUARDED_BY(mu_) = 0;
  std::size_t next_ PKG_GUARDED_BY(mu_) = 0;
  std::size_t running_ PKG_GUARDED_BY(mu_) = 0;
  std::uint64_t batch_ PKG_GUARDED_BY(mu_) = 0;
  bool stopping_ PKG_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// Paces bytes to `bytes_per_second` over every download of one job (burst: one second's worth, at least 64 KiB).
// Thread safety: consume() from any thread.
class TokenBucket {
 public:
  explicit TokenBucket(std::uint64_t bytes_per_second);
  // Blocks until `bytes` may pass, or returns false early when `cancel` becomes true.
  bool consume(std::uint64_t bytes, const std::atomic<bool>& cancel);

 private:
  const double rate_;
  const double burst_;
  Mutex mu_;
  double tokens_ PKG_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_ PKG_GUARDED_BY(mu_);
};

}  // namespace pkgcast::dp
