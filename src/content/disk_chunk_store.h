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
#include <thread>
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
  // Whether compress() tries `raw` at all (false for very short chunks and those whose sample looks random).
  static bool would_try(std::span<const std::uint8_t> raw);

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
  Result<OpenedChunk> open_stored(const Digest& hash) const override;
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
// for a journal commit (several ms), which would cap an ingest at a few hundred chunks per second.
//
// When many files or bytes are pending, add() hands them to a thread that commits them while the caller goes on
// writing the next batch (the disk's work overlaps the caller's CPU work; at most one batch is in flight). commit()
// waits for that batch and then commits the rest, so when it returns every chunk added before it is durable and
// named; an error of the background commit is returned by the next add() or commit(). The destructor waits for the
// batch in flight and removes what was not committed.
//
// Not thread-safe: one batch per thread (the background thread touches only the batch handed to it).
class ChunkWriteBatch {
 public:
  static constexpr std::size_t kMaxPendingFiles = 1024;
  static constexpr std::uint64_t kMaxPendingBytes = 64u << 20;

  // A batch is handed to the background once `max_pending_files` files or kMaxPendingBytes bytes are pending.
  explicit ChunkWriteBatch(DiskChunkStore& store, std::size_t max_pending_files = kMaxPendingFiles)
      : store_(store), max_pending_files_(max_pending_files) {}
  ~ChunkWriteBatch();
  ChunkWriteBatch(const ChunkWriteBatch&) = delete;
  ChunkWriteBatch& operator=(const ChunkWriteBatch&) = delete;

  // Writes `raw`, whose SHA-256 the caller computed as `hash`, compressed when that is smaller; returns the
  // stored size. Starts committing in the background when many files or bytes are pending.
  Result<std::uint64_t> add(const Digest& hash, std::span<const std::uint8_t> raw);
  Status commit();

 private:
  struct Pending {
    std::filesystem::path tmp;
    std::filesystem::path final_name;
  };
  // Up to this many files, one fdatasync each and a sync of their directories costs less than syncing the file
  // system (which also flushes other writers' data).
  static constexpr std::size_t kSyncEachFileUpTo = 2;

  // Makes `batch` durable under its names, then removes the temporary files of whatever failed. Reads only store_.
  Status commit_batch(std::vector<Pending>& batch) const;
  Status sync_each(std::vector<Pending>& batch) const;
  Status sync_file_system(std::vector<Pending>& batch) const;
  // Joins the background commit, if any, and returns its status.
  Status wait_in_flight();

  DiskChunkStore& store_;
  const std::size_t max_pending_files_;
  ChunkCompressor compressor_;
  std::vector<Pending> pending_;
  std::uint64_t pending_bytes_ = 0;
  // The batch committing in the background, and how that went (written by in_flight_, read after joining it).
  std::thread in_flight_;
  std::vector<Pending> in_flight_batch_;
  Status in_flight_status_;
};

}  // namespace pkgcast::content
