#include "dp/fs_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace pkgcast::dp {

Error io_error(std::string_view what, const std::filesystem::path& path, int err) {
  const WbemCode code = err == ENOSPC || err == EDQUOT ? WbemCode::kOutOfDiskSpace
                        : err == EACCES || err == EPERM ? WbemCode::kAccessDenied
                        : err == ENOENT ? WbemCode::kNotFound
                        : WbemCode::kFailed;
  std::string prefix = err == ENOSPC || err == EDQUOT ? "out of disk space: " : "";
  return make_error(code, prefix + "cannot " + std::string(what) + " '" + path.string() + "': " + std::strerror(err));
}

Result<Fd> lock_data_dir(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "lock";
  Fd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return io_error("open", file, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return io_error("lock", file, errno);
    char pid[32] = {};
    const ssize_t n = ::pread(fd.get(), pid, sizeof pid - 1, 0);
    std::string holder(pid, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    return make_error(WbemCode::kInvalidOperation,
                      "the data directory '" + dir.string() + "' is in use by another dp-agent" +
                          (holder.empty() ? std::string() : " (process " + holder + ")") +
                          "; each agent needs a data directory of its own");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0) {
    return io_error("write", file, errno);
  }
  return fd;
}

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status pwrite_all(int fd, std::span<const std::uint8_t> data, std::uint64_t offset, const std::filesystem::path& path,
                  const WriteFault& fault) {
  if (fault) {
    if (const int err = fault(path); err != 0) return io_error("write", path, err);
  }
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write", path, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return ok_status();
}

Status write_all(int fd, std::span<const std::uint8_t> data, const std::filesystem::path& path,
                 const WriteFault& fault) {
  if (fault) {
    if (const int err = fault(path); err != 0) return io_error("write", path, err);
  }
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write", path, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return ok_status();
}

Status fsync_dir(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return io_error("open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return io_error("fsync directory", dir, errno);
  return ok_status();
}

Status ensure_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error("create directory", dir, ec.value());
  return ok_status();
}

Status remove_tree(const std::filesystem::path& path) {
  std::error_code ec;
  // A read-only directory (a manifest may give 0555) cannot be emptied by its owner: make directories writable
  // first. The iterator does not follow symlinks.
  if (std::filesystem::is_directory(std::filesystem::symlink_status(path, ec))) {
    ::chmod(path.c_str(), 0700);
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    }
    ec.clear();
  }
  std::filesystem::remove_all(path, ec);
  if (ec && ec.value() != ENOENT) return io_error("remove", path, ec.value());
  return ok_status();
}

Status trash_and_delete(const std::filesystem::path& path, const std::filesystem::path& trash_dir) {
  static std::atomic<std::uint64_t> counter{0};
  PKG_TRY(ensure_dir(trash_dir));
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  const auto target = trash_dir / (path.filename().string() + "." + std::to_string(::getpid()) + "." +
                                   std::to_string(stamp) + "." + std::to_string(counter.fetch_add(1)));
  if (::rename(path.c_str(), target.c_str()) != 0) {
    if (errno == ENOENT) return ok_status();
    return io_error("move to the trash", path, errno);
  }
  PKG_TRY(fsync_dir(path.parent_path()));
  PKG_TRY(fsync_dir(trash_dir));
  return remove_tree(target);
}

}  // namespace pkgcast::dp
