#include "dp/chunk_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "dp/fs_util.h"
#include "dp/tree.h"

namespace pkgcast::dp {

namespace {

// The regular file `path` below `root`, opened without following any link; invalid when that fails.
Fd open_below(const std::filesystem::path& root, const std::string& path) {
  Fd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) return Fd();
  std::string leaf;
  auto parent = open_parent(dir.get(), path, leaf);
  if (!parent.ok()) return Fd();
  return Fd(::openat(parent->get(), leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
}

}  // namespace

Result<std::string> read_verified(const std::filesystem::path& root, const std::string& path, std::uint64_t offset,
                                  std::uint32_t size, const content::Digest& hash) {
  Fd fd = open_below(root, path);
  if (!fd.valid()) return make_error(WbemCode::kNotFound, "cannot open " + (root / path).string());
  std::string bytes(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::pread(fd.get(), bytes.data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(WbemCode::kNotFound, "short read of " + (root / path).string());
    got += static_cast<std::size_t>(n);
  }
  if (content::sha256(bytes) != hash) {
    return make_error(WbemCode::kFailed, "chunk " + hash.hex() + " in " + (root / path).string() + " differs");
  }
  return bytes;
}

void ChunkIndex::add(const std::string& content_id, const content::Digest& manifest_hash,
                     const content::Manifest& manifest, const std::vector<FileFingerprint>& fingerprints) {
  auto version = std::make_shared<Version>();
  version->content_id = content_id;
  version->manifest_hash = manifest_hash;
  Indexed indexed;
  std::set<content::Digest> seen;
  for (std::size_t i = 0; i < manifest.entries.size(); ++i) {
    const auto& e = manifest.entries[i];
    if (e.type != content::EntryType::kFile) continue;
    const auto file = static_cast<std::uint32_t>(version->paths.size());
    version->paths.push_back(e.path);
    version->fingerprints.push_back(i < fingerprints.size() ? fingerprints[i] : FileFingerprint{});
    indexed.files.emplace_back(e.sha256, file);
    std::uint64_t offset = 0;
    for (const auto& c : e.chunks) {
      if (seen.insert(c.hash).second) indexed.chunks.push_back({c.hash, file, c.size, offset});
      offset += c.size;
    }
  }
  indexed.version = std::move(version);
  MutexLock lock(mu_);
  if (versions_.contains(content_id)) {
    versions_.erase(content_id);
    std::erase_if(chunks_, [&](const auto& kv) { return kv.second.version->content_id == content_id; });
    std::erase_if(files_, [&](const auto& kv) { return kv.second.version->content_id == content_id; });
    for (const auto& [id, other] : versions_) insert_locked(other, false);
  }
  insert_locked(indexed, true);
  versions_.emplace(content_id, std::move(indexed));
}

void ChunkIndex::insert_locked(const Indexed& v, bool replace) {
  for (const auto& c : v.chunks) {
    Place p{v.version, c.file, c.size, c.offset};
    if (replace) {
      chunks_.insert_or_assign(c.hash, std::move(p));
    } else {
      chunks_.try_emplace(c.hash, std::move(p));
    }
  }
  for (const auto& [hash, file] : v.files) {
    if (replace) {
      files_.insert_or_assign(hash, FilePlace{v.version, file});
    } else {
      files_.try_emplace(hash, FilePlace{v.version, file});
    }
  }
}

void ChunkIndex::remove(const std::string& content_id) {
  MutexLock lock(mu_);
  auto it = versions_.find(content_id);
  if (it == versions_.end()) return;
  const Indexed gone = std::move(it->second);
  versions_.erase(it);
  for (const auto& c : gone.chunks) {
    auto at = chunks_.find(c.hash);
    if (at != chunks_.end() && at->second.version == gone.version) chunks_.erase(at);
  }
  for (const auto& [hash, file] : gone.files) {
    auto at = files_.find(hash);
    if (at != files_.end() && at->second.version == gone.version) files_.erase(at);
  }
  // Chunks and files the removed version shared with others are found in those again.
  for (const auto& [id, other] : versions_) insert_locked(other, false);
}

std::optional<ChunkIndex::Place> ChunkIndex::find(const content::Digest& hash) const {
  MutexLock lock(mu_);
  auto it = chunks_.find(hash);
  if (it == chunks_.end()) return std::nullopt;
  return it->second;
}

std::optional<ChunkIndex::FileAt> ChunkIndex::find_file(const content::Digest& sha256) const {
  MutexLock lock(mu_);
  auto it = files_.find(sha256);
  if (it == files_.end()) return std::nullopt;
  const Version& v = *it->second.version;
  return FileAt{content_dir_ / v.content_id, v.paths[it->second.file], v.fingerprints[it->second.file]};
}

bool ChunkIndex::contains(const content::Digest& hash) const { return find(hash).has_value(); }

Result<std::string> ChunkIndex::read(const content::Digest& hash) const {
  auto place = find(hash);
  if (!place) return make_error(WbemCode::kNotFound, "no installed version holds chunk " + hash.hex());
  auto bytes = read_verified(content_dir_ / place->version->content_id, place->version->paths[place->file],
                             place->offset, place->size, hash);
  if (!bytes.ok()) return make_error(WbemCode::kNotFound, bytes.error().message);
  return bytes;
}

bool ChunkIndex::copy_range(const Version& version, std::uint32_t file, std::uint64_t from, int out,
                            std::uint64_t to, std::uint64_t length) const {
  const FileFingerprint& verified = version.fingerprints[file];
  if (!verified.known) return false;
  Fd in = open_below(content_dir_ / version.content_id, version.paths[file]);
  struct stat st {};
  if (!in.valid() || ::fstat(in.get(), &st) != 0 || !FileFingerprint::of(st).same_state(verified)) return false;
  // A clone shares whole blocks only, from a block boundary in both files: the bytes up to the destination's next
  // boundary go in a copy of their own, then the whole blocks after it, then the rest, so that the middle copy
  // starts and ends on boundaries in both files whenever the two offsets differ by whole blocks (an update that
  // changed bytes without moving the others), and the kernel clones it.
  struct stat out_st {};
  const std::uint64_t block =
      ::fstat(out, &out_st) == 0 && out_st.st_blksize > 0 ? static_cast<std::uint64_t>(out_st.st_blksize) : 4096;
  auto src = static_cast<loff_t>(from);
  auto dst = static_cast<loff_t>(to);
  const std::uint64_t head = std::min(length, (block - to % block) % block);
  const std::uint64_t middle = (length - head) / block * block;
  for (std::uint64_t piece : {head, middle, length - head - middle}) {
    while (piece > 0) {
      const ssize_t n = ::copy_file_range(in.get(), &src, out, &dst, piece, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      piece -= static_cast<std::uint64_t>(n);
    }
  }
  // A write to the installed file during the copy changes its time: what was copied is then not trusted.
  return ::fstat(in.get(), &st) == 0 && FileFingerprint::of(st).same_state(verified);
}

bool ChunkIndex::copy_unread(const content::ChunkRef& chunk, int out, std::uint64_t offset) const {
  auto place = find(chunk.hash);
  return place && place->size == chunk.size &&
         copy_range(*place->version, place->file, place->offset, out, offset, place->size);
}

std::vector<bool> ChunkIndex::copy_runs_unread(
    std::span<const content::ChunkRef> chunks, int out,
    const std::function<bool(std::uint64_t, std::uint64_t)>& after_run) const {
  std::vector<std::optional<Place>> at(chunks.size());
  {
    MutexLock lock(mu_);
    for (std::size_t k = 0; k < chunks.size(); ++k) {
      auto it = chunks_.find(chunks[k].hash);
      if (it != chunks_.end() && it->second.size == chunks[k].size) at[k] = it->second;
    }
  }
  std::vector<bool> placed(chunks.size(), false);
  std::uint64_t to = 0;
  for (std::size_t k = 0; k < chunks.size();) {
    if (!at[k]) {
      to += chunks[k].size;
      ++k;
      continue;
    }
    std::size_t end = k + 1;
    std::uint64_t length = at[k]->size;
    while (end < chunks.size() && at[end] && at[end]->version == at[k]->version && at[end]->file == at[k]->file &&
           at[end]->offset == at[end - 1]->offset + at[end - 1]->size) {
      length += at[end]->size;
      ++end;
    }
    if (copy_range(*at[k]->version, at[k]->file, at[k]->offset, out, to, length)) {
      std::fill(placed.begin() + static_cast<std::ptrdiff_t>(k), placed.begin() + static_cast<std::ptrdiff_t>(end),
                true);
    }
    if (after_run && !after_run(to, length)) break;
    to += length;
    k = end;
  }
  return placed;
}

std::vector<std::string> ChunkIndex::versions() const {
  MutexLock lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, v] : versions_) out.push_back(id);
  return out;
}

bool ChunkIndex::uses_manifest(const content::Digest& manifest_hash) const {
  MutexLock lock(mu_);
  for (const auto& [id, v] : versions_) {
    if (v.version->manifest_hash == manifest_hash) return true;
  }
  return false;
}

}  // namespace pkgcast::dp
