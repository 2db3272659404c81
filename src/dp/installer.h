// What a job does to the data directory: install a content version atomically, re-hash and repair it, remove it.
//
// Layout under the data directory:
//   content/     <PackageID>.<SourceVersion>/: installed versions, each renamed in whole from staging
//   versions/    <ContentID>: the manifest hash of an installed version (written before the version is renamed in)
//   manifests/   verified manifests (<hash>), kept while a version that uses them is installed
//   staging/     <ContentID>/ while a version is assembled, and <ContentID>.manifest naming the manifest it is
//                assembled for: both survive a crash, and the next install of that version resumes there
//   trash/       what is being deleted (renamed here first, so a half-deleted tree is never under content/)
//
// There is no chunk cache: each verified chunk is written straight to every place of the staged tree that holds
// it, so each byte is written to disk once. A chunk already on the DP (in an installed version of any package,
// through the ChunkIndex) is copied from there rather than fetched; one already in place in a resumed staging
// tree (found by hashing its place) is neither. So an update moves only the chunks that changed, and a restart
// after a crash refetches only what had not arrived (and what a crash lost before it was written).
//
// Before the rename every file is hashed whole against the manifest and the tree is made durable: each file and
// directory fsynced, or, for a tree of many files, the file system synced once (syncfs), which costs one flush
// instead of one journal commit per file.
//
// A refused install (bad manifest, bad chunk, a path that escapes, ENOSPC, ...) changes nothing outside staging/:
// the installed version, if any, stays as it was.
//
// Thread safety: one job at a time (the agent's job thread); chunks are placed on the worker pool inside install().
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "content/content.h"
#include "core/result.h"
#include "dp/chunk_index.h"
#include "dp/fetcher.h"
#include "dp/fs_util.h"
#include "dp/job.h"

namespace pkgcast::dp {

struct InstallerOptions {
  std::filesystem::path data_dir;
  content::ManifestLimits limits;
  WriteFault write_fault;
};

// Bytes of distinct chunks in place in the staged tree, out of those the version needs. Called from any worker.
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct ValidateOutcome {
  // Entry paths that did not match the manifest, in manifest order; then what the manifest does not list, each
  // as "<path> (not in the package)". A path with a space, a quote, a backslash or a control character is written
  // as a JSON string ("\"my file.txt\""), so that the list a status message joins with spaces reads back.
  std::vector<std::string> mismatched;
};

class Installer {
 public:
  Installer(InstallerOptions options, ChunkIndex& index, Fetcher& fetcher, WorkerPool& pool);

  // Creates the layout, empties trash/, drops staged trees that cannot be resumed, and indexes every installed
  // version whose manifest is on disk.
  Status prepare();

  // Stages the version and renames it into place. The package's other versions stay until remove_older().
  Status install(const DpJob& job, const FetchJob& fetch, const ProgressFn& progress);
  // Removes every installed version of the job's package other than the job's (once the job's is in place).
  Status remove_older(const DpJob& job);

  // After a failed install: when `out_of_space`, drops the job's staged tree so the disk has room again (at least
  // for the failure report); otherwise it is kept, and the next attempt resumes it.
  void discard_failed(const DpJob& job, bool out_of_space);

  // Re-hashes the installed version. `on_mismatch` is called with the bad paths before the repair (not at all
  // when everything matches); the repair keeps every chunk of a bad file that still matches its hash, copies
  // others from installed versions, fetches only the rest, and replaces each bad entry atomically. A version that
  // is not installed is installed.
  Result<ValidateOutcome> validate(const DpJob& job, const FetchJob& fetch,
                                   const std::function<void(const std::vector<std::string>&)>& on_mismatch);

  // Removes every installed version of the job's package (atomically each: renamed to trash/, then deleted).
  Status remove(const DpJob& job);

  // Deletes the manifests that neither an installed version (versions/) nor a staged tree (staging/*.manifest)
  // names: those of installs that failed and were then removed or replaced, which would otherwise stay (and be
  // served) for ever. Run by prepare(), remove() and remove_older(), on the one job thread.
  Status sweep_manifests();

  // The PackageIDs this DP holds anything of: installed versions (content/) and staged trees (staging/). Reads
  // directory names only; safe beside the job thread (a name renamed meanwhile may be missed or seen twice).
  Result<std::set<std::string>> held_packages() const;

  std::filesystem::path installed_dir(const DpJob& job) const;
  // Where a verified manifest is kept (what the content server serves).
  std::filesystem::path manifest_file(const content::Digest& hash) const;

 private:
  Result<content::Manifest> load_manifest(const DpJob& job, const FetchJob& fetch);
  // Stages the version's tree in staging/<ContentID>/ (resuming what is there), complete and durable.
  // `fingerprints` receives, by entry, each file's as verified (or linked). A fresh stage copies chunks of installed
  // files in the kernel, unread (ChunkIndex::copy_runs_unread, copy_unread), from files whose fingerprint is still
  // the verified one.
  Status stage(const DpJob& job, const content::Manifest& manifest, const FetchJob& fetch, const ProgressFn& progress,
               std::vector<FileFingerprint>& fingerprints);
  // A chunk's verified bytes: from an installed version when one holds it, else fetched. `worker` as the pool's.
  Result<std::string> chunk_bytes(const content::ChunkRef& ref, const FetchJob& fetch, std::size_t worker,
                                  const Fetcher::ChunkCheck& check = {});
  Status repair(const content::Manifest& manifest, const std::filesystem::path& dir,
                const std::vector<std::size_t>& bad, const FetchJob& fetch);
  // Removes an installed version: unindexed, renamed to trash and deleted, its record and unused manifest gone.
  Status remove_version(const std::string& content_id);
  // versions/<ContentID>, with the fingerprints of the files the agent verified (by manifest entry; may be empty).
  Status record_version(const std::string& content_id, const content::Digest& manifest_hash,
                        const std::vector<FileFingerprint>& fingerprints);

  const InstallerOptions options_;
  const std::filesystem::path manifests_dir_, versions_dir_, staging_dir_, content_dir_, trash_dir_;
  ChunkIndex& index_;
  Fetcher& fetcher_;
  WorkerPool& pool_;
};

}  // namespace pkgcast::dp
