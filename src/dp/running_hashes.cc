#include "dp/running_hashes.h"

#include <iterator>

namespace pkgcast::dp {
namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

RunningHashes::RunningHashes(std::vector<std::uint64_t> sizes, std::uint64_t max_waiting)
    : sizes_(std::move(sizes)), max_waiting_(max_waiting) {
  MutexLock lock(mu_);
  files_.resize(sizes_.size());
}

RunningHashes::~RunningHashes() = default;

RunningHashes::File& RunningHashes::file(std::uint32_t entry) {
  MutexLock lock(mu_);
  auto& f = files_.at(entry);
  if (!f) f = std::make_unique<File>();
  return *f;
}

bool RunningHashes::reserve_waiting(std::uint64_t n) {
  MutexLock lock(waiting_mu_);
  if (waiting_ + n > max_waiting_) return false;
  waiting_ += n;
  return true;
}

void RunningHashes::release_waiting(std::uint64_t n) {
  MutexLock lock(waiting_mu_);
  waiting_ -= n;
}

std::uint64_t RunningHashes::waiting_bytes() {
  MutexLock lock(waiting_mu_);
  return waiting_;
}

void RunningHashes::abandon(File& f) {
  f.given_up = true;
  f.hasher.reset();
  f.finished.reset();
  std::uint64_t freed = 0;
  for (const auto& [offset, bytes] : f.waiting) freed += bytes.size();
  f.waiting.clear();
  if (freed != 0) release_waiting(freed);
}

void RunningHashes::drain(std::uint32_t entry, File& f) {
  for (auto it = f.waiting.begin(); it != f.waiting.end() && it->first == f.next; it = f.waiting.erase(it)) {
    f.hasher->append(as_bytes(it->second));
    f.next += it->second.size();
    release_waiting(it->second.size());
  }
  // A waiting chunk that starts inside bytes already appended overlaps them: the places do not tile the file.
  if (!f.waiting.empty() && f.waiting.begin()->first < f.next) return abandon(f);
  if (f.next == sizes_[entry]) {
    f.finished = f.hasher->finish();
    f.hasher.reset();
  } else if (f.next > sizes_[entry]) {
    abandon(f);  // more bytes than the file holds: a manifest this agent refuses anyway
  }
}

RunningHashes::Checked RunningHashes::check_at(std::uint32_t entry, std::uint64_t offset, std::string_view bytes,
                                               const content::Digest& expected) {
  File& f = file(entry);
  {
    MutexLock lock(f.mu);
    if (!f.given_up && !f.finished && offset == f.next) {
      if (!f.hasher) f.hasher = std::make_unique<content::FileHasher>();
      const bool good = f.hasher->add_chunk(as_bytes(bytes)) == expected;
      if (!good) {
        abandon(f);  // the file's hash now holds bytes that are not the file's
        return {};
      }
      f.next += bytes.size();
      drain(entry, f);
      return {.right = true, .taken = true};
    }
  }
  return {.right = content::sha256(bytes) == expected, .taken = false};
}

void RunningHashes::add(std::uint32_t entry, std::uint64_t offset, std::string_view bytes) {
  File& f = file(entry);
  MutexLock lock(f.mu);
  if (f.given_up) return;
  if (f.finished || offset < f.next) return abandon(f);  // a place filled twice
  if (offset == f.next) {
    if (!f.hasher) f.hasher = std::make_unique<content::FileHasher>();
    f.hasher->append(as_bytes(bytes));
    f.next += bytes.size();
    return drain(entry, f);
  }
  // Overlapping a waiting neighbour: the places do not tile the file.
  const auto after = f.waiting.upper_bound(offset);
  if (after != f.waiting.end() && offset + bytes.size() > after->first) return abandon(f);
  if (after != f.waiting.begin()) {
    const auto before = std::prev(after);
    if (before->first + before->second.size() > offset) return abandon(f);
  }
  if (!reserve_waiting(bytes.size())) return abandon(f);
  f.waiting.emplace(offset, std::string(bytes));
}

void RunningHashes::give_up(std::uint32_t entry) {
  File& f = file(entry);
  MutexLock lock(f.mu);
  abandon(f);
}

std::optional<content::Digest> RunningHashes::digest(std::uint32_t entry) {
  File& f = file(entry);
  MutexLock lock(f.mu);
  return f.finished;
}

}  // namespace pkgcast::dp
