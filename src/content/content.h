// The content library: package source trees cut into content-defined chunks, each stored once under its SHA-256,
// and manifests that list a tree's entries and their chunks (design.md section 1, steps 2 and 5; docs/content.md
// specifies the manifest format).
//
// Invariants:
// - Chunks and manifests are immutable and named by the SHA-256 of their bytes (a chunk: of its raw, uncompressed
//   bytes; a manifest: of its canonical serialization). Whatever holds one can serve it; a reader verifies.
// - Everything on disk is written atomically (temporary file, fsync, rename, fsync of the directory): a crash at any
//   point leaves either the whole file or none of it, never a partial one under its final name.
// - An ingest writes every chunk before its manifest, so a manifest that exists names only chunks that exist.
//   Garbage collection removes a chunk only when no kept manifest names it, and never a file younger than its
//   grace period, so an ingest in progress (chunks written, manifest not yet) cannot lose a chunk.
//
// Thread safety: parse/serialize/hash functions are pure. A Library and its ChunkStore may be used from any
// thread; concurrent puts of the same chunk are safe (the rename is idempotent).
#pragma once

#include <array>
#include <cstring>
#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/result.h"

namespace pkgcast::content {

// ---- Hashes ----------------------------------------------------------------------------------------------------

struct Digest {
  std::array<std::uint8_t, 32> bytes{};

  std::string hex() const;  // 64 lower-case hex digits
  // Exactly 64 hex digits (either case); anything else is nullopt.
  static std::optional<Digest> from_hex(std::string_view text);
  friend auto operator<=>(const Digest&, const Digest&) = default;
};

// A hash-table hash of a Digest: its first bytes. Fine for digests this process computed; a table keyed by digests
// that someone else chose (a manifest's) is bounded by the manifest's limits.
struct DigestHash {
  std::size_t operator()(const Digest& d) const noexcept {
    std::size_t h;
    static_assert(sizeof h <= sizeof d.bytes);
    std::memcpy(&h, d.bytes.data(), sizeof h);
    return h;
  }
};

Digest sha256(std::span<const std::uint8_t> data);
Digest sha256(std::string_view data);

// Incremental SHA-256 (OpenSSL EVP underneath).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const std::uint8_t> data);
  Digest finish();  // the object may not be updated afterwards

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Chunking --------------------------------------------------------------------------------------------------

struct ChunkingParams {
  std::uint32_t min_size = 16 * 1024;
  std::uint32_t avg_size = 64 * 1024;  // a power of two
  std::uint32_t max_size = 256 * 1024;
  friend bool operator==(const ChunkingParams&, const ChunkingParams&) = default;
};

// FastCDC (Xia et al., 2016, with normalized chunking): cut points depend only on the bytes near them, so an edit
// moves only the chunks around it.
class Chunker {
 public:
  explicit Chunker(ChunkingParams params = {});
  const ChunkingParams& params() const { return params_; }
  // The length of the first chunk of `data`. `at_end`: no more bytes follow `data`. Returns 0 when `data` holds
  // fewer than max_size bytes and !at_end (more bytes are needed to decide). Never more than max_size; less than
  // min_size only for the last chunk of a stream.
  std::size_t next_cut(std::span<const std::uint8_t> data, bool at_end) const;

 private:
  ChunkingParams params_;
};

// ---- Manifests -------------------------------------------------------------------------------------------------

struct ChunkRef {
  Digest hash;
  std::uint32_t size = 0;  // raw bytes
  friend bool operator==(const ChunkRef&, const ChunkRef&) = default;
};

enum class EntryType : std::uint8_t { kFile, kDirectory, kSymlink };

struct ManifestEntry {
  std::string path;  // relative, '/'-separated, normalized (see check_entry_path)
  EntryType type = EntryType::kFile;
  std::uint32_t mode = 0;  // permission bits only (07777)
  // Files only:
  std::uint64_t size = 0;
  Digest sha256;                 // of the whole file
  std::vector<ChunkRef> chunks;  // in file order; their sizes add up to `size`
  // Symlinks only: the target as read, relative, resolving inside the tree.
  std::string target;
  friend bool operator==(const ManifestEntry&, const ManifestEntry&) = default;
};

struct Manifest {
  ChunkingParams chunking;
  Micros source_date = 0;  // the newest mtime in the source tree, in microseconds since the Unix epoch
  // Sorted by path (bytewise); a directory comes before what it holds; no path twice.
  std::vector<ManifestEntry> entries;

  std::uint64_t total_size() const;  // sum of file sizes
  friend bool operator==(const Manifest&, const Manifest&) = default;
};

// What a parser accepts; past any of them the manifest is refused with WBEM_E_QUOTA_VIOLATION.
struct ManifestLimits {
  std::size_t max_bytes = 512u * 1024 * 1024;  // serialized size
  std::size_t max_entries = 1'000'000;
  std::uint64_t max_total_size = std::uint64_t{1} << 40;  // 1 TiB of file bytes
  std::size_t max_path_bytes = 4096;
  std::size_t max_depth = 128;
  // Largest chunk the manifest's chunking may make (its `max`): what a reader holds in memory per chunk. The format
  // allows 64 MiB; pkgcast cuts at most 256 KiB.
  std::uint32_t max_chunk_bytes = 64u << 20;
};

// A path inside a content tree: non-empty, relative, '/'-separated, no empty, "." or ".." component, no NUL, no
// backslash, valid UTF-8. WBEM_E_INVALID_PARAMETER naming the path otherwise; WBEM_E_QUOTA_VIOLATION when it is
// longer than max_path_bytes.
Status check_entry_path(std::string_view path, const ManifestLimits& limits = {});

// The canonical serialization (docs/content.md): serialize(parse(b)) == b for every canonical b.
std::string serialize_manifest(const Manifest& manifest);
// Parses and validates everything a reader relies on: the format and version, every path (check_entry_path),
// order and uniqueness, every parent present as a directory, chunk sizes within the chunking bounds and adding up
// to the file size, symlink targets that stay inside the tree, the limits. Errors: WBEM_E_INVALID_PARAMETER
// (malformed, naming what and where), WBEM_E_QUOTA_VIOLATION (a limit).
Result<Manifest> parse_manifest(std::string_view bytes, const ManifestLimits& limits = {});
// The manifest's id: the SHA-256 of its canonical serialization.
Digest manifest_id(const Manifest& manifest);

// ---- Chunk store -----------------------------------------------------------------------------------------------

// Chunks on disk under one directory, named by hash; stored zstd-compressed when that saves space.
class ChunkStore {
 public:
  // Creates the directory when missing (mode 0700).
  static Result<std::unique_ptr<ChunkStore>> open(const std::filesystem::path& dir);
  virtual ~ChunkStore() = default;

  virtual bool contains(const Digest& hash) const = 0;
  // Stores `raw` under `hash`. WBEM_E_INVALID_PARAMETER when sha256(raw) != hash (nothing written). Storing a chunk
  // that exists is a no-op. Durable when it returns.
  virtual Status put(const Digest& hash, std::span<const std::uint8_t> raw) = 0;

  // Many chunks made durable together: add() checks and writes each as put() does, commit() makes everything added
  // since the last commit durable with a few syncs for the lot (put() syncs every chunk, and on ext4 a sync of a new
  // file costs milliseconds). A chunk is contained by the store only once the commit() after its add() returned; a
  // writer destroyed before that removes what it had not committed. Not thread-safe: one writer per thread (any
  // number of writers and puts may run at once).
  class Writer {
   public:
    virtual ~Writer() = default;
    virtual Status add(const Digest& hash, std::span<const std::uint8_t> raw) = 0;
    virtual Status commit() = 0;
  };
  virtual std::unique_ptr<Writer> writer() = 0;

  // The raw bytes, verified against the hash (WBEM_E_NOT_FOUND when absent; WBEM_E_FAILED naming the chunk when the
  // stored bytes no longer match, and the bad file is removed).
  virtual Result<std::string> get(const Digest& hash) const = 0;

  // How a chunk is kept, for serving it without decoding: its file, and whether that file is a zstd frame.
  struct Stored {
    std::filesystem::path file;
    bool compressed = false;
    std::uint64_t raw_size = 0;
    std::uint64_t stored_size = 0;
  };
  virtual Result<Stored> locate(const Digest& hash) const = 0;

  // A chunk's stored file opened for sending it as it is kept, without a stat or a path lookup more than the open:
  // the descriptor (O_RDONLY | O_CLOEXEC; the caller owns it and must close it), whether the file is a zstd frame,
  // and its size. WBEM_E_NOT_FOUND when the chunk is absent.
  struct OpenedChunk {
    int fd = -1;
    bool compressed = false;
    std::uint64_t stored_size = 0;
  };
  virtual Result<OpenedChunk> open_stored(const Digest& hash) const = 0;

  virtual Status remove(const Digest& hash) = 0;  // absent is not an error
  // Every stored chunk with its file's modification time (for garbage collection).
  virtual Status for_each(const std::function<void(const Digest&, std::filesystem::file_time_type)>& fn) const = 0;
};

// ---- Library ---------------------------------------------------------------------------------------------------

struct IngestOptions {
  ChunkingParams chunking;
  ManifestLimits limits;
  // Stops the ingest with WBEM_E_TIMED_OUT past this instant (nullopt: none).
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // Runs after a file's bytes were read and before they are checked against the file again (tests change the file
  // here to prove the change is seen). Called with the file's path under the source.
  std::function<void(const std::filesystem::path&)> after_read_for_test;
  // Take a file's hash and chunks from the previous ingest of the same directory, without reading it, when its
  // device, inode, size, mtime and ctime are those that ingest saw (docs/content.md, "Updates that read only what
  // changed"). false: read every file. Every ingest records what it saw either way.
  bool reuse_unchanged_files = true;
  // A file whose mtime or ctime is less than this before the ingest's start is not recorded for reuse: a write in
  // the same timestamp tick as the reading could leave both times unchanged.
  std::chrono::milliseconds racy_margin{2000};
  // Files are read, cut, hashed and compressed on this many threads (the caller's and threads - 1 more, started
  // and joined by the ingest); each has its own read buffer and batch of new chunks. When more than one is allowed
  // and at most four files are to be read, each of them gets its own. The manifest does not depend on it.
  std::size_t threads = 1;
};

struct IngestResult {
  Digest manifest_id;
  Manifest manifest;
  std::uint64_t source_bytes = 0;      // sum of file sizes
  std::uint64_t compressed_bytes = 0;  // what the tree's distinct chunks take as stored
  std::uint64_t new_chunk_bytes = 0;   // raw bytes of the chunks this ingest added to the store
  std::size_t chunk_count = 0;         // chunk references in the manifest
  std::size_t new_chunk_count = 0;
  std::size_t reused_files = 0;       // files taken from the previous ingest of the directory, unread
  std::uint64_t reused_bytes = 0;
};

struct GcStats {
  std::size_t manifests_removed = 0;
  std::size_t chunks_removed = 0;
  std::uint64_t bytes_freed = 0;
};

// Manifests and chunks under one directory (the server keeps it at <data-dir>/library).
class Library {
 public:
  static Result<std::unique_ptr<Library>> open(const std::filesystem::path& dir);
  virtual ~Library() = default;

  virtual ChunkStore& chunks() = 0;

  // Ingests the directory `source`: walks it (regular files, directories, and symlinks that resolve inside the
  // tree; anything else, or a link out, is WBEM_E_INVALID_PARAMETER naming it), chunks and hashes every file in a
  // streaming pass (memory does not grow with file size), stores each new chunk, and writes the manifest last.
  // A file whose size or mtime changed during the ingest is WBEM_E_INVALID_OPERATION ("changed while it was
  // read") and nothing is recorded as a manifest. Limits are those of `options.limits`. A file unchanged since the
  // last ingest of the same directory is not read again (IngestOptions::reuse_unchanged_files).
  virtual Result<IngestResult> ingest(const std::filesystem::path& source, const IngestOptions& options = {}) = 0;

  // The manifest's canonical bytes (WBEM_E_NOT_FOUND when absent), verified against `id`.
  virtual Result<std::string> manifest_bytes(const Digest& id) const = 0;
  virtual bool has_manifest(const Digest& id) const = 0;
  // Where the manifest `id` is (or would be) kept: <dir>/manifests/<64 hex>. For serving it as a file; a reader
  // that does not verify it itself should use manifest_bytes.
  virtual std::filesystem::path manifest_path(const Digest& id) const = 0;

  // Removes every manifest not in `keep` and older than `grace`, then every chunk that no remaining manifest names
  // and that is older than `grace`. Safe against a crash at any point and against an ingest running concurrently
  // (whose files are younger than `grace`).
  virtual Result<GcStats> collect_garbage(const std::vector<Digest>& keep, std::chrono::seconds grace) = 0;
};

}  // namespace pkgcast::content
