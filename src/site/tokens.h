// API tokens: who may call the server, with which role, limited to which sites. Tokens are random, shown once,
// and stored only as their SHA-256 (in the store's meta area, key "token/<sha256 hex>").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "store/store.h"

namespace pkgcast::site {

enum class Role : std::uint8_t {
  kFullAdmin,     // everything
  kPackageAdmin,  // packages, programs, advertisements, distribution; reads
  kReadOnly,      // queries and events
  kDp,            // one DP's own endpoints only
};
std::string_view role_name(Role r);  // "full-admin", "package-admin", "read-only", "dp"
std::optional<Role> parse_role(std::string_view name);

// What a token grants. Also the authenticated caller of a request.
struct TokenRecord {
  std::string id;  // short public id: the first 12 hex digits of the hash; safe to log and list
  Role role = Role::kReadOnly;
  std::vector<std::string> sites;  // empty = every site
  std::string dp_name;             // for kDp: the DP it belongs to
  std::string description;
  Micros created = 0;

  // True when the token's site limit admits `site_code` (case-insensitive).
  bool can_see_site(std::string_view site_code) const;
};

// A fresh token: "pkc_" followed by 43 base64url characters (32 random bytes from OpenSSL's CSPRNG).
Result<std::string> generate_token();
// Lower-case hex SHA-256 of the token text.
std::string hash_token(std::string_view token);

// Stores the record for `token` (hashed). Fills record.id from the hash.
Status save_token(store::WriteTxn& txn, std::string_view token, TokenRecord& record);
// Removes every token of a DP (when the DP is removed), reading only through `txn` (store.h: a command reads
// only through its transaction).
Status revoke_dp_tokens(store::WriteTxn& txn, std::string_view dp_name);
// nullopt when the token is unknown. Constant work whatever the token's content.
Result<std::optional<TokenRecord>> lookup_token(store::Store& store, std::string_view token);
// Every token record (never the tokens themselves), by id.
Result<std::vector<TokenRecord>> list_tokens(store::Store& store);

}  // namespace pkgcast::site
