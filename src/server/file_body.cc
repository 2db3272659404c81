#include "server/file_body.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace pkgcast::server {

Result<std::shared_ptr<const OpenFile>> OpenFile::open(const std::filesystem::path& file) {
  int fd = -1;
  do {
    fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR || err == ELOOP) {
      return make_error(WbemCode::kNotFound, file.string() + " does not exist");
    }
    return make_error(WbemCode::kFailed, "open " + file.string() + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error(WbemCode::kFailed, "stat " + file.string() + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(WbemCode::kNotFound, file.string() + " is not a regular file");
  }
  // Not make_shared: the constructor is private.
  return std::shared_ptr<const OpenFile>(new OpenFile(fd, static_cast<std::uint64_t>(st.st_size)));
}

std::shared_ptr<const OpenFile> OpenFile::adopt(int fd, std::uint64_t size) {
  return std::shared_ptr<const OpenFile>(new OpenFile(fd, size));
}

OpenFile::~OpenFile() {
  ::close(fd_);
}

}  // namespace pkgcast::server
