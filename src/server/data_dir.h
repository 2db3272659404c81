// The server's data directory: private (0700), because the database and admin.token live there. Files in it are
// written with core/paths.h's write_file_atomic.
#pragma once

#include <filesystem>
#include <string_view>

#include "core/result.h"

namespace pkgcast::server {

// Creates `dir` and its missing parents; a directory this call creates gets mode 0700 (tokens and the database
// live there). An existing directory is left as it is. WBEM_E_INVALID_PARAMETER when `dir` exists and is not a
// directory; WBEM_E_FAILED when it cannot be created.
Status ensure_private_dir(const std::filesystem::path& dir);

}  // namespace pkgcast::server
