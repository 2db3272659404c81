// Where each chunk of the installed content lies: the agent keeps no chunk cache beside the trees it installs
// (that would write every byte twice); a chunk is found by hash in an installed version's file, at an offset the
// version's manifest gives. Updates reuse the previous version's bytes through it, the content server serves
// from it, and removing a version removes its chunks with it.
//
// A version is indexed once it is in place under content/, and unindexed before it is removed. read() verifies
// the bytes against the hash every time, so a file changed on disk is never served or reused (it fails, and the
// caller fetches or answers 404).
//
// Whole files are found by their SHA-256 too, so that a file an update leaves unchanged can be linked rather than
// copied.
//
// Memory: about 130 bytes per chunk of the installed versions (about 2 MiB per GiB at the average chunk size), and
// about 100 per file.
//
// Thread safety: every member from any thread.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "content/content.h"
#include "core/mutex.h"
#include "core/result.h"
#include "dp/version_record.h"

namespace pkgcast::dp {

using content::DigestHash;

class ChunkIndex {
 public:
  explicit ChunkIndex(std::filesystem::path content_dir) : content_dir_(std::move(content_dir)) {}

  // Indexes content/<content_id>/ as holding `manifest` (whose hash is `manifest_hash`). Replaces an earlier entry
  // of the same content ID. `fingerprints`, by manifest entry (empty, or unknown entries: none), are the files'
  // as verified.
  void add(const std::string& content_id, const content::Digest& manifest_hash, const content::Manifest& manifest,
           const std::vector<FileFingerprint>& fingerprints = {});
  // Forgets a version (before it is removed); its chunks that other versions also hold stay found there.
  void remove(const std::string& content_id);

  // The chunk's verified bytes from an installed version (WBEM_E_NOT_FOUND when no indexed version holds it, or
  // when every copy failed its check or could not be read).
  Result<std::string> read(const content::Digest& hash) const;
  // Copies the chunk in the kernel (copy_file_range) to `out` at `offset`, from an installed file that the agent
  // verified and whose fingerprint is unchanged since, before and after the copy, without reading or checking the
  // bytes: they are trusted as the chunks of a verified file (FileFingerprint). False when no such file holds the
  // chunk at `chunk.size` or the copy fails (what was copied of it is then to be overwritten).
  bool copy_unread(const content::ChunkRef& chunk, int out, std::uint64_t offset) const;
  // The same for runs of a staged file's chunks (`chunks`: the whole file's, in order, the first at offset 0 of
  // `out`) that one installed file holds back to back, as an update's unchanged stretches of a file are: each run in
  // three kernel copies (up to the destination's next block boundary, the whole blocks after it, the rest), so that
  // the middle one is shared with the installed file rather than written again where the file system can
  // (copy_file_range clones on XFS and Btrfs when both offsets are on block boundaries; elsewhere it copies). A
  // chunk whose size in `chunks` is not the one the installed version recorded is not copied. `after_run` is called
  // after each run copied, with its offset and length in `out`; it returns false to stop (cancel). Returns, by
  // chunk, which were placed; a run whose copy failed is not (what was copied of it is then to be overwritten).
  std::vector<bool> copy_runs_unread(std::span<const content::ChunkRef> chunks, int out,
                                     const std::function<bool(std::uint64_t, std::uint64_t)>& after_run) const;
  bool contains(const content::Digest& hash) const;

  // An installed file whose whole-file SHA-256 is `sha256` (the first indexed one): the version's directory and the
  // path below it. Not verified here: the caller hashes what it finds before trusting it.
  struct FileAt {
    std::filesystem::path root;
    std::string path;
    FileFingerprint verified;  // known = false: not recorded (indexed at start); hash it
  };
  std::optional<FileAt> find_file(const content::Digest& sha256) const;

  // The indexed content IDs, and whether any indexed version still uses a manifest.
  std::vector<std::string> versions() const;
  bool uses_manifest(const content::Digest& manifest_hash) const;

 private:
  struct Version {
    std::string content_id;
    content::Digest manifest_hash;
    std::vector<std::string> paths;  // of the file entries, by file number
    std::vector<FileFingerprint> fingerprints;  // by file number
  };
  struct Place {
    std::shared_ptr<const Version> version;
    std::uint32_t file = 0;
    std::uint32_t size = 0;
    std::uint64_t offset = 0;
  };
  struct ChunkAt {  // one chunk of a version, to re-point the index when another version goes
    content::Digest hash;
    std::uint32_t file = 0;
    std::uint32_t size = 0;
    std::uint64_t offset = 0;
  };
  struct Indexed {
    std::shared_ptr<const Version> version;
    std::vector<ChunkAt> chunks;  // distinct within the version
    std::vector<std::pair<content::Digest, std::uint32_t>> files;  // whole-file hash, file number
  };
  struct FilePlace {
    std::shared_ptr<const Version> version;
    std::uint32_t file = 0;
  };

  std::optional<Place> find(const content::Digest& hash) const;
  // Copies `length` bytes at `from` of the place's file, if its fingerprint is still the verified one, to `out` at
  // `to`.
  bool copy_range(const Version& version, std::uint32_t file, std::uint64_t from, int out, std::uint64_t to,
                  std::uint64_t length) const;
  void insert_locked(const Indexed& v, bool replace) PKG_REQUIRES(mu_);

  const std::filesystem::path content_dir_;
  mutable Mutex mu_;
  std::map<std::string, Indexed> versions_ PKG_GUARDED_BY(mu_);
  std::unordered_map<content::Digest, Place, DigestHash> chunks_ PKG_GUARDED_BY(mu_);
  std::unordered_map<content::Digest, FilePlace, DigestHash> files_ PKG_GUARDED_BY(mu_);
};

// Reads `size` bytes at `offset` of the regular file `path` below the directory `root` without following any link,
// and checks them against `hash`. WBEM_E_NOT_FOUND when the file is missing or short, WBEM_E_FAILED when the bytes
// differ.
Result<std::string> read_verified(const std::filesystem::path& root, const std::string& path, std::uint64_t offset,
                                  std::uint32_t size, const content::Digest& hash);

}  // namespace pkgcast::dp
