// /api/v1/groups: DP groups. Groups span sites, so any reader sees them; changing membership needs full-admin and,
// for a site-limited token, every named DP on one of its sites.
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

Result<Response> post_group(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  site::GroupSpec spec;
  PKG_ASSIGN_OR_RETURN(spec.name, body.required_string("name"));
  PKG_ASSIGN_OR_RETURN(auto description, body.string("description"));
  PKG_TRY(body.finish());
  spec.description = description.value_or("");
  PKG_ASSIGN_OR_RETURN(cim::Instance group, ctx.domain.create_group(spec));
  return instance_body(201, group);
}

Result<Response> change_members(ApiContext& ctx, Request& req, bool add) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  PKG_ASSIGN_OR_RETURN(auto dps, body.strings("dps"));
  PKG_TRY(body.finish());
  if (!dps) return make_error(WbemCode::kInvalidParameter, "field 'dps' is required");
  if (!caller_of(req).sites.empty()) {
    for (const auto& name : *dps) {
      auto view = ctx.domain.get_dp(name);
      if (!view.ok()) continue;  // the domain reports it, in order with the other checks
      if (!visible(req, view->dp)) {
        return make_error(WbemCode::kAccessDenied, "DP '" + name + "' is on a site this token is not limited to");
      }
    }
  }
  const std::string& id = req.params.at("id");
  PKG_ASSIGN_OR_RETURN(cim::Instance group,
                       add ? ctx.domain.add_group_members(id, *dps) : ctx.domain.remove_group_members(id, *dps));
  return instance_body(200, group);
}

}  // namespace

void register_groups(Router& router, ApiContext& ctx) {
  router.add("GET", path("/groups"), Access::kRead, handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(auto groups, ctx.domain.list_groups());
               return instance_list(req, groups);
             }));
  router.add("POST", path("/groups"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return post_group(ctx, req); }));
  router.add("GET", path("/groups/{id}/members"), Access::kRead, handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(auto members, ctx.domain.group_members(req.params.at("id")));
               return json_body(200, nlohmann::ordered_json(members));
             }));
  router.add("POST", path("/groups/{id}/members"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return change_members(ctx, req, /*add=*/true); }));
  router.add("DELETE", path("/groups/{id}/members"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return change_members(ctx, req, /*add=*/false); }));
}

}  // namespace pkgcast::server::routes
