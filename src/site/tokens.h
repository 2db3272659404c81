// API tokens: who may call the server, with which role, limited to which sites. Tokens are random, shown once,
// and stored only as their SHA-256 (in the store's meta area, key "token/<sha256 hex>"). The role and the record a
// token grants are site/identity.h's, which layers above use without the store.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "site/identity.h"
#include "store/store.h"

namespace pkgcast::site {

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
