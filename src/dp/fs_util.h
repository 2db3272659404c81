// Small POSIX file helpers for the agent: errno turned into Errors (ENOSPC is WBEM_E_OUT_OF_DISK_SPACE), an owned
// file descriptor, fsync of directories, and the write-fault hook through which tests inject ENOSPC.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace pkgcast::dp {

// Test hook, called before every write of content bytes under the data directory (partial chunk downloads and
// staged files) with the file's path; a non-zero errno it returns fails that write as if write(2) had.
// Production passes an empty function.
using WriteFault = std::function<int(const std::filesystem::path&)>;

// "cannot <what> '<path>': <strerror>", with the WBEM code for errno (ENOSPC/EDQUOT: WBEM_E_OUT_OF_DISK_SPACE).
Error io_error(std::string_view what, const std::filesystem::path& path, int err);

// An owned file descriptor (-1: none). Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset();

 private:
  int fd_ = -1;
};

// Writes all of `data` to `fd` (retrying EINTR and short writes), after consulting `fault` for `path`.
Status write_all(int fd, std::span<const std::uint8_t> data, const std::filesystem::path& path,
                 const WriteFault& fault);

// As write_all, at `offset` (pwrite: the file position is not used, so workers may write one file together).
Status pwrite_all(int fd, std::span<const std::uint8_t> data, std::uint64_t offset, const std::filesystem::path& path,
                  const WriteFault& fault);

// Opens a directory (O_DIRECTORY|O_NOFOLLOW) and fsyncs it.
Status fsync_dir(const std::filesystem::path& dir);

// Creates `dir` and its parents (mode 0755) when missing.
Status ensure_dir(const std::filesystem::path& dir);

// Takes `<dir>/lock` (flock, exclusive) for as long as the returned descriptor is open, and writes this process's
// id into it. Another process holding it is WBEM_E_INVALID_OPERATION naming its id: two agents working on one data
// directory would stage, rename and delete under each other.
Result<Fd> lock_data_dir(const std::filesystem::path& dir);

// Removes a tree; absent is not an error. Never follows symlinks (std::filesystem::remove_all does not).
Status remove_tree(const std::filesystem::path& path);

// Moves `path` into `trash_dir` under a unique name (one rename, atomic), fsyncs both directories, then deletes it
// there. A crash after the rename leaves it in the trash, which the agent empties at start.
Status trash_and_delete(const std::filesystem::path& path, const std::filesystem::path& trash_dir);

}  // namespace pkgcast::dp
