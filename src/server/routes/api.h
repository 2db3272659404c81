// The resources of the HTTP API (design.md section 6): queries and every administrative verb. The server core
// creates one Api over the opened store and registers its routes; the Api owns the domain and provider objects.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/result.h"
#include "provider/provider.h"
#include "server/router.h"
#include "store/store.h"

namespace pkgcast::server {

struct ApiOptions {
  std::string site_code;              // the server's own site, created on first start
  std::string site_name;
  std::string site_type = "primary";  // "primary" or "central" ("secondary" is refused for a server's own site)
  std::string server_name;            // host name shown in __SERVER and SMS_Site.ServerName; "" = this host's name
  Clock* clock = &Clock::system();
  provider::QueryLimits query_limits;  // per query: query_max_rows_evaluated, query_max_seconds
};

class Api {
 public:
  virtual ~Api() = default;
  // Creates the server's own site when the database has none yet; refuses a site code that differs from the one
  // the database was created with (WBEM_E_INVALID_PARAMETER).
  static Result<std::unique_ptr<Api>> create(store::Store& store, const ApiOptions& options);
  // The site code this database was created with, nullopt for a database no Api has opened yet.
  static Result<std::optional<std::string>> recorded_site_code(store::Store& store);
  // Registers every /api/v1 resource route (not /api/v1/health, /metrics or the dashboard: the server core owns
  // those). The Api must outlive the router.
  virtual void register_routes(Router& router) = 0;
};

}  // namespace pkgcast::server
