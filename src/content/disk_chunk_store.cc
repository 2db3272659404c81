#include "content/disk_chunk_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <set>
#include <system_error>

#include "content/tree_rules.h"

namespace pkgcast::content {
namespace fs = std::filesystem;
namespace {

// Level 1: compression is the largest CPU cost of a first ingest, and level 1 compresses text and binaries at 1.3-1.7x
// the speed of level 3 (zstd's default) for 5% more stored bytes (64 KiB chunks of text: ratio 0.358 against 0.337;
// of /usr/bin/cmake: 0.481 against 0.456): that much more library, and more bytes on the wire for a client that
// takes chunks as stored (Accept-Encoding: zstd). Negative levels were not faster on text (literal coding
// dominates) and lose 20% of the ratio.
constexpr int kZstdLevel = 1;
constexpr std::size_t kSampleSlice = 1024;
// Bits per byte above which a sample is taken for random (already compressed) data. Uniform bytes score about
// 7.94 on three 1 KiB slices; English text about 4.5, machine code about 6.
constexpr double kRandomEntropy = 7.6;

// Shannon entropy, in bits per byte, of three slices of `raw` (start, middle, end).
double sampled_entropy(std::span<const std::uint8_t> raw) {
  std::array<std::uint32_t, 256> counts{};
  std::size_t n = 0;
  auto count = [&](std::size_t at) {
    const std::size_t end = std::min(raw.size(), at + kSampleSlice);
    for (std::size_t i = at; i < end; ++i) ++counts[raw[i]];
    n += end - at;
  };
  if (raw.size() <= 3 * kSampleSlice) {
    count(0);
  } else {
    count(0);
    count(raw.size() / 2 - kSampleSlice / 2);
    count(raw.size() - kSampleSlice);
  }
  double bits = 0;
  for (std::uint32_t c : counts) {
    if (c != 0) bits -= c * std::log2(static_cast<double>(c) / static_cast<double>(n));
  }
  return bits / static_cast<double>(n);
}

bool is_hex_name(std::string_view name) {
  if (name.size() != 64) return false;
  for (char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Error corrupt(const Digest& hash, std::string_view why) {
  return make_error(WbemCode::kFailed, "chunk " + hash.hex() + " is corrupt (" + std::string(why) + "); removed");
}

}  // namespace

ChunkCompressor::ChunkCompressor() : cctx_(ZSTD_createCCtx()) {
  if (cctx_ == nullptr) std::abort();  // out of memory, as operator new would
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, kZstdLevel);
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 0);  // the SHA-256 of the raw bytes checks them
}

ChunkCompressor::~ChunkCompressor() {
  ZSTD_freeCCtx(cctx_);
}

bool ChunkCompressor::would_try(std::span<const std::uint8_t> raw) {
  return raw.size() >= 64 && sampled_entropy(raw) <= kRandomEntropy;
}

std::optional<std::span<const std::uint8_t>> ChunkCompressor::compress(std::span<const std::uint8_t> raw) {
  if (!would_try(raw)) return std::nullopt;
  out_.resize(ZSTD_compressBound(raw.size()));
  const std::size_t n = ZSTD_compress2(cctx_, out_.data(), out_.size(), raw.data(), raw.size());
  if (ZSTD_isError(n) || n >= raw.size()) return std::nullopt;
  return std::span<const std::uint8_t>(out_.data(), n);
}

fs::path DiskChunkStore::file_for(const Digest& hash, bool compressed) const {
  const std::string hex = hash.hex();
  return dir_ / hex.substr(0, 2) / (compressed ? hex + ".zst" : hex);
}

Result<fs::path> DiskChunkStore::prefix_dir(const Digest& hash) {
  fs::path dir = dir_ / hash.hex().substr(0, 2);
  std::atomic<bool>& made = prefix_made_[hash.bytes[0]];
  if (!made.load(std::memory_order_acquire)) {
    PKG_TRY(make_private_dir(dir));
    made.store(true, std::memory_order_release);
  }
  return dir;
}

std::optional<ChunkStore::Stored> DiskChunkStore::stat_chunk(const Digest& hash) const {
  for (const bool compressed : {false, true}) {
    fs::path file = file_for(hash, compressed);
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0) {
      const auto size = static_cast<std::uint64_t>(st.st_size);
      return Stored{std::move(file), compressed, compressed ? 0 : size, size};
    }
  }
  return std::nullopt;
}

void DiskChunkStore::touch(const Stored& stored) const {
  ::utimensat(AT_FDCWD, stored.file.c_str(), nullptr, 0);
}

Result<ChunkStore::Stored> DiskChunkStore::locate(const Digest& hash) const {
  std::optional<Stored> stored = stat_chunk(hash);
  if (!stored) return make_error(WbemCode::kNotFound, "no chunk " + hash.hex());
  if (stored->compressed) {
    // The raw size is in the zstd frame header, at most 18 bytes.
    UniqueFd fd(::open(stored->file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return io_error("cannot open", stored->file, errno);
    std::array<std::uint8_t, 18> head{};  // ZSTD_FRAMEHEADERSIZE_MAX (static-linking-only API)
    const ssize_t n = ::pread(fd.get(), head.data(), head.size(), 0);
    const unsigned long long raw =
        n > 0 ? ZSTD_getFrameContentSize(head.data(), static_cast<std::size_t>(n)) : ZSTD_CONTENTSIZE_ERROR;
    if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > kMaxChunkSize) {
      return make_error(WbemCode::kFailed, "chunk " + hash.hex() + " has a bad zstd frame header");
    }
    stored->raw_size = raw;
  }
  return *stored;
}

Result<ChunkStore::OpenedChunk> DiskChunkStore::open_stored(const Digest& hash) const {
  for (const bool compressed : {false, true}) {
    const fs::path file = file_for(hash, compressed);
    int fd = -1;
    do {
      fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return io_error("cannot open", file, errno);
    }
    UniqueFd owned(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return io_error("cannot stat", file, errno);
    if (!S_ISREG(st.st_mode)) return make_error(WbemCode::kFailed, file.string() + " is not a regular file");
    return OpenedChunk{owned.release(), compressed, static_cast<std::uint64_t>(st.st_size)};
  }
  return make_error(WbemCode::kNotFound, "no chunk " + hash.hex());
}

Result<std::string> DiskChunkStore::get(const Digest& hash) const {
  std::optional<Stored> stored = stat_chunk(hash);
  if (!stored) return make_error(WbemCode::kNotFound, "no chunk " + hash.hex());
  auto bytes = read_whole_file(stored->file, kMaxChunkSize + ZSTD_compressBound(0) + 1024);
  if (!bytes.ok()) {
    if (bytes.error().code == WbemCode::kNotFound) return make_error(WbemCode::kNotFound, "no chunk " + hash.hex());
    if (bytes.error().code != WbemCode::kQuotaViolation) return std::move(bytes).error();
    ::unlink(stored->file.c_str());
    return corrupt(hash, "larger than any chunk");
  }
  std::string raw;
  if (stored->compressed) {
    const unsigned long long size = ZSTD_getFrameContentSize(bytes->data(), bytes->size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxChunkSize) {
      ::unlink(stored->file.c_str());
      return corrupt(hash, "bad zstd frame");
    }
    raw.resize(size);
    const std::size_t n = ZSTD_decompress(raw.data(), raw.size(), bytes->data(), bytes->size());
    if (ZSTD_isError(n) || n != size) {
      ::unlink(stored->file.c_str());
      return corrupt(hash, "bad zstd frame");
    }
  } else {
    raw = std::move(bytes).value();
  }
  if (sha256(raw) != hash) {
    ::unlink(stored->file.c_str());
    return corrupt(hash, "its bytes no longer match its SHA-256");
  }
  return raw;
}

namespace {

Status check_chunk(const Digest& hash, std::span<const std::uint8_t> raw) {
  if (raw.size() > kMaxChunkSize) {
    return make_error(WbemCode::kInvalidParameter, "chunk " + hash.hex() + " is larger than 64 MiB");
  }
  if (sha256(raw) != hash) {
    return make_error(WbemCode::kInvalidParameter, "the bytes given for chunk " + hash.hex() + " do not match it");
  }
  return ok_status();
}

// The public Writer: checks each chunk, then batches like an ingest.
class CheckingWriter final : public ChunkStore::Writer {
 public:
  explicit CheckingWriter(DiskChunkStore& store) : store_(store), batch_(store) {}
  Status add(const Digest& hash, std::span<const std::uint8_t> raw) override {
    PKG_TRY(check_chunk(hash, raw));
    if (store_.contains(hash)) return ok_status();
    PKG_TRY(batch_.add(hash, raw));
    return ok_status();
  }
  Status commit() override { return batch_.commit(); }

 private:
  DiskChunkStore& store_;
  ChunkWriteBatch batch_;
};

}  // namespace

Status DiskChunkStore::put(const Digest& hash, std::span<const std::uint8_t> raw) {
  PKG_TRY(check_chunk(hash, raw));
  if (contains(hash)) return ok_status();
  ChunkWriteBatch batch(*this);
  PKG_TRY(batch.add(hash, raw));
  return batch.commit();
}

std::unique_ptr<ChunkStore::Writer> DiskChunkStore::writer() {
  return std::make_unique<CheckingWriter>(*this);
}

Status DiskChunkStore::remove(const Digest& hash) {
  for (const bool compressed : {false, true}) {
    const fs::path file = file_for(hash, compressed);
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) return io_error("cannot remove", file, errno);
  }
  return ok_status();
}

Status DiskChunkStore::for_each(const std::function<void(const Digest&, fs::file_time_type)>& fn) const {
  std::error_code ec;
  for (fs::directory_iterator top(dir_, ec), end; !ec && top != end; top.increment(ec)) {
    const std::string prefix = top->path().filename().string();
    if (prefix.size() != 2 || !top->is_directory(ec)) continue;
    std::error_code inner;
    for (fs::directory_iterator it(top->path(), inner); !inner && it != end; it.increment(inner)) {
      std::string name = it->path().filename().string();
      if (name.ends_with(".zst")) name.resize(name.size() - 4);
      if (!is_hex_name(name) || name.compare(0, 2, prefix) != 0) continue;
      std::error_code time_ec;
      const fs::file_time_type mtime = it->last_write_time(time_ec);
      if (time_ec) continue;  // removed meanwhile
      fn(*Digest::from_hex(name), mtime);
    }
    if (inner) return make_error(WbemCode::kFailed, "cannot list '" + top->path().string() + "': " + inner.message());
  }
  if (ec) return make_error(WbemCode::kFailed, "cannot list '" + dir_.string() + "': " + ec.message());
  return ok_status();
}

void DiskChunkStore::remove_stale_temporaries(fs::file_time_type before) const {
  std::error_code ec;
  for (fs::directory_iterator top(dir_, ec), end; !ec && top != end; top.increment(ec)) {
    std::error_code inner;
    for (fs::directory_iterator it(top->path(), inner); !inner && it != end; it.increment(inner)) {
      if (!it->path().filename().string().starts_with(".tmp.")) continue;
      std::error_code time_ec;
      if (it->last_write_time(time_ec) < before && !time_ec) ::unlink(it->path().c_str());
    }
  }
}

ChunkWriteBatch::~ChunkWriteBatch() {
  (void)wait_in_flight();
  for (Pending& p : pending_) ::unlink(p.tmp.c_str());
}

Result<std::uint64_t> ChunkWriteBatch::add(const Digest& hash, std::span<const std::uint8_t> raw) {
  PKG_ASSIGN_OR_RETURN(const fs::path dir, store_.prefix_dir(hash));
  const std::optional<std::span<const std::uint8_t>> packed = compressor_.compress(raw);
  const std::span<const std::uint8_t> bytes = packed ? *packed : raw;
  std::string tmp = (dir / (".tmp." + hash.hex() + ".XXXXXX")).string();
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd.valid()) return io_error("cannot create a temporary file in", dir, errno);
  pending_.push_back(Pending{tmp, store_.file_for(hash, packed.has_value())});
  PKG_TRY(write_all(fd.get(), bytes.data(), bytes.size(), tmp));
  // No write-back is started here: sync_file_range per chunk cost an ingest a block-layer submission, and on a
  // virtio disk a notification of the host, for every chunk (a third of its system time). The batch's syncfs
  // writes it out in large plugged requests, on the background thread while this one goes on.
  if (::close(fd.release()) != 0) return io_error("cannot close", tmp, errno);
  pending_bytes_ += bytes.size();
  if (pending_.size() >= max_pending_files_ || pending_bytes_ >= kMaxPendingBytes) {
    PKG_TRY(wait_in_flight());  // one batch in flight: bounded memory, and syncs do not pile up
    in_flight_batch_ = std::move(pending_);
    pending_.clear();
    pending_bytes_ = 0;
    try {
      in_flight_ = std::thread([this] { in_flight_status_ = commit_batch(in_flight_batch_); });
    } catch (const std::system_error&) {
      PKG_TRY(commit_batch(in_flight_batch_));  // no thread to be had: commit here, as a batch always did
    }
  }
  return bytes.size();
}

Status ChunkWriteBatch::wait_in_flight() {
  if (!in_flight_.joinable()) return ok_status();
  in_flight_.join();
  in_flight_batch_.clear();
  Status status = std::move(in_flight_status_);
  in_flight_status_ = ok_status();
  return status;
}

Status ChunkWriteBatch::sync_each(std::vector<Pending>& batch) const {
  std::set<fs::path> dirs;
  for (Pending& p : batch) {
    UniqueFd fd(::open(p.tmp.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid() || ::fdatasync(fd.get()) != 0) return io_error("cannot sync", p.tmp, errno);
    if (::rename(p.tmp.c_str(), p.final_name.c_str()) != 0) return io_error("cannot rename into", p.final_name, errno);
    p.tmp.clear();
    dirs.insert(p.final_name.parent_path());
  }
  for (const fs::path& dir : dirs) PKG_TRY(fsync_dir(dir));
  return ok_status();
}

Status ChunkWriteBatch::sync_file_system(std::vector<Pending>& batch) const {
  UniqueFd root(::open(store_.dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return io_error("cannot open", store_.dir(), errno);
  if (::syncfs(root.get()) != 0) return io_error("cannot sync the file system of", store_.dir(), errno);
  for (Pending& p : batch) {
    if (::rename(p.tmp.c_str(), p.final_name.c_str()) != 0) return io_error("cannot rename into", p.final_name, errno);
    p.tmp.clear();
  }
  if (::syncfs(root.get()) != 0) return io_error("cannot sync the file system of", store_.dir(), errno);
  return ok_status();
}

Status ChunkWriteBatch::commit_batch(std::vector<Pending>& batch) const {
  Status result = batch.size() <= kSyncEachFileUpTo ? sync_each(batch) : sync_file_system(batch);
  for (Pending& p : batch) {
    if (!p.tmp.empty()) ::unlink(p.tmp.c_str());
  }
  batch.clear();
  return result;
}

Status ChunkWriteBatch::commit() {
  Status in_flight = wait_in_flight();
  Status result = commit_batch(pending_);
  pending_bytes_ = 0;
  if (!in_flight.ok()) return in_flight;
  return result;
}

Result<std::unique_ptr<ChunkStore>> ChunkStore::open(const fs::path& dir) {
  PKG_TRY(make_private_dir(dir));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return make_error(WbemCode::kFailed, "chunk store '" + dir.string() + "' is not a directory");
  }
  return std::unique_ptr<ChunkStore>(std::make_unique<DiskChunkStore>(dir));
}

}  // namespace pkgcast::content
