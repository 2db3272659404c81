// The dashboard's static files, served from a web root directory (web/ in the source tree, or the installed copy).
// Only regular files under the root are served: no listings, no dot-files, no ".." or absolute segments (checked
// after percent-decoding, so %2e%2e is the same ".."), and no symlink that leads out of the root.
#pragma once

#include <filesystem>
#include <string_view>

#include "core/result.h"
#include "server/router.h"

namespace pkgcast::server {

// The file a decoded request path names under `root` ("/" and directories mean their index.html).
// WBEM_E_INVALID_PARAMETER for a path that tries to leave the root or names a dot-file; WBEM_E_NOT_FOUND when
// there is no such regular file.
Result<std::filesystem::path> resolve_static_path(const std::filesystem::path& root, std::string_view request_path);

// "text/html; charset=utf-8" for index.html, ...; "application/octet-stream" when the extension is unknown.
std::string_view content_type_for(const std::filesystem::path& file);

// A GET of a static file: 200 with the file, or the error response (400, 404) of resolve_static_path.
// `root` empty means no dashboard is installed: 404 saying so.
Response serve_static(const std::filesystem::path& root, const Request& request);

}  // namespace pkgcast::server
