// The site server's bearer-token lookups, remembered until the store's next commit.
//
// Every request is authenticated on a worker thread (dispatch.h), and a token lookup reads the store (a reader
// connection, a statement, the record's JSON). A DP agent fetching a package makes one request per chunk, thousands
// per second, with the same token: this cache answers them from memory. It is exact, not timed: any commit that
// journals something (every change of a token record journals its PKG_Token instance in the same command,
// site/tokens.h) empties it before the command's caller learns that it committed, so a token revoked by a
// command that returned is refused by every request admitted after it. An entry filled by a lookup that raced with
// such a commit is never used (entries carry the generation read before their lookup). Expiry is checked at each
// use. Unknown tokens are not remembered (a client guessing tokens cannot fill the cache); at most kMaxEntries
// tokens are, after which the cache starts over.
//
// Thread safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"
#include "core/mutex.h"
#include "core/result.h"
#include "site/identity.h"

namespace pkgcast::server {

class TokenCache {
 public:
  using Lookup = std::function<Result<std::optional<site::TokenRecord>>(std::string_view token)>;
  static constexpr std::size_t kMaxEntries = 4096;

  // `lookup` reads the store (site::lookup_token); `clock` gives the time expiry is checked against.
  TokenCache(Lookup lookup, const Clock& clock);

  // What `lookup` would answer now.
  Result<std::optional<site::TokenRecord>> lookup(std::string_view token);

  // The record of `token` when remembered since the last commit and active now; nullopt when only lookup() can
  // tell (not remembered, expired, or not a well-formed token). Never reads the store.
  std::optional<site::TokenRecord> remembered(std::string_view token);

  // Forgets every entry: called after each commit that journaled something (Store::add_commit_listener).
  void invalidate();

  std::uint64_t hits_for_test() const { return hits_.load(); }

 private:
  struct Entry {
    site::TokenRecord record;
    std::uint64_t generation = 0;
  };

  const Lookup lookup_;
  const Clock& clock_;
  Mutex mu_;
  std::uint64_t generation_ PKG_GUARDED_BY(mu_) = 0;
  // By the token's SHA-256 (site::hash_token), so the tokens themselves are not kept.
  std::unordered_map<std::string, Entry> entries_ PKG_GUARDED_BY(mu_);
  std::atomic<std::uint64_t> hits_{0};
};

}  // namespace pkgcast::server
