// The DP agent's endpoints (docs/dp-protocol.md): its jobs, the event stream of its jobs, and its status messages.
// A dp token reaches them for its own DP only; a full-admin token names the DP with `?dp=NAME` (to look at what a
// DP is told, or to act as its agent in a test bench).
#include <spdlog/spdlog.h>

#include "core/strings.h"
#include "wql/literal.h"
#include "provider/json_writer.h"
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

// Notes that the DP's agent reached the server (DpContacts); a failure to write it fails nothing the agent asked.
void contact(ApiContext& ctx, const std::string& dp_name) {
  if (!ctx.dp_contacts.due(dp_name)) return;
  if (Status s = ctx.domain.note_dp_contact(dp_name); !s.ok()) {
    spdlog::warn("LastContactTime of DP '{}' not written: {}", dp_name, s.error().to_string());
  }
}

Result<std::string> dp_of(ApiContext& ctx, const Request& req) {
  const site::TokenRecord& caller = caller_of(req);
  const auto it = req.query.find("dp");
  if (caller.role == site::Role::kDp) {
    // A DP's token implies its DP; naming another one is refused rather than quietly answered for this one.
    if (it != req.query.end() && !iequals(it->second, caller.dp_name)) {
      return make_error(WbemCode::kAccessDenied, "a dp token reaches only its own DP's jobs ('" +
                                                     caller.dp_name + "', not '" + it->second.substr(0, 64) + "')");
    }
    return caller.dp_name;
  }
  if (it == req.query.end() || it->second.empty()) {
    return make_error(WbemCode::kInvalidParameter, "the 'dp' parameter names the DP (only a dp token implies it)");
  }
  PKG_ASSIGN_OR_RETURN(site::DpView view, ctx.domain.get_dp(it->second));
  return view.dp.find("Name")->as_string();
}


Result<std::uint64_t> number(Body& body, std::string_view name) {
  PKG_ASSIGN_OR_RETURN(auto raw, body.raw(name));
  if (!raw) return std::uint64_t{0};
  if (!raw->is_number_unsigned()) {
    return make_error(WbemCode::kInvalidParameter, std::string(name) + " must be a non-negative integer");
  }
  return raw->get<std::uint64_t>();
}

Result<Response> post_status(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(std::string dp, dp_of(ctx, req));
  contact(ctx, dp);
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  distmgr::DpStatus s;
  PKG_ASSIGN_OR_RETURN(s.key, body.required_string("key"));
  PKG_ASSIGN_OR_RETURN(s.package_id, body.required_string("package_id"));
  PKG_ASSIGN_OR_RETURN(auto generation, body.uint32("generation"));
  PKG_ASSIGN_OR_RETURN(s.state, body.required_string("state"));
  PKG_ASSIGN_OR_RETURN(s.bytes_done, number(body, "bytes_done"));
  PKG_ASSIGN_OR_RETURN(s.bytes_total, number(body, "bytes_total"));
  PKG_ASSIGN_OR_RETURN(auto message, body.string("message"));
  PKG_TRY(body.finish());
  if (!generation) return make_error(WbemCode::kInvalidParameter, "generation is required");
  s.generation = *generation;
  s.message = message.value_or("");
  PKG_ASSIGN_OR_RETURN(distmgr::StatusOutcome outcome, ctx.distribution->apply_status(dp, s));
  nlohmann::ordered_json j{{"applied", outcome.applied}};
  if (!outcome.applied) j["reason"] = outcome.reason;
  return json_body(200, j);
}

}  // namespace

bool DpContacts::due(const std::string& dp_name) {
  const auto now = std::chrono::steady_clock::now();
  MutexLock lock(mu_);
  auto [it, fresh] = written_.try_emplace(to_lower(dp_name), now);
  if (fresh) return true;
  if (now - it->second < kEvery) return false;
  it->second = now;
  return true;
}

void register_dp_agent(Router& router, ApiContext& ctx) {
  router.add("GET", path("/dp/jobs"), Access::kDp, handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(std::string dp, dp_of(ctx, req));
               contact(ctx, dp);
               PKG_ASSIGN_OR_RETURN(distmgr::JobList list, ctx.distribution->jobs_of(dp));
               std::string out = "{\"revision\":" + std::to_string(list.revision) + ",\"jobs\":[";
               for (std::size_t i = 0; i < list.jobs.size(); ++i) {
                 if (i != 0) out += ',';
                 provider::append_instance_json(out, list.jobs[i]);
               }
               out += "]}";
               return Response::json(200, std::move(out));
             }));
  router.add("GET", path("/dp/jobs/events"), Access::kDp, handler([&ctx](Request& req) -> Result<Response> {
               PKG_ASSIGN_OR_RETURN(std::string dp, dp_of(ctx, req));
               if (req.method != "HEAD") contact(ctx, dp);
               // The agent sees its own jobs, whatever its token's sites: the query names them. The stream ends
               // when the token expires or is revoked, as every event stream does.
               site::TokenRecord reader;
               reader.role = site::Role::kReadOnly;
               reader.id = caller_of(req).id;
               reader.expires = caller_of(req).expires;
               return open_event_stream(ctx, req, "",
                                        "SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'PKG_DPJob' "
                                        "AND TargetInstance.DPName = " + wql::string_literal(dp),
                                        reader);
             }));
  router.add("POST", path("/dp/status"), Access::kDp,
             handler([&ctx](Request& req) { return post_status(ctx, req); }));
}

}  // namespace pkgcast::server::routes
