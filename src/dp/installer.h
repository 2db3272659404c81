// What a job does to the data directory: install a content version atomically, re-hash and repair it, remove it.
//
// Layout under the data directory:
//   chunks/      the verified chunk cache (content::ChunkStore), shared by every package and version
//   partial/     chunk downloads in progress (<sha256>.part), resumed with Range
//   manifests/   verified manifests (<hash>), kept while a version that uses them is installed
//   staging/     <ContentID>/ while a version is assembled
//   content/     <PackageID>.<SourceVersion>/: installed versions, each renamed in whole from staging
//   trash/       what is being deleted (renamed here first, so a half-deleted tree is never under content/)
//
// A refused install (bad manifest, bad chunk, a path that escapes, ENOSPC, ...) changes nothing outside staging/
// and the caches: the installed version, if any, stays as it was.
//
// Thread safety: one job at a time (the agent's job thread); the fetcher's workers run inside install().
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "content/content.h"
#include "core/result.h"
#include "dp/fetcher.h"
#include "dp/fs_util.h"
#include "dp/job.h"

namespace pkgcast::dp {

struct InstallerOptions {
  std::filesystem::path data_dir;
  content::ManifestLimits limits;
  WriteFault write_fault;
};

// Bytes of distinct chunks present in the cache, out of those the version needs. Called from any worker.
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct ValidateOutcome {
  std::vector<std::string> mismatched;  // entry paths that did not match the manifest, in manifest order
};

class Installer {
 public:
  Installer(InstallerOptions options, content::ChunkStore& store, Fetcher& fetcher);

  // Creates the layout and empties trash/ and staging/ (left by a crash; the chunk cache and partial downloads
  // are kept, so a resumed install refetches nothing that was verified).
  Status prepare();

  Status install(const DpJob& job, const FetchJob& fetch, const ProgressFn& progress);

  // After a failed install: drops the job's staging tree and, when `out_of_space`, every partial download, so the
  // disk has room again (at least for the failure report). Verified chunks stay in the cache.
  void discard_failed(const DpJob& job, bool out_of_space);

  // Re-hashes the installed version. `on_mismatch` is called with the bad paths before the repair (not at all
  // when everything matches); the repair refetches only chunks the cache lacks or that fail their check, and
  // replaces each bad entry atomically. A version that is not installed is installed.
  Result<ValidateOutcome> validate(const DpJob& job, const FetchJob& fetch,
                                   const std::function<void(const std::vector<std::string>&)>& on_mismatch);

  // Removes every installed version of the job's package (atomically each: renamed to trash/, then deleted).
  Status remove(const DpJob& job);

  std::filesystem::path installed_dir(const DpJob& job) const;
  // Where a verified manifest is kept (what the content server serves).
  std::filesystem::path manifest_file(const content::Digest& hash) const;

 private:
  Result<content::Manifest> load_manifest(const DpJob& job, const FetchJob& fetch);
  Status assemble(const content::Manifest& manifest, const std::filesystem::path& dir, const FetchJob& fetch);
  Result<std::string> chunk_bytes(const content::ChunkRef& ref, const FetchJob& fetch);
  Status repair(const content::Manifest& manifest, const std::filesystem::path& dir,
                const std::vector<std::size_t>& bad, const FetchJob& fetch);

  const InstallerOptions options_;
  const std::filesystem::path chunks_dir_, partial_dir_, manifests_dir_, staging_dir_, content_dir_, trash_dir_;
  content::ChunkStore& store_;
  Fetcher& fetcher_;
};

}  // namespace pkgcast::dp
