// Frees the content library of what no package version names any more (design.md section 9): every interval, the
// manifests the store's content records name are kept, and everything else older than the grace period goes
// (content::Library::collect_garbage). The grace is longer than an ingest may run, so the chunks of an ingest in
// progress, whose package row is not committed yet, are never taken. One thread; a pass that fails is logged and
// tried again at the next interval. Internal to pkgcast_routes.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

#include "content/content.h"
#include "core/mutex.h"
#include "distmgr/distmgr.h"

namespace pkgcast::server::routes {

class ContentCollector {
 public:
  // Starts the thread; the first pass runs one interval from now.
  ContentCollector(content::Library& library, distmgr::DistributionManager& distribution,
                   std::chrono::seconds interval, std::chrono::seconds grace);
  ~ContentCollector();
  ContentCollector(const ContentCollector&) = delete;
  ContentCollector& operator=(const ContentCollector&) = delete;

  // One pass on the calling thread.
  Result<content::GcStats> collect();

 private:
  void run() PKG_EXCLUDES(mu_);

  content::Library& library_;
  distmgr::DistributionManager& distribution_;
  const std::chrono::seconds interval_;
  const std::chrono::seconds grace_;
  Mutex mu_;
  CondVar wake_;
  bool stopping_ PKG_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once everything it reads is initialised
};

}  // namespace pkgcast::server::routes
