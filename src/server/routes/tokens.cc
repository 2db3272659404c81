// /api/v1/tokens: issuing and listing API tokens (full-admin). A token is shown once, in the POST answer; GET lists
// the records only. A site-limited admin can issue only tokens limited to some of its own sites.
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

// Adds the record's members to `j` (after any already there).
void add_record(nlohmann::ordered_json& j, const site::TokenRecord& r) {
  j["id"] = r.id;
  j["role"] = std::string(site::role_name(r.role));
  j["sites"] = r.sites;
  if (!r.dp_name.empty()) j["dp"] = r.dp_name;
  j["description"] = r.description;
  j["created"] = cim::DateTime::from_unix_micros(r.created).to_iso8601();
}

Result<Response> post_token(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  PKG_ASSIGN_OR_RETURN(std::string role_text, body.required_string("role"));
  PKG_ASSIGN_OR_RETURN(auto site, body.string("site"));
  PKG_ASSIGN_OR_RETURN(auto sites, body.strings("sites"));
  PKG_ASSIGN_OR_RETURN(auto description, body.string("description"));
  PKG_TRY(body.finish());
  auto role = site::parse_role(role_text);
  if (!role) {
    return make_error(WbemCode::kInvalidParameter, "field 'role' must be full-admin, package-admin or read-only");
  }
  if (site && sites) return make_error(WbemCode::kInvalidParameter, "give 'site' or 'sites', not both");
  site::TokenSpec spec;
  spec.role = *role;
  if (site) spec.sites = {*site};
  if (sites) spec.sites = *sites;
  spec.description = description.value_or("");
  if (!caller_of(req).sites.empty()) {
    if (spec.sites.empty()) {
      return make_error(WbemCode::kAccessDenied, "a site-limited token can issue only site-limited tokens");
    }
    for (const auto& s : spec.sites) PKG_TRY(require_site(req, s));
  }
  PKG_ASSIGN_OR_RETURN(site::CreatedToken created, ctx.domain.create_token(spec));
  nlohmann::ordered_json j;
  j["token"] = created.token;
  add_record(j, created.record);
  return json_body(201, j);
}

Result<Response> get_tokens(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(auto records, site::list_tokens(ctx.store));
  const site::TokenRecord& caller = caller_of(req);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : records) {
    if (!caller.sites.empty()) {
      // A limited admin sees the tokens confined to its own sites.
      bool inside = !r.sites.empty();
      for (const auto& s : r.sites) inside = inside && caller.can_see_site(s);
      if (!inside) continue;
    }
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    add_record(j, r);
    out.push_back(std::move(j));
  }
  return json_body(200, out);
}

}  // namespace

void register_tokens(Router& router, ApiContext& ctx) {
  router.add("POST", path("/tokens"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return post_token(ctx, req); }));
  router.add("GET", path("/tokens"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return get_tokens(ctx, req); }));
}

}  // namespace pkgcast::server::routes
