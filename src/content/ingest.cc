// Library::ingest: walk the source without following links, then stream every regular file through the chunker in
// fixed buffers, hashing each chunk and the whole file while the bytes are hot in cache, storing only new chunks
// (batched syncs), and writing the manifest last. A file or directory that differs from what the walk saw, before
// or after it was read, fails the ingest: a manifest must describe one consistent tree. A file that the previous
// ingest of the same directory read, and whose identity and times are unchanged, is taken from that ingest's
// manifest unread (source_record.h says why that is safe).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <atomic>
#include <memory>
#include <optional>
#include <thread>

#include "content/disk_library.h"
#include "content/file_hasher.h"
#include "content/source_record.h"
#include "content/tree_rules.h"
#include "core/mutex.h"
#include "core/strings.h"

namespace pkgcast::content {
namespace fs = std::filesystem;
namespace {

// A file is read in steps of kReadStep into a buffer of kBufferSize plus one chunk of carry-over. Small steps keep the
// bytes in the core's L2 cache between the read's copy and their cut search, hashes and compression, which one
// 2 MiB read a time did not (10% more user CPU in an ingest); the large buffer keeps the carry-over's move rare.
constexpr std::size_t kBufferSize = 2u << 20;
// At most this many files to read, each gets a thread of its own (Ingest::read_files).
constexpr std::size_t kThreadEachUpTo = 4;
constexpr std::size_t kReadStep = 256u << 10;
// A record lists each file in about 70 bytes; this admits a million files and more.
constexpr std::size_t kMaxRecordBytes = 256u << 20;

struct SourceEntry {
  std::string path;  // relative to the source; "" for the source itself
  EntryType type = EntryType::kFile;
  struct stat st {};
  std::string target;
};

// A name as it can be shown in an error: bytes of invalid UTF-8 as \xNN.
std::string printable(std::string_view path) {
  if (is_valid_utf8(path)) return std::string(path);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

Micros micros(const struct timespec& t) {
  return Micros{t.tv_sec} * 1'000'000 + t.tv_nsec / 1000;
}

std::int64_t nanos(const struct timespec& t) {
  return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

bool same_time(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// Whether `now` still describes what the walk saw as `then`: same file, size, contents time and change time.
bool unchanged(const struct stat& then, const struct stat& now) {
  return then.st_dev == now.st_dev && then.st_ino == now.st_ino && then.st_size == now.st_size &&
         (then.st_mode & S_IFMT) == (now.st_mode & S_IFMT) && same_time(then.st_mtim, now.st_mtim) &&
         same_time(then.st_ctim, now.st_ctim);
}

std::string_view kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a fifo";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "of an unknown kind";
}

class Ingest {
 public:
  Ingest(DiskLibrary& library, fs::path source, const IngestOptions& options)
      : library_(library),
        source_(std::move(source)),
        options_(options),
        chunker_(options.chunking),
        pin_(library) {}

  Result<IngestResult> run() {
    PKG_TRY(check_chunking_params(options_.chunking));
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    recordable_before_ = nanos(now) - std::chrono::nanoseconds(options_.racy_margin).count();
    PKG_TRY(walk());
    std::sort(entries_.begin(), entries_.end(),
              [](const SourceEntry& a, const SourceEntry& b) { return a.path < b.path; });
    Manifest& m = result_.manifest;
    m.chunking = options_.chunking;
    m.entries.reserve(entries_.size());
    buffer_size_ = kBufferSize + options_.chunking.max_size;
    m.source_date = micros(entries_.front().st.st_mtim);  // the source directory (sorted first: its path is "")
    if (options_.reuse_unchanged_files) load_previous();
    SourceRecord record;
    std::vector<FileToRead> to_read;
    for (const SourceEntry& src : entries_) {
      m.source_date = std::max(m.source_date, micros(src.st.st_mtim));
      if (src.path.empty()) continue;  // the source directory itself
      ManifestEntry& e = m.entries.emplace_back();
      e.path = src.path;
      e.type = src.type;
      e.mode = src.type == EntryType::kSymlink ? 0 : src.st.st_mode & 07777;
      e.target = src.target;
      if (src.type != EntryType::kFile) continue;
      PKG_ASSIGN_OR_RETURN(const bool reused, reuse_file(src, e));
      if (!reused) to_read.push_back({&src, m.entries.size() - 1});
      if (std::max(nanos(src.st.st_mtim), nanos(src.st.st_ctim)) < recordable_before_) {
        record.files.push_back({static_cast<std::uint32_t>(m.entries.size() - 1), FileStamp::of(src.st)});
      }
    }
    PKG_TRY(read_files(to_read));
    PKG_TRY(recheck_directories());

    const std::string bytes = serialize_manifest(m);
    if (bytes.size() > options_.limits.max_bytes) {
      return make_error(WbemCode::kQuotaViolation, "the manifest of '" + source_.string() + "' would take " +
                                                       std::to_string(bytes.size()) + " bytes, more than the limit");
    }
    result_.manifest_id = sha256(bytes);
    PKG_TRY(check_deadline());
    PKG_TRY(library_.write_manifest(result_.manifest_id, bytes));
    // The ingest stands without its record: a record that could not be written leaves the one before, which still
    // describes the files it names truly, or none, and then the next ingest reads every file.
    record.manifest_id = result_.manifest_id;
    (void)write_private_file_atomic(library_.source_record_path(source_), serialize_source_record(record));
    return std::move(result_);
  }

 private:
  Error changed(std::string_view path) const {
    return make_error(WbemCode::kInvalidOperation,
                      "'" + (source_ / path).string() + "' changed while it was read; nothing was recorded");
  }
  Error refused(std::string_view path, std::string_view why) const {
    return make_error(WbemCode::kInvalidParameter,
                      "cannot ingest '" + printable((source_ / path).string()) + "': " + std::string(why));
  }

  Status check_deadline() const {
    if (options_.deadline && std::chrono::steady_clock::now() > *options_.deadline) {
      return make_error(WbemCode::kTimedOut, "the ingest of '" + source_.string() + "' ran past its deadline");
    }
    return ok_status();
  }

  Status walk() {
    SourceEntry root;
    if (::lstat(source_.c_str(), &root.st) != 0) return io_error("cannot read the source", source_, errno);
    if (!S_ISDIR(root.st.st_mode)) return refused("", "the source is not a directory");
    root.type = EntryType::kDirectory;
    entries_.push_back(std::move(root));
    std::vector<std::size_t> pending{0};  // indexes of directories to list
    while (!pending.empty()) {
      const std::size_t dir = pending.back();
      pending.pop_back();
      PKG_TRY(check_deadline());
      PKG_TRY(list(dir, pending));
    }
    return ok_status();
  }

  // Adds the entries of the directory entries_[index]; subdirectories go to `pending`.
  Status list(std::size_t index, std::vector<std::size_t>& pending) {
    const std::string dir_path = entries_[index].path;
    const fs::path full = source_ / dir_path;
    const int fd = ::open(full.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ELOOP || errno == ENOTDIR ? changed(dir_path) : io_error("cannot open", full, errno);
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      return io_error("cannot list", full, errno);
    }
    std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
    struct stat dir_st {};
    if (::fstat(fd, &dir_st) != 0 || !unchanged(entries_[index].st, dir_st)) return changed(dir_path);
    errno = 0;
    while (const dirent* de = ::readdir(d)) {
      const std::string_view name = de->d_name;
      if (name == "." || name == "..") continue;
      SourceEntry e;
      e.path = dir_path.empty() ? std::string(name) : dir_path + "/" + std::string(name);
      if (!is_valid_utf8(e.path)) return refused(e.path, "the name is not valid UTF-8");
      if (Status s = check_entry_path(e.path, options_.limits); !s.ok()) {
        return Error{s.error().code, "cannot ingest from '" + source_.string() + "': " + s.error().message};
      }
      if (path_depth(e.path) > options_.limits.max_depth) {
        return make_error(WbemCode::kQuotaViolation, "'" + (source_ / e.path).string() + "' is deeper than " +
                                                         std::to_string(options_.limits.max_depth) + " levels");
      }
      if (::fstatat(fd, de->d_name, &e.st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return changed(e.path);
        return io_error("cannot stat", source_ / e.path, errno);
      }
      const mode_t mode = e.st.st_mode;
      if (S_ISREG(mode)) {
        e.type = EntryType::kFile;
        total_size_ += static_cast<std::uint64_t>(e.st.st_size);
        if (total_size_ > options_.limits.max_total_size) {
          return make_error(WbemCode::kQuotaViolation, "the files of '" + source_.string() +
                                                           "' add up to more than the limit of " +
                                                           std::to_string(options_.limits.max_total_size) + " bytes");
        }
      } else if (S_ISDIR(mode)) {
        e.type = EntryType::kDirectory;
        pending.push_back(entries_.size());
      } else if (S_ISLNK(mode)) {
        e.type = EntryType::kSymlink;
        PKG_TRY(read_link(fd, de->d_name, e));
      } else {
        return refused(e.path, std::string("it is ") + std::string(kind_of(mode)) +
                                   "; only regular files, directories and symbolic links can be ingested");
      }
      if (entries_.size() > options_.limits.max_entries) {
        return make_error(WbemCode::kQuotaViolation, "'" + source_.string() + "' holds more than " +
                                                         std::to_string(options_.limits.max_entries) + " entries");
      }
      entries_.push_back(std::move(e));
      errno = 0;
    }
    if (errno != 0) return io_error("cannot list", full, errno);
    return ok_status();
  }

  Status read_link(int dir_fd, const char* name, SourceEntry& e) {
    std::string target(PATH_MAX + 1, '\0');  // Linux keeps link targets shorter than PATH_MAX
    const ssize_t n = ::readlinkat(dir_fd, name, target.data(), target.size());
    if (n < 0) return io_error("cannot read the link", source_ / e.path, errno);
    if (static_cast<std::size_t>(n) == target.size()) return refused(e.path, "the link's target is too long");
    target.resize(static_cast<std::size_t>(n));
    if (Status s = check_symlink_target(e.path, target, options_.limits); !s.ok()) {
      return refused(e.path, s.error().message);
    }
    e.target = std::move(target);
    return ok_status();
  }

  // The previous ingest of this directory: its manifest and what it saw of each file. Anything missing, unreadable
  // or made with other chunking parameters leaves previous_ empty, and every file is read.
  void load_previous() {
    auto bytes = read_whole_file(library_.source_record_path(source_), kMaxRecordBytes);
    if (!bytes.ok()) return;
    std::optional<SourceRecord> record = parse_source_record(*bytes);
    if (!record) return;
    auto manifest_bytes = library_.manifest_bytes(record->manifest_id);
    if (!manifest_bytes.ok()) return;
    auto manifest = parse_manifest(*manifest_bytes, options_.limits);
    if (!manifest.ok() || manifest->chunking != options_.chunking) return;
    if (!record->files.empty() && record->files.back().entry >= manifest->entries.size()) return;
    previous_ = Previous{std::move(*manifest), std::move(record->files)};
  }

  // Fills `e` from the previous ingest when the file is unchanged since and every chunk it names is still stored
  // (then pinned for this ingest). false: the file must be read.
  Result<bool> reuse_file(const SourceEntry& src, ManifestEntry& e) {
    if (!previous_) return false;
    const std::vector<ManifestEntry>& old_entries = previous_->manifest.entries;
    const auto old = std::lower_bound(old_entries.begin(), old_entries.end(), src.path,
                                      [](const ManifestEntry& a, const std::string& path) { return a.path < path; });
    if (old == old_entries.end() || old->path != src.path || old->type != EntryType::kFile) return false;
    const auto index = static_cast<std::uint32_t>(old - old_entries.begin());
    const std::vector<SourceRecord::File>& files = previous_->files;
    const auto seen = std::lower_bound(files.begin(), files.end(), index,
                                       [](const SourceRecord::File& f, std::uint32_t i) { return f.entry < i; });
    if (seen == files.end() || seen->entry != index || seen->stamp != FileStamp::of(src.st) ||
        old->size != static_cast<std::uint64_t>(src.st.st_size)) {
      return false;
    }
    std::uint64_t stored_bytes = 0;
    for (const ChunkRef& c : old->chunks) {
      std::optional<ChunkStore::Stored> stored;
      MutexLock lock(pin_mu_);
      if (!pin_.add_if_present(c.hash, stored)) return false;
      if (stored) stored_bytes += stored->stored_size;
    }
    // Still the file the walk saw (the same check as after a read).
    struct stat now {};
    if (::lstat((source_ / src.path).c_str(), &now) != 0 || !unchanged(src.st, now)) return changed(src.path);
    e.size = old->size;
    e.sha256 = old->sha256;
    e.chunks = old->chunks;
    result_.chunk_count += e.chunks.size();
    result_.compressed_bytes += stored_bytes;
    result_.source_bytes += e.size;
    ++result_.reused_files;
    result_.reused_bytes += e.size;
    return true;
  }

  // A file to read, and its entry of the manifest (filled by the one thread that reads it).
  struct FileToRead {
    const SourceEntry* src = nullptr;
    std::size_t entry = 0;
  };

  // What one reading thread owns: its buffer, its batch of new chunks and its share of the counts.
  struct Reader {
    Reader(DiskChunkStore& store, std::size_t buffer_size)
        // Not zero-filled: every byte is read into before it is looked at.
        : buffer(std::make_unique_for_overwrite<std::uint8_t[]>(buffer_size)), batch(store) {}
    std::unique_ptr<std::uint8_t[]> buffer;
    ChunkWriteBatch batch;
    IngestResult counts;  // its counters only
  };

  // Reads `files` on up to options_.threads threads, or one a file when there are few (this one and helpers started
  // here, joined before it returns), largest files first so that the threads finish together; then makes every new
  // chunk durable. The first error stops every thread after its current step, and what was not committed is removed
  // (ChunkWriteBatch).
  Status read_files(std::vector<FileToRead>& files) {
    if (files.empty()) return ok_status();
    std::stable_sort(files.begin(), files.end(),
                     [](const FileToRead& a, const FileToRead& b) { return a.src->st.st_size > b.src->st.st_size; });
    // A few files left to read (an update that changed three large ones) get a thread each, beyond the cores the
    // caller allows: with three files on two threads, one thread reads two of them one after the other while the
    // other core idles; three threads end together, the kernel sharing the cores (0.63 -> 0.47-0.50 s for the
    // benchmark's update). With many files, threads beyond the cores only cost (docs/benchmarks.md).
    std::size_t threads = options_.threads;
    if (threads > 1 && files.size() <= kThreadEachUpTo) threads = files.size();
    threads = std::clamp<std::size_t>(threads, 1, files.size());
    std::vector<std::unique_ptr<Reader>> readers;
    for (std::size_t i = 0; i < threads; ++i) {
      readers.push_back(std::make_unique<Reader>(library_.disk_chunks(), buffer_size_));
    }
    std::atomic<std::size_t> next{0};
    Mutex failure_mu;
    std::optional<Error> failure;
    std::atomic<bool> failed{false};
    const auto fail = [&](Error e) {
      MutexLock lock(failure_mu);
      if (!failure) failure = std::move(e);
      failed.store(true);
    };
    std::vector<ManifestEntry>& entries = result_.manifest.entries;
    // Nothing leaves this function: it is a thread's whole body.
    const auto work = [&](Reader& reader) noexcept {
      try {
        for (std::size_t i = next++; i < files.size() && !failed.load(); i = next++) {
          if (Status st = read_file(reader, *files[i].src, entries[files[i].entry], failed); !st.ok()) {
            return fail(std::move(st).error());
          }
        }
      } catch (const std::exception& e) {
        fail(make_error(WbemCode::kFailed, std::string("ingest: ") + e.what()));
      } catch (...) {
        fail(make_error(WbemCode::kFailed, "ingest: a non-standard exception"));
      }
    };
    std::vector<std::thread> helpers;
    for (std::size_t i = 1; i < threads; ++i) {
      try {
        helpers.emplace_back(work, std::ref(*readers[i]));
      } catch (const std::system_error&) {
        break;  // no thread to be had: fewer readers do the work
      }
    }
    work(*readers[0]);
    for (auto& t : helpers) t.join();
    for (const auto& r : readers) {
      result_.source_bytes += r->counts.source_bytes;
      result_.chunk_count += r->counts.chunk_count;
      result_.compressed_bytes += r->counts.compressed_bytes;
      result_.new_chunk_bytes += r->counts.new_chunk_bytes;
      result_.new_chunk_count += r->counts.new_chunk_count;
    }
    if (failure) return *failure;
    for (const auto& r : readers) PKG_TRY(r->batch.commit());
    return ok_status();
  }

  // Reads, cuts, hashes and stores one file into `e`, with `reader`'s buffer and batch. Stops early (the result is
  // then ignored) once `stop` is set by another thread's failure.
  Status read_file(Reader& reader, const SourceEntry& src, ManifestEntry& e, const std::atomic<bool>& stop) {
    const fs::path full = source_ / src.path;
    UniqueFd fd(::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT || errno == ELOOP) return changed(src.path);
      return io_error("cannot open", full, errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !unchanged(src.st, st)) return changed(src.path);
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

    e.size = static_cast<std::uint64_t>(src.st.st_size);
    FileHasher hasher;  // the chunk's hash and the file's in one pass, while the chunk is in cache
    std::optional<Digest> only_chunk;
    std::uint8_t* const buf = reader.buffer.get();
    std::size_t start = 0, filled = 0;
    std::uint64_t read_total = 0;
    bool eof = false;
    while (true) {
      if (!eof && filled - start < options_.chunking.max_size) {
        // Read one step ahead of the cut search (until one chunk's worth is undecided), so that the bytes are still
        // in the core's cache when they are cut, hashed and compressed. The undecided tail (less than one chunk)
        // moves to the front only when the buffer's end is reached.
        if (buffer_size_ - filled < kReadStep) {
          std::memmove(buf, buf + start, filled - start);
          filled -= start;
          start = 0;
        }
        const std::size_t step_end = std::min(buffer_size_, filled + kReadStep);
        while (filled < step_end && !eof) {
          const ssize_t n = ::read(fd.get(), buf + filled, step_end - filled);
          if (n < 0) {
            if (errno == EINTR) continue;
            return io_error("cannot read", full, errno);
          }
          eof = n == 0;
          filled += static_cast<std::size_t>(n);
          read_total += static_cast<std::uint64_t>(n);
          if (read_total > e.size) return changed(src.path);
        }
        PKG_TRY(check_deadline());
        if (stop.load()) return make_error(WbemCode::kFailed, "stopped by another file's failure");
        continue;
      }
      const std::span<const std::uint8_t> rest(buf + start, filled - start);
      if (rest.empty()) break;
      const std::size_t cut = chunker_.next_cut(rest, eof);
      const std::span<const std::uint8_t> chunk = rest.first(cut);
      if (eof && e.chunks.empty() && cut == rest.size()) {
        // The file is this one chunk (most small files): its hash is the chunk's, one pass instead of two.
        only_chunk = sha256(chunk);
        PKG_TRY(add_chunk(reader, *only_chunk, chunk, e));
      } else {
        PKG_TRY(add_chunk(reader, hasher.add_chunk(chunk), chunk, e));
      }
      start += cut;
    }
    if (read_total != e.size) return changed(src.path);
    e.sha256 = only_chunk ? *only_chunk : hasher.finish();
    if (options_.after_read_for_test) options_.after_read_for_test(full);
    struct stat after {};
    if (::fstat(fd.get(), &after) != 0 || !unchanged(src.st, after)) return changed(src.path);
    if (::lstat(full.c_str(), &after) != 0 || !unchanged(src.st, after)) return changed(src.path);
    reader.counts.source_bytes += e.size;
    return ok_status();
  }

  Status add_chunk(Reader& reader, const Digest& hash, std::span<const std::uint8_t> chunk, ManifestEntry& e) {
    e.chunks.push_back(ChunkRef{hash, static_cast<std::uint32_t>(chunk.size())});
    ++reader.counts.chunk_count;
    std::optional<ChunkStore::Stored> stored;
    {
      // Pinned by one thread: a chunk two files share is stored (and counted) once.
      MutexLock lock(pin_mu_);
      if (!pin_.add(hash, stored)) return ok_status();  // this ingest has it already
    }
    if (stored) {
      reader.counts.compressed_bytes += stored->stored_size;
      return ok_status();
    }
    PKG_ASSIGN_OR_RETURN(const std::uint64_t stored_size, reader.batch.add(hash, chunk));
    reader.counts.compressed_bytes += stored_size;
    reader.counts.new_chunk_bytes += chunk.size();
    ++reader.counts.new_chunk_count;
    return ok_status();
  }

  // A directory whose entries changed (a file added, removed or renamed) has a new mtime and ctime.
  Status recheck_directories() const {
    for (const SourceEntry& src : entries_) {
      if (src.type != EntryType::kDirectory) continue;
      struct stat st {};
      if (::lstat((source_ / src.path).c_str(), &st) != 0 || !unchanged(src.st, st)) return changed(src.path);
    }
    return ok_status();
  }

  DiskLibrary& library_;
  const fs::path source_;
  const IngestOptions& options_;
  const Chunker chunker_;
  Mutex pin_mu_;
  DiskLibrary::Pin pin_ PKG_GUARDED_BY(pin_mu_);
  std::vector<SourceEntry> entries_;
  std::uint64_t total_size_ = 0;
  std::size_t buffer_size_ = 0;  // each reader's buffer
  IngestResult result_;
  struct Previous {
    Manifest manifest;
    std::vector<SourceRecord::File> files;
  };
  std::optional<Previous> previous_;
  std::int64_t recordable_before_ = 0;  // ns since the epoch; see IngestOptions::racy_margin
};

}  // namespace

Result<IngestResult> DiskLibrary::ingest(const fs::path& source, const IngestOptions& options) {
  Ingest ingest(*this, source, options);
  return ingest.run();
}

}  // namespace pkgcast::content
