// The on-disk Library: <dir>/chunks (a DiskChunkStore), <dir>/manifests/<64 hex> (canonical manifest bytes) and
// <dir>/sources/<64 hex> (per source directory, what its last ingest saw: source_record.h).
// Internal to src/content; ingest.cc holds the ingest, disk_library.cc the rest.
//
// Concurrency with garbage collection: every chunk an ingest reads is pinned (in `pinned_`, under mu_) until the
// ingest ends, and a reused chunk is touched, so neither a pinned chunk nor a young one is swept. The sweep re-reads
// a file's time under mu_ just before removing it, so an ingest that reuses (touches) it first wins.
#pragma once

#include <cstring>
#include <functional>
#include <unordered_set>

#include "content/content.h"
#include "content/disk_chunk_store.h"
#include "core/mutex.h"

namespace pkgcast::content {

using DigestSet = std::unordered_set<Digest, DigestHash>;

class DiskLibrary final : public Library {
 public:
  explicit DiskLibrary(std::filesystem::path dir);

  ChunkStore& chunks() override { return chunks_; }
  Result<IngestResult> ingest(const std::filesystem::path& source, const IngestOptions& options) override;
  Result<std::string> manifest_bytes(const Digest& id) const override;
  bool has_manifest(const Digest& id) const override;
  std::filesystem::path manifest_path(const Digest& id) const override;
  Result<GcStats> collect_garbage(const std::vector<Digest>& keep, std::chrono::seconds grace) override;

  DiskChunkStore& disk_chunks() { return chunks_; }

  // One ingest's claim on the chunks it uses; released on destruction.
  class Pin {
   public:
    explicit Pin(DiskLibrary& library);
    ~Pin();
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    // Pins `hash`; returns false when this ingest had pinned it already. The stored chunk, when there is one, is
    // touched under the same lock, so a sweep cannot remove it in between.
    bool add(const Digest& hash, std::optional<ChunkStore::Stored>& stored);
    // Pins `hash` only when the store holds it or this ingest pinned it already (false otherwise, nothing pinned).
    // `stored` is set when this call pinned it.
    bool add_if_present(const Digest& hash, std::optional<ChunkStore::Stored>& stored);

   private:
    DiskLibrary& library_;
    DigestSet hashes_;
  };

  // Writes a manifest's bytes under its id, atomically, under mu_ (a sweep of an older copy cannot undo it).
  Status write_manifest(const Digest& id, std::string_view bytes);

  // Where the record of the last ingest of `source` is kept: named by the hash of its absolute, normal path.
  std::filesystem::path source_record_path(const std::filesystem::path& source) const;

 private:
  bool pinned(const Digest& hash) const PKG_REQUIRES(mu_);
  void remove_stale_source_records(std::filesystem::file_time_type cutoff) const;

  const std::filesystem::path dir_;
  const std::filesystem::path manifests_dir_;
  const std::filesystem::path sources_dir_;
  DiskChunkStore chunks_;
  mutable Mutex mu_;
  std::vector<const DigestSet*> pins_ PKG_GUARDED_BY(mu_);
};

}  // namespace pkgcast::content
