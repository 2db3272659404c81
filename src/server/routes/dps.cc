// /api/v1/dps: distribution points. The DP's JSON is its SMS_DistributionPointInfo instance with the agent URL
// added as "url"; the POST answer also carries the DP's token, shown this once.
#include "core/strings.h"
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

nlohmann::ordered_json dp_json(const site::DpView& view) {
  nlohmann::ordered_json j = cim::to_json(view.dp);
  j["url"] = view.url;
  return j;
}

Result<Response> post_dp(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  site::DpSpec spec;
  PKG_ASSIGN_OR_RETURN(spec.name, body.required_string("name"));
  PKG_ASSIGN_OR_RETURN(spec.site_code, body.required_string("site"));
  PKG_ASSIGN_OR_RETURN(auto url, body.string("url"));
  PKG_ASSIGN_OR_RETURN(auto description, body.string("description"));
  PKG_ASSIGN_OR_RETURN(auto pull, body.boolean("pull"));
  PKG_ASSIGN_OR_RETURN(auto sources, body.strings("source_dps"));
  PKG_ASSIGN_OR_RETURN(auto rate, body.uint32("transfer_rate"));
  PKG_ASSIGN_OR_RETURN(auto window, body.string("transfer_window"));
  PKG_TRY(body.finish());
  spec.transfer_window = window.value_or("");
  spec.url = url.value_or("");
  spec.description = description.value_or("");
  spec.pull = pull.value_or(false);
  spec.source_dps = sources.value_or(std::vector<std::string>{});
  spec.transfer_rate = rate.value_or(0);
  PKG_TRY(require_site(req, spec.site_code));
  PKG_ASSIGN_OR_RETURN(site::CreatedDp created, ctx.domain.create_dp(spec));
  nlohmann::ordered_json j = dp_json(site::DpView{created.dp, created.url});
  j["token"] = created.token;
  return json_body(201, j);
}

Result<site::DpView> visible_dp(ApiContext& ctx, Request& req) {
  const std::string& name = req.params.at("name");
  PKG_ASSIGN_OR_RETURN(site::DpView view, ctx.domain.get_dp(name));
  PKG_TRY(require_visible(req, view.dp.find("SiteCode"), "DP '" + name + "' does not exist"));
  return view;
}

}  // namespace

void register_dps(Router& router, ApiContext& ctx) {
  router.add("GET", path("/dps"), Access::kRead, handler([&ctx](Request& req) -> Result<Response> {
               PKG_TRY(only_query_parameters(req, {}));
               PKG_ASSIGN_OR_RETURN(const cim::ClassDef* cls, ctx.store.registry().get("SMS_DistributionPointInfo"));
               // Each DP with its agent's URL, streamed as the other lists are.
               return streamed_list(ctx.store, req, *cls, store::Predicate::always(),
                                    [&ctx](cim::Instance&& dp, std::string& out) -> Status {
                                      PKG_ASSIGN_OR_RETURN(site::DpView view, ctx.domain.dp_view(std::move(dp)));
                                      out += dp_json(view).dump(-1, ' ', false,
                                                                nlohmann::ordered_json::error_handler_t::replace);
                                      return ok_status();
                                    });
             }));
  router.add("POST", path("/dps"), Access::kFullAdmin, handler([&ctx](Request& req) { return post_dp(ctx, req); }));
  router.add("GET", path("/dps/{name}"), Access::kRead, handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(site::DpView view, visible_dp(ctx, req));
               return json_body(200, dp_json(view));
             }));
  router.add("PATCH", path("/dps/{name}"), Access::kFullAdmin, handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
               site::DpChange change;
               PKG_ASSIGN_OR_RETURN(change.description, body.string("description"));
               PKG_ASSIGN_OR_RETURN(change.transfer_rate, body.uint32("transfer_rate"));
               PKG_ASSIGN_OR_RETURN(change.transfer_window, body.string("transfer_window"));
               PKG_TRY(body.finish());
               PKG_TRY(visible_dp(ctx, req));
               PKG_ASSIGN_OR_RETURN(cim::Instance dp, ctx.domain.update_dp(req.params.at("name"), change));
               if (ctx.distribution) ctx.distribution->wake();  // a window that opened may let jobs go
               return instance_body(200, dp);
             }));
  router.add("DELETE", path("/dps/{name}"), Access::kFullAdmin, handler([&ctx](Request& req) -> Result<Response> {
               PKG_TRY(visible_dp(ctx, req));
               // The DP's tokens go with it; whoever holds one of their streams must be told once it is gone.
               PKG_ASSIGN_OR_RETURN(auto tokens, site::list_tokens(ctx.store));
               PKG_ASSIGN_OR_RETURN(cim::Instance removed, ctx.domain.remove_dp(req.params.at("name")));
               const cim::Value* name = removed.find("Name");
               for (const auto& t : tokens) {
                 if (t.role == site::Role::kDp && name != nullptr && !name->is_null() &&
                     iequals(t.dp_name, name->as_string())) {
                   notify_token_revoked(ctx, t.id);
                 }
               }
               return instance_body(200, removed);
             }));
}

}  // namespace pkgcast::server::routes
