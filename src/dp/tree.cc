#include "dp/tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace pkgcast::dp {
namespace {

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
    out.push_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

Error refused(std::string_view path, std::string_view why) {
  return make_error(WbemCode::kInvalidParameter, "refused path '" + std::string(path) + "': " + std::string(why));
}

}  // namespace

Status recheck_path(std::string_view path, const content::ManifestLimits& limits) {
  PKG_TRY(content::check_entry_path(path, limits));
  if (path.empty() || path.front() == '/') return refused(path, "absolute or empty");
  if (path.find('\0') != std::string_view::npos) return refused(path, "contains NUL");
  for (std::string_view c : split(path)) {
    if (c.empty() || c == "." || c == "..") return refused(path, "empty, '.' or '..' component");
  }
  return ok_status();
}

Status check_link_target(std::string_view link_path, std::string_view target) {
  if (target.empty() || target.front() == '/') return refused(link_path, "symlink target is absolute or empty");
  if (target.find('\0') != std::string_view::npos) return refused(link_path, "symlink target contains NUL");
  // Resolve lexically from the link's directory; going above the root at any step escapes.
  std::vector<std::string_view> parts = split(link_path);
  parts.pop_back();
  for (std::string_view c : split(target)) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (parts.empty()) return refused(link_path, "symlink target '" + std::string(target) + "' leaves the tree");
      parts.pop_back();
    } else {
      parts.push_back(c);
    }
  }
  return ok_status();
}

Result<Fd> open_parent(int root_fd, std::string_view path, std::string& leaf) {
  std::vector<std::string_view> parts = split(path);
  leaf = std::string(parts.back());
  parts.pop_back();
  Fd dir(::dup(root_fd));
  if (!dir.valid()) return io_error("dup", path, errno);
  for (std::string_view c : parts) {
    const std::string name(c);
    Fd next(::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) return io_error("open directory", std::string(path), errno);
    dir = std::move(next);
  }
  return dir;
}

Status write_file_entry(int parent_fd, const std::string& name, const content::ManifestEntry& entry,
                        const ChunkBytes& chunks, const std::filesystem::path& display, const WriteFault& fault) {
  Fd fd(::openat(parent_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return io_error("create", display, errno);
  content::Sha256 hash;
  std::uint64_t written = 0;
  for (const auto& ref : entry.chunks) {
    PKG_ASSIGN_OR_RETURN(std::string bytes, chunks(ref));
    if (bytes.size() != ref.size || written + bytes.size() > entry.size) {
      return make_error(WbemCode::kFailed, "file '" + entry.path + "' is larger than announced");
    }
    std::span<const std::uint8_t> raw(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    PKG_TRY(write_all(fd.get(), raw, display, fault));
    hash.update(raw);
    written += bytes.size();
  }
  if (written != entry.size) {
    return make_error(WbemCode::kFailed, "file '" + entry.path + "' has " + std::to_string(written) +
                                             " bytes, the manifest says " + std::to_string(entry.size));
  }
  if (hash.finish() != entry.sha256) {
    return make_error(WbemCode::kFailed, "file '" + entry.path + "' failed verification (SHA-256)");
  }
  if (::fchmod(fd.get(), entry.mode & 07777) != 0) return io_error("set the mode of", display, errno);
  if (::fsync(fd.get()) != 0) return io_error("fsync", display, errno);
  return ok_status();
}

std::string check_installed_entry(int root_fd, const content::ManifestEntry& entry) {
  std::string leaf;
  auto parent = open_parent(root_fd, entry.path, leaf);
  if (!parent.ok()) return "missing parent directory";
  struct stat st {};
  if (::fstatat(parent->get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return "missing";
  switch (entry.type) {
    case content::EntryType::kDirectory:
      if (!S_ISDIR(st.st_mode)) return "not a directory";
      if ((st.st_mode & 07777) != (entry.mode & 07777)) return "wrong mode";
      return {};
    case content::EntryType::kSymlink: {
      if (!S_ISLNK(st.st_mode)) return "not a symlink";
      std::string target(4096, '\0');
      const ssize_t n = ::readlinkat(parent->get(), leaf.c_str(), target.data(), target.size());
      if (n < 0) return "unreadable symlink";
      target.resize(static_cast<std::size_t>(n));
      if (target != entry.target) return "wrong symlink target";
      return {};
    }
    case content::EntryType::kFile: {
      if (!S_ISREG(st.st_mode)) return "not a regular file";
      if ((st.st_mode & 07777) != (entry.mode & 07777)) return "wrong mode";
      if (static_cast<std::uint64_t>(st.st_size) != entry.size) return "wrong size";
      Fd fd(::openat(parent->get(), leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return "unreadable";
      content::Sha256 hash;
      std::vector<std::uint8_t> buf(64 * 1024);
      for (;;) {
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          return "unreadable";
        }
        if (n == 0) break;
        hash.update({buf.data(), static_cast<std::size_t>(n)});
      }
      if (hash.finish() != entry.sha256) return "content differs (SHA-256)";
      return {};
    }
  }
  return "unknown entry type";
}

}  // namespace pkgcast::dp
