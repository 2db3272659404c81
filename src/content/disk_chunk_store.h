// The on-disk ChunkStore (docs/content.md, "Chunk store"): <dir>/<first 2 hex>/<64 hex> holds a chunk's raw bytes,
// <64 hex>.zst a zstd frame of them (kept only when smaller). Temporary files are ".tmp.*" beside them.
// Internal to src/content: the Library writes through ChunkWriteBatch, which spares it the re-hash and one fsync
// per chunk that the public put() costs.
#pragma once

#include <zstd.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "content/content.h"
#include "content/disk.h"

namespace pkgcast::content {

// Reused compression state and buffer. One per thread of work; not thread-safe.
class ChunkCompressor {
 public:
  ChunkCompressor();
  ~ChunkCompressor();
  ChunkCompressor(const ChunkCompressor&) = delete;
  ChunkCompressor& operator=(const ChunkCompressor&) = delete;
  // The zstd frame of `raw` when it is smaller than `raw`, else nullopt (kept raw). Chunks whose sampled bytes look
  // random are not tried at all.
  std::optional<std::span<const std::uint8_t>> compress(std::span<const std::uint8_t> raw);

 private:
  ZSTD_CCtx* cctx_;
  std::vector<std::uint8_t> out_;
};

class DiskChunkStore final : public ChunkStore {
 public:
  explicit DiskChunkStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

  bool contains(const Digest& hash) const override { return stat_chunk(hash).has_value(); }
  Status put(const Digest& hash, std::span<const std::uint8_t> raw) override;
  std::unique_ptr<Writer> writer() override;
  Result<std::string> get(const Digest& hash) const override;
  Result<Stored> locate(const Digest& hash) const override;
  Status remove(const Digest& hash) override;
  Status for_each(const std::function<void(const Digest&, std::filesystem::file_time_type)>& fn) const override;

  // The stored file of a chunk, nullopt when absent.
  std::optional<Stored> stat_chunk(const Digest& hash) const;
  // Sets a stored chunk's modification time to now (a chunk an ingest reuses is as young as the ingest).
  void touch(const Stored& stored) const;
  // Removes temporary files (left by a crash) last modified before `before`.
  void remove_stale_temporaries(std::filesystem::file_time_type before) const;

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path file_for(const Digest& hash, bool compressed) const;
  // The chunk's prefix directory, created on first use.
  Result<std::filesystem::path> prefix_dir(const Digest& hash);

 private:
  std::filesystem::path dir_;
  std::array<std::atomic<bool>, 256> prefix_made_{};
};

// Chunks written to temporary files and made durable together. commit() makes the data durable, renames each file
// to its name and makes the renames durable; a chunk is contained by the store only after it. A large batch uses
// syncfs(2) twice (data, then names) rather than one fdatasync per file: on ext4 each fdatasync of a new file waits
// for a journal commit (several ms), which would cap an ingest at a few hundred chunks per second. The destructor
// removes what was not committed.
class ChunkWriteBatch {
 public:
  explicit ChunkWriteBatch(DiskChunkStore& store) : store_(store) {}
  ~ChunkWriteBatch();
  ChunkWriteBatch(const ChunkWriteBatch&) = delete;
  ChunkWriteBatch& operator=(const ChunkWriteBatch&) = delete;

  // Writes `raw`, whose SHA-256 the caller computed as `hash`, compressed when that is smaller; returns the
  // stored size. Commits by itself when many files or bytes are pending.
  Result<std::uint64_t> add(const Digest& hash, std::span<const std::uint8_t> raw);
  Status commit();

 private:
  struct Pending {
    std::filesystem::path tmp;
    std::filesystem::path final_name;
  };
  static constexpr std::size_t kMaxPendingFiles = 1024;
  static constexpr std::uint64_t kMaxPendingBytes = 64u << 20;
  // Up to this many files, one fdatasync each and a sync of their directories costs less than syncing the file
  // system (which also flushes other writers' data).
  static constexpr std::size_t kSyncEachFileUpTo = 2;

  Status sync_each();
  Status sync_file_system();

  DiskChunkStore& store_;
  ChunkCompressor compressor_;
  std::vector<Pending> pending_;
  std::uint64_t pending_bytes_ = 0;
};

}  // namespace pkgcast::content
