// A response body sent straight from a file (router.h, Response::file): what an immutable chunk is answered with,
// so that its bytes go from the page cache to the socket without a copy through the handler (sendfile(2) on a
// plain connection; on TLS through one bounded buffer per connection).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "core/result.h"

namespace pkgcast::server {

// A regular file opened read-only, and its size when opened. The descriptor is closed with the object. Its bytes
// are expected not to change while it is open (the content store's files are immutable; a file that is unlinked
// meanwhile is still read whole, through the descriptor). A file that shrinks under a sender anyway ends that
// response early: the connection is closed, so the client sees the body incomplete.
//
// Thread safety: immutable after open(); fd() may be used (pread, sendfile) from any thread.
class OpenFile {
 public:
  // WBEM_E_NOT_FOUND when `file` does not exist (or is not a regular file), WBEM_E_FAILED for other errors.
  [[nodiscard]] static Result<std::shared_ptr<const OpenFile>> open(const std::filesystem::path& file);
  // Takes ownership of `fd`, a regular file opened for reading whose size is `size`.
  [[nodiscard]] static std::shared_ptr<const OpenFile> adopt(int fd, std::uint64_t size);
  ~OpenFile();
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;

  int fd() const { return fd_; }
  std::uint64_t size() const { return size_; }

 private:
  OpenFile(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  const int fd_;
  const std::uint64_t size_;
};

// `length` bytes of `file` from `offset` (offset + length <= file->size()).
struct FileBody {
  std::shared_ptr<const OpenFile> file;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

}  // namespace pkgcast::server
