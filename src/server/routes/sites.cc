// /api/v1/sites: the hierarchy. Creating a site needs full-admin, and a site-limited token may create only a site
// it is limited to.
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

Result<Response> post_site(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  site::SiteSpec spec;
  PKG_ASSIGN_OR_RETURN(spec.code, body.required_string("code"));
  PKG_ASSIGN_OR_RETURN(spec.name, body.required_string("name"));
  PKG_ASSIGN_OR_RETURN(auto type, body.string("type"));
  PKG_ASSIGN_OR_RETURN(auto parent, body.string("parent"));
  PKG_ASSIGN_OR_RETURN(auto server_name, body.string("server_name"));
  PKG_TRY(body.finish());
  if (type) {
    auto parsed = site::parse_site_type(*type);
    if (!parsed) {
      return make_error(WbemCode::kInvalidParameter, "field 'type' must be central, primary or secondary");
    }
    spec.type = *parsed;
  }
  spec.parent = parent.value_or("");
  spec.server_name = server_name.value_or("");
  PKG_TRY(require_site(req, spec.code));
  PKG_ASSIGN_OR_RETURN(cim::Instance site, ctx.domain.create_site(spec));
  return instance_body(201, site);
}

Result<Response> get_site(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(cim::Instance site, ctx.domain.get_site(req.params.at("code")));
  const cim::Value* code = site.find("SiteCode");
  PKG_TRY(require_visible(req, code, "site '" + (code ? code->as_string() : std::string()) + "' does not exist"));
  return instance_body(200, site);
}

}  // namespace

void register_sites(Router& router, ApiContext& ctx) {
  router.add("GET", path("/sites"), Access::kRead, handler([&ctx](Request& req) -> Result<Response> {
               PKG_TRY(only_query_parameters(req, {}));
               PKG_ASSIGN_OR_RETURN(const cim::ClassDef* cls, ctx.store.registry().get("SMS_Site"));
               return streamed_list(ctx.store, req, *cls);
             }));
  router.add("POST", path("/sites"), Access::kFullAdmin, handler([&ctx](Request& req) { return post_site(ctx, req); }));
  router.add("GET", path("/sites/{code}"), Access::kRead, handler([&ctx](Request& req) { return get_site(ctx, req); }));
}

}  // namespace pkgcast::server::routes
