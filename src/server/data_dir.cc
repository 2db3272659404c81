#include "server/data_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace pkgcast::server {
namespace fs = std::filesystem;
namespace {

Error os_error(const std::string& what, const fs::path& path, int err) {
  return make_error(WbemCode::kFailed, what + " '" + path.string() + "': " + std::strerror(err));
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

Status write_file_atomically(const fs::path& path, std::string_view content, mode_t mode) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return os_error("cannot create a temporary file in", dir, errno);
  const fs::path tmp = tmpl;
  auto fail = [&](const std::string& what, const fs::path& p) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return os_error(what, p, err);
  };
  if (::fchmod(fd, mode) != 0) return fail("cannot set mode of", tmp);
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write", tmp);
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot fsync", tmp);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return os_error("cannot close", tmp, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return os_error("cannot rename into", path, err);
  }
  // The rename is durable only once the directory entry is.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd < 0) return os_error("cannot open directory", dir, errno);
  const int rc = ::fsync(dir_fd);
  const int err = errno;
  ::close(dir_fd);
  if (rc != 0) return os_error("cannot fsync directory", dir, err);
  return ok_status();
}

Result<std::string> read_small_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return make_error(WbemCode::kNotFound, "no file '" + path.string() + "'");
    return make_error(WbemCode::kFailed, "cannot read '" + path.string() + "'");
  }
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace pkgcast::server
