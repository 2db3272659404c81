// /api/v1/packages/{id}/programs: the programs of one package, scoped like the package.
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

Result<Response> post_program(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  site::ProgramSpec spec;
  spec.package_id = req.params.at("id");
  PKG_ASSIGN_OR_RETURN(spec.name, body.required_string("name"));
  PKG_ASSIGN_OR_RETURN(spec.command_line, body.required_string("command_line"));
  PKG_ASSIGN_OR_RETURN(auto working_directory, body.string("working_directory"));
  PKG_ASSIGN_OR_RETURN(auto comment, body.string("comment"));
  PKG_ASSIGN_OR_RETURN(auto flags, body.uint32("flags"));
  PKG_ASSIGN_OR_RETURN(auto duration, body.uint32("duration"));
  PKG_ASSIGN_OR_RETURN(auto disk_space, body.string("disk_space_req"));
  PKG_TRY(body.finish());
  spec.working_directory = working_directory.value_or("");
  spec.comment = comment.value_or("");
  spec.flags = flags.value_or(0);
  spec.duration = duration.value_or(0);
  spec.disk_space_req = disk_space.value_or("");
  PKG_TRY(visible_package(ctx, req, spec.package_id));
  PKG_ASSIGN_OR_RETURN(cim::Instance program, ctx.domain.create_program(spec));
  return instance_body(201, program);
}

}  // namespace

void register_programs(Router& router, ApiContext& ctx) {
  router.add("GET", path("/packages/{id}/programs"), Access::kRead, handler([&ctx](Request& req) -> Result<Response> {
               PKG_TRY(only_query_parameters(req, {}));
               PKG_TRY(visible_package(ctx, req, req.params.at("id")));
               PKG_ASSIGN_OR_RETURN(auto programs, ctx.domain.list_programs(req.params.at("id")));
               return instance_list(req, programs);
             }));
  router.add("POST", path("/packages/{id}/programs"), Access::kPackageAdmin,
             handler([&ctx](Request& req) { return post_program(ctx, req); }));
  router.add("DELETE", path("/packages/{id}/programs/{name}"), Access::kPackageAdmin,
             handler([&ctx](Request& req) -> Result<Response> {
               PKG_TRY(visible_package(ctx, req, req.params.at("id")));
               PKG_ASSIGN_OR_RETURN(cim::Instance program,
                                    ctx.domain.delete_program(req.params.at("id"), req.params.at("name")));
               return instance_body(200, program);
             }));
}

}  // namespace pkgcast::server::routes
