// POST /api/v1/query: a WQL data query, streamed. Everything that can be wrong with the request (body, namespace,
// query text, event query) is found by Provider::prepare before the first byte is sent, so it gets a normal
// error status. Once rows flow the status is sent; a later store error ends the array and adds an "error" member.
#include "provider/json_writer.h"
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

// Rows are gathered into chunks of about this size: one write per row would cost a chunk header and a wake-up of
// the network thread each.
constexpr std::size_t kChunkBytes = 64 * 1024;

std::string error_member(const Error& e) {
  std::string out = ",\"error\":{\"error\":";
  provider::append_json_string(out, wbem_name(e.code));
  out += ",\"hresult\":";
  provider::append_json_string(out, wbem_hresult(e.code));
  out += ",\"message\":";
  provider::append_json_string(out, e.message);
  out += '}';
  return out;
}

Result<Response> post_query(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  PKG_ASSIGN_OR_RETURN(auto ns, body.string("namespace"));
  PKG_ASSIGN_OR_RETURN(std::string text, body.required_string("query"));
  PKG_TRY(body.finish());
  PKG_ASSIGN_OR_RETURN(provider::PreparedQuery prepared,
                       ctx.provider.prepare(ns.value_or(std::string()), text, caller_of(req)));

  auto query = std::make_shared<const provider::PreparedQuery>(std::move(prepared));
  const provider::Provider* provider = &ctx.provider;
  Response resp;
  resp.status = 200;
  resp.stream = [provider, query](BodyWriter& writer) -> Status {
    std::string buf = "{\"instances\":[";
    buf.reserve(kChunkBytes + 4096);
    bool first = true;
    Status write_status;
    // A projected query's rows carry only the selected properties and the keys. Rows come class by class, so
    // the step of the previous row is almost always the step of this one.
    const provider::ScanStep* step = nullptr;
    const Status run_status = provider->run(*query, [&](const cim::Instance& inst) {
      if (!first) buf += ',';
      first = false;
      if (step == nullptr || step->cls != &inst.class_def()) {
        for (const auto& s : query->steps()) {
          if (s.cls == &inst.class_def()) step = &s;
        }
      }
      provider::append_row_json(buf, inst, step);
      if (buf.size() >= kChunkBytes) {
        write_status = writer.write(buf);
        buf.clear();
        if (!write_status.ok()) return false;  // the client went away: stop the scan
      }
      return true;
    });
    PKG_TRY(write_status);
    buf += ']';
    if (!run_status.ok()) buf += error_member(run_status.error());
    buf += '}';
    return writer.write(buf);
  };
  return resp;
}

}  // namespace

void register_query(Router& router, ApiContext& ctx) {
  router.add("POST", path("/query"), Access::kRead, handler([&ctx](Request& req) { return post_query(ctx, req); }));
}

}  // namespace pkgcast::server::routes
