// Distribution verbs on a package (docs/http-resources.md, "Distribution"): distribute, redistribute, remove,
// validate, cancel, and a new source version. Each needs package-admin; a site-limited token acts only on
// packages and DPs of its sites, and a refusal changes nothing.
#include "cim/json.h"
#include "core/strings.h"
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

// PUT /instances: WMI's PutInstance of an instance as a query answered it, some properties changed. Only what
// Configuration Manager lets a script write this way is taken: SMS_DistributionPoint.RefreshNow. Every other class
// is changed through its verbs.
Result<Response> put_instance(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  PKG_ASSIGN_OR_RETURN(auto ns, body.string("namespace"));
  PKG_ASSIGN_OR_RETURN(auto instance, body.raw("instance"));
  PKG_TRY(body.finish());
  PKG_TRY(ctx.provider.resolve_namespace(ns.value_or(std::string())));
  if (!instance || !instance->is_object()) {
    return make_error(WbemCode::kInvalidParameter, "instance must be an object with its __CLASS and keys");
  }
  const auto cls_name = instance->find("__CLASS");
  if (cls_name == instance->end() || !cls_name->is_string()) {
    return make_error(WbemCode::kInvalidObject, "the instance has no __CLASS");
  }
  const cim::ClassDef* cls = ctx.store.registry().find(cls_name->get<std::string>());
  if (!cls) return make_error(WbemCode::kInvalidClass, "no class " + cls_name->get<std::string>());
  if (!iequals(cls->name(), "SMS_DistributionPoint")) {
    return make_error(WbemCode::kNotSupported, "instances of " + cls->name() +
                                                   " are changed through their verbs (docs/http-resources.md); "
                                                   "a put takes SMS_DistributionPoint.RefreshNow");
  }
  std::vector<std::pair<std::string, cim::Value>> properties;
  for (const auto& [name, value] : instance->items()) {
    if (name.starts_with("__")) continue;  // system properties, as a query answered them
    const auto index = cls->find_property(name);
    if (!index) return make_error(WbemCode::kInvalidProperty, cls->name() + " has no property " + name);
    PKG_ASSIGN_OR_RETURN(cim::Value v, cim::value_from_json(value, cls->property(*index).type, ctx.store.registry()));
    properties.emplace_back(cls->property(*index).name, std::move(v));
  }
  // A site-limited token puts only rows of its sites and packages it may see.
  for (const auto& [name, v] : properties) {
    if (iequals(name, "SiteCode") && !v.is_null() && v.type().base == cim::CimType::kString) {
      PKG_TRY(require_site(req, v.as_string()));
    }
    if (iequals(name, "PackageID") && !v.is_null() && v.type().base == cim::CimType::kString) {
      PKG_TRY(visible_package(ctx, req, v.as_string()));
    }
  }
  PKG_ASSIGN_OR_RETURN(cim::Instance row, ctx.distribution->put_distribution_point(properties));
  return instance_body(200, row);
}

}  // namespace

void register_distribution(Router& router, ApiContext& ctx) {
  router.add("PUT", path("/instances"), Access::kPackageAdmin,
             handler([&ctx](Request& req) { return put_instance(ctx, req); }));
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
