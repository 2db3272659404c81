#include "content/disk_library.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "content/source_record.h"

namespace pkgcast::content {
namespace fs = std::filesystem;
namespace {

// Removes the temporaries (`*.tmp.*`) a killed writer left in `dir`.
void remove_temporaries(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().find(".tmp.") != std::string::npos) ::unlink(it->path().c_str());
  }
}

constexpr std::size_t kMaxManifestFile = std::size_t{1} << 31;

// A file's modification time, nullopt when it is gone.
std::optional<fs::file_time_type> mtime_of(const fs::path& file) {
  std::error_code ec;
  const fs::file_time_type t = fs::last_write_time(file, ec);
  if (ec) return std::nullopt;
  return t;
}

}  // namespace

DiskLibrary::DiskLibrary(fs::path dir)
    : dir_(std::move(dir)),
      manifests_dir_(dir_ / "manifests"),
      sources_dir_(dir_ / "sources"),
      chunks_(dir_ / "chunks") {}

Result<std::unique_ptr<Library>> Library::open(const fs::path& dir) {
  PKG_TRY(make_private_dir(dir));
  PKG_TRY(make_private_dir(dir / "chunks"));
  PKG_TRY(make_private_dir(dir / "manifests"));
  PKG_TRY(make_private_dir(dir / "sources"));
  auto library = std::make_unique<DiskLibrary>(dir);
  // One process uses a library, and opens it before it ingests anything: a temporary chunk file is then what a
  // killed ingest left, and goes now rather than after garbage collection's grace (repeated crashes added up).
  library->disk_chunks().remove_stale_temporaries(fs::file_time_type::clock::now());
  // The same for a manifest or source record being written (write_file_atomically's `<name>.tmp.XXXXXX`).
  for (const char* sub : {"manifests", "sources"}) remove_temporaries(dir / sub);
  return std::unique_ptr<Library>(std::move(library));
}

fs::path DiskLibrary::manifest_path(const Digest& id) const {
  return manifests_dir_ / id.hex();
}

bool DiskLibrary::has_manifest(const Digest& id) const {
  struct stat st {};
  return ::stat(manifest_path(id).c_str(), &st) == 0;
}

Result<std::string> DiskLibrary::manifest_bytes(const Digest& id) const {
  auto bytes = read_whole_file(manifest_path(id), kMaxManifestFile);
  if (!bytes.ok()) {
    if (bytes.error().code == WbemCode::kNotFound) return make_error(WbemCode::kNotFound, "no manifest " + id.hex());
    return std::move(bytes).error();
  }
  if (sha256(*bytes) != id) {
    return make_error(WbemCode::kFailed, "manifest " + id.hex() + " is corrupt (its bytes no longer match its id)");
  }
  return bytes;
}

Status DiskLibrary::write_manifest(const Digest& id, std::string_view bytes) {
  MutexLock lock(mu_);
  return write_private_file_atomic(manifest_path(id), bytes);
}

fs::path DiskLibrary::source_record_path(const fs::path& source) const {
  std::error_code ec;
  const fs::path absolute = fs::absolute(source, ec).lexically_normal();
  return sources_dir_ / sha256((ec ? source : absolute).native()).hex();
}

DiskLibrary::Pin::Pin(DiskLibrary& library) : library_(library) {
  MutexLock lock(library_.mu_);
  library_.pins_.push_back(&hashes_);
}

DiskLibrary::Pin::~Pin() {
  MutexLock lock(library_.mu_);
  std::erase(library_.pins_, &hashes_);
}

bool DiskLibrary::Pin::add(const Digest& hash, std::optional<ChunkStore::Stored>& stored) {
  MutexLock lock(library_.mu_);
  if (!hashes_.insert(hash).second) return false;
  stored = library_.chunks_.stat_chunk(hash);
  if (stored) library_.chunks_.touch(*stored);
  return true;
}

bool DiskLibrary::Pin::add_if_present(const Digest& hash, std::optional<ChunkStore::Stored>& stored) {
  MutexLock lock(library_.mu_);
  if (hashes_.contains(hash)) return true;
  stored = library_.chunks_.stat_chunk(hash);
  if (!stored) return false;
  library_.chunks_.touch(*stored);
  hashes_.insert(hash);
  return true;
}

bool DiskLibrary::pinned(const Digest& hash) const {
  return std::any_of(pins_.begin(), pins_.end(), [&](const DigestSet* s) { return s->contains(hash); });
}

Result<GcStats> DiskLibrary::collect_garbage(const std::vector<Digest>& keep, std::chrono::seconds grace) {
  GcStats stats;
  const fs::file_time_type cutoff = fs::file_time_type::clock::now() - grace;
  const DigestSet kept(keep.begin(), keep.end());

  // Mark: the manifests that stay, and every chunk they name.
  std::vector<Digest> manifests;
  std::error_code ec;
  for (fs::directory_iterator it(manifests_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::optional<fs::file_time_type> t = mtime_of(it->path());
    if (!t) continue;
    if (std::optional<Digest> id = Digest::from_hex(name); id && id->hex() == name) {
      manifests.push_back(*id);
    } else if (name.find(".tmp.") != std::string::npos && *t < cutoff) {
      ::unlink(it->path().c_str());  // left by a crash mid-write
    }
  }
  if (ec) return make_error(WbemCode::kFailed, "cannot list '" + manifests_dir_.string() + "': " + ec.message());

  DigestSet referenced;
  bool removed_any = false;
  for (const Digest& id : manifests) {
    const fs::path file = manifest_path(id);
    if (!kept.contains(id)) {
      MutexLock lock(mu_);
      const std::optional<fs::file_time_type> t = mtime_of(file);
      if (t && *t < cutoff) {
        struct stat st {};
        const bool sized = ::stat(file.c_str(), &st) == 0;
        if (::unlink(file.c_str()) == 0) {
          ++stats.manifests_removed;
          stats.bytes_freed += sized ? static_cast<std::uint64_t>(st.st_size) : 0;
          removed_any = true;
          continue;
        }
      }
    }
    auto bytes = manifest_bytes(id);
    if (!bytes.ok()) {
      if (bytes.error().code == WbemCode::kNotFound) continue;
      // A manifest that no longer verifies protects nothing and cannot be served; what it named is garbage.
      if (bytes.error().code == WbemCode::kFailed && ::unlink(file.c_str()) == 0) {
        ++stats.manifests_removed;
        removed_any = true;
        continue;
      }
      return std::move(bytes).error();
    }
    auto manifest = parse_manifest(*bytes, ManifestLimits{.max_bytes = kMaxManifestFile,
                                                          .max_entries = SIZE_MAX,
                                                          .max_total_size = UINT64_MAX,
                                                          .max_path_bytes = SIZE_MAX,
                                                          .max_depth = SIZE_MAX});
    // Its bytes match its id, so it was written by an ingest; a refusal means a newer format we cannot read, and
    // then nothing may be swept.
    if (!manifest.ok()) {
      return make_error(WbemCode::kFailed,
                        "manifest " + id.hex() + " cannot be read (" + manifest.error().message + "); nothing swept");
    }
    for (const ManifestEntry& e : manifest->entries) {
      for (const ChunkRef& c : e.chunks) referenced.insert(c.hash);
    }
  }
  if (removed_any) PKG_TRY(fsync_dir(manifests_dir_));

  // Sweep: chunks no manifest names, older than the grace period and not pinned by a running ingest.
  std::vector<Digest> candidates;
  PKG_TRY(chunks_.for_each([&](const Digest& hash, fs::file_time_type t) {
    if (t < cutoff && !referenced.contains(hash)) candidates.push_back(hash);
  }));
  for (const Digest& hash : candidates) {
    MutexLock lock(mu_);
    if (pinned(hash)) continue;
    const std::optional<ChunkStore::Stored> stored = chunks_.stat_chunk(hash);
    if (!stored) continue;
    const std::optional<fs::file_time_type> t = mtime_of(stored->file);
    if (!t || *t >= cutoff) continue;
    if (::unlink(stored->file.c_str()) == 0) {
      ++stats.chunks_removed;
      stats.bytes_freed += stored->stored_size;
    }
  }
  chunks_.remove_stale_temporaries(cutoff);
  remove_stale_source_records(cutoff);
  return stats;
}

// A record whose manifest is gone can never be used again (its files would be read); one that is not a record,
// or a temporary left by a crash (which may hold a whole record, never renamed into place), neither.
void DiskLibrary::remove_stale_source_records(fs::file_time_type cutoff) const {
  std::error_code ec;
  for (fs::directory_iterator it(sources_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::optional<fs::file_time_type> t = mtime_of(it->path());
    if (!t || *t >= cutoff) continue;
    if (it->path().filename().string().find(".tmp.") != std::string::npos) {
      ::unlink(it->path().c_str());
      continue;
    }
    char head[160];
    std::optional<Digest> manifest;
    if (UniqueFd fd(::open(it->path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)); fd.valid()) {
      const ssize_t n = ::read(fd.get(), head, sizeof head);
      if (n > 0) manifest = source_record_manifest(std::string_view(head, static_cast<std::size_t>(n)));
    }
    if (!manifest || !has_manifest(*manifest)) ::unlink(it->path().c_str());
  }
}

}  // namespace pkgcast::content
