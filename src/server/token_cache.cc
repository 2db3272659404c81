#include "server/token_cache.h"

#include <utility>

#include "site/tokens.h"

namespace pkgcast::server {

TokenCache::TokenCache(Lookup lookup, const Clock& clock) : lookup_(std::move(lookup)), clock_(clock) {}

Result<std::optional<site::TokenRecord>> TokenCache::lookup(std::string_view token) {
  if (!site::is_well_formed_token(token)) return lookup_(token);
  const std::string key = site::hash_token(token);
  std::uint64_t generation = 0;
  {
    MutexLock lock(mu_);
    generation = generation_;
    if (auto it = entries_.find(key); it != entries_.end() && it->second.generation == generation) {
      // Remembered since the last commit; only time can have changed its answer.
      if (!it->second.record.active(clock_.now_micros())) return std::optional<site::TokenRecord>();
      hits_.fetch_add(1, std::memory_order_relaxed);
      return std::optional<site::TokenRecord>(it->second.record);
    }
  }
  auto found = lookup_(token);
  if (!found.ok() || !found->has_value()) return found;
  MutexLock lock(mu_);
  // A commit since `generation` was read may have changed the record: then the answer is given but not kept.
  if (generation_ == generation) {
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_.insert_or_assign(key, Entry{**found, generation});
  }
  return found;
}

std::optional<site::TokenRecord> TokenCache::remembered(std::string_view token) {
  if (!site::is_well_formed_token(token)) return std::nullopt;
  const std::string key = site::hash_token(token);
  MutexLock lock(mu_);
  const auto it = entries_.find(key);
  if (it == entries_.end() || it->second.generation != generation_) return std::nullopt;
  if (!it->second.record.active(clock_.now_micros())) return std::nullopt;
  hits_.fetch_add(1, std::memory_order_relaxed);
  return it->second.record;
}

void TokenCache::invalidate() {
  MutexLock lock(mu_);
  ++generation_;
  entries_.clear();
}

}  // namespace pkgcast::server
