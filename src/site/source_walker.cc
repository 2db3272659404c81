#include "site/source_walker.h"

#include <unistd.h>

#include <algorithm>
#include <future>
#include <system_error>

namespace pkgcast::site {
namespace fs = std::filesystem;
namespace {

// Whether `path` is `root` or lies below it; both lexically normal, absolute.
bool is_under(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

// Lexically normal, without a trailing separator ("/srv/" -> "/srv").
fs::path normal(const fs::path& p) {
  fs::path n = p.lexically_normal();
  if (n.has_filename() || n == n.root_path()) return n;
  return n.parent_path();
}

}  // namespace

struct SourceWalker::Job {
  std::function<Status(std::chrono::steady_clock::time_point)> work;
  std::chrono::steady_clock::time_point deadline;
  std::promise<Status> done;
};

SourceWalker::SourceWalker(SourceWalkerOptions options) : options_(options) {
  const std::size_t n = std::max<std::size_t>(1, options_.threads);
  threads_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
}

SourceWalker::~SourceWalker() {
  std::deque<std::shared_ptr<Job>> refused;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    refused.swap(queue_);
  }
  wake_.notify_all();
  for (auto& job : refused) {
    job->done.set_value(make_error(WbemCode::kShuttingDown, "the server is stopping"));
  }
  for (auto& t : threads_) t.join();
}

Result<std::uint32_t> SourceWalker::measure(const fs::path& path) {
  std::uint32_t kb = 0;
  PKG_TRY(run(
      [&](std::chrono::steady_clock::time_point deadline) -> Status {
        PKG_ASSIGN_OR_RETURN(kb, measure_here(path, deadline));
        return ok_status();
      },
      options_.timeout));
  return kb;
}

Status SourceWalker::run(std::function<Status(std::chrono::steady_clock::time_point deadline)> work,
                         std::chrono::seconds timeout) {
  auto job = std::make_shared<Job>();
  job->work = std::move(work);
  job->deadline = std::chrono::steady_clock::now() + timeout;
  std::future<Status> result = job->done.get_future();
  {
    MutexLock lock(mu_);
    if (stopping_) return make_error(WbemCode::kShuttingDown, "the server is stopping");
    const std::size_t idle = threads_.size() - std::min(busy_, threads_.size());
    if (queue_.size() >= options_.queue + idle) {
      return make_error(WbemCode::kServerTooBusy,
                        std::to_string(threads_.size()) + " source walks are running and " +
                            std::to_string(queue_.size()) + " waiting (source_walk_threads, source_walk_queue); "
                            "try again later");
    }
    queue_.push_back(job);
  }
  wake_.notify_one();
  // Bounded: the work itself gives up at its deadline, and a queued job is refused when the walker stops.
  return result.get();
}

void SourceWalker::run() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      MutexLock lock(mu_);
      while (!stopping_ && queue_.empty()) wake_.wait(mu_);
      if (queue_.empty()) return;  // stopping, nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    Status r = [&]() -> Status {
      // No exception may leave a thread; the work uses non-throwing calls, this is the last guard.
      try {
        if (options_.before_walk_for_test) options_.before_walk_for_test();
        return job->work(job->deadline);
      } catch (const std::exception& e) {
        return make_error(WbemCode::kFailed, std::string("reading a package source failed: ") + e.what());
      }
    }();
    {
      // The slot is free before the caller learns the result, so a caller that measures again at once finds room.
      MutexLock lock(mu_);
      --busy_;
    }
    job->done.set_value(std::move(r));
  }
}

Result<std::uint32_t> SourceWalker::measure_here(const fs::path& path,
                                                 std::chrono::steady_clock::time_point deadline) {
  std::error_code ec;
  std::uint64_t bytes = 0;
  std::uint64_t entries = 0;
  fs::recursive_directory_iterator it(path, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (++entries > kMaxSourceEntries) {
      return make_error(WbemCode::kQuotaViolation, "source directory '" + path.string() + "' has more than " +
                                                       std::to_string(kMaxSourceEntries) + " entries");
    }
    if (entries % 1024 == 0 && std::chrono::steady_clock::now() > deadline) {
      return make_error(WbemCode::kTimedOut, "measuring source directory '" + path.string() +
                                                 "' took longer than source_walk_timeout_seconds");
    }
    const fs::file_status entry_status = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_regular_file(entry_status)) {
      const auto size = it->file_size(ec);
      if (ec) break;
      bytes += size;
    }
  }
  if (ec) {
    return make_error(WbemCode::kInvalidParameter,
                      "cannot read source directory '" + path.string() + "': " + ec.message());
  }
  const std::uint64_t kb = (bytes + 1023) / 1024;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(kb, 0xFFFFFFFFu));
}

SourcePolicy::SourcePolicy(const std::vector<fs::path>& roots, std::shared_ptr<SourceWalker> walker)
    : walker_(std::move(walker)) {
  for (const auto& root : roots) {
    std::error_code ec;
    const fs::path canonical = fs::canonical(root, ec);
    roots_.push_back(ec ? normal(root) : canonical);
  }
}

Result<fs::path> SourcePolicy::resolve(const std::string& path) const {
  if (path.empty() || path.front() != '/') {
    return make_error(WbemCode::kInvalidParameter, "PkgSourcePath must be an absolute path, got '" + path + "'");
  }
  std::string listed;
  for (const auto& r : roots_) listed += (listed.empty() ? "" : ", ") + r.string();
  if (listed.empty()) listed = "none configured";
  const Error outside = make_error(WbemCode::kAccessDenied, "source '" + path +
                                                                "' is not under an allowed source root (" + listed +
                                                                "; configuration key source_roots)");
  const fs::path written = normal(path);
  const auto under_a_root = [this](const fs::path& p) {
    return std::any_of(roots_.begin(), roots_.end(), [&](const fs::path& r) { return is_under(p, r); });
  };
  // Judged as written first: a path outside every root is not even looked at, so the answer cannot tell an
  // attacker what exists there.
  if (!under_a_root(written)) return outside;
  std::error_code ec;
  const fs::path canonical = fs::canonical(written, ec);
  if (ec) return make_error(WbemCode::kInvalidParameter, "source directory '" + path + "' does not exist");
  // Then as it really is: `..` and symbolic links must not lead out.
  if (!under_a_root(canonical)) return outside;
  const fs::file_status st = fs::status(canonical, ec);
  if (ec || !fs::is_directory(st)) {
    return make_error(WbemCode::kInvalidParameter, "source '" + path + "' is not a directory");
  }
  if (::access(canonical.c_str(), R_OK | X_OK) != 0) {
    return make_error(WbemCode::kInvalidParameter, "source directory '" + path + "' is not readable");
  }
  return canonical;
}

Result<std::uint32_t> SourcePolicy::measure(const fs::path& dir) const {
  if (walker_) return walker_->measure(dir);
  return SourceWalker::measure_here(dir, std::chrono::steady_clock::now() + SourceWalkerOptions{}.timeout);
}

Status SourcePolicy::run(std::function<Status(std::chrono::steady_clock::time_point deadline)> work,
                         std::chrono::seconds timeout) const {
  if (walker_) return walker_->run(std::move(work), timeout);
  return work(std::chrono::steady_clock::now() + timeout);
}

}  // namespace pkgcast::site
