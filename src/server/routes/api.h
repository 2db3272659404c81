// The resources of the HTTP API (design.md section 6): queries and every administrative verb. The server core
// creates one Api over the opened store and registers its routes; the Api owns the domain and provider objects.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "distmgr/distmgr.h"
#include "core/result.h"
#include "provider/events.h"
#include "provider/provider.h"
#include "server/router.h"
#include "site/source_walker.h"
#include "store/store.h"

namespace pkgcast::server {

struct ApiOptions {
  std::string site_code;              // the server's own site, created on first start
  std::string site_name;
  std::string site_type = "primary";  // "primary" or "central" ("secondary" is refused for a server's own site)
  std::string server_name;            // host name shown in __SERVER and SMS_Site.ServerName; "" = this host's name
  Clock* clock = &Clock::system();
  // Where package sources may come from (site::SourcePolicy); empty admits none. The walks run on a
  // site::SourceWalker of these options that the Api owns.
  std::vector<std::filesystem::path> source_roots;
  site::SourceWalkerOptions source_walker;
  // The content library (docs/content.md): package sources are ingested here and served to DP agents from here.
  // Empty: sources are only measured, and packages cannot be distributed.
  std::filesystem::path content_library;
  std::chrono::seconds source_ingest_timeout{3600};  // config source_ingest_timeout_seconds
  std::chrono::seconds content_gc_interval{3600};    // config content_gc_interval_seconds
  distmgr::DistOptions distribution;                  // the Distribution Manager's slots, retries and stall time
  provider::QueryLimits query_limits;  // per query: the query_max_* settings
  provider::EventOptions events;        // the event engine's bounds (max_subscriptions, queues)
  std::chrono::milliseconds event_heartbeat{15'000};  // an idle event stream sends a comment this often
};

// Told the public id (site::TokenRecord::id) of a token that was just revoked; the server ends that token's open
// streams with it. Runs on the worker thread that served the revocation: it must not block.
using TokenRevokedListener = std::function<void(const std::string& token_id)>;

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
  // Adds a listener told of each token revoked through the API (DELETE /api/v1/tokens/{id}, and a removed DP's
  // tokens). Call before the routes serve requests. Requests already fail at once (the token lookup sees the
  // revocation); this is for what outlives a request: open streams.
  virtual void on_token_revoked(TokenRevokedListener listener) = 0;
};

}  // namespace pkgcast::server
