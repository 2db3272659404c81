#include "content/disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pkgcast::content {

Error io_error(std::string_view what, const std::filesystem::path& path, int err) {
  const WbemCode code = err == ENOSPC || err == EDQUOT  ? WbemCode::kOutOfDiskSpace
                        : err == EACCES || err == EPERM ? WbemCode::kAccessDenied
                        : err == ENOENT                 ? WbemCode::kNotFound
                                                        : WbemCode::kFailed;
  return make_error(code, std::string(what) + " '" + path.string() + "': " + std::strerror(err));
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status make_private_dir(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return ok_status();
  return io_error("cannot create the directory", dir, errno);
}

Status fsync_dir(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return io_error("cannot open the directory", dir, errno);
  if (::fsync(fd.get()) != 0) return io_error("cannot fsync the directory", dir, errno);
  return ok_status();
}

Status write_all(int fd, const void* data, std::size_t size, const std::filesystem::path& path) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write", path, errno);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return ok_status();
}

Result<std::string> read_whole_file(const std::filesystem::path& path, std::size_t max_size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return io_error("cannot open", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) return make_error(WbemCode::kFailed, "not a regular file: '" + path.string() + "'");
  if (static_cast<std::uint64_t>(st.st_size) > max_size) {
    return make_error(WbemCode::kQuotaViolation,
                      "'" + path.string() + "' is larger than " + std::to_string(max_size) + " bytes");
  }
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot read", path, errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

Status write_private_file_atomic(const std::filesystem::path& path, std::string_view contents) {
  std::string tmp = path.string() + ".tmp.XXXXXX";
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd.valid()) return io_error("cannot create a temporary file beside", path, errno);
  auto fail = [&](Error e) {
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd.get(), 0600) != 0) return fail(io_error("cannot set the mode of", tmp, errno));
  if (Status s = write_all(fd.get(), contents.data(), contents.size(), tmp); !s.ok()) return fail(s.error());
  if (::fsync(fd.get()) != 0) return fail(io_error("cannot fsync", tmp, errno));
  if (::close(fd.release()) != 0) return fail(io_error("cannot close", tmp, errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(io_error("cannot rename into", path, errno));
  return fsync_dir(path.parent_path());
}

}  // namespace pkgcast::content
