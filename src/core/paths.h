// Where pkgcast keeps its files, and how it writes them.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace pkgcast {

// Writes `contents` to `path` so that a crash at any moment leaves either the old file or the new one:
// a temporary file in the same directory, fsync, rename over `path`, fsync of the directory.
// `mode` applies to the new file from its creation (0600 for secrets).
Status write_file_atomic(const std::string& path, std::string_view contents, unsigned mode = 0644);

// The whole file; WBEM_E_NOT_FOUND when it does not exist.
Result<std::string> read_file(const std::string& path);

}  // namespace pkgcast
