#include "site/tokens.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "site/internal.h"

namespace pkgcast::site {
namespace {

constexpr std::string_view kMetaPrefix = "token/";

constexpr std::size_t kTokenSecretChars = 43;  // 32 bytes in base64url, unpadded

std::string encode(const TokenRecord& r) {
  nlohmann::json j = {{"id", r.id},           {"role", role_name(r.role)}, {"sites", r.sites},
                      {"dp_name", r.dp_name}, {"description", r.description}, {"created", r.created}};
  if (r.expires != 0) j["expires"] = r.expires;
  if (r.revoked != 0) j["revoked"] = r.revoked;
  return j.dump();
}

// The audit-trail instance of a record: what it grants and when, never the token or its hash.
cim::Instance token_instance(const TokenRecord& r) {
  using namespace internal;
  cim::Instance inst = make_instance("PKG_Token");
  set_prop(inst, "TokenID", str_value(r.id));
  set_prop(inst, "Role", str_value(std::string(role_name(r.role))));
  cim::ValueArray sites;
  for (const auto& s : r.sites) sites.push_back(str_value(s));
  set_prop(inst, "Sites", cim::Value::array(cim::CimType::kString, std::move(sites)));
  set_prop(inst, "DPName", str_value(r.dp_name));
  set_prop(inst, "Description", str_value(r.description));
  set_prop(inst, "Created", time_value(r.created));
  set_prop(inst, "Expires", r.expires != 0 ? time_value(r.expires) : cim::Value());
  set_prop(inst, "Revoked", r.revoked != 0 ? time_value(r.revoked) : cim::Value());
  return inst;
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
  r.expires = j.value("expires", Micros{0});
  r.revoked = j.value("revoked", Micros{0});
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

bool is_well_formed_token(std::string_view text) {
  if (text.size() != 4 + kTokenSecretChars || text.substr(0, 4) != "pkc_") return false;
  for (char c : text.substr(4)) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  // 32 bytes fill 42 characters and 4 bits of the 43rd; generate_token() leaves the 2 spare bits zero.
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return (kAlphabet.find(text.back()) & 0x3) == 0;
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
  PKG_TRY(txn.put_meta(std::string(kMetaPrefix) + hash, encode(record)));
  return txn.put(token_instance(record));
}

Status mark_token_revoked(store::WriteTxn& txn, std::string_view key, TokenRecord& record) {
  if (record.revoked != 0) return ok_status();
  record.revoked = txn.now();
  PKG_TRY(txn.put_meta(key, encode(record)));
  return txn.put(token_instance(record));
}

Result<std::optional<std::pair<std::string, TokenRecord>>> find_token_by_id(store::Store& store, std::string_view id) {
  using Found = std::optional<std::pair<std::string, TokenRecord>>;
  // The id is a prefix of the hash that is the key, so the candidates are one prefix scan away.
  if (id.empty() || id.size() > 64) return Found();
  for (char c : id) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return Found();
  }
  PKG_ASSIGN_OR_RETURN(auto entries, store.list_meta(std::string(kMetaPrefix) + to_lower(id)));
  for (auto& [key, value] : entries) {
    PKG_ASSIGN_OR_RETURN(TokenRecord record, decode(value));
    if (iequals(record.id, id)) return Found(std::pair<std::string, TokenRecord>(key, std::move(record)));
  }
  return Found();
}

Result<std::optional<TokenRecord>> get_token_record(store::WriteTxn& txn, std::string_view key) {
  PKG_ASSIGN_OR_RETURN(auto value, txn.get_meta(key));
  if (!value) return std::optional<TokenRecord>();
  PKG_ASSIGN_OR_RETURN(TokenRecord record, decode(*value));
  return std::optional<TokenRecord>(std::move(record));
}

Status revoke_dp_tokens(store::WriteTxn& txn, std::string_view dp_name) {
  // Through the transaction: a token saved earlier in the same batch (the DP was just added) is revoked too.
  PKG_ASSIGN_OR_RETURN(auto entries, txn.list_meta(kMetaPrefix));
  for (const auto& [key, value] : entries) {
    auto record = decode(value);
    if (record.ok() && record->role == Role::kDp && iequals(record->dp_name, dp_name)) {
      // Revoked, not erased: the record and its PKG_Token instance keep the audit trail.
      PKG_TRY(mark_token_revoked(txn, key, *record));
    }
  }
  return ok_status();
}

Result<std::optional<TokenRecord>> lookup_token(store::Store& store, std::string_view token, Micros now) {
  // Only what generate_token() makes can be a token, whatever a record says (a planted admin.token cannot
  // choose its own).
  if (!is_well_formed_token(token)) return std::optional<TokenRecord>();
  // The lookup is by hash, so its cost does not depend on how much of the token is right.
  PKG_ASSIGN_OR_RETURN(auto value, store.get_meta(std::string(kMetaPrefix) + hash_token(token)));
  if (!value) return std::optional<TokenRecord>();
  PKG_ASSIGN_OR_RETURN(TokenRecord record, decode(*value));
  if (!record.active(now)) return std::optional<TokenRecord>();
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
