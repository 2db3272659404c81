// /api/v1/admin/check (full-admin): every summary recomputed from the DistPoints rows and compared with what the
// incremental summarizers wrote (design.md section 9). It runs as one write command, so it reads one consistent
// state; it writes nothing.
#include "server/routes/internal.h"
#include "summarizer/summarizer.h"

namespace pkgcast::server::routes {

void register_admin(Router& router, ApiContext& ctx) {
  router.add("GET", path("/admin/check"), Access::kFullAdmin, handler([&ctx](Request&) -> Result<Response> {
               std::vector<summarizer::Difference> differences;
               PKG_TRY(ctx.store.execute([&](store::WriteTxn& txn) -> Status {
                 PKG_ASSIGN_OR_RETURN(differences, summarizer::check(txn));
                 return ok_status();
               }));
               nlohmann::ordered_json list = nlohmann::ordered_json::array();
               for (const auto& d : differences) {
                 list.push_back({{"class", d.class_name},
                                 {"key", d.key},
                                 {"property", d.property},
                                 {"expected", d.expected},
                                 {"actual", d.actual},
                                 {"text", d.to_string()}});
               }
               return json_body(200, {{"differences", std::move(list)}});
             }));
}

}  // namespace pkgcast::server::routes
