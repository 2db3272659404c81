#include "server/journal_compactor.h"

#include <spdlog/spdlog.h>

#include "store/store.h"

namespace pkgcast::server {

JournalCompactor::JournalCompactor(store::Store& store, std::chrono::milliseconds interval)
    : store_(store), interval_(interval), thread_([this] { run(); }) {}

JournalCompactor::~JournalCompactor() { stop(); }

void JournalCompactor::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t JournalCompactor::passes() const {
  MutexLock lock(mu_);
  return passes_;
}

std::uint64_t JournalCompactor::dropped() const {
  MutexLock lock(mu_);
  return dropped_;
}

void JournalCompactor::run() {
  while (true) {
    {
      MutexLock lock(mu_);
      if (stopping_) return;
    }
    // Not under the lock: stop() must be able to ask while a pass runs, and a pass waits for the store's writer.
    auto dropped = store_.compact_journal();
    if (!dropped.ok()) {
      // Retried at the next pass: a journal that grows for a while harms nothing, and the store's errors (database
      // busy, disk full) are better reported than fatal here.
      spdlog::warn("journal compaction failed: {}", dropped.error().to_string());
    } else if (*dropped > 0) {
      spdlog::info("journal compaction dropped {} entries", *dropped);
    } else {
      spdlog::debug("journal compaction dropped 0 entries");
    }
    MutexLock lock(mu_);
    ++passes_;
    if (dropped.ok()) dropped_ += *dropped;
    const auto deadline = std::chrono::steady_clock::now() + interval_;
    while (!stopping_ && wake_.wait_until(mu_, deadline)) {
    }
    if (stopping_) return;
  }
}

}  // namespace pkgcast::server
