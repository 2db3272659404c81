// The whole-file SHA-256 of a staged tree's files, computed from the verified chunks while they are in memory,
// in file order, so the check before the rename need not read each file back and hash it a second time.
//
// A chunk that is the next bytes of its file is checked and appended to the file's hash in one pass (two SHA-256
// streams interleaved, content::FileHasher). A chunk that arrives before the ones ahead of it in its file is
// checked on its own and waits, copied, until they have come; what waits is bounded per job (`max_waiting`). A file
// that cannot be followed is given up and hashed from disk as before: the bound would be passed, one of its chunks
// went in unread (copy_file_range from an installed version), a chunk appended to its hash failed its check, or
// two places overlap (content::parse_manifest refuses a chunk listed with two sizes, so that would be a bug).
//
// So a file's running digest exists only when every byte of it passed through here exactly once, in order, and
// every one of its chunks matched its SHA-256; `digest()` returns nothing otherwise.
//
// Thread safety: every member may be called from any worker at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "content/content.h"
#include "content/file_hasher.h"
#include "core/mutex.h"

namespace pkgcast::dp {

class RunningHashes {
 public:
  // `sizes`: every entry's file size (by manifest entry index; any value for entries that are not files).
  RunningHashes(std::vector<std::uint64_t> sizes, std::uint64_t max_waiting);
  ~RunningHashes();
  RunningHashes(const RunningHashes&) = delete;
  RunningHashes& operator=(const RunningHashes&) = delete;

  // Whether `bytes` are the chunk `expected`, meant for `offset` of file `entry`; `taken` when they were also
  // appended to that file's hash in the same pass (they were its next bytes). A place taken needs no add(); bytes
  // taken that turn out wrong give the file up.
  struct Checked {
    bool right = false;
    bool taken = false;
  };
  Checked check_at(std::uint32_t entry, std::uint64_t offset, std::string_view bytes, const content::Digest& expected);

  // Verified `bytes` written at `offset` of file `entry` (a place check_at did not take). Appended to the file's
  // hash now or when the bytes ahead of them have come.
  void add(std::uint32_t entry, std::uint64_t offset, std::string_view bytes);

  // File `entry` cannot be followed (bytes went in that did not pass through here).
  void give_up(std::uint32_t entry);

  // The SHA-256 of file `entry` when all of its bytes came through here in order, each chunk matching.
  std::optional<content::Digest> digest(std::uint32_t entry);

  // Bytes waiting for the chunks ahead of them, now (for tests).
  std::uint64_t waiting_bytes();

 private:
  struct File {
    Mutex mu;
    // The hash in progress: null before the first byte, once finished, or once given up.
    std::unique_ptr<content::FileHasher> hasher PKG_GUARDED_BY(mu);
    std::uint64_t next PKG_GUARDED_BY(mu) = 0;  // bytes appended so far
    bool given_up PKG_GUARDED_BY(mu) = false;
    std::optional<content::Digest> finished PKG_GUARDED_BY(mu);
    std::map<std::uint64_t, std::string> waiting PKG_GUARDED_BY(mu);  // verified chunks by offset, beyond `next`
  };
  File& file(std::uint32_t entry) PKG_EXCLUDES(mu_);
  // Frees what the file holds and marks it given up.
  void abandon(File& f) PKG_REQUIRES(f.mu);
  // Appends the waiting chunks that now follow on; finishes the hash at the end of the file.
  void drain(std::uint32_t entry, File& f) PKG_REQUIRES(f.mu);

  const std::vector<std::uint64_t> sizes_;
  const std::uint64_t max_waiting_;
  Mutex mu_;  // guards files_ (the vector is sized once; the mutex guards creating its elements)
  std::vector<std::unique_ptr<File>> files_ PKG_GUARDED_BY(mu_);
  Mutex waiting_mu_;
  std::uint64_t waiting_ PKG_GUARDED_BY(waiting_mu_) = 0;

  // Reserves `n` waiting bytes; false when that would pass the bound.
  bool reserve_waiting(std::uint64_t n) PKG_EXCLUDES(waiting_mu_);
  void release_waiting(std::uint64_t n) PKG_EXCLUDES(waiting_mu_);
};

}  // namespace pkgcast::dp
