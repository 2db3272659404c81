// The routes the server core owns, beside the /api/v1 resources of server/routes:
//   GET /api/v1/health  public: {"status":"ok","site":"ABC","version":"0.1.0","revision":N}; 503 while stopping
//                       or when the store cannot be read.
//   GET /metrics        Prometheus text. Public when the server listens on a loopback address (only local
//                       processes can reach it); otherwise it needs a token with read access.
//   GET /, GET /<file>  the dashboard's static files (a fallback handler, see static_files.h).
// Each is answered to HEAD as well (the router matches HEAD to GET routes, the fallback takes GET and HEAD); the
// connection sends the headers only.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "server/metrics.h"
#include "server/router.h"

namespace pkgcast::server {

struct BuiltinRoutesOptions {
  std::string site_code;
  // The store's last journal revision; called per health request from a worker thread.
  std::function<Result<std::uint64_t>()> last_revision;
  // True once the server is stopping (health then answers 503 WBEM_E_SHUTTING_DOWN).
  std::function<bool()> stopping;
  // A read of the database (not of the server's memory), so that health answers 503 while the database cannot be
  // read. Run by one health request at a time, at most once a second; the others take its last answer, and while
  // one has run for more than probe_patience, health answers 503 without waiting for it.
  std::function<Status()> store_probe;
  std::chrono::milliseconds probe_patience{5000};
  Metrics* metrics = nullptr;  // must outlive the router
  bool metrics_public = true;
};

void add_builtin_routes(Router& router, BuiltinRoutesOptions options);

// The fallback handler serving `web_root` (empty: no dashboard installed -> 404 saying so).
Handler static_files_handler(std::filesystem::path web_root);

// True for "127.0.0.1" (any 127/8 address), "::1" and "localhost".
bool is_loopback_host(std::string_view host);

}  // namespace pkgcast::server
