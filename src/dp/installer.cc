#include "dp/installer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <unordered_set>

#include "core/mutex.h"
#include "core/paths.h"
#include "dp/running_hashes.h"
#include "dp/tree.h"
#include "dp/version_record.h"

namespace pkgcast::dp {
namespace {

// A path as a status message names it: as it is, or as a JSON string when it holds a space, a quote, a backslash or
// a control character, so that a list of paths separated by spaces reads back unambiguously.
std::string status_path(const std::string& path) {
  const bool plain = !path.empty() && std::none_of(path.begin(), path.end(), [](char c) {
    return c == ' ' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (plain) return path;
  return nlohmann::json(path).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Above this many files a staged tree is made durable by one syncfs(2) rather than an fsync per file and directory.
constexpr std::size_t kSyncEachFileUpTo = 16;
// Verified chunks that arrived before the bytes ahead of them in their file wait in memory for their file's running
// hash up to this many bytes per job; a file whose chunk would pass it is hashed from disk instead. The workers
// take chunks in file order, so what waits is normally a few chunks (RunningHashes).
constexpr std::uint64_t kMaxBytesWaitingForFileHashes = 8u << 20;
// Writeback of a staged file is started for each window of this size once a write reaches its end, so the disk
// works while chunks still arrive and the sync before the rename finds little left to write (the flusher alone
// would start only once a tenth of memory is dirty, and the sync would then wait for gigabytes). A hint: the
// sync is what makes the tree durable.
constexpr std::uint64_t kWritebackWindow = 8u << 20;

void start_writeback_behind(int fd, std::uint64_t offset, std::uint64_t size) {
  const std::uint64_t end = offset + size;
  if (offset / kWritebackWindow == end / kWritebackWindow) return;
  const std::uint64_t boundary = end / kWritebackWindow * kWritebackWindow;
  ::sync_file_range(fd, static_cast<off_t>(boundary - kWritebackWindow), static_cast<off_t>(kWritebackWindow),
                    SYNC_FILE_RANGE_WRITE);
}

Result<Fd> open_dir(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return io_error("open directory", dir, errno);
  return fd;
}

// A distinct chunk of a manifest and every place in the version's files that holds it.
struct Spot {
  std::uint32_t entry = 0;  // in manifest.entries
  std::uint64_t offset = 0;
};
struct PlannedChunk {
  content::ChunkRef ref;
  std::vector<Spot> spots;
};

// `placed`, by entry then chunk (an entry's may be empty: none), marks the places filled already.
std::vector<PlannedChunk> plan_chunks(const content::Manifest& m, const std::vector<bool>& linked,
                                      const std::vector<std::vector<bool>>& placed = {}) {
  std::vector<PlannedChunk> out;
  std::unordered_map<content::Digest, std::size_t, DigestHash> seen;
  for (std::size_t i = 0; i < m.entries.size(); ++i) {
    if (linked[i]) continue;
    const std::vector<bool>* filled = i < placed.size() && !placed[i].empty() ? &placed[i] : nullptr;
    std::uint64_t offset = 0;
    for (std::size_t k = 0; k < m.entries[i].chunks.size(); ++k) {
      const auto& c = m.entries[i].chunks[k];
      if (!filled || !(*filled)[k]) {
        auto [it, fresh] = seen.try_emplace(c.hash, out.size());
        if (fresh) out.push_back({c, {}});
        out[it->second].spots.push_back({static_cast<std::uint32_t>(i), offset});
      }
      offset += c.size;
    }
  }
  return out;
}

// A worker asks for this many chunks of a file at once, on one connection (Fetcher::fetch_chunks): it waits for the
// server once per batch, and the answers after the first are usually in its socket by the time it reads them.
constexpr std::size_t kChunksPerBatch = 4;

// The batches the workers take, in the order they take them: files `lanes` at a time, one batch of each in turn,
// each file's chunks in file order. Chunks of one file taken one after the other by different workers start
// together and, of different sizes, often finish out of order; a chunk that comes before the bytes ahead of it in
// its file is hashed alone and again into the file's hash later (RunningHashes). With the workers spread over
// `lanes` files, the next batch of a file starts about one batch's time after the one before it, so most chunks
// arrive in file order and each byte is hashed in one pass. A plan chunk counts for the file of its first place
// (its check and hash happen there).
std::vector<std::vector<std::size_t>> interleave_files(const std::vector<PlannedChunk>& plan, std::size_t lanes) {
  std::vector<std::pair<std::size_t, std::size_t>> runs;  // [first, end) of each file's consecutive plan chunks
  for (std::size_t i = 0; i < plan.size(); ++i) {
    if (i == 0 || plan[i].spots.front().entry != plan[i - 1].spots.front().entry) runs.emplace_back(i, i);
    runs.back().second = i + 1;
  }
  std::vector<std::vector<std::size_t>> batches;
  std::vector<std::pair<std::size_t, std::size_t>> active;
  std::size_t next_run = 0;
  lanes = std::max<std::size_t>(lanes, 1);
  while (next_run < runs.size() || !active.empty()) {
    while (active.size() < lanes && next_run < runs.size()) active.push_back(runs[next_run++]);
    for (auto& run : active) {
      std::vector<std::size_t>& batch = batches.emplace_back();
      while (run.first < run.second && batch.size() < kChunksPerBatch) batch.push_back(run.first++);
    }
    std::erase_if(active, [](const auto& run) { return run.first == run.second; });
  }
  return batches;
}

// The staged files a worker writes, kept open while it works on them (a worker goes round the files the plan
// interleaves: interleave_files); at most `keep` open per worker.
class OpenFiles {
 public:
  OpenFiles(int root_fd, const content::Manifest& m, const std::filesystem::path& dir, std::size_t keep)
      : keep_(keep), root_fd_(root_fd), manifest_(m), dir_(dir) {}
  Result<int> get(std::uint32_t entry) {
    for (auto& [e, fd] : open_) {
      if (e == entry) return fd.get();
    }
    std::string leaf;
    const auto& path = manifest_.entries[entry].path;
    PKG_ASSIGN_OR_RETURN(Fd parent, open_parent(root_fd_, path, leaf));
    Fd fd(::openat(parent.get(), leaf.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return io_error("open", dir_ / path, errno);
    // The invariant lay_out keeps: a file written here is the staged tree's own (a linked file is never planned).
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return io_error("stat", dir_ / path, errno);
    if (st.st_nlink > 1) {
      return make_error(WbemCode::kFailed,
                        "staged file '" + path + "' is linked to another; it is not written through");
    }
    if (open_.size() >= keep_) open_.erase(open_.begin());
    open_.emplace_back(entry, std::move(fd));
    return open_.back().second.get();
  }

 private:
  const std::size_t keep_;
  const int root_fd_;
  const content::Manifest& manifest_;
  const std::filesystem::path& dir_;
  std::vector<std::pair<std::uint32_t, Fd>> open_;
};

bool region_holds(int fd, std::uint64_t offset, const content::ChunkRef& ref, std::string& buf) {
  buf.resize(ref.size);
  std::size_t got = 0;
  while (got < ref.size) {
    const ssize_t n = ::pread(fd, buf.data() + got, ref.size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<std::size_t>(n);
  }
  return content::sha256(buf) == ref.hash;
}

// The first error of a batch of pool tasks; the rest of the batch skips its work once one is set.
class FirstError {
 public:
  void set(Error e) {
    MutexLock lock(mu_);
    if (!error_) error_ = std::move(e);
    failed_.store(true);
  }
  bool failed() const { return failed_.load(); }
  Status status() {
    MutexLock lock(mu_);
    if (error_) return *error_;
    return ok_status();
  }

 private:
  Mutex mu_;
  std::optional<Error> error_ PKG_GUARDED_BY(mu_);
  std::atomic<bool> failed_{false};
};

// The SHA-256 of the first `size` bytes of `fd` (read with pread, 1 MiB at a time); the errno when a read fails
// or the file is shorter.
Result<content::Digest> hash_file(int fd, std::uint64_t size, const std::filesystem::path& display) {
  content::Sha256 hash;
  std::vector<std::uint8_t> buf(std::min<std::uint64_t>(std::max<std::uint64_t>(size, 1), 1u << 20));
  for (std::uint64_t done = 0; done < size;) {
    const ssize_t n = ::pread(fd, buf.data(), std::min<std::uint64_t>(buf.size(), size - done), static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return io_error("read", display, n < 0 ? errno : EIO);
    hash.update({buf.data(), static_cast<std::size_t>(n)});
    done += static_cast<std::uint64_t>(n);
  }
  return hash.finish();
}

// Removes what stands at `leaf` in `parent` (a whole tree for a directory), described by `st`.
Status remove_entry(int parent, const std::string& leaf, const struct stat& st, const std::filesystem::path& display) {
  if (S_ISDIR(st.st_mode)) return remove_tree(display);
  if (::unlinkat(parent, leaf.c_str(), 0) != 0) return io_error("remove", display, errno);
  return ok_status();
}

// Links the installed file `at` as `leaf` in `parent` when it is the entry's file: same size and mode, and the same
// SHA-256, which is computed unless the file is as the agent verified it (same fingerprint) and `trust_fingerprints`.
// Never follows a link. `linked` receives its fingerprint. False when anything differs or fails.
bool link_verified(const ChunkIndex::FileAt& at, const content::ManifestEntry& e, int parent, const std::string& leaf,
                   FileFingerprint& linked, bool trust_fingerprints) {
  Fd root(::open(at.root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) return false;
  std::string from;
  auto from_parent = open_parent(root.get(), at.path, from);
  if (!from_parent.ok()) return false;
  Fd fd(::openat(from_parent->get(), from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<std::uint64_t>(st.st_size) != e.size || (st.st_mode & 07777) != (e.mode & 07777)) {
    return false;
  }
  linked = FileFingerprint::of(st);
  linked.whole = true;  // by the check below, or by the one the agent made of it (FileFingerprint::whole)
  // Unchanged since the agent verified it whole: no need to read it again.
  if (trust_fingerprints && at.verified.whole && at.verified.same_state(linked)) {
    return ::linkat(from_parent->get(), from.c_str(), parent, leaf.c_str(), 0) == 0;
  }
  auto hash = hash_file(fd.get(), e.size, at.root / at.path);
  if (!hash.ok() || *hash != e.sha256) return false;
  return ::linkat(from_parent->get(), from.c_str(), parent, leaf.c_str(), 0) == 0;
}

// Creates the tree's directories, symlinks and files (at their sizes, holes until their chunks arrive) below
// `root`. With `resume`, what is there already is kept when it is of the right kind. A new file that an installed
// version holds already (same hash, size and mode, checked by hashing it unless its fingerprint is trusted) is a
// hard link to it instead: `linked` marks those entries, which then need neither chunks nor a check. Installed trees
// are never written in place (a repair replaces a file by rename), so a shared inode is never changed under either
// tree.
Status lay_out(int root, const content::Manifest& manifest, const std::filesystem::path& dir, bool resume,
               const ChunkIndex* index, WorkerPool& pool, std::vector<bool>& linked,
               std::vector<FileFingerprint>& fingerprints, const std::function<void()>& heartbeat,
               bool trust_fingerprints) {
  // Written by the workers, one element each (a std::vector<bool> element is not a separate memory location).
  std::vector<char> marks(manifest.entries.size(), 0);
  const auto place = [&](std::size_t i) -> Status {
    const auto& e = manifest.entries[i];
    std::string leaf;
    PKG_ASSIGN_OR_RETURN(Fd parent, open_parent(root, e.path, leaf));
    const auto display = dir / e.path;
    struct stat st {};
    const bool exists = resume && ::fstatat(parent.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    // A staged file with other links is an installed version's file that an earlier attempt linked: it is never
    // written through (that would change the installed version in place), so a resume drops it and places the
    // file again, from chunks (most of them read from the installed versions).
    const bool shared_file = exists && S_ISREG(st.st_mode) && st.st_nlink > 1;
    const bool right_kind = exists && !shared_file &&
                            ((e.type == content::EntryType::kDirectory && S_ISDIR(st.st_mode)) ||
                             (e.type == content::EntryType::kFile && S_ISREG(st.st_mode)));
    if (exists && !right_kind) PKG_TRY(remove_entry(parent.get(), leaf, st, display));
    switch (e.type) {
      case content::EntryType::kDirectory:
        if (!right_kind && ::mkdirat(parent.get(), leaf.c_str(), 0700) != 0) {
          return io_error("create directory", display, errno);
        }
        break;
      case content::EntryType::kSymlink:
        if (::symlinkat(e.target.c_str(), parent.get(), leaf.c_str()) != 0) {
          return io_error("create symlink", display, errno);
        }
        break;
      case content::EntryType::kFile: {
        if (!right_kind && e.size > 0 && index) {
          if (auto at = index->find_file(e.sha256);
              at && link_verified(*at, e, parent.get(), leaf, fingerprints[i], trust_fingerprints)) {
            marks[i] = 1;
            break;
          }
        }
        const int flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (right_kind ? 0 : O_EXCL);
        Fd fd(::openat(parent.get(), leaf.c_str(), flags, 0600));
        if (!fd.valid()) return io_error("create", display, errno);
        if ((!right_kind || static_cast<std::uint64_t>(st.st_size) != e.size) &&
            ::ftruncate(fd.get(), static_cast<off_t>(e.size)) != 0) {
          return io_error("size", display, errno);
        }
        break;
      }
    }
    return ok_status();
  };
  // Directories and links first, in manifest order (a parent before what it holds); then the files, several at
  // once (a file linked from an installed version is hashed first, which is most of the work of an update).
  std::vector<std::size_t> files;
  for (std::size_t i = 0; i < manifest.entries.size(); ++i) {
    if (manifest.entries[i].type == content::EntryType::kFile) {
      files.push_back(i);
    } else {
      PKG_TRY(place(i));
    }
  }
  FirstError failure;
  pool.run(files.size(), [&](std::size_t k, std::size_t) {
    if (failure.failed()) return;
    Status s = place(files[k]);
    if (!s.ok()) failure.set(std::move(s).error());
    heartbeat();
  });
  linked.assign(marks.begin(), marks.end());
  return failure.status();
}

// What stands below `dir` that `manifest` does not list: paths relative to `dir`, sorted, a directory's own
// contents left out (they go with it). Links are not followed. The name a repair writes beside a bad file is one of
// them when a crash left it.
Result<std::vector<std::string>> unlisted_paths(const std::filesystem::path& dir, const content::Manifest& manifest) {
  std::unordered_set<std::string> listed;
  for (const auto& e : manifest.entries) listed.insert(e.path);
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::string rel = it->path().lexically_relative(dir).generic_string();
    if (listed.contains(rel)) continue;
    out.push_back(std::move(rel));
    it.disable_recursion_pending();
  }
  if (ec) return io_error("list", dir, ec.value());
  std::sort(out.begin(), out.end());
  return out;
}

// Removes `rel` below `dir` (a whole tree for a directory), even from a directory the manifest made read-only.
// Never crosses into another file system: a mount below the version is refused, not emptied.
Status remove_unlisted(const std::filesystem::path& dir, const std::string& rel) {
  const auto path = dir / rel;
  const auto parent = path.parent_path();
  struct stat top {};
  if (::lstat(dir.c_str(), &top) != 0) return io_error("stat", dir, errno);
  const auto other_device = [&](const std::filesystem::path& p) {
    struct stat at {};
    return ::lstat(p.c_str(), &at) == 0 && at.st_dev != top.st_dev;
  };
  bool mounted = other_device(path);
  std::error_code ec;
  if (!mounted && std::filesystem::is_directory(std::filesystem::symlink_status(path, ec))) {
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && !mounted && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      mounted = other_device(it->path());
    }
  }
  if (mounted) {
    return make_error(WbemCode::kFailed, "'" + rel + "' holds another file system mounted below " + dir.string() +
                                             "; it was not removed");
  }
  struct stat st {};
  const bool restore = ::lstat(parent.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & S_IWUSR) == 0;
  if (restore) ::chmod(parent.c_str(), (st.st_mode & 07777) | S_IRWXU);
  Status removed = remove_tree(path);
  if (restore) ::chmod(parent.c_str(), st.st_mode & 07777);
  PKG_TRY(removed);
  return fsync_dir(parent);
}

// How a staged file's bytes are known to be the manifest's before the tree is published.
struct FileCheck {
  // The file's SHA-256 when all of its bytes were hashed in order on their way in (RunningHashes).
  std::optional<content::Digest> running;
  // Some of its bytes were copied unread from an installed file that the agent verified and that kept its inode,
  // size and modification time since (ChunkIndex::copy_runs_unread, copy_unread), and every other byte is a chunk
  // checked on its way in. Such a file is not read back: the copied bytes are the ones verified then (on a file
  // system that clones they are the same blocks), and reading them back would cost an update as much as copying
  // them. Bytes changed behind the agent's back without any of these changing (bit rot, a write that reset the
  // time) are VALIDATE's to find, as for linked files. Its whole-file SHA-256 is then not checked: it is recorded
  // as not `whole` (FileFingerprint), so it is hashed before another file of that hash is linked to it.
  bool trusted = false;
};

// Checks a staged file's whole-file SHA-256 (read back and hashed here when `check` has neither) and gives it its
// mode: the last check before the tree is published.
Status finish_file(int root, const content::ManifestEntry& e, const std::filesystem::path& dir, bool fsync_it,
                   const FileCheck& check, FileFingerprint& verified) {
  std::string leaf;
  PKG_ASSIGN_OR_RETURN(Fd parent, open_parent(root, e.path, leaf));
  const auto display = dir / e.path;
  Fd fd(::openat(parent.get(), leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return io_error("open", display, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("stat", display, errno);
  if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != e.size) {
    return make_error(WbemCode::kFailed, "file '" + e.path + "' has " + std::to_string(st.st_size) +
                                             " bytes, the manifest says " + std::to_string(e.size));
  }
  if (!check.trusted) {
    content::Digest hash;
    if (check.running) {
      hash = *check.running;
    } else {
      PKG_ASSIGN_OR_RETURN(hash, hash_file(fd.get(), e.size, display));
    }
    if (hash != e.sha256) return make_error(WbemCode::kFailed, "file '" + e.path + "' failed verification (SHA-256)");
  }
  if (::fchmod(fd.get(), e.mode & 07777) != 0) return io_error("set the mode of", display, errno);
  if (fsync_it && ::fsync(fd.get()) != 0) return io_error("fsync", display, errno);
  if (::fstat(fd.get(), &st) == 0) {
    verified = FileFingerprint::of(st);
    verified.whole = !check.trusted;
  }
  return ok_status();
}

// The name a repaired file is written under, beside the bad one, before it is renamed over it. Its length does not
// depend on the file's name (which may take all of NAME_MAX), and it is not a name the manifest lists in that
// directory, so the repair can neither fail for a long name nor overwrite another file of the package.
std::string repair_name(const content::Manifest& manifest, std::size_t index) {
  const std::string& path = manifest.entries[index].path;
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
  const auto listed = [&](const std::string& candidate) {
    const auto it = std::lower_bound(
        manifest.entries.begin(), manifest.entries.end(), candidate,
        [](const content::ManifestEntry& e, const std::string& p) { return e.path < p; });
    return it != manifest.entries.end() && it->path == candidate;
  };
  for (std::size_t n = index;; ++n) {
    const std::string name = ".pkgcast-repair." + std::to_string(n);
    if (!listed(dir + name)) return name;
  }
}

}  // namespace

Installer::Installer(InstallerOptions options, ChunkIndex& index, Fetcher& fetcher, WorkerPool& pool)
    : options_(std::move(options)),
      manifests_dir_(options_.data_dir / "manifests"),
      versions_dir_(options_.data_dir / "versions"),
      staging_dir_(options_.data_dir / "staging"),
      content_dir_(options_.data_dir / "content"),
      trash_dir_(options_.data_dir / "trash"),
      index_(index),
      fetcher_(fetcher),
      pool_(pool) {}

Status Installer::prepare() {
  for (const auto& d : {manifests_dir_, versions_dir_, staging_dir_, content_dir_}) PKG_TRY(ensure_dir(d));
  // The trees are the agent's to serve, not the host's local users' to run: a package's setuid file (modes are kept
  // as in the source) in a tree they can reach would hand its owner's rights to any of them.
  for (const auto& d : {staging_dir_, content_dir_}) {
    if (::chmod(d.c_str(), 0700) != 0) return io_error("set the mode of", d, errno);
  }
  PKG_TRY(remove_tree(trash_dir_));
  PKG_TRY(ensure_dir(trash_dir_));
  // An earlier layout's chunk cache and partial downloads: the installed trees hold the same bytes.
  PKG_TRY(remove_tree(options_.data_dir / "chunks"));
  PKG_TRY(remove_tree(options_.data_dir / "partial"));
  std::error_code ec;
  // A staged tree is kept only with the record of the manifest it is assembled for.
  std::vector<std::filesystem::path> stale;
  for (const auto& entry : std::filesystem::directory_iterator(staging_dir_, ec)) {
    const auto name = entry.path().filename().string();
    if (name.ends_with(".manifest")) {
      if (!std::filesystem::exists(staging_dir_ / name.substr(0, name.size() - 9))) stale.push_back(entry.path());
    } else if (!std::filesystem::exists(staging_dir_ / (name + ".manifest"))) {
      stale.push_back(entry.path());
    }
  }
  for (const auto& p : stale) PKG_TRY(remove_tree(p));
  PKG_TRY(sweep_manifests());
  // Index what is installed.
  for (const auto& entry : std::filesystem::directory_iterator(content_dir_, ec)) {
    const std::string id = entry.path().filename().string();
    auto record_text = read_file((versions_dir_ / id).string());
    const auto digest = record_text.ok() ? first_line_digest(*record_text) : std::nullopt;
    auto bytes = digest ? read_file(manifest_file(*digest).string()) : Result<std::string>(record_text.error());
    if (!digest || !bytes.ok() || content::sha256(*bytes) != *digest) {
      spdlog::warn("dp agent: {} has no verified manifest on this DP; it is not served until validated", id);
      continue;
    }
    auto manifest = content::parse_manifest(*bytes, options_.limits);
    if (!manifest.ok()) {
      spdlog::warn("dp agent: the manifest of {} is refused: {}", id, manifest.error().to_string());
      continue;
    }
    auto record = parse_version_record(*record_text, manifest->entries.size());
    index_.add(id, *digest, *manifest, record ? record->fingerprints : std::vector<FileFingerprint>{});
  }
  // Records of versions that are not there (a crash between the record and the rename).
  for (const auto& entry : std::filesystem::directory_iterator(versions_dir_, ec)) {
    if (!std::filesystem::exists(content_dir_ / entry.path().filename())) std::filesystem::remove(entry.path(), ec);
  }
  return ok_status();
}

std::filesystem::path Installer::installed_dir(const DpJob& job) const { return content_dir_ / job.content_id; }

std::filesystem::path Installer::manifest_file(const content::Digest& hash) const {
  return manifests_dir_ / hash.hex();
}

Result<content::Manifest> Installer::load_manifest(const DpJob& job, const FetchJob& fetch) {
  const auto digest = content::Digest::from_hex(job.manifest_hash);
  if (!digest) return make_error(WbemCode::kInvalidParameter, "bad ManifestHash");
  const auto file = manifest_file(*digest);
  std::string bytes;
  auto local = read_file(file.string());
  const bool have_local = local.ok() && content::sha256(*local) == *digest;
  if (have_local) {
    bytes = std::move(local).value();
  } else {
    PKG_ASSIGN_OR_RETURN(bytes, fetcher_.fetch_manifest(fetch, *digest, options_.limits.max_bytes));
  }
  auto parsed = content::parse_manifest(bytes, options_.limits);
  if (!parsed.ok()) {
    const Error& e = parsed.error();
    return make_error(e.code, "manifest " + job.manifest_hash + " refused: " + e.message);
  }
  // parse_manifest checks paths and link targets; the agent checks again before it trusts them with writes.
  for (const auto& e : parsed->entries) {
    PKG_TRY(recheck_path(e.path, options_.limits));
    if (e.type == content::EntryType::kSymlink) PKG_TRY(check_link_target(e.path, e.target));
  }
  if (!have_local) PKG_TRY(write_file_atomic(file.string(), bytes, 0644));
  return parsed;
}

Result<std::string> Installer::chunk_bytes(const content::ChunkRef& ref, const FetchJob& fetch, std::size_t worker,
                                          const Fetcher::ChunkCheck& check) {
  auto local = index_.read(ref.hash);
  if (local.ok()) return local;
  return fetcher_.fetch_chunk(fetch, ref, worker, check);
}

Status Installer::stage(const DpJob& job, const content::Manifest& manifest, const FetchJob& fetch,
                        const ProgressFn& progress, std::vector<FileFingerprint>& fingerprints) {
  fingerprints.assign(manifest.entries.size(), FileFingerprint{});
  const auto started = std::chrono::steady_clock::now();
  const auto dir = staging_dir_ / job.content_id;
  const auto marker = staging_dir_ / (job.content_id + ".manifest");
  // Another version of this package staged earlier is of no use any more.
  std::error_code ec;
  std::vector<std::filesystem::path> other;
  for (const auto& entry : std::filesystem::directory_iterator(staging_dir_, ec)) {
    const auto name = entry.path().filename().string();
    if (name.starts_with(job.package_id + ".") && name != job.content_id && name != job.content_id + ".manifest") {
      other.push_back(entry.path());
    }
  }
  for (const auto& p : other) PKG_TRY(remove_tree(p));

  // Progress counts the distinct chunks of the whole version; those of linked files, and those in place already,
  // are done from the start (dedup shows as a head start). It is also reported, unchanged, while no chunk moves
  // (files hashed before they are linked, the final check), as a heartbeat: the Distribution Manager takes a
  // silent DP for a stalled one.
  std::uint64_t total = 0;
  {
    const std::vector<bool> none(manifest.entries.size(), false);
    for (const auto& c : plan_chunks(manifest, none)) total += c.ref.size;
  }
  std::atomic<std::uint64_t> done{0};
  const auto heartbeat = [&] {
    if (progress) progress(done.load(), total);
  };
  if (progress) progress(0, total);

  // A redistribution (this very version is installed already) sends every file again: nothing is taken from the
  // installed tree on its fingerprint's word (a file may have rotted, or been changed by a tool that kept its time):
  // no file is linked unhashed and no stretch copied unread; every chunk is read and checked, and what differs comes
  // from the sources.
  const bool redistribution = std::filesystem::exists(installed_dir(job), ec);
  auto recorded = read_file(marker.string());
  bool resume = recorded.ok() && *recorded == job.manifest_hash && std::filesystem::is_directory(dir, ec);
  std::vector<bool> linked;
  if (resume) {
    auto root = open_dir(dir);
    if (!root.ok() ||
        !lay_out(root->get(), manifest, dir, true, nullptr, pool_, linked, fingerprints, heartbeat, true).ok()) {
      resume = false;
    }
  }
  if (!resume) {
    PKG_TRY(remove_tree(dir));
    PKG_TRY(write_file_atomic(marker.string(), job.manifest_hash, 0644));
    if (::mkdir(dir.c_str(), 0700) != 0) return io_error("create directory", dir, errno);
    PKG_ASSIGN_OR_RETURN(Fd root, open_dir(dir));
    PKG_TRY(lay_out(root.get(), manifest, dir, false, &index_, pool_, linked, fingerprints, heartbeat,
                    /*trust_fingerprints=*/!redistribution));
  }
  PKG_ASSIGN_OR_RETURN(Fd root, open_dir(dir));
  const auto t0 = std::chrono::steady_clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };

  // An update's unchanged stretches of each file first, copied by the kernel from the installed version in a few
  // copies a file, unread, and shared with it where the file system clones (FileCheck says why unread).
  std::vector<std::vector<bool>> placed(manifest.entries.size());
  if (!resume && !redistribution) {
    std::vector<std::size_t> copyable;
    for (std::size_t i = 0; i < manifest.entries.size(); ++i) {
      if (manifest.entries[i].type == content::EntryType::kFile && !linked[i] && !manifest.entries[i].chunks.empty()) {
        copyable.push_back(i);
      }
    }
    FirstError copy_failure;
    const auto cancelled = [&] { return fetch.cancel && fetch.cancel->load(); };
    pool_.run(copyable.size(), [&](std::size_t k, std::size_t) {
      if (copy_failure.failed() || cancelled()) return;
      const std::size_t i = copyable[k];
      std::string leaf;
      auto parent = open_parent(root.get(), manifest.entries[i].path, leaf);
      if (!parent.ok()) return copy_failure.set(std::move(parent).error());
      Fd fd(::openat(parent->get(), leaf.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return copy_failure.set(io_error("open", dir / manifest.entries[i].path, errno));
      // Where the file system copies rather than clones, a run can be gigabytes: its writeback starts as the
      // chunks' does, and the job stays cancellable and reports its heartbeat between runs.
      placed[i] = index_.copy_runs_unread(manifest.entries[i].chunks, fd.get(),
                                          [&](std::uint64_t offset, std::uint64_t length) {
                                            ::sync_file_range(fd.get(), static_cast<off_t>(offset),
                                                              static_cast<off_t>(length), SYNC_FILE_RANGE_WRITE);
                                            heartbeat();
                                            return !cancelled();
                                          });
    });
    PKG_TRY(copy_failure.status());
    if (cancelled()) return make_error(WbemCode::kCallCancelled, "job cancelled");
  }

  // Every distinct chunk to every place that holds it, several chunks at once.
  const std::vector<PlannedChunk> plan = plan_chunks(manifest, linked, placed);
  std::uint64_t planned = 0;
  for (const auto& c : plan) planned += c.ref.size;
  done = total - planned;
  heartbeat();
  const std::size_t lanes = pool_.size();
  const std::vector<std::vector<std::size_t>> batches = interleave_files(plan, lanes);
  std::vector<OpenFiles> files;
  for (std::size_t w = 0; w < pool_.size(); ++w) files.emplace_back(root.get(), manifest, dir, lanes + 1);
  // Entries that hold bytes copied unread from an installed file: not read back (FileCheck).
  std::vector<std::atomic<bool>> copied_unread(manifest.entries.size());
  std::vector<std::uint64_t> sizes(manifest.entries.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) sizes[i] = manifest.entries[i].size;
  RunningHashes running(std::move(sizes), kMaxBytesWaitingForFileHashes);
  for (std::size_t i = 0; i < placed.size(); ++i) {
    if (std::find(placed[i].begin(), placed[i].end(), true) != placed[i].end()) {
      copied_unread[i].store(true, std::memory_order_relaxed);
      running.give_up(static_cast<std::uint32_t>(i));
    }
  }
  FirstError failure;
  // A chunk of a batch on its way to the places of the staged tree that do not hold it yet.
  struct Placing {
    const PlannedChunk* chunk = nullptr;
    std::vector<const Spot*> missing;
    std::string bytes;           // whole once known: found in place, read from an installed version, or fetched
    const Spot* taken = nullptr;  // the place whose file hash the fetched bytes were appended to by their check
  };
  pool_.run(batches.size(), [&](std::size_t b, std::size_t worker) {
    OpenFiles& mine = files[worker];
    std::vector<Placing> placing;
    placing.reserve(batches[b].size());  // the fetch checks below keep pointers into it
    for (const std::size_t i : batches[b]) {
      if (failure.failed()) return;
      if (fetch.cancel && fetch.cancel->load()) {
        return failure.set(make_error(WbemCode::kCallCancelled, "job cancelled"));
      }
      Placing p{&plan[i], {}, {}, nullptr};
      const PlannedChunk& chunk = *p.chunk;
      if (resume) {
        std::string buf;
        for (const Spot& s : chunk.spots) {
          auto fd = mine.get(s.entry);
          if (!fd.ok()) return failure.set(std::move(fd).error());
          if (region_holds(*fd, s.offset, chunk.ref, buf)) {
            running.add(s.entry, s.offset, buf);
            if (p.bytes.empty()) p.bytes = buf;
          } else {
            p.missing.push_back(&s);
          }
        }
      } else {
        for (const Spot& s : chunk.spots) p.missing.push_back(&s);
        // An update's unchanged chunks, copied from the installed version by the kernel: no read into memory, no
        // second hash (the whole-file check covers them).
        bool copied = true;
        for (const Spot* s : p.missing) {
          auto fd = mine.get(s->entry);
          if (!fd.ok()) return failure.set(std::move(fd).error());
          if (redistribution || !index_.copy_unread(chunk.ref, *fd, s->offset)) {
            copied = false;
            break;
          }
          start_writeback_behind(*fd, s->offset, chunk.ref.size);
          copied_unread[s->entry].store(true, std::memory_order_relaxed);
          running.give_up(s->entry);
        }
        if (copied) {
          const std::uint64_t now = done.fetch_add(chunk.ref.size) + chunk.ref.size;
          if (progress) progress(now, total);
          continue;
        }
      }
      if (!p.missing.empty() && p.bytes.size() != chunk.ref.size) {
        // Held by an installed version (read and verified there), or else fetched below.
        if (auto local = index_.read(chunk.ref.hash); local.ok()) p.bytes = std::move(local).value();
      }
      placing.push_back(std::move(p));
    }
    // The batch's downloads, asked for together. Each is checked where it goes first, and appended to that file's
    // hash in the same pass when it is the file's next bytes.
    std::vector<content::ChunkRef> refs;
    std::vector<Fetcher::ChunkCheck> checks;
    std::vector<Placing*> fetched;
    for (Placing& p : placing) {
      if (p.missing.empty() || p.bytes.size() == p.chunk->ref.size) continue;
      Placing* const at = &p;
      refs.push_back(p.chunk->ref);
      checks.emplace_back([&running, at](std::string_view bytes) {
        const Spot* first = at->missing.front();
        const auto checked = running.check_at(first->entry, first->offset, bytes, at->chunk->ref.hash);
        if (checked.taken) at->taken = first;
        return checked.right;
      });
      fetched.push_back(at);
    }
    if (!refs.empty()) {
      auto got = fetcher_.fetch_chunks(fetch, refs, worker, checks);
      for (std::size_t k = 0; k < got.size(); ++k) {
        if (!got[k].ok()) return failure.set(std::move(got[k]).error());
        fetched[k]->bytes = std::move(got[k]).value();
      }
    }
    for (const Placing& p : placing) {
      const std::span<const std::uint8_t> raw(reinterpret_cast<const std::uint8_t*>(p.bytes.data()), p.bytes.size());
      for (const Spot* s : p.missing) {
        auto fd = mine.get(s->entry);
        if (!fd.ok()) return failure.set(std::move(fd).error());
        Status w = pwrite_all(*fd, raw, s->offset, dir / manifest.entries[s->entry].path, options_.write_fault);
        if (!w.ok()) return failure.set(std::move(w).error());
        start_writeback_behind(*fd, s->offset, raw.size());
        if (s != p.taken) running.add(s->entry, s->offset, p.bytes);
      }
      const std::uint64_t now = done.fetch_add(p.chunk->ref.size) + p.chunk->ref.size;
      if (progress) progress(now, total);
    }
  });
  files.clear();
  PKG_TRY(failure.status());
  const auto t1 = std::chrono::steady_clock::now();

  // Every file hashed whole and given its mode; then the tree made durable.
  std::vector<std::size_t> file_entries;
  for (std::size_t i = 0; i < manifest.entries.size(); ++i) {
    if (manifest.entries[i].type == content::EntryType::kFile && !linked[i]) file_entries.push_back(i);
  }
  const bool sync_each = file_entries.size() <= kSyncEachFileUpTo;
  FirstError bad_file;
  std::atomic<std::size_t> read_back{0};
  pool_.run(file_entries.size(), [&](std::size_t i, std::size_t) {
    if (bad_file.failed()) return;
    if (fetch.cancel && fetch.cancel->load()) return bad_file.set(make_error(WbemCode::kCallCancelled, "job cancelled"));
    const std::size_t e = file_entries[i];
    FileCheck check{running.digest(static_cast<std::uint32_t>(e)),
                    copied_unread[e].load(std::memory_order_relaxed)};
    if (!check.running && !check.trusted) read_back.fetch_add(1);
    Status s = finish_file(root.get(), manifest.entries[e], dir, sync_each, check, fingerprints[e]);
    heartbeat();
    if (!s.ok()) bad_file.set(std::move(s).error());
  });
  PKG_TRY(bad_file.status());
  // Directory modes last and deepest first, so a read-only directory is filled before it becomes read-only.
  for (auto it = manifest.entries.rbegin(); it != manifest.entries.rend(); ++it) {
    if (it->type != content::EntryType::kDirectory) continue;
    std::string leaf;
    PKG_ASSIGN_OR_RETURN(Fd parent, open_parent(root.get(), it->path, leaf));
    Fd d(::openat(parent.get(), leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d.valid()) return io_error("open directory", dir / it->path, errno);
    if (sync_each && ::fsync(d.get()) != 0) return io_error("fsync", dir / it->path, errno);
    if (::fchmod(d.get(), it->mode & 07777) != 0) return io_error("set the mode of", dir / it->path, errno);
  }
  if (::fchmod(root.get(), 0755) != 0) return io_error("set the mode of", dir, errno);
  const auto t2 = std::chrono::steady_clock::now();
  if (!sync_each && ::syncfs(root.get()) != 0) return io_error("sync the file system of", dir, errno);
  spdlog::info(
      "dp agent: staged {}: tree laid out in {:.2f} s, chunks placed in {:.2f} s, files checked in {:.2f} s ({} of {} "
      "read back, the others hashed on their way in or copied from verified files), synced in {:.2f} s",
      job.content_id, secs(started, t0), secs(t0, t1), secs(t1, t2), read_back.load(), file_entries.size(),
      secs(t2, std::chrono::steady_clock::now()));
  if (::fsync(root.get()) != 0) return io_error("fsync", dir, errno);
  return fsync_dir(staging_dir_);
}

Status Installer::record_version(const std::string& content_id, const content::Digest& manifest_hash,
                                 const std::vector<FileFingerprint>& fingerprints) {
  return write_file_atomic((versions_dir_ / content_id).string(), serialize_version_record(manifest_hash, fingerprints), 0644);
}

Status Installer::install(const DpJob& job, const FetchJob& fetch, const ProgressFn& progress) {
  const auto started = std::chrono::steady_clock::now();
  PKG_ASSIGN_OR_RETURN(content::Manifest manifest, load_manifest(job, fetch));
  spdlog::info("dp agent: manifest of {} ({} entries) in {:.2f} s", job.content_id, manifest.entries.size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  const auto digest = *content::Digest::from_hex(job.manifest_hash);
  std::vector<FileFingerprint> fingerprints;
  PKG_TRY(stage(job, manifest, fetch, progress, fingerprints));

  // Publish: a rename of the whole tree. An existing copy of the same version (a redistribution) is swapped out
  // atomically, so the path never stops holding a complete tree.
  const auto staging = staging_dir_ / job.content_id;
  const auto target = installed_dir(job);
  PKG_TRY(record_version(job.content_id, digest, fingerprints));
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    PKG_TRY(fsync_dir(content_dir_));
    index_.add(job.content_id, digest, manifest, fingerprints);
    PKG_TRY(trash_and_delete(staging, trash_dir_));
  } else {
    if (errno != ENOENT) return io_error("swap in", target, errno);
    if (::rename(staging.c_str(), target.c_str()) != 0) return io_error("rename into place", target, errno);
    PKG_TRY(fsync_dir(content_dir_));
    index_.add(job.content_id, digest, manifest, fingerprints);
  }
  std::error_code ec;
  std::filesystem::remove(staging_dir_ / (job.content_id + ".manifest"), ec);
  return fsync_dir(staging_dir_);
}

Result<std::set<std::string>> Installer::held_packages() const {
  std::set<std::string> out;
  for (const auto& dir : {content_dir_, staging_dir_}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      const std::size_t dot = name.find('.');
      if (dot != std::string::npos && dot > 0) out.insert(name.substr(0, dot));
    }
    if (ec) return io_error("list", dir, ec.value());
  }
  return out;
}

Status Installer::sweep_manifests() {
  std::set<std::string> named;
  std::error_code ec;
  for (const auto& dir : {versions_dir_, staging_dir_}) {
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (dir == staging_dir_ && !entry.path().filename().string().ends_with(".manifest")) continue;
      if (auto text = read_file(entry.path().string()); text.ok()) {
        if (auto digest = first_line_digest(*text)) named.insert(digest->hex());
      }
    }
    if (ec) return io_error("list", dir, ec.value());
  }
  std::vector<std::filesystem::path> unnamed;
  for (const auto& entry : std::filesystem::directory_iterator(manifests_dir_, ec)) {
    if (!named.contains(entry.path().filename().string())) unnamed.push_back(entry.path());
  }
  if (ec) return io_error("list", manifests_dir_, ec.value());
  for (const auto& p : unnamed) {
    std::filesystem::remove(p, ec);
    if (ec) return io_error("remove", p, ec.value());
  }
  return ok_status();
}

Status Installer::remove_older(const DpJob& job) {
  const std::string prefix = job.package_id + ".";
  std::error_code ec;
  std::vector<std::string> old;
  for (const auto& entry : std::filesystem::directory_iterator(content_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name != job.content_id) old.push_back(name);
  }
  for (const auto& id : old) PKG_TRY(remove_version(id));
  return sweep_manifests();
}

Status Installer::remove_version(const std::string& content_id) {
  index_.remove(content_id);
  const auto dir = content_dir_ / content_id;
  PKG_TRY(trash_and_delete(dir, trash_dir_));
  auto text = read_file((versions_dir_ / content_id).string());
  std::error_code ec;
  std::filesystem::remove(versions_dir_ / content_id, ec);
  if (text.ok()) {
    if (auto digest = first_line_digest(*text); digest && !index_.uses_manifest(*digest)) {
      std::filesystem::remove(manifest_file(*digest), ec);
    }
  }
  return ok_status();
}

void Installer::discard_failed(const DpJob& job, bool out_of_space) {
  if (!out_of_space) return;
  (void)remove_tree(staging_dir_ / job.content_id);
  std::error_code ec;
  std::filesystem::remove(staging_dir_ / (job.content_id + ".manifest"), ec);
}

Status Installer::remove(const DpJob& job) {
  const std::string prefix = job.package_id + ".";
  std::error_code ec;
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(content_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix)) found.push_back(name);
  }
  if (ec) return io_error("list", content_dir_, ec.value());
  for (const auto& id : found) PKG_TRY(remove_version(id));
  // And whatever of the package was being staged.
  std::vector<std::filesystem::path> staged;
  for (const auto& entry : std::filesystem::directory_iterator(staging_dir_, ec)) {
    if (entry.path().filename().string().starts_with(prefix)) staged.push_back(entry.path());
  }
  for (const auto& p : staged) PKG_TRY(remove_tree(p));
  return sweep_manifests();
}

Result<ValidateOutcome> Installer::validate(const DpJob& job, const FetchJob& fetch,
                                            const std::function<void(const std::vector<std::string>&)>& on_mismatch) {
  PKG_ASSIGN_OR_RETURN(content::Manifest manifest, load_manifest(job, fetch));
  const auto digest = *content::Digest::from_hex(job.manifest_hash);
  const auto dir = installed_dir(job);
  ValidateOutcome out;
  Fd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) {
    out.mismatched.push_back(job.content_id + " (not installed)");
    if (on_mismatch) on_mismatch(out.mismatched);
    PKG_TRY(install(job, fetch, {}));
    PKG_TRY(remove_older(job));
    return out;
  }
  std::vector<std::size_t> bad;
  for (std::size_t i = 0; i < manifest.entries.size(); ++i) {
    if (fetch.cancel && fetch.cancel->load()) return make_error(WbemCode::kCallCancelled, "job cancelled");
    const std::string why = check_installed_entry(root.get(), manifest.entries[i]);
    if (!why.empty()) {
      bad.push_back(i);
      out.mismatched.push_back(status_path(manifest.entries[i].path));
    }
  }
  // The tree is the package's, byte for byte: what the manifest does not list is a mismatch too, and goes.
  PKG_ASSIGN_OR_RETURN(const std::vector<std::string> unlisted, unlisted_paths(dir, manifest));
  for (const auto& p : unlisted) out.mismatched.push_back(status_path(p) + " (not in the package)");
  if (!out.mismatched.empty()) {
    if (on_mismatch) on_mismatch(out.mismatched);
    // While it is repaired, the version is not a source of chunks for anyone.
    index_.remove(job.content_id);
    for (const auto& p : unlisted) PKG_TRY(remove_unlisted(dir, p));
    if (!bad.empty()) PKG_TRY(repair(manifest, dir, bad, fetch));
  }
  // Verified whole: it is (again) a source of chunks (read and checked: no file is trusted unread).
  PKG_TRY(record_version(job.content_id, digest, {}));
  index_.add(job.content_id, digest, manifest);
  return out;
}

Status Installer::repair(const content::Manifest& manifest, const std::filesystem::path& dir,
                         const std::vector<std::size_t>& bad, const FetchJob& fetch) {
  PKG_ASSIGN_OR_RETURN(Fd root, open_dir(dir));
  for (std::size_t i : bad) {
    const auto& e = manifest.entries[i];
    std::string leaf;
    PKG_ASSIGN_OR_RETURN(Fd parent, open_parent(root.get(), e.path, leaf));
    const auto display = dir / e.path;
    struct stat st {};
    const bool exists = ::fstatat(parent.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    const bool wrong_kind = exists && ((e.type == content::EntryType::kDirectory) != S_ISDIR(st.st_mode));
    if (exists && (wrong_kind || e.type == content::EntryType::kSymlink)) {
      PKG_TRY(remove_entry(parent.get(), leaf, st, display));
    }
    switch (e.type) {
      case content::EntryType::kDirectory: {
        if ((!exists || wrong_kind) && ::mkdirat(parent.get(), leaf.c_str(), 0700) != 0) {
          return io_error("create directory", display, errno);
        }
        Fd d(::openat(parent.get(), leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!d.valid() || ::fchmod(d.get(), e.mode & 07777) != 0) return io_error("set the mode of", display, errno);
        break;
      }
      case content::EntryType::kSymlink:
        if (::symlinkat(e.target.c_str(), parent.get(), leaf.c_str()) != 0) {
          return io_error("create symlink", display, errno);
        }
        break;
      case content::EntryType::kFile: {
        // Each chunk from the bad file itself where its bytes there still match, else from an installed version,
        // else fetched: only bad chunks move.
        Fd old;
        if (exists && S_ISREG(st.st_mode)) old = Fd(::openat(parent.get(), leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        std::uint64_t offset = 0;
        std::string buf;
        const ChunkBytes bytes = [&](const content::ChunkRef& ref) -> Result<std::string> {
          const std::uint64_t at = offset;
          offset += ref.size;
          if (old.valid() && region_holds(old.get(), at, ref, buf)) return std::move(buf);
          return chunk_bytes(ref, fetch, pool_.size());
        };
        // Written beside the bad file and renamed over it: the path always holds a whole file.
        const std::string tmp = repair_name(manifest, i);
        ::unlinkat(parent.get(), tmp.c_str(), 0);
        Status w = write_file_entry(parent.get(), tmp, e, bytes, display, options_.write_fault);
        if (!w.ok()) {
          ::unlinkat(parent.get(), tmp.c_str(), 0);
          return w;
        }
        if (::renameat(parent.get(), tmp.c_str(), parent.get(), leaf.c_str()) != 0) {
          const int err = errno;
          ::unlinkat(parent.get(), tmp.c_str(), 0);
          return io_error("replace", display, err);
        }
        break;
      }
    }
    if (::fsync(parent.get()) != 0) return io_error("fsync the directory of", display, errno);
  }
  for (std::size_t i : bad) {
    const std::string why = check_installed_entry(root.get(), manifest.entries[i]);
    if (!why.empty()) {
      return make_error(WbemCode::kFailed, "repair of '" + manifest.entries[i].path + "' failed: " + why);
    }
  }
  return ok_status();
}

}  // namespace pkgcast::dp
