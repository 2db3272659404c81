#include "server/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

namespace pkgcast::server {
namespace fs = std::filesystem;
namespace {

Error os_error(const std::string& what, const fs::path& path, int err) {
  return make_error(WbemCode::kFailed, what + " '" + path.string() + "': " + std::strerror(err));
}

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Error untrusted(const fs::path& path, const struct stat& st, const std::string& why) {
  return make_error(WbemCode::kAccessDenied, "refusing to use '" + path.string() + "' (owner uid " +
                                                 std::to_string(st.st_uid) + ", mode " + octal(st.st_mode) +
                                                 "): " + why);
}

// Who besides the owner may write a file whose mode has S_IWGRP or S_IWOTH set.
std::string who_can_write(const struct stat& st) {
  return (st.st_mode & S_IWOTH) != 0 ? "every user" : "its group";
}

}  // namespace

Status ensure_private_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      return make_error(WbemCode::kInvalidParameter, "data directory '" + dir.string() + "' is not a directory");
    }
    return ok_status();
  }
  // Parents first, with the usual mode; only the data directory itself is private.
  std::vector<fs::path> missing;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    const mode_t mode = (*it == dir) ? 0700 : 0755;
    if (::mkdir(it->c_str(), mode) != 0 && errno != EEXIST) return os_error("cannot create directory", *it, errno);
  }
  // mkdir's mode is filtered by the umask; the data directory must be 0700 whatever the umask.
  if (::chmod(dir.c_str(), 0700) != 0) return os_error("cannot set mode of", dir, errno);
  return ok_status();
}

Status check_trusted_dir(const fs::path& dir) {
  const uid_t me = ::geteuid();
  std::error_code ec;
  const fs::path real = fs::canonical(dir, ec);
  if (ec) return make_error(WbemCode::kFailed, "cannot resolve data directory '" + dir.string() + "': " + ec.message());
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0) return os_error("cannot examine", real, errno);
  if (!S_ISDIR(st.st_mode)) {
    return make_error(WbemCode::kInvalidParameter, "data directory '" + dir.string() + "' is not a directory");
  }
  if (st.st_uid != me) {
    return untrusted(real, st, "the data directory belongs to another user; it must be owned by uid " +
                                   std::to_string(me));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return untrusted(real, st, who_can_write(st) + " can write the data directory; chmod 700 it (and check admin.token)");
  }
  // Every directory above: a user who can replace one of them can replace the data directory.
  for (fs::path p = real.parent_path();; p = p.parent_path()) {
    if (::stat(p.c_str(), &st) != 0) return os_error("cannot examine", p, errno);
    if (st.st_uid != 0 && st.st_uid != me) {
      return untrusted(p, st, "a directory above the data directory belongs to another user");
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
      return untrusted(p, st, who_can_write(st) + " can write a directory above the data directory (and it has no sticky bit)");
    }
    if (p == p.parent_path()) break;
  }
  return ok_status();
}

Status check_private_file(const fs::path& file) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) {
    if (errno == ENOENT) return make_error(WbemCode::kNotFound, "'" + file.string() + "' does not exist");
    return os_error("cannot examine", file, errno);
  }
  if (!S_ISREG(st.st_mode)) return untrusted(file, st, "not a regular file (a symbolic link or other)");
  if (st.st_uid != ::geteuid()) {
    return untrusted(file, st, "the file belongs to another user; it must be owned by uid " +
                                   std::to_string(::geteuid()));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return untrusted(file, st, "group or others may read or write it; it must be mode 0600");
  }
  return ok_status();
}

Status ensure_private_file(const fs::path& file) {
  // O_EXCL + O_NOFOLLOW: a planted link is never followed, and a file created meanwhile is examined below.
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) {
    // open()'s mode is filtered by the umask, which can only make it stricter; fchmod makes it exact.
    const int rc = ::fchmod(fd, 0600);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return os_error("cannot set mode of", file, err);
    return ok_status();
  }
  if (errno != EEXIST) return os_error("cannot create", file, errno);
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) return os_error("cannot examine", file, errno);
  if (!S_ISREG(st.st_mode)) return untrusted(file, st, "not a regular file (a symbolic link or other)");
  if (st.st_uid != ::geteuid()) {
    return untrusted(file, st, "the file belongs to another user; it must be owned by uid " +
                                   std::to_string(::geteuid()));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) return untrusted(file, st, "group or others may write it");
  // Ours and writable by nobody else, merely readable (a database made by an older version under umask 022):
  // make it private rather than refuse it.
  if ((st.st_mode & 07777) != 0600 && ::chmod(file.c_str(), 0600) != 0) {
    return os_error("cannot set mode of", file, errno);
  }
  return ok_status();
}

Result<ExclusiveLock> ExclusiveLock::take(const std::filesystem::path& lock_file, std::string_view what) {
  const int fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error(WbemCode::kFailed, "cannot open '" + lock_file.string() + "': " + std::strerror(errno));
  }
  ExclusiveLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      return make_error(WbemCode::kFailed, "cannot lock '" + lock_file.string() + "': " + std::strerror(errno));
    }
    char pid[32] = {};
    const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
    std::string holder(pid, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    return make_error(WbemCode::kInvalidOperation, std::string(what) + " is in use by another pkgcast server" +
                                                       (holder.empty() ? std::string() : " (process " + holder + ")") +
                                                       "; each server needs " + "its own data directory and database");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    return make_error(WbemCode::kFailed, "cannot write '" + lock_file.string() + "': " + std::strerror(errno));
  }
  return lock;
}

ExclusiveLock& ExclusiveLock::operator=(ExclusiveLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

ExclusiveLock::~ExclusiveLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace pkgcast::server
