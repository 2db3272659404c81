// /api/v1/tokens: issuing, listing and revoking API tokens (full-admin). A token is shown once, in the POST
// answer; GET lists the records only. A site-limited admin can issue only tokens limited to some of its own sites,
// and sees and revokes only those; any other token is, to it, a token that does not exist (404).
#include <charconv>

#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

// The longest lifetime `expires_in` takes: ten years (3,653 days: ten years hold two or three leap days), far below
// where microseconds could overflow.
constexpr std::int64_t kMaxLifetimeSeconds = 3653LL * 86'400;

// "30d", "12h", "90m", "45s" -> seconds. Anything else is WBEM_E_INVALID_PARAMETER naming the field.
Result<std::int64_t> parse_duration(std::string_view text) {
  const Error bad = make_error(WbemCode::kInvalidParameter,
                               "field 'expires_in' must be a positive number followed by s, m, h or d (e.g. 30d, "
                               "12h, 90m), at most 10 years");
  if (text.size() < 2) return bad;
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86'400; break;
    default: return bad;
  }
  std::int64_t n = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size() - 1;
  const auto [ptr, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc() || ptr != end || n <= 0 || n > kMaxLifetimeSeconds / unit) return bad;
  return n * unit;
}

// Whether a site-limited caller may see (and act on) token `r`: only tokens confined to the caller's sites.
bool token_visible(const site::TokenRecord& caller, const site::TokenRecord& r) {
  if (caller.sites.empty()) return true;
  bool inside = !r.sites.empty();
  for (const auto& s : r.sites) inside = inside && caller.can_see_site(s);
  return inside;
}

nlohmann::ordered_json instant_or_null(Micros t) {
  return t == 0 ? nlohmann::ordered_json(nullptr)
                : nlohmann::ordered_json(cim::DateTime::from_unix_micros(t).to_iso8601());
}

// Adds the record's members to `j` (after any already there).
void add_record(nlohmann::ordered_json& j, const site::TokenRecord& r) {
  j["id"] = r.id;
  j["role"] = std::string(site::role_name(r.role));
  j["sites"] = r.sites;
  // Every record has every member (http-resources.md); `dp` is null but for a DP's token.
  j["dp"] = r.dp_name.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.dp_name);
  j["description"] = r.description;
  j["created"] = cim::DateTime::from_unix_micros(r.created).to_iso8601();
  j["expires"] = instant_or_null(r.expires);
  j["revoked"] = instant_or_null(r.revoked);
}

Result<Response> post_token(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  PKG_ASSIGN_OR_RETURN(std::string role_text, body.required_string("role"));
  PKG_ASSIGN_OR_RETURN(auto site, body.string("site"));
  PKG_ASSIGN_OR_RETURN(auto sites, body.strings("sites"));
  PKG_ASSIGN_OR_RETURN(auto description, body.string("description"));
  PKG_ASSIGN_OR_RETURN(auto expires_text, body.string("expires"));
  PKG_ASSIGN_OR_RETURN(auto expires_in, body.string("expires_in"));
  PKG_TRY(body.finish());
  // Both may be given: the token expires at the earlier of the two.
  Micros expires = 0;
  if (expires_text) {
    auto parsed = cim::DateTime::parse(*expires_text);
    if (!parsed.ok()) {
      return make_error(WbemCode::kInvalidParameter, "field 'expires' must be an ISO-8601 or DMTF datetime");
    }
    expires = parsed->unix_micros();
    if (expires <= 0) return make_error(WbemCode::kInvalidParameter, "field 'expires' must be after 1970");
  }
  if (expires_in) {
    PKG_ASSIGN_OR_RETURN(const std::int64_t seconds, parse_duration(*expires_in));
    const Micros at = ctx.options.clock->now_micros() + seconds * 1'000'000;
    if (expires == 0 || at < expires) expires = at;
  }
  auto role = site::parse_role(role_text);
  if (!role) {
    return make_error(WbemCode::kInvalidParameter, "field 'role' must be full-admin, package-admin or read-only");
  }
  if (site && sites) return make_error(WbemCode::kInvalidParameter, "give 'site' or 'sites', not both");
  // An empty list is refused rather than read as "no limit": a tool that builds the list from a filter that
  // matched nothing must not mint a token for every site.
  if (sites && sites->empty()) {
    return make_error(WbemCode::kInvalidParameter,
                      "sites: an empty list names no site; leave 'sites' out for a token without a site limit");
  }
  site::TokenSpec spec;
  spec.role = *role;
  if (site) spec.sites = {*site};
  if (sites) spec.sites = *sites;
  spec.description = description.value_or("");
  spec.expires = expires;
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
    if (!token_visible(caller, r)) continue;
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    add_record(j, r);
    out.push_back(std::move(j));
  }
  return json_body(200, out);
}

Result<Response> delete_token(ApiContext& ctx, Request& req) {
  const std::string& id = req.params.at("id");
  const std::string shown = id.substr(0, 64);
  PKG_ASSIGN_OR_RETURN(auto found, site::find_token_by_id(ctx.store, id));
  // A token outside a limited caller's sites answers exactly as an absent one.
  if (!found || !token_visible(caller_of(req), found->second)) {
    return make_error(WbemCode::kNotFound, "token '" + shown + "' does not exist");
  }
  PKG_ASSIGN_OR_RETURN(site::TokenRecord record, ctx.domain.revoke_token(id));
  notify_token_revoked(ctx, record.id);
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  add_record(j, record);
  return json_body(200, j);
}

}  // namespace

void notify_token_revoked(ApiContext& ctx, const std::string& token_id) {
  for (const auto& listener : ctx.revocation_listeners) listener(token_id);
}

void register_tokens(Router& router, ApiContext& ctx) {
  router.add("POST", path("/tokens"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return post_token(ctx, req); }));
  router.add("GET", path("/tokens"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return get_tokens(ctx, req); }));
  router.add("DELETE", path("/tokens/{id}"), Access::kFullAdmin,
             handler([&ctx](Request& req) { return delete_token(ctx, req); }));
}

}  // namespace pkgcast::server::routes
