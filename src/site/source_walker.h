// Where package sources may come from, and the threads that walk them.
//
// A package's source is a directory on the site server that the server reads with its own rights, so a client
// that could name any path could make the server measure (and later serve) /root. SourcePolicy confines sources
// to configured roots, judged on the canonical path (after `..` and symbolic links), and refuses everything else
// with WBEM_E_ACCESS_DENIED naming the roots.
//
// Walking a tree can take long (a million entries, a slow file system), so it never runs on the caller's thread
// pool's budget unbounded: SourceWalker runs walks on a few threads of its own behind a bounded queue, and a walk
// asked for when every thread is busy and the queue is full is refused at once with WBEM_E_SERVER_TOO_BUSY. Each
// walk also has a deadline (WBEM_E_TIMED_OUT past it), so a caller waits a bounded time.
//
// Thread safety: every method may be called from any thread. The destructor refuses queued walks
// (WBEM_E_SHUTTING_DOWN) and joins the threads after their current walk.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/mutex.h"
#include "core/result.h"

namespace pkgcast::site {

struct SourceWalkerOptions {
  std::size_t threads = 2;                  // config source_walk_threads
  std::size_t queue = 2;                    // config source_walk_queue: walks waiting for a thread
  std::chrono::seconds timeout{60};         // config source_walk_timeout_seconds: one walk's budget
  std::function<void()> before_walk_for_test;  // runs on the walker thread before each walk
};

class SourceWalker {
 public:
  explicit SourceWalker(SourceWalkerOptions options);
  ~SourceWalker();
  SourceWalker(const SourceWalker&) = delete;
  SourceWalker& operator=(const SourceWalker&) = delete;

  // The total size in KB (rounded up) of the regular files under the directory `path`, measured on a walker thread
  // while the caller waits. Symbolic links are not followed. Errors: WBEM_E_SERVER_TOO_BUSY (no room),
  // WBEM_E_TIMED_OUT (past the deadline), WBEM_E_QUOTA_VIOLATION (more entries than kMaxSourceEntries),
  // WBEM_E_INVALID_PARAMETER (unreadable), WBEM_E_SHUTTING_DOWN.
  Result<std::uint32_t> measure(const std::filesystem::path& path) PKG_EXCLUDES(mu_);

  // Runs `work` on a walker thread while the caller waits, under the same bounds as measure(): refused at once
  // with WBEM_E_SERVER_TOO_BUSY when every thread is busy and the queue is full. `work` is given its deadline
  // (now + timeout) and must give up past it (WBEM_E_TIMED_OUT). What it throws becomes WBEM_E_FAILED.
  Status run(std::function<Status(std::chrono::steady_clock::time_point deadline)> work,
             std::chrono::seconds timeout) PKG_EXCLUDES(mu_);

  // The same walk on the calling thread (for callers with no walker, such as tests and tools).
  static Result<std::uint32_t> measure_here(const std::filesystem::path& path,
                                            std::chrono::steady_clock::time_point deadline);

 private:
  struct Job;
  void run() PKG_EXCLUDES(mu_);

  const SourceWalkerOptions options_;
  Mutex mu_;
  CondVar wake_;
  std::deque<std::shared_ptr<Job>> queue_ PKG_GUARDED_BY(mu_);
  std::size_t busy_ PKG_GUARDED_BY(mu_) = 0;  // walks running now
  bool stopping_ PKG_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// A source tree with more entries than this is refused rather than walked for minutes.
inline constexpr std::uint64_t kMaxSourceEntries = 1'000'000;

// The directories package sources must lie under. An empty list admits no source at all.
class SourcePolicy {
 public:
  SourcePolicy() = default;
  // Roots are kept canonical when they exist (so a root that is itself a link still works), else lexically
  // normalized.
  explicit SourcePolicy(const std::vector<std::filesystem::path>& roots,
                        std::shared_ptr<SourceWalker> walker = nullptr);

  // The canonical directory `path` names, when it lies under one of the roots. The path is first judged as
  // written (lexically, so that nothing outside the roots is even looked at: a refusal says nothing about whether
  // the path exists), then canonically (so `..` and links cannot lead out). Errors: WBEM_E_INVALID_PARAMETER (not
  // absolute, does not exist, not a directory), WBEM_E_ACCESS_DENIED naming the roots.
  Result<std::filesystem::path> resolve(const std::string& path) const;
  // measure() on the walker, or on this thread when there is none.
  Result<std::uint32_t> measure(const std::filesystem::path& dir) const;
  // SourceWalker::run on the walker, or on this thread when there is none.
  Status run(std::function<Status(std::chrono::steady_clock::time_point deadline)> work,
             std::chrono::seconds timeout) const;

  const std::vector<std::filesystem::path>& roots() const { return roots_; }

 private:
  std::vector<std::filesystem::path> roots_;
  std::shared_ptr<SourceWalker> walker_;
};

}  // namespace pkgcast::site
