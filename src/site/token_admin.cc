// Issuing API tokens. The token text is returned once and never stored; its hash is (site/tokens.h).
#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

Result<CreatedToken> Domain::create_token(const TokenSpec& spec) {
  if (spec.role == Role::kDp) {
    return invalid("role", "'dp' tokens are issued with their DP (POST /dps)");
  }
  PKG_TRY(check_text("description", spec.description, 0, kMaxShortText));
  std::vector<std::string> sites;
  for (const auto& s : spec.sites) {
    PKG_ASSIGN_OR_RETURN(std::string code, normalize_site_code("sites", s));
    for (const auto& seen : sites) {
      if (seen == code) return invalid("sites", "name site " + code + " twice");
    }
    sites.push_back(std::move(code));
  }
  PKG_ASSIGN_OR_RETURN(std::string token, generate_token());
  CreatedToken created{std::move(token), TokenRecord{}};
  created.record.role = spec.role;
  created.record.sites = sites;
  created.record.description = spec.description;
  PKG_TRY(store_.execute([&](store::WriteTxn& txn) -> Status {
    for (const auto& code : sites) PKG_TRY(require_site(txn, code));
    return save_token(txn, created.token, created.record);
  }));
  return created;
}

}  // namespace pkgcast::site
