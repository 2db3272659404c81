#include "dp/pool.h"

#include <algorithm>

namespace pkgcast::dp {

WorkerPool::WorkerPool(std::size_t threads) {
  threads = std::max<std::size_t>(threads, 1);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this, i] { work(i); });
}

WorkerPool::~WorkerPool() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  for (auto& t : threads_) t.join();
}

void WorkerPool::run(std::size_t count, const std::function<void(std::size_t, std::size_t)>& task) {
  if (count == 0) return;
  MutexLock batch_lock(run_mu_);
  MutexLock lock(mu_);
  task_ = &task;
  count_ = count;
  next_ = 0;
  ++batch_;
  cv_.notify_all();
  while (next_ < count_ || running_ > 0) cv_.wait(mu_);
  task_ = nullptr;
  count_ = 0;
}

void WorkerPool::work(std::size_t worker) {
  for (;;) {
    std::size_t index = 0;
    const std::function<void(std::size_t, std::size_t)>* task = nullptr;
    {
      MutexLock lock(mu_);
      while (!stopping_ && (task_ == nullptr || next_ >= count_)) cv_.wait(mu_);
      if (stopping_) return;
      index = next_++;
      task = task_;
      ++running_;
    }
    (*task)(index, worker);
    MutexLock lock(mu_);
    --running_;
    if (next_ >= count_ && running_ == 0) cv_.notify_all();
  }
}

TokenBucket::TokenBucket(std::uint64_t bytes_per_second)
    : rate_(static_cast<double>(bytes_per_second)),
      burst_(std::max(static_cast<double>(bytes_per_second), 65536.0)),
      tokens_(0),
      last_(std::chrono::steady_clock::now()) {}

bool TokenBucket::consume(std::uint64_t bytes, const std::atomic<bool>& cancel) {
  if (rate_ <= 0) return !cancel.load();
  for (;;) {
    std::chrono::microseconds wait{0};
    {
      MutexLock lock(mu_);
      const auto now = std::chrono::steady_clock::now();
      tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
      last_ = now;
      // A piece bigger than the burst passes once the bucket is full, driving it negative: the debt is paid by
      // the following pieces, so the average rate holds.
      const double need = std::min(static_cast<double>(bytes), burst_);
      if (tokens_ >= need) {
        tokens_ -= static_cast<double>(bytes);
        return true;
      }
      wait = std::chrono::microseconds(static_cast<std::int64_t>((need - tokens_) / rate_ * 1e6) + 1);
    }
    if (cancel.load()) return false;
    std::this_thread::sleep_for(std::min<std::chrono::microseconds>(wait, std::chrono::milliseconds(50)));
  }
}

}  // namespace pkgcast::dp
