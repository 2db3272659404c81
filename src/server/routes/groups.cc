// /api/v1/groups: DP groups. Groups span sites, so any reader sees them, but a site-limited token sees only the
// members on its sites; changing membership needs full-admin and, for a site-limited token, every named DP on one
// of its sites (any other is answered as a DP that does not exist).
#include <optional>
#include <unordered_set>

#include "core/strings.h"
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

// As in Configuration Manager, a DP that joins a group gets the group's packages: each package assigned to the
// group (SMS_DPGroupContentInfo) is distributed to the new members that do not hold it yet. A command of its own
// after the membership's: a failure here leaves the members added, and is answered as the request's error.
Status distribute_group_content(ApiContext& ctx, const cim::Instance& group, const std::vector<std::string>& dps) {
  PKG_ASSIGN_OR_RETURN(const cim::ClassDef* cls, ctx.store.registry().get("SMS_DPGroupContentInfo"));
  const auto group_id = cls->find_property("GroupID");
  const auto package_id = cls->find_property("PackageID");
  const cim::Value* id = group.find("GroupID");
  if (!group_id || !package_id || id == nullptr || id->is_null()) return ok_status();
  std::vector<std::string> packages;
  PKG_TRY(ctx.store.scan(*cls, store::Predicate::compare(*group_id, store::Predicate::Op::kEq, *id),
                         [&](cim::Instance&& row) {
                           if (!row.get(*package_id).is_null()) packages.push_back(row.get(*package_id).as_string());
                           return true;
                         }));
  // Each package on its own: one that cannot be sent does not keep the others from the new members (who could not
  // be given them later: joining again is refused, they are members already).
  std::optional<Error> first_failure;
  for (const auto& package : packages) {
    distmgr::Targets targets;
    targets.dps = dps;
    auto distributed = ctx.distribution->distribute(package, targets);
    if (distributed.ok()) continue;
    // Nothing to send: a package without source files (offered everywhere without distribution), or one deleted
    // since the group's packages were read.
    const WbemCode code = distributed.error().code;
    if (code == WbemCode::kInvalidOperation || code == WbemCode::kNotFound) continue;
    if (!first_failure) first_failure = distributed.error();
  }
  if (first_failure) return *first_failure;
  return ok_status();
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
      // A DP outside the caller's sites is, to it, a DP that does not exist (the domain's wording).
      PKG_TRY(require_visible(req, view->dp.find("SiteCode"), "DP '" + name + "' does not exist"));
    }
  }
  const std::string& id = req.params.at("id");
  PKG_ASSIGN_OR_RETURN(cim::Instance group,
                       add ? ctx.domain.add_group_members(id, *dps) : ctx.domain.remove_group_members(id, *dps));
  if (add) PKG_TRY(distribute_group_content(ctx, group, *dps));
  return instance_body(200, group);
}

}  // namespace

void register_groups(Router& router, ApiContext& ctx) {
  router.add("GET", path("/groups"), Access::kRead, handler([&ctx](Request& req) -> Result<Response> {
               PKG_TRY(only_query_parameters(req, {}));
               PKG_ASSIGN_OR_RETURN(const cim::ClassDef* cls, ctx.store.registry().get("SMS_DistributionPointGroup"));
               return streamed_list(ctx.store, req, *cls);
             }));
  router.add("POST", path("/groups"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return post_group(ctx, req); }));
  router.add("GET", path("/groups/{id}/members"), Access::kRead, handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(auto members, ctx.domain.group_members(req.params.at("id")));
               if (caller_of(req).sites.empty()) return json_body(200, nlohmann::ordered_json(members));
               // A site-limited caller sees only the members on its sites: one listing of the DPs, not one read
               // per member.
               PKG_ASSIGN_OR_RETURN(auto dps, ctx.domain.list_dps());
               std::unordered_set<std::string, IHash, IEqual> seen;
               for (const auto& view : dps) {
                 const cim::Value* dp_name = view.dp.find("Name");
                 if (dp_name != nullptr && !dp_name->is_null() && visible(req, view.dp)) {
                   seen.insert(dp_name->as_string());
                 }
               }
               nlohmann::ordered_json out = nlohmann::ordered_json::array();
               for (const auto& name : members) {
                 if (seen.contains(name)) out.push_back(name);
               }
               return json_body(200, out);
             }));
  router.add("POST", path("/groups/{id}/members"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return change_members(ctx, req, /*add=*/true); }));
  router.add("DELETE", path("/groups/{id}/members"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return change_members(ctx, req, /*add=*/false); }));
}

}  // namespace pkgcast::server::routes
