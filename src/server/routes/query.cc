// POST /api/v1/query: a WQL data query, streamed. Everything that can be wrong with the request (body, namespace,
// query text, event query) is found by Provider::prepare before the first byte is sent, so it gets a normal
// error status. Once rows flow the status is sent; a later store error, an exceeded budget or the server stopping
// ends the array and adds an "error" member. The answer is pulled page by page by the server's stream producers (router.h).
#include <chrono>
#include <memory>

#include "provider/json_writer.h"
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

// One page: rows read from the store per call of next(), and the time slice it may take. The bytes are bounded by
// the room the server offers (stream_buffer_bytes less what it still holds).
constexpr provider::PageBounds kPage{.max_rows = 512, .slice = std::chrono::milliseconds(20)};

std::string error_member(const Error& e) { return ",\"error\":" + error_json(e); }

// The answer as a pull source: each next() runs one page of the query (provider::run_page), resuming after the
// last key seen, and returns with no thread or database connection held. A store error or an exceeded budget
// (WBEM_E_QUOTA_VIOLATION) ends the array and adds the "error" member; a cancel (the client left) simply means no
// further page is read.
class QuerySource final : public StreamSource {
 public:
  QuerySource(const provider::Provider* provider, std::shared_ptr<const provider::PreparedQuery> query)
      : provider_(provider), query_(std::move(query)) {}

  Step next(std::string& out, std::size_t room) override {
    if (!opened_) {
      out += "{\"instances\":[";
      opened_ = true;
    }
    if (!cursor_.done()) {
      const Status st = provider_->run_page(*query_, cursor_, kPage, [&](const cim::Instance& inst) {
        if (!first_) out += ',';
        first_ = false;
        // A projected query's rows carry only the selected properties and the keys, and so do the objects a
        // join's __Generic rows embed. Rows come class by class, so the step of the previous row is almost always
        // the step of this one.
        if (step_ == nullptr || step_->cls != &inst.class_def()) {
          for (const auto& s : query_->steps()) {
            if (s.cls == &inst.class_def()) step_ = &s;
          }
        }
        provider::append_row_json(out, inst, step_, &embedded_, &query_->embedded_steps());
        return out.size() < room;  // full: the next page resumes after this row
      });
      if (!st.ok()) {
        out += ']';
        out += error_member(st.error());
        out += '}';
        return Step::done();
      }
      if (!cursor_.done()) return Step::more();
    }
    out += "]}";
    return Step::done();
  }

  // The server is stopping: the rows sent so far stay, and the answer says why it ends there.
  bool end_early(const Error& why, std::string& out) override {
    if (!opened_) out += "{\"instances\":[";
    opened_ = true;
    out += ']';
    out += error_member(why);
    out += '}';
    return true;
  }

 private:
  const provider::Provider* provider_;
  std::shared_ptr<const provider::PreparedQuery> query_;
  provider::QueryCursor cursor_;
  const provider::ScanStep* step_ = nullptr;
  provider::EmbeddedJsonCache embedded_;  // a join's outer rows repeat in its answer: their JSON is written once
  bool opened_ = false;
  bool first_ = true;
};

Result<Response> post_query(ApiContext& ctx, Request& req) {
  PKG_ASSIGN_OR_RETURN(Body body, Body::parse(req.body));
  PKG_ASSIGN_OR_RETURN(auto ns, body.string("namespace"));
  PKG_ASSIGN_OR_RETURN(std::string text, body.required_string("query"));
  PKG_TRY(body.finish());
  PKG_ASSIGN_OR_RETURN(provider::PreparedQuery prepared,
                       ctx.provider.prepare(ns.value_or(std::string()), text, caller_of(req)));
  Response resp;
  resp.status = 200;
  resp.stream = std::make_shared<QuerySource>(
      &ctx.provider, std::make_shared<const provider::PreparedQuery>(std::move(prepared)));
  return resp;
}

// WMI's GetObject: GET /instances?path=<object path>[&namespace=NS], the instance whole (lazy properties included).
Result<Response> get_instance(ApiContext& ctx, Request& req) {
  PKG_TRY(only_query_parameters(req, {"path", "namespace"}));
  const auto path_param = req.query.find("path");
  if (path_param == req.query.end() || path_param->second.empty()) {
    return make_error(WbemCode::kInvalidParameter, "path is required: the object path of the instance");
  }
  const auto ns = req.query.find("namespace");
  PKG_ASSIGN_OR_RETURN(cim::Instance inst,
                       ctx.provider.get_object(ns == req.query.end() ? std::string_view() : ns->second,
                                               path_param->second, caller_of(req)));
  return instance_body(200, inst);
}

}  // namespace

void register_query(Router& router, ApiContext& ctx) {
  router.add("POST", path("/query"), Access::kRead, handler([&ctx](Request& req) { return post_query(ctx, req); }));
  router.add("GET", path("/instances"), Access::kRead,
             handler([&ctx](Request& req) { return get_instance(ctx, req); }));
}

}  // namespace pkgcast::server::routes
