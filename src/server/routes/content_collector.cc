#include "server/routes/content_collector.h"

#include <spdlog/spdlog.h>

namespace pkgcast::server::routes {

ContentCollector::ContentCollector(content::Library& library, distmgr::DistributionManager& distribution,
                                   std::chrono::seconds interval, std::chrono::seconds grace)
    : library_(library), distribution_(distribution), interval_(interval), grace_(grace), thread_([this] { run(); }) {}

ContentCollector::~ContentCollector() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Result<content::GcStats> ContentCollector::collect() {
  PKG_ASSIGN_OR_RETURN(auto live, distribution_.live_manifests());
  std::vector<content::Digest> keep;
  keep.reserve(live.size());
  for (const auto& hex : live) {
    if (auto d = content::Digest::from_hex(hex)) keep.push_back(*d);
  }
  return library_.collect_garbage(keep, grace_);
}

void ContentCollector::run() {
  for (;;) {
    {
      MutexLock lock(mu_);
      if (!stopping_) wake_.wait_for(mu_, interval_);
      if (stopping_) return;
    }
    // No exception may leave the thread.
    try {
      auto stats = collect();
      if (!stats.ok()) {
        spdlog::warn("content garbage collection failed: {}", stats.error().to_string());
      } else if (stats->chunks_removed != 0 || stats->manifests_removed != 0) {
        spdlog::info("content garbage collection freed {} bytes ({} chunks, {} manifests)", stats->bytes_freed,
                     stats->chunks_removed, stats->manifests_removed);
      }
    } catch (const std::exception& e) {
      spdlog::error("content garbage collection threw: {}", e.what());
    }
  }
}

}  // namespace pkgcast::server::routes
