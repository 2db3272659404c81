// /api/v1/advertisements. GET ?site=CODE lists what that site's clients are offered: each advertisement with an
// offer row there, with "Offered" (and "OfferedTime") added to its JSON.
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

Result<std::optional<cim::DateTime>> datetime_field(Body& body, std::string_view name) {
  PKG_ASSIGN_OR_RETURN(auto text, body.string(name));
  if (!text) return std::optional<cim::DateTime>();
  auto parsed = cim::DateTime::parse(*text);
  if (!parsed.ok()) {
    return make_error(WbemCode::kInvalidParameter,
                      "field '" + std::string(name) + "' must be an ISO-8601 or DMTF datetime");
  }
  return std::optional<cim::DateTime>(*parsed);
}

Result<std::uint32_t> offer_type_field(Body& body) {
  PKG_ASSIGN_OR_RETURN(auto raw, body.raw("offer_type"));
  if (!raw) return 2u;
  if (raw->is_string()) {
    const auto s = raw->get<std::string>();
    if (s == "required") return 0u;
    if (s == "available") return 2u;
  } else if (raw->is_number_unsigned()) {
    const auto v = raw->get<std::uint64_t>();
    if (v == 0 || v == 2) return static_cast<std::uint32_t>(v);
  }
  return make_error(WbemCode::kInvalidParameter, "field 'offer_type' must be \"required\", \"available\", 0 or 2");
}

Result<Response> post_advertisement(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  site::AdvertisementSpec spec;
  PKG_ASSIGN_OR_RETURN(spec.package_id, body.required_string("package_id"));
  PKG_ASSIGN_OR_RETURN(spec.program_name, body.required_string("program"));
  PKG_ASSIGN_OR_RETURN(spec.collection_id, body.required_string("collection"));
  PKG_ASSIGN_OR_RETURN(auto name, body.string("name"));
  PKG_ASSIGN_OR_RETURN(spec.present_time, datetime_field(body, "present_time"));
  PKG_ASSIGN_OR_RETURN(spec.expiration_time, datetime_field(body, "expiration_time"));
  PKG_ASSIGN_OR_RETURN(spec.offer_type, offer_type_field(body));
  PKG_ASSIGN_OR_RETURN(auto flags, body.uint32("flags"));
  PKG_ASSIGN_OR_RETURN(auto comment, body.string("comment"));
  PKG_TRY(body.finish());
  spec.name = name.value_or("");
  spec.flags = flags.value_or(0);
  spec.comment = comment.value_or("");
  PKG_TRY(visible_package(ctx, req, spec.package_id));
  PKG_ASSIGN_OR_RETURN(cim::Instance ad, ctx.domain.create_advertisement(spec));
  return instance_body(201, ad);
}

Result<Response> list_advertisements(ApiContext& ctx, Request& req) {
  PKG_TRY(only_query_parameters(req, {"site"}));
  auto site = req.query.find("site");
  if (site == req.query.end()) {
    PKG_ASSIGN_OR_RETURN(const cim::ClassDef* cls, ctx.store.registry().get("SMS_Advertisement"));
    return streamed_list(ctx.store, req, *cls);
  }
  // The token's sites first: a site-limited token gets 403 for any other code, existing or not.
  PKG_TRY(require_site(req, site->second));
  PKG_ASSIGN_OR_RETURN(auto offers, ctx.domain.list_offers(site->second));
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& offer : offers) {
    nlohmann::ordered_json j = cim::to_json(offer.advertisement);
    j["Offered"] = offer.offered;
    j["OfferedTime"] =
        offer.offered_time ? nlohmann::ordered_json(offer.offered_time->to_iso8601()) : nlohmann::ordered_json(nullptr);
    out.push_back(std::move(j));
  }
  return json_body(200, out);
}

}  // namespace

void register_advertisements(Router& router, ApiContext& ctx) {
  router.add("GET", path("/advertisements"), Access::kRead,
             handler([&ctx](Request& req) { return list_advertisements(ctx, req); }));
  router.add("POST", path("/advertisements"), Access::kPackageAdmin,
             handler([&ctx](Request& req) { return post_advertisement(ctx, req); }));
}

}  // namespace pkgcast::server::routes
