// The Api: the server's own site on first start, then the resource routes.
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "core/strings.h"
#include "server/routes/content_collector.h"
#include "server/routes/internal.h"

namespace pkgcast::server {
namespace {

constexpr std::string_view kOwnSiteKey = "server/site_code";

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

class ApiImpl final : public Api {
 public:
  ApiImpl(store::Store& store, const ApiOptions& options)
      : ctx_{store,
             site::Domain(store, options.site_code, options.server_name),
             provider::Provider(store, options.site_code, options.server_name, options.query_limits),
             options,
             {},
             nullptr,
             nullptr,
             nullptr,
             nullptr,
             {}},
        walker_(std::make_shared<site::SourceWalker>(options.source_walker)) {
    ctx_.domain.set_source_policy(site::SourcePolicy(options.source_roots, walker_));
  }

  void register_routes(Router& router) override {
    routes::register_query(router, ctx_);
    routes::register_events(router, ctx_);
    routes::register_sites(router, ctx_);
    routes::register_dps(router, ctx_);
    routes::register_groups(router, ctx_);
    routes::register_packages(router, ctx_);
    routes::register_programs(router, ctx_);
    routes::register_advertisements(router, ctx_);
    routes::register_tokens(router, ctx_);
    routes::register_distribution(router, ctx_);
    routes::register_dp_agent(router, ctx_);
    routes::register_content(router, ctx_);
    routes::register_admin(router, ctx_);
  }

  void on_token_revoked(TokenRevokedListener listener) override {
    ctx_.revocation_listeners.push_back(std::move(listener));
  }

  // The content library and the Distribution Manager; the manager's scheduler starts with the server.
  Status start_distribution() {
    const ApiOptions& o = ctx_.options;
    if (!o.content_library.empty()) {
      PKG_ASSIGN_OR_RETURN(ctx_.library, content::Library::open(o.content_library));
      content::Library* library = ctx_.library.get();
      ctx_.domain.set_source_ingest(
          [library](const std::filesystem::path& dir,
                    std::chrono::steady_clock::time_point deadline) -> Result<site::SourceContent> {
            content::IngestOptions options;
            options.deadline = deadline;
            // A `package create --source` waits for its ingest: it uses the machine's cores, up to four of them.
            options.threads = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 4);
            PKG_ASSIGN_OR_RETURN(content::IngestResult r, library->ingest(dir, options));
            site::SourceContent c;
            c.manifest_hash = r.manifest_id.hex();
            c.size = r.source_bytes;
            c.compressed_size = r.compressed_bytes;
            c.source_date = r.manifest.source_date;
            return c;
          },
          o.source_ingest_timeout);
    }
    distmgr::DistOptions d = o.distribution;
    d.clock = o.clock;
    ctx_.distribution = std::make_unique<distmgr::DistributionManager>(ctx_.store, ctx_.domain, d);
    ctx_.distribution->start();
    if (ctx_.library) {
      // Longer than an ingest may run: an ingest's chunks are stored before any record names them.
      const auto grace = o.source_ingest_timeout + std::chrono::seconds(3600);
      collector_ = std::make_unique<routes::ContentCollector>(*ctx_.library, *ctx_.distribution,
                                                              o.content_gc_interval, grace);
    }
    return ok_status();
  }

  Status start_events() {
    PKG_ASSIGN_OR_RETURN(ctx_.events, provider::EventEngine::create(ctx_.store, ctx_.provider, ctx_.options.events));
    ctx_.heartbeats = std::make_shared<routes::HeartbeatTicker>(ctx_.options.event_heartbeat);
    return ok_status();
  }

  Status ensure_own_site() {
    const ApiOptions& o = ctx_.options;
    PKG_ASSIGN_OR_RETURN(auto recorded, ctx_.store.get_meta(kOwnSiteKey));
    if (recorded) {
      if (!iequals(*recorded, o.site_code)) {
        return make_error(WbemCode::kInvalidParameter, "this database belongs to site " + *recorded +
                                                           "; the server was started with site code " + o.site_code);
      }
      // A database an older pkgcast wrote gets the rows and values added since (once).
      PKG_TRY(ctx_.domain.upgrade_rows());
      return ensure_provider_location();
    }
    auto type = site::parse_site_type(o.site_type);
    if (!type || *type == site::SiteType::kSecondary) {
      return make_error(WbemCode::kInvalidParameter,
                        "a server's own site must be primary or central, not '" + o.site_type + "'");
    }
    auto existing = ctx_.domain.get_site(o.site_code);
    if (!existing.ok()) {
      if (existing.error().code != WbemCode::kNotFound) return std::move(existing).error();
      site::SiteSpec spec;
      spec.code = o.site_code;
      spec.name = o.site_name.empty() ? "Site " + to_upper(o.site_code) : o.site_name;
      spec.type = *type;
      spec.server_name = o.server_name;
      PKG_TRY(ctx_.domain.create_site(spec));
    }
    PKG_TRY(ctx_.domain.upgrade_rows());
    const std::string code = to_upper(o.site_code);
    PKG_TRY(ctx_.store.execute([&](store::WriteTxn& txn) { return txn.put_meta(kOwnSiteKey, code); }));
    return ensure_provider_location();
  }

  // The SMS_ProviderLocation row scripts read in root\sms to find this site's namespace, put on every start so that
  // it follows the host's name (the store journals nothing when it is as it was).
  Status ensure_provider_location() {
    PKG_ASSIGN_OR_RETURN(const cim::ClassDef* found, ctx_.store.registry().get("SMS_ProviderLocation"));
    const cim::ClassDef& cls = *found;
    const std::string code = to_upper(ctx_.options.site_code);
    cim::Instance row(cls);
    PKG_TRY(row.set("SiteCode", cim::Value::string(code)));
    PKG_TRY(row.set("Machine", cim::Value::string(ctx_.options.server_name)));
    PKG_TRY(row.set("NamespacePath", cim::Value::string("\\\\" + ctx_.options.server_name + "\\" +
                                                          provider::namespace_for_site(code))));
    PKG_TRY(row.set("ProviderForLocalSite", cim::Value::boolean(true)));
    PKG_TRY(ctx_.store.execute([&](store::WriteTxn& txn) { return txn.put(row); }));
    return ok_status();
  }

 private:
  routes::ApiContext ctx_;
  std::shared_ptr<site::SourceWalker> walker_;
  std::unique_ptr<routes::ContentCollector> collector_;  // stops before the library it collects goes
};

}  // namespace

Result<std::unique_ptr<Api>> Api::create(store::Store& store, const ApiOptions& options) {
  ApiOptions o = options;
  if (o.server_name.empty()) o.server_name = host_name();
  auto impl = std::make_unique<ApiImpl>(store, o);
  PKG_TRY(impl->ensure_own_site());
  PKG_TRY(impl->start_events());
  PKG_TRY(impl->start_distribution());
  return std::unique_ptr<Api>(std::move(impl));
}

Result<std::optional<std::string>> Api::recorded_site_code(store::Store& store) {
  return store.get_meta(kOwnSiteKey);
}

}  // namespace pkgcast::server
