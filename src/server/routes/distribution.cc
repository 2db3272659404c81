// Distribution verbs on a package (docs/http-resources.md, "Distribution"): distribute, redistribute, remove,
// validate, cancel, and a new source version. Each needs package-admin; a site-limited token acts only on
// packages and DPs of its sites, and a refusal changes nothing.
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

// A DP named in a request, as the caller may see it: one it may not see is answered as one that does not exist.
Status require_visible_dp(ApiContext& ctx, const Request& req, const std::string& name) {
  PKG_ASSIGN_OR_RETURN(site::DpView view, ctx.domain.get_dp(name));
  return require_visible(req, view.dp.find("SiteCode"), "DP '" + name + "' does not exist");
}

Result<Response> post_distribute(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  distmgr::Targets targets;
  PKG_ASSIGN_OR_RETURN(auto dps, body.strings("dps"));
  PKG_ASSIGN_OR_RETURN(auto sites, body.strings("sites"));
  PKG_ASSIGN_OR_RETURN(auto groups, body.strings("groups"));
  PKG_TRY(body.finish());
  targets.dps = dps.value_or(std::vector<std::string>{});
  targets.sites = sites.value_or(std::vector<std::string>{});
  targets.groups = groups.value_or(std::vector<std::string>{});
  if (targets.dps.size() + targets.sites.size() + targets.groups.size() > 10'000) {
    return make_error(WbemCode::kQuotaViolation, "at most 10000 targets per request");
  }
  PKG_TRY(visible_package(ctx, req, req.params.at("id")));
  for (const auto& name : targets.dps) PKG_TRY(require_visible_dp(ctx, req, name));
  for (const auto& code : targets.sites) PKG_TRY(require_site(req, code));
  if (!caller_of(req).sites.empty()) {
    for (const auto& group : targets.groups) {
      PKG_ASSIGN_OR_RETURN(auto members, ctx.domain.group_members(group));
      for (const auto& name : members) PKG_TRY(require_visible_dp(ctx, req, name));
    }
  }
  PKG_ASSIGN_OR_RETURN(auto rows, ctx.distribution->distribute(req.params.at("id"), targets));
  return instance_list(req, rows);
}

// {"dp": NAME}: the verbs on one DP.
Result<std::string> one_dp(ApiContext& ctx, Request& req, bool optional) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body, /*empty_ok=*/optional));
  PKG_ASSIGN_OR_RETURN(auto dp, body.string("dp"));
  PKG_TRY(body.finish());
  if (!dp && !optional) return make_error(WbemCode::kInvalidParameter, "dp is required");
  PKG_TRY(visible_package(ctx, req, req.params.at("id")));
  if (dp) PKG_TRY(require_visible_dp(ctx, req, *dp));
  return dp.value_or("");
}

Result<Response> post_refresh(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body, /*empty_ok=*/true));
  PKG_ASSIGN_OR_RETURN(auto source, body.string("source"));
  PKG_TRY(body.finish());
  PKG_TRY(visible_package(ctx, req, req.params.at("id")));
  PKG_ASSIGN_OR_RETURN(cim::Instance pkg, ctx.distribution->refresh_source(req.params.at("id"), source.value_or("")));
  return instance_body(200, pkg);
}

}  // namespace

void register_distribution(Router& router, ApiContext& ctx) {
  router.add("POST", path("/packages/{id}/distribute"), Access::kPackageAdmin,
             handler([&ctx](Request& req) { return post_distribute(ctx, req); }));
  router.add("POST", path("/packages/{id}/refresh"), Access::kPackageAdmin,
             handler([&ctx](Request& req) { return post_refresh(ctx, req); }));
  router.add("POST", path("/packages/{id}/redistribute"), Access::kPackageAdmin,
             handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(std::string dp, one_dp(ctx, req, false));
               PKG_ASSIGN_OR_RETURN(cim::Instance row, ctx.distribution->redistribute(req.params.at("id"), dp));
               return instance_body(200, row);
             }));
  router.add("POST", path("/packages/{id}/remove"), Access::kPackageAdmin,
             handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(std::string dp, one_dp(ctx, req, false));
               PKG_ASSIGN_OR_RETURN(cim::Instance row, ctx.distribution->remove(req.params.at("id"), dp));
               return instance_body(200, row);
             }));
  router.add("POST", path("/packages/{id}/cancel"), Access::kPackageAdmin,
             handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(std::string dp, one_dp(ctx, req, false));
               PKG_ASSIGN_OR_RETURN(cim::Instance row, ctx.distribution->cancel(req.params.at("id"), dp));
               return instance_body(200, row);
             }));
  router.add("POST", path("/packages/{id}/validate"), Access::kPackageAdmin,
             handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(std::string dp, one_dp(ctx, req, true));
               PKG_ASSIGN_OR_RETURN(auto rows, ctx.distribution->validate(req.params.at("id"), dp));
               return instance_list(req, rows);
             }));
}

}  // namespace pkgcast::server::routes
