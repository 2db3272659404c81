// API tokens: who may call the server, with which role, limited to which sites. Tokens are random, shown once,
// and stored only as their SHA-256 (in the store's meta area, key "token/<sha256 hex>").
//
// Audit trail: every token record also has a PKG_Token instance (key TokenID = the record's public id; never the
// token or its hash), written in the same command as the record, so issuing and revoking a token are journaled
// changes that WQL and event subscriptions see (the provider shows the class to unrestricted full-admin tokens
// only). A revoked token keeps its record, with the revocation time, so listings and the journal say when.
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
// True when `text` has exactly generate_token()'s form. Anything else is never a token: not registered from a
// file, not looked up.
bool is_well_formed_token(std::string_view text);
// Lower-case hex SHA-256 of the token text.
std::string hash_token(std::string_view token);

// Stores the record for `token` (hashed) and its PKG_Token instance. Fills record.id from the hash.
Status save_token(store::WriteTxn& txn, std::string_view token, TokenRecord& record);
// Marks the record stored under meta key `key` revoked at txn.now() (record and PKG_Token instance). Revoking a
// revoked record changes nothing.
Status mark_token_revoked(store::WriteTxn& txn, std::string_view key, TokenRecord& record);
// The meta key and record of the token whose public id is `id` (case-insensitive); nullopt when there is none.
// Reads the store, not a transaction: a command that acts on the answer re-reads the key through its own
// transaction (get_token_record).
Result<std::optional<std::pair<std::string, TokenRecord>>> find_token_by_id(store::Store& store, std::string_view id);
// The record stored under meta key `key`, read through the transaction; nullopt when absent.
Result<std::optional<TokenRecord>> get_token_record(store::WriteTxn& txn, std::string_view key);
// Removes every token of a DP (when the DP is removed), reading only through `txn` (store.h: a command reads
// only through its transaction).
Status revoke_dp_tokens(store::WriteTxn& txn, std::string_view dp_name);
// nullopt when the token is unknown, malformed (is_well_formed_token), revoked or expired at `now`. Constant work
// whatever the token's content.
Result<std::optional<TokenRecord>> lookup_token(store::Store& store, std::string_view token,
                                                Micros now = Clock::system().now_micros());
// Every token record (never the tokens themselves), by id.
Result<std::vector<TokenRecord>> list_tokens(store::Store& store);

}  // namespace pkgcast::site
