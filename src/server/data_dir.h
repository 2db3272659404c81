// The server's data directory and the files it writes there (admin.token, the port file): private, and replaced
// atomically so a reader never sees half a file and a crash never leaves one.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>

#include "core/result.h"

namespace pkgcast::server {

// Creates `dir` and its missing parents; a directory this call creates gets mode 0700 (tokens and the database
// live there). An existing directory is left as it is. WBEM_E_INVALID_PARAMETER when `dir` exists and is not a
// directory; WBEM_E_FAILED when it cannot be created.
Status ensure_private_dir(const std::filesystem::path& dir);

// Writes `content` to `path` with `mode`: a temporary file in the same directory, fsync, rename over `path`, fsync
// of the directory. On failure `path` is unchanged and no temporary file remains.
Status write_file_atomically(const std::filesystem::path& path, std::string_view content, mode_t mode);

// The whole file, or WBEM_E_NOT_FOUND when it does not exist.
Result<std::string> read_small_file(const std::filesystem::path& path);

}  // namespace pkgcast::server
