#include "server/builtin_routes.h"

#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "core/mutex.h"
#include "core/strings.h"
#include "server/http_server.h"
#include "server/static_files.h"

namespace pkgcast::server {

namespace {

// Health's read of the database, shared by every health request: at most one runs, at most once a second, so that
// health requests (public, and polled by every monitor) cost the database nothing more, and none waits on a
// database that does not answer.
class StoreProbe {
 public:
  StoreProbe(std::function<Status()> probe, std::chrono::milliseconds patience)
      : probe_(std::move(probe)), patience_(patience) {}

  Status check() {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point now = Clock::now();
    {
      MutexLock lock(mu_);
      if (running_since_) {
        if (now - *running_since_ <= patience_) return last_;
        const auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - *running_since_);
        return make_error(WbemCode::kFailed,
                          "the database has not answered for " + std::to_string(waited.count()) + " s");
      }
      if (checked_ && now - *checked_ < std::chrono::seconds(1)) return last_;
      running_since_ = now;
    }
    Status result = probe_();
    MutexLock lock(mu_);
    last_ = result;
    checked_ = Clock::now();
    running_since_.reset();
    return result;
  }

 private:
  const std::function<Status()> probe_;
  const std::chrono::milliseconds patience_;
  Mutex mu_;
  Status last_ PKG_GUARDED_BY(mu_);
  std::optional<std::chrono::steady_clock::time_point> checked_ PKG_GUARDED_BY(mu_);
  std::optional<std::chrono::steady_clock::time_point> running_since_ PKG_GUARDED_BY(mu_);
};

}  // namespace

void add_builtin_routes(Router& router, BuiltinRoutesOptions options) {
  auto shared = std::make_shared<const BuiltinRoutesOptions>(std::move(options));
  std::shared_ptr<StoreProbe> probe;
  if (shared->store_probe) probe = std::make_shared<StoreProbe>(shared->store_probe, shared->probe_patience);
  router.add("GET", "/api/v1/health", Access::kPublic, [shared, probe](Request&) {
    if (shared->stopping && shared->stopping()) {
      return error_response(make_error(WbemCode::kShuttingDown, "the server is shutting down"));
    }
    if (probe) {
      if (Status s = probe->check(); !s.ok()) {
        Response response = error_response(s.error());
        response.status = 503;  // unhealthy, whatever the store's error was
        return response;
      }
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
