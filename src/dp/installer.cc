#include "dp/installer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "core/paths.h"
#include "dp/tree.h"

namespace pkgcast::dp {
namespace {

// Distinct chunks of a manifest, in first-use order.
std::vector<content::ChunkRef> distinct_chunks(const content::Manifest& m) {
  std::vector<content::ChunkRef> out;
  std::set<content::Digest> seen;
  for (const auto& e : m.entries) {
    for (const auto& c : e.chunks) {
      if (seen.insert(c.hash).second) out.push_back(c);
    }
  }
  return out;
}

Result<Fd> open_dir(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return io_error("open directory", dir, errno);
  return fd;
}

}  // namespace

Installer::Installer(InstallerOptions options, content::ChunkStore& store, Fetcher& fetcher)
    : options_(std::move(options)),
      chunks_dir_(options_.data_dir / "chunks"),
      partial_dir_(options_.data_dir / "partial"),
      manifests_dir_(options_.data_dir / "manifests"),
      staging_dir_(options_.data_dir / "staging"),
      content_dir_(options_.data_dir / "content"),
      trash_dir_(options_.data_dir / "trash"),
      store_(store),
      fetcher_(fetcher) {}

Status Installer::prepare() {
  for (const auto& d : {partial_dir_, manifests_dir_, content_dir_}) PKG_TRY(ensure_dir(d));
  PKG_TRY(remove_tree(trash_dir_));
  PKG_TRY(remove_tree(staging_dir_));
  PKG_TRY(ensure_dir(trash_dir_));
  PKG_TRY(ensure_dir(staging_dir_));
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
  if (local.ok() && content::sha256(*local) == *digest) {
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
  if (!local.ok() || content::sha256(*local) != *digest) PKG_TRY(write_file_atomic(file.string(), bytes, 0644));
  return parsed;
}

Result<std::string> Installer::chunk_bytes(const content::ChunkRef& ref, const FetchJob& fetch) {
  auto got = store_.get(ref.hash);
  if (got.ok()) return got;
  // Absent, or its stored bytes failed their check (the store removed the file): fetch it again, once.
  PKG_TRY(fetcher_.fetch_chunks(fetch, {ref}));
  return store_.get(ref.hash);
}

Status Installer::assemble(const content::Manifest& manifest, const std::filesystem::path& dir,
                           const FetchJob& fetch) {
  PKG_TRY(remove_tree(dir));
  if (::mkdir(dir.c_str(), 0700) != 0) return io_error("create directory", dir, errno);
  PKG_ASSIGN_OR_RETURN(Fd root, open_dir(dir));
  std::vector<const content::ManifestEntry*> dirs;
  const ChunkBytes bytes = [&](const content::ChunkRef& ref) { return chunk_bytes(ref, fetch); };
  for (const auto& e : manifest.entries) {
    if (fetch.cancel && fetch.cancel->load()) return make_error(WbemCode::kCallCancelled, "job cancelled");
    std::string leaf;
    PKG_ASSIGN_OR_RETURN(Fd parent, open_parent(root.get(), e.path, leaf));
    const auto display = dir / e.path;
    switch (e.type) {
      case content::EntryType::kDirectory:
        if (::mkdirat(parent.get(), leaf.c_str(), 0700) != 0) return io_error("create directory", display, errno);
        dirs.push_back(&e);
        break;
      case content::EntryType::kSymlink:
        if (::symlinkat(e.target.c_str(), parent.get(), leaf.c_str()) != 0) {
          return io_error("create symlink", display, errno);
        }
        break;
      case content::EntryType::kFile:
        PKG_TRY(write_file_entry(parent.get(), leaf, e, bytes, display, options_.write_fault));
        break;
    }
  }
  // Modes last and deepest first, so a read-only directory is filled before it becomes read-only; each directory
  // is fsynced so the entries it names are durable before the rename publishes the tree.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    std::string leaf;
    PKG_ASSIGN_OR_RETURN(Fd parent, open_parent(root.get(), (*it)->path, leaf));
    Fd d(::openat(parent.get(), leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d.valid()) return io_error("open directory", dir / (*it)->path, errno);
    if (::fsync(d.get()) != 0) return io_error("fsync", dir / (*it)->path, errno);
    if (::fchmod(d.get(), (*it)->mode & 07777) != 0) return io_error("set the mode of", dir / (*it)->path, errno);
  }
  if (::fchmod(root.get(), 0755) != 0) return io_error("set the mode of", dir, errno);
  if (::fsync(root.get()) != 0) return io_error("fsync", dir, errno);
  return fsync_dir(dir.parent_path());
}

Status Installer::install(const DpJob& job, const FetchJob& fetch, const ProgressFn& progress) {
  PKG_ASSIGN_OR_RETURN(content::Manifest manifest, load_manifest(job, fetch));
  const auto chunks = distinct_chunks(manifest);
  std::uint64_t total = 0;
  for (const auto& c : chunks) total += c.size;
  std::atomic<std::uint64_t> done{0};
  FetchJob counting = fetch;
  counting.on_stored = [&](const content::ChunkRef& ref) {
    const std::uint64_t now = done.fetch_add(ref.size) + ref.size;
    if (progress) progress(now, total);
  };
  if (progress) progress(0, total);
  PKG_TRY(fetcher_.fetch_chunks(counting, chunks));

  const auto staging = staging_dir_ / job.content_id;
  PKG_TRY(assemble(manifest, staging, fetch));

  // Publish: a rename of the whole tree. An existing copy of the same version (a redistribution) is swapped out
  // atomically, so the path never stops holding a complete tree.
  const auto target = installed_dir(job);
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    PKG_TRY(fsync_dir(content_dir_));
    PKG_TRY(trash_and_delete(staging, trash_dir_));
  } else {
    if (errno != ENOENT) return io_error("swap in", target, errno);
    if (::rename(staging.c_str(), target.c_str()) != 0) return io_error("rename into place", target, errno);
    PKG_TRY(fsync_dir(content_dir_));
  }
  PKG_TRY(fsync_dir(staging_dir_));
  // The new version is in place: older versions of the package go.
  const std::string prefix = job.package_id + ".";
  std::error_code ec;
  std::vector<std::filesystem::path> old;
  for (const auto& entry : std::filesystem::directory_iterator(content_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name != job.content_id) old.push_back(entry.path());
  }
  for (const auto& p : old) PKG_TRY(trash_and_delete(p, trash_dir_));
  return ok_status();
}

void Installer::discard_failed(const DpJob& job, bool out_of_space) {
  (void)remove_tree(staging_dir_ / job.content_id);
  if (out_of_space) {
    (void)remove_tree(partial_dir_);
    (void)ensure_dir(partial_dir_);
  }
}

Status Installer::remove(const DpJob& job) {
  const std::string prefix = job.package_id + ".";
  std::error_code ec;
  std::vector<std::filesystem::path> found;
  for (const auto& entry : std::filesystem::directory_iterator(content_dir_, ec)) {
    if (entry.path().filename().string().starts_with(prefix)) found.push_back(entry.path());
  }
  if (ec) return io_error("list", content_dir_, ec.value());
  for (const auto& p : found) PKG_TRY(trash_and_delete(p, trash_dir_));
  return ok_status();
}

Result<ValidateOutcome> Installer::validate(const DpJob& job, const FetchJob& fetch,
                                            const std::function<void(const std::vector<std::string>&)>& on_mismatch) {
  PKG_ASSIGN_OR_RETURN(content::Manifest manifest, load_manifest(job, fetch));
  const auto dir = installed_dir(job);
  ValidateOutcome out;
  Fd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) {
    out.mismatched.push_back(job.content_id + " (not installed)");
    if (on_mismatch) on_mismatch(out.mismatched);
    PKG_TRY(install(job, fetch, {}));
    return out;
  }
  std::vector<std::size_t> bad;
  for (std::size_t i = 0; i < manifest.entries.size(); ++i) {
    if (fetch.cancel && fetch.cancel->load()) return make_error(WbemCode::kCallCancelled, "job cancelled");
    const std::string why = check_installed_entry(root.get(), manifest.entries[i]);
    if (!why.empty()) {
      bad.push_back(i);
      out.mismatched.push_back(manifest.entries[i].path);
    }
  }
  if (bad.empty()) return out;
  if (on_mismatch) on_mismatch(out.mismatched);
  PKG_TRY(repair(manifest, dir, bad, fetch));
  return out;
}

}  // namespace pkgcast::dp

namespace pkgcast::dp {

Status Installer::repair(const content::Manifest& manifest, const std::filesystem::path& dir,
                         const std::vector<std::size_t>& bad, const FetchJob& fetch) {
  // Only chunks the cache lacks are fetched; a cached chunk whose bytes fail their check is refetched by
  // chunk_bytes when it is read.
  std::vector<content::ChunkRef> missing;
  std::set<content::Digest> seen;
  for (std::size_t i : bad) {
    for (const auto& c : manifest.entries[i].chunks) {
      if (seen.insert(c.hash).second && !store_.contains(c.hash)) missing.push_back(c);
    }
  }
  PKG_TRY(fetcher_.fetch_chunks(fetch, missing));
  PKG_ASSIGN_OR_RETURN(Fd root, open_dir(dir));
  const ChunkBytes bytes = [&](const content::ChunkRef& ref) { return chunk_bytes(ref, fetch); };
  for (std::size_t i : bad) {
    const auto& e = manifest.entries[i];
    std::string leaf;
    PKG_ASSIGN_OR_RETURN(Fd parent, open_parent(root.get(), e.path, leaf));
    const auto display = dir / e.path;
    struct stat st {};
    const bool exists = ::fstatat(parent.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    const bool wrong_kind = exists && ((e.type == content::EntryType::kDirectory) != S_ISDIR(st.st_mode));
    if (exists && (wrong_kind || e.type == content::EntryType::kSymlink)) {
      if (S_ISDIR(st.st_mode)) {
        PKG_TRY(remove_tree(display));
      } else if (::unlinkat(parent.get(), leaf.c_str(), 0) != 0) {
        return io_error("remove", display, errno);
      }
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
        // Written beside the bad file and renamed over it: the path always holds a whole file.
        const std::string tmp = ".pkgcast-repair." + leaf;
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
