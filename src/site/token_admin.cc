// Issuing and revoking API tokens. The token text is returned once and never stored; its hash is
// (site/tokens.h). Both verbs write the record and its PKG_Token instance in one command, so they are journaled.
#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

Result<CreatedToken> Domain::create_token(const TokenSpec& spec) {
  if (spec.role == Role::kDp) {
    return invalid("role", "'dp' tokens are issued with their DP (POST /dps)");
  }
  PKG_TRY(check_text("description", spec.description, 0, kMaxShortText));
  if (spec.expires < 0) return invalid("expires", "must be after 1970");
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
  created.record.expires = spec.expires;
  PKG_TRY(store_.execute([&](store::WriteTxn& txn) -> Status {
    // Checked against the commit's clock: a token must not be born expired.
    if (spec.expires != 0 && spec.expires <= txn.now()) return invalid("expires", "must be in the future");
    for (const auto& code : sites) PKG_TRY(require_site(txn, code));
    return save_token(txn, created.token, created.record);
  }));
  return created;
}

Result<TokenRecord> Domain::revoke_token(std::string_view id) {
  PKG_ASSIGN_OR_RETURN(auto found, find_token_by_id(store_, id));
  const std::string shown(id.substr(0, 64));
  if (!found) return not_found("token '" + shown + "' does not exist");
  const std::string key = found->first;
  TokenRecord record;
  PKG_TRY(store_.execute([&](store::WriteTxn& txn) -> Status {
    // Re-read through the transaction: the record found above may have changed or gone since.
    PKG_ASSIGN_OR_RETURN(auto current, get_token_record(txn, key));
    if (!current) return not_found("token '" + shown + "' does not exist");
    record = std::move(*current);
    return mark_token_revoked(txn, key, record);
  }));
  return record;
}

}  // namespace pkgcast::site
