#include "server/static_files.h"

#include <array>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>

#include "core/strings.h"

namespace pkgcast::server {
namespace fs = std::filesystem;
namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 17> kContentTypes{{
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".ico", "image/x-icon"},
    {".woff", "font/woff"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".wasm", "application/wasm"},
}};

Error refused(std::string_view path) {
  return make_error(WbemCode::kInvalidParameter, "refused static path '" + std::string(path) +
                                                     "': it must stay inside the web root (no '..', '.', empty or "
                                                     "dot-file segments, no backslashes)");
}

// True when `inner` is `outer` or lies below it; both canonical.
bool is_within(const fs::path& outer, const fs::path& inner) {
  auto o = outer.begin();
  auto i = inner.begin();
  for (; o != outer.end(); ++o, ++i) {
    if (i == inner.end() || *o != *i) return false;
  }
  return true;
}

}  // namespace

Result<fs::path> resolve_static_path(const fs::path& root, std::string_view request_path) {
  if (request_path.empty() || request_path.front() != '/') return refused(request_path);
  fs::path relative;
  std::string_view rest = request_path.substr(1);
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    // An empty segment ("//etc") could make the joined path absolute; a dot-segment could climb; a backslash
    // or NUL means something else to some other layer. None names a dashboard file.
    if (segment.empty() || segment.front() == '.' ||
        segment.find_first_of(std::string_view("\\\0", 2)) != std::string_view::npos) {
      return refused(request_path);
    }
    relative /= fs::path(std::string(segment));
  }
  std::error_code ec;
  const fs::path canonical_root = fs::canonical(root, ec);
  if (ec) return make_error(WbemCode::kNotFound, "web root '" + root.string() + "' does not exist");
  fs::path file = canonical_root / relative;
  if (fs::is_directory(file, ec)) {
    file /= "index.html";
  } else if (request_path.size() > 1 && request_path.back() == '/') {
    // "/app.js/" names a directory that is not there; serving the file would give a page whose relative links
    // resolve under it.
    return make_error(WbemCode::kNotFound, "no such file: " + std::string(request_path));
  }
  // Resolves symlinks: a link inside the root pointing outside it is refused like "..".
  const fs::path resolved = fs::canonical(file, ec);
  if (ec) return make_error(WbemCode::kNotFound, "no such file: " + std::string(request_path));
  if (!is_within(canonical_root, resolved)) return refused(request_path);
  if (!fs::is_regular_file(resolved, ec)) {
    return make_error(WbemCode::kNotFound, "no such file: " + std::string(request_path));
  }
  return resolved;
}

std::string_view content_type_for(const fs::path& file) {
  const std::string ext = to_lower(file.extension().string());
  for (const auto& [e, type] : kContentTypes) {
    if (e == ext) return type;
  }
  return "application/octet-stream";
}

Response serve_static(const fs::path& root, const Request& request) {
  if (root.empty()) {
    return error_response(make_error(WbemCode::kNotFound,
                                     "the dashboard is not installed (no web directory found; set web_dir)"));
  }
  auto file = resolve_static_path(root, request.path);
  if (!file.ok()) {
    if (file.error().code == WbemCode::kNotFound && (request.path == "/" || request.path == "/index.html")) {
      return error_response(make_error(WbemCode::kNotFound, "the dashboard is not installed: " +
                                                                (root / "index.html").string() + " not found"));
    }
    return error_response(file.error());
  }
  std::ifstream in(*file, std::ios::binary);
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return error_response(make_error(WbemCode::kFailed, "cannot read " + file->string()));
  }
  Response r;
  r.status = 200;
  r.content_type = std::string(content_type_for(*file));
  r.body = std::move(body);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // The dashboard loads nothing but its own files and talks to nothing but this server; no other site may frame it
  // (a page that holds a token must not be clickjacked) or learn its URLs through Referer.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  // index.html names the other files; it must be revalidated so a new dashboard is picked up.
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

}  // namespace pkgcast::server
