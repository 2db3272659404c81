#include "server/builtin_routes.h"

#include <boost/asio/ip/address.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/strings.h"
#include "server/http_server.h"
#include "server/static_files.h"

namespace pkgcast::server {

void add_builtin_routes(Router& router, BuiltinRoutesOptions options) {
  auto shared = std::make_shared<const BuiltinRoutesOptions>(std::move(options));
  router.add("GET", "/api/v1/health", Access::kPublic, [shared](Request&) {
    if (shared->stopping && shared->stopping()) {
      return error_response(make_error(WbemCode::kShuttingDown, "the server is shutting down"));
    }
    std::uint64_t revision = 0;
    if (shared->last_revision) {
      auto r = shared->last_revision();
      if (!r.ok()) {
        Response response = error_response(r.error());
        response.status = 503;  // unhealthy, whatever the store's error was
        return response;
      }
      revision = *r;
    }
    nlohmann::ordered_json body = {{"status", "ok"},
                                   {"site", shared->site_code},
                                   {"version", pkgcast_version()},
                                   {"revision", revision}};
    return Response::json(200, body.dump());
  });
  if (shared->metrics != nullptr) {
    router.add("GET", "/metrics", shared->metrics_public ? Access::kPublic : Access::kRead, [shared](Request&) {
      Response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = shared->metrics->render();
      return r;
    });
  }
}

Handler static_files_handler(std::filesystem::path web_root) {
  return [root = std::move(web_root)](Request& request) { return serve_static(root, request); };
}

bool is_loopback_host(std::string_view host) {
  if (iequals(host, "localhost")) return true;
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(std::string(host), ec);
  return !ec && address.is_loopback();
}

}  // namespace pkgcast::server
