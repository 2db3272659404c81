#include "site/tokens.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <nlohmann/json.hpp>

#include "core/strings.h"

namespace pkgcast::site {
namespace {

constexpr std::string_view kMetaPrefix = "token/";

std::string encode(const TokenRecord& r) {
  nlohmann::json j = {{"id", r.id},           {"role", role_name(r.role)}, {"sites", r.sites},
                      {"dp_name", r.dp_name}, {"description", r.description}, {"created", r.created}};
  return j.dump();
}

Result<TokenRecord> decode(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error(WbemCode::kFailed, "corrupt token record");
  TokenRecord r;
  auto role = parse_role(j.value("role", ""));
  if (!role) return make_error(WbemCode::kFailed, "corrupt token record: unknown role");
  r.role = *role;
  r.id = j.value("id", "");
  r.dp_name = j.value("dp_name", "");
  r.description = j.value("description", "");
  r.created = j.value("created", Micros{0});
  if (auto it = j.find("sites"); it != j.end() && it->is_array()) {
    for (const auto& s : *it) {
      if (s.is_string()) r.sites.push_back(s.get<std::string>());
    }
  }
  return r;
}

}  // namespace

Result<std::string> generate_token() {
  std::array<unsigned char, 32> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    return make_error(WbemCode::kFailed, "the system random generator failed");
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out = "pkc_";
  std::uint32_t bits = 0;
  int nbits = 0;
  for (unsigned char byte : raw) {
    bits = (bits << 8) | byte;
    nbits += 8;
    while (nbits >= 6) {
      nbits -= 6;
      out += kAlphabet[(bits >> nbits) & 0x3F];
    }
  }
  if (nbits > 0) out += kAlphabet[(bits << (6 - nbits)) & 0x3F];
  return out;
}

std::string hash_token(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

Status save_token(store::WriteTxn& txn, std::string_view token, TokenRecord& record) {
  const std::string hash = hash_token(token);
  record.id = hash.substr(0, 12);
  if (record.created == 0) record.created = txn.now();
  return txn.put_meta(std::string(kMetaPrefix) + hash, encode(record));
}

Status revoke_dp_tokens(store::WriteTxn& txn, std::string_view dp_name) {
  // Through the transaction: a token saved earlier in the same batch (the DP was just added) is revoked too.
  PKG_ASSIGN_OR_RETURN(auto entries, txn.list_meta(kMetaPrefix));
  for (const auto& [key, value] : entries) {
    auto record = decode(value);
    if (record.ok() && record->role == Role::kDp && iequals(record->dp_name, dp_name)) {
      PKG_TRY(txn.remove_meta(key));
    }
  }
  return ok_status();
}

Result<std::optional<TokenRecord>> lookup_token(store::Store& store, std::string_view token) {
  // The lookup is by hash, so its cost does not depend on how much of the token is right.
  PKG_ASSIGN_OR_RETURN(auto value, store.get_meta(std::string(kMetaPrefix) + hash_token(token)));
  if (!value) return std::optional<TokenRecord>();
  PKG_ASSIGN_OR_RETURN(TokenRecord record, decode(*value));
  return std::optional<TokenRecord>(std::move(record));
}

Result<std::vector<TokenRecord>> list_tokens(store::Store& store) {
  PKG_ASSIGN_OR_RETURN(auto entries, store.list_meta(kMetaPrefix));
  std::vector<TokenRecord> out;
  for (const auto& [key, value] : entries) {
    PKG_ASSIGN_OR_RETURN(TokenRecord record, decode(value));
    out.push_back(std::move(record));
  }
  return out;
}

}  // namespace pkgcast::site
