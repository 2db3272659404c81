// The server's data directory: private (0700), because the database and admin.token live there. Files in it are
// written with core/paths.h's write_file_atomic.
//
// Trust: whoever can write the data directory, a directory above it, admin.token or the database can make
// themselves full-admin (a planted admin.token is registered as the administrator's). So before using any of them
// the server checks that nobody else can write them (check_trusted_dir, check_private_file) and refuses to start
// otherwise, naming the path and what is wrong.
#pragma once

#include <filesystem>
#include <string_view>
#include <utility>

#include "core/result.h"

namespace pkgcast::server {

// Creates `dir` and its missing parents; a directory this call creates gets mode 0700 (tokens and the database
// live there). An existing directory is left as it is. WBEM_E_INVALID_PARAMETER when `dir` exists and is not a
// directory; WBEM_E_FAILED when it cannot be created.
Status ensure_private_dir(const std::filesystem::path& dir);

// Refuses (WBEM_E_ACCESS_DENIED, naming the path, its owner and mode) a data directory that another user could
// change: `dir` itself must be owned by this process's effective user and writable by nobody else (no group or
// world write bit); every directory above it (after resolving symbolic links) must be owned by root or by this
// user, and when group- or world-writable it must have the sticky bit (as /tmp has), so that nobody else can
// rename `dir` away and put their own in its place. WBEM_E_FAILED when a path cannot be examined.
Status check_trusted_dir(const std::filesystem::path& dir);

// Refuses (WBEM_E_ACCESS_DENIED) a private file (admin.token, the SQLite database) that is not a regular file
// (a symbolic link included), is owned by another user, or that group or others may read or write. An absent
// file is WBEM_E_NOT_FOUND.
Status check_private_file(const std::filesystem::path& file);

// For the database files: creates `file` empty with mode 0600 when it does not exist (never following a link).
// An existing one must be a regular file owned by this user that nobody else can write (else
// WBEM_E_ACCESS_DENIED); one that others may only read is made 0600. SQLite gives its -wal and -shm files the
// mode of the database file, so creating the database file 0600 first keeps all three private whatever the umask.
Status ensure_private_file(const std::filesystem::path& file);

// One server per data directory and per SQLite database: two would write one database and one content library
// with diverging state in memory. Holds `lock_file` (flock, exclusive; created 0600 and holding this process's id)
// while alive. WBEM_E_INVALID_OPERATION, naming `what` and the holder's process id, when another process holds it.
class ExclusiveLock {
 public:
  static Result<ExclusiveLock> take(const std::filesystem::path& lock_file, std::string_view what);
  ExclusiveLock(ExclusiveLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ExclusiveLock& operator=(ExclusiveLock&& other) noexcept;
  ExclusiveLock(const ExclusiveLock&) = delete;
  ExclusiveLock& operator=(const ExclusiveLock&) = delete;
  ~ExclusiveLock();

 private:
  explicit ExclusiveLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace pkgcast::server
