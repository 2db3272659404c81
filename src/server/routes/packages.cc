// /api/v1/packages: packages of this site. Writes need package-admin; a site-limited token acts only on packages
// whose SourceSite is one of its sites (new packages are created at this server's site).
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

Result<Response> post_package(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  site::PackageSpec spec;
  PKG_ASSIGN_OR_RETURN(spec.name, body.required_string("name"));
  PKG_ASSIGN_OR_RETURN(auto version, body.string("version"));
  PKG_ASSIGN_OR_RETURN(auto manufacturer, body.string("manufacturer"));
  PKG_ASSIGN_OR_RETURN(auto language, body.string("language"));
  PKG_ASSIGN_OR_RETURN(auto description, body.string("description"));
  PKG_ASSIGN_OR_RETURN(auto source, body.string("source"));
  PKG_ASSIGN_OR_RETURN(auto priority, body.uint32("priority"));
  PKG_TRY(body.finish());
  spec.version = version.value_or("");
  spec.manufacturer = manufacturer.value_or("");
  spec.language = language.value_or("");
  spec.description = description.value_or("");
  spec.source_path = source.value_or("");
  spec.priority = priority.value_or(2);
  PKG_TRY(require_site(req, ctx.domain.own_site_code()));
  PKG_ASSIGN_OR_RETURN(cim::Instance pkg, ctx.domain.create_package(spec));
  return instance_body(201, pkg);
}

Result<Response> patch_package(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  site::PackageUpdate u;
  PKG_ASSIGN_OR_RETURN(u.name, body.string("name"));
  PKG_ASSIGN_OR_RETURN(u.version, body.string("version"));
  PKG_ASSIGN_OR_RETURN(u.manufacturer, body.string("manufacturer"));
  PKG_ASSIGN_OR_RETURN(u.language, body.string("language"));
  PKG_ASSIGN_OR_RETURN(u.description, body.string("description"));
  PKG_ASSIGN_OR_RETURN(u.priority, body.uint32("priority"));
  PKG_TRY(body.finish());
  PKG_TRY(visible_package(ctx, req, req.params.at("id")));
  PKG_ASSIGN_OR_RETURN(cim::Instance pkg, ctx.domain.update_package(req.params.at("id"), u));
  return instance_body(200, pkg);
}

}  // namespace

void register_packages(Router& router, ApiContext& ctx) {
  router.add("GET", path("/packages"), Access::kRead, handler([&ctx](Request& req) -> Result<Response> {
               PKG_TRY(only_query_parameters(req, {}));
               PKG_ASSIGN_OR_RETURN(const cim::ClassDef* cls, ctx.store.registry().get("SMS_Package"));
               return streamed_list(ctx.store, req, *cls);
             }));
  router.add("POST", path("/packages"), Access::kPackageAdmin,
             handler([&ctx](Request& req) { return post_package(ctx, req); }));
  router.add("GET", path("/packages/{id}"), Access::kRead, handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(cim::Instance pkg, visible_package(ctx, req, req.params.at("id")));
               return instance_body(200, pkg);
             }));
  router.add("PATCH", path("/packages/{id}"), Access::kPackageAdmin,
             handler([&ctx](Request& req) { return patch_package(ctx, req); }));
  router.add("DELETE", path("/packages/{id}"), Access::kPackageAdmin, handler([&ctx](Request& req) -> Result<Response> {
               PKG_TRY(visible_package(ctx, req, req.params.at("id")));
               PKG_ASSIGN_OR_RETURN(cim::Instance pkg, ctx.domain.delete_package(req.params.at("id")));
               return instance_body(200, pkg);
             }));
}

}  // namespace pkgcast::server::routes
