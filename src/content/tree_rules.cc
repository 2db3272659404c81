#include "content/tree_rules.h"

#include <algorithm>
#include <string>

#include "core/strings.h"

namespace pkgcast::content {
namespace {

Error bad_path(std::string_view path, std::string_view why) {
  return make_error(WbemCode::kInvalidParameter, "invalid path '" + std::string(path) + "': " + std::string(why));
}

}  // namespace

Status check_entry_path(std::string_view path, const ManifestLimits& limits) {
  if (path.empty()) return bad_path(path, "empty");
  if (path.size() > limits.max_path_bytes) {
    return make_error(WbemCode::kQuotaViolation, "path of " + std::to_string(path.size()) +
                                                     " bytes is longer than the limit of " +
                                                     std::to_string(limits.max_path_bytes));
  }
  if (path.find('\0') != std::string_view::npos) return bad_path(path, "holds a NUL byte");
  if (path.find('\\') != std::string_view::npos) return bad_path(path, "holds a backslash");
  if (path.front() == '/') return bad_path(path, "absolute");
  if (!is_valid_utf8(path)) return bad_path(path, "not valid UTF-8");
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = path.find('/', start);
    const std::string_view part = path.substr(start, slash == std::string_view::npos ? path.npos : slash - start);
    if (part.empty()) return bad_path(path, "empty component");
    if (part == "." || part == "..") return bad_path(path, "'" + std::string(part) + "' component");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return ok_status();
}

std::size_t path_depth(std::string_view path) {
  return 1 + static_cast<std::size_t>(std::count(path.begin(), path.end(), '/'));
}

Status check_symlink_target(std::string_view link_path, std::string_view target, const ManifestLimits& limits) {
  auto bad = [&](std::string_view why) {
    return make_error(WbemCode::kInvalidParameter, "symbolic link '" + std::string(link_path) + "' -> '" +
                                                       std::string(target) + "': " + std::string(why));
  };
  if (target.empty()) return bad("empty target");
  if (target.size() > limits.max_path_bytes) return bad("target longer than the path limit");
  if (target.find('\0') != std::string_view::npos) return bad("target holds a NUL byte");
  if (target.front() == '/') return bad("absolute target");
  if (!is_valid_utf8(target)) return bad("target is not valid UTF-8");
  // Depth of the link's own directory: the components a leading ".." may climb.
  std::size_t depth = path_depth(link_path) - 1;
  bool named = false;  // a normal component was seen
  std::size_t start = 0;
  while (start <= target.size()) {
    const std::size_t slash = target.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? target.size() : slash;
    const std::string_view part = target.substr(start, end - start);
    if (part == "..") {
      if (named) return bad("'..' after a name (only leading '..' components are allowed)");
      if (depth == 0) return bad("points outside the tree");
      --depth;
    } else if (!part.empty() && part != ".") {
      named = true;
    }
    start = end + 1;
  }
  return ok_status();
}

Status check_chunking_params(const ChunkingParams& p) {
  const bool pow2 = p.avg_size != 0 && (p.avg_size & (p.avg_size - 1)) == 0;
  if (p.min_size < 64 || p.min_size > p.avg_size || p.avg_size > p.max_size || p.max_size > kMaxChunkSize || !pow2) {
    return make_error(WbemCode::kInvalidParameter, "invalid chunking parameters min " + std::to_string(p.min_size) +
                                                       ", avg " + std::to_string(p.avg_size) + ", max " +
                                                       std::to_string(p.max_size) +
                                                       " (64 <= min <= avg <= max <= 64 MiB, avg a power of two)");
  }
  return ok_status();
}

}  // namespace pkgcast::content
