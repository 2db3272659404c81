// Shared by the resource files of src/server/routes: the objects every handler uses, strict JSON body reading,
// site-limit checks and response helpers. Internal to pkgcast_routes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cim/cim.h"
#include "content/content.h"
#include "distmgr/distmgr.h"
#include "core/mutex.h"
#include "provider/events.h"
#include "provider/provider.h"
#include "server/router.h"
#include "server/routes/api.h"
#include "site/site.h"

namespace pkgcast::server::routes {

inline constexpr std::string_view kPrefix = "/api/v1";

struct WakeTarget;

// Wakes every open event stream once per period, so that an idle stream sends its heartbeat comment (events.cc).
// One thread for all streams; a stream that ended drops out at the next tick.
class HeartbeatTicker {
 public:
  explicit HeartbeatTicker(std::chrono::milliseconds heartbeat);
  ~HeartbeatTicker();
  HeartbeatTicker(const HeartbeatTicker&) = delete;
  HeartbeatTicker& operator=(const HeartbeatTicker&) = delete;

  void add(std::weak_ptr<WakeTarget> target) PKG_EXCLUDES(mu_);
  std::size_t size() const PKG_EXCLUDES(mu_);  // streams registered (some may have ended since the last tick)

 private:
  void run() PKG_EXCLUDES(mu_);

  const std::chrono::milliseconds period_;  // between ticks: a tenth of the heartbeat
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<std::weak_ptr<WakeTarget>> targets_ PKG_GUARDED_BY(mu_);
  bool stop_ PKG_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// When each DP's agent last reached the server (its job list, job stream or a status message), written to
// SMS_DistributionPointInfo.LastContactTime at most once a minute per DP: a DP's row is not rewritten (and no event
// sent) for every progress report. One entry per DP that called; DPs are created by administrators.
class DpContacts {
 public:
  static constexpr std::chrono::seconds kEvery{60};
  // True when `dp_name`'s contact is due to be written now (and marks it written).
  bool due(const std::string& dp_name) PKG_EXCLUDES(mu_);

 private:
  Mutex mu_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> written_ PKG_GUARDED_BY(mu_);
};

struct ApiContext {
  store::Store& store;
  site::Domain domain;
  provider::Provider provider;
  ApiOptions options;
  // Called (on a worker thread) with the public id of each token revoked through the API, after the revocation
  // committed: DELETE /tokens/{id}, and the tokens of a DP removed by DELETE /dps/{name}. Filled by
  // Api::on_token_revoked before the routes serve; read-only afterwards.
  std::vector<TokenRevokedListener> revocation_listeners;
  // Event subscriptions (GET /events): the engine and the heartbeat of idle streams. Set by Api::create.
  std::unique_ptr<provider::EventEngine> events;
  std::shared_ptr<HeartbeatTicker> heartbeats;
  // The content library (null when ApiOptions::content_library is empty) and the Distribution Manager. Set by
  // Api::create.
  std::unique_ptr<content::Library> library;
  std::unique_ptr<distmgr::DistributionManager> distribution;
  DpContacts dp_contacts;
};

// An event stream (text/event-stream, docs/events.md) of `query` in namespace `ns` ("" = the server's own) as
// `caller` may see it, resuming from the request's `since` or Last-Event-ID (events.cc). 410 for a resume the
// journal can no longer serve. For HEAD, the same checks and headers without a subscription.
Result<Response> open_event_stream(ApiContext& ctx, const Request& req, std::string_view ns, std::string_view query,
                                   const site::TokenRecord& caller);

void register_distribution(Router& router, ApiContext& ctx);  // distribution.cc
void register_dp_agent(Router& router, ApiContext& ctx);      // dp_agent.cc
void register_content(Router& router, ApiContext& ctx);       // content.cc
void register_admin(Router& router, ApiContext& ctx);         // admin.cc

// Tells every revocation listener that `token_id` is revoked (tokens.cc).
void notify_token_revoked(ApiContext& ctx, const std::string& token_id);

// ---- request bodies (body.cc) ---------------------------------------------------------------------------------

// A JSON object body, read strictly: each field is taken at most once by name and type; finish() refuses any
// member nobody asked for. Errors are WBEM_E_INVALID_PARAMETER naming the field.
class Body {
 public:
  // Malformed JSON -> "malformed JSON at byte N"; anything but an object -> "the body must be a JSON object".
  // An empty body reads as {} when `empty_ok`.
  static Result<Body> parse(std::string_view text, bool empty_ok = false);

  Result<std::optional<std::string>> string(std::string_view name);
  Result<std::string> required_string(std::string_view name);
  Result<std::optional<bool>> boolean(std::string_view name);
  Result<std::optional<std::uint32_t>> uint32(std::string_view name);
  Result<std::optional<std::vector<std::string>>> strings(std::string_view name);
  // A string or an unsigned integer, for fields that take a name or a number (offer_type).
  Result<std::optional<nlohmann::json>> raw(std::string_view name);
  Status finish() const;

 private:
  nlohmann::json json_;
  std::vector<std::string> taken_;
  const nlohmann::json* take(std::string_view name);
};

// ---- access ---------------------------------------------------------------------------------------------------

// The caller of a request that passed the router's role check. Routes are registered with Access above kPublic, so
// the server has authenticated the caller before the handler runs.
const site::TokenRecord& caller_of(const Request& req);
// WBEM_E_ACCESS_DENIED unless the caller's site limit admits `site_code`.
Status require_site(const Request& req, std::string_view site_code);
// Whether the caller may see the instance, by the provider's scoping rule (provider.h).
bool visible(const Request& req, const cim::Instance& inst);
bool visible(const site::TokenRecord& caller, const cim::Instance& inst);
// For an existing object placed on `site` (NULL or absent: no site): ok when the caller's site limit admits it,
// else WBEM_E_NOT_FOUND with `absent_message`, which must be the domain's wording for an absent object, so that
// a site-limited token cannot tell an object outside its sites from one that does not exist (403 would).
Status require_visible(const Request& req, const cim::Value* site, std::string absent_message);
// For the package-scoped resources: the package, when it exists and the caller may act on it; 404 otherwise.
Result<cim::Instance> visible_package(ApiContext& ctx, const Request& req, std::string_view package_id);

// ---- responses ------------------------------------------------------------------------------------------------

Response json_body(unsigned status, const nlohmann::ordered_json& j);
Response instance_body(unsigned status, const cim::Instance& inst);
// A JSON array of the instances the caller may see.
Response instance_list(const Request& req, const std::vector<cim::Instance>& instances);
// The same array for every instance of `cls` that `filter` admits, streamed: read page by page in key order on the
// server's stream producers, holding one page of rows and no database connection between pages, so a list of any
// length costs a stream's bounded buffer (and counts against the caller's stream quota) rather than its whole
// JSON. A store error after the first bytes ends the body incomplete (the connection closes).
// `write` appends one visible row's JSON (default: the instance as it is stored).
using RowWriter = std::function<Status(cim::Instance&& row, std::string& out)>;
Response streamed_list(store::Store& store, const Request& req, const cim::ClassDef& cls,
                       store::Predicate filter = store::Predicate::always(), RowWriter write = {});
// WBEM_E_INVALID_PARAMETER naming the first query parameter of the request not in `known`.
Status only_query_parameters(const Request& req, std::initializer_list<std::string_view> known);
Response error_body(const Error& e);

// Wraps a handler body that returns Result<Response>: an error becomes error_response().
Handler handler(std::function<Result<Response>(Request&)> body);

// ---- registration (one per resource file) ---------------------------------------------------------------------

void register_query(Router& router, ApiContext& ctx);
void register_events(Router& router, ApiContext& ctx);
void register_sites(Router& router, ApiContext& ctx);
void register_dps(Router& router, ApiContext& ctx);
void register_groups(Router& router, ApiContext& ctx);
void register_packages(Router& router, ApiContext& ctx);
void register_programs(Router& router, ApiContext& ctx);
void register_advertisements(Router& router, ApiContext& ctx);
void register_tokens(Router& router, ApiContext& ctx);

std::string path(std::string_view suffix);  // "/api/v1" + suffix

}  // namespace pkgcast::server::routes
