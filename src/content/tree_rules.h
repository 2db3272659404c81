// Rules a content tree obeys, shared by the manifest parser (which refuses a manifest that breaks them) and the
// ingest (which refuses a source tree that would). Internal to src/content.
#pragma once

#include <string_view>

#include "content/content.h"

namespace pkgcast::content {

// A symbolic link's target: non-empty, relative, no NUL, valid UTF-8, and resolving inside the tree when read
// lexically from the directory holding `link_path` ("" and "." components are skipped, ".." climbs). A ".." may
// only lead the target: after a name it would climb out of whatever that name is, and the name may itself be a
// link, so lexical reading could not vouch for it. WBEM_E_INVALID_PARAMETER naming the link otherwise.
Status check_symlink_target(std::string_view link_path, std::string_view target, const ManifestLimits& limits);

// Chunking parameters a chunker and a reader accept: 64 <= min <= avg <= max <= kMaxChunkSize, avg a power of
// two. WBEM_E_INVALID_PARAMETER otherwise.
inline constexpr std::uint32_t kMaxChunkSize = 64u * 1024 * 1024;
Status check_chunking_params(const ChunkingParams& params);

// Number of '/'-separated components of a checked entry path.
std::size_t path_depth(std::string_view path);

}  // namespace pkgcast::content
