#include "server/data_dir.h"

#include <sys/stat.h>

#include <cerrno>
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

}  // namespace pkgcast::server
