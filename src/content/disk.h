// Small POSIX file helpers for the content library: errors that name the file, an owned descriptor, durable
// directory entries. Internal to src/content.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "core/result.h"

namespace pkgcast::content {

// errno as a WBEM error naming the file: ENOSPC -> WBEM_E_OUT_OF_DISK_SPACE, EACCES/EPERM -> ACCESS_DENIED,
// ENOENT -> NOT_FOUND, anything else WBEM_E_FAILED.
Error io_error(std::string_view what, const std::filesystem::path& path, int err);

// A file descriptor closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Creates `dir` with mode 0700 when it does not exist (its parent must).
Status make_private_dir(const std::filesystem::path& dir);
// Makes the directory's entries (a rename, a create, an unlink) durable.
Status fsync_dir(const std::filesystem::path& dir);
Status write_all(int fd, const void* data, std::size_t size, const std::filesystem::path& path);
// Reads the whole file; at most `max_size` bytes (WBEM_E_QUOTA_VIOLATION past it); NOT_FOUND when absent.
Result<std::string> read_whole_file(const std::filesystem::path& path, std::size_t max_size);
// Writes `contents` to `path` atomically with mode 0600 (temporary file, fsync, rename, fsync of the directory).
Status write_private_file_atomic(const std::filesystem::path& path, std::string_view contents);

}  // namespace pkgcast::content
