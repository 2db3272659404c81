// Id allocation. Package and advertisement ids are per-site sequences kept in the store's meta area and advanced
// inside the caller's write command: the single writer runs commands one at a time, so two concurrent creates can
// never draw the same number, and a command that fails rolls its allocation back with everything else (a number is
// consumed only by an object that was committed, and never handed out again even when that object is deleted).
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <cstdio>

#include "site/internal.h"

namespace pkgcast::site::internal {
namespace {

constexpr std::uint32_t kMaxSequence = 0xFFFFF;

}  // namespace

Result<std::string> allocate_id(store::WriteTxn& txn, std::string_view kind, std::string_view site) {
  const std::string key = "ids/" + std::string(kind) + "/" + std::string(site);
  PKG_ASSIGN_OR_RETURN(auto stored, txn.get_meta(key));
  std::uint32_t last = 0;
  if (stored) {
    auto [ptr, ec] = std::from_chars(stored->data(), stored->data() + stored->size(), last);
    if (ec != std::errc() || ptr != stored->data() + stored->size()) {
      return make_error(WbemCode::kFailed, "corrupt id counter '" + key + "'");
    }
  }
  if (last >= kMaxSequence) {
    return make_error(WbemCode::kQuotaViolation, std::string(kind) + " ids of site " + std::string(site) +
                                                     " are exhausted (" + std::string(site) + "FFFFF was the last)");
  }
  const std::uint32_t next = last + 1;
  PKG_TRY(txn.put_meta(key, std::to_string(next)));
  char buf[8];
  std::snprintf(buf, sizeof buf, "%05X", next);
  return std::string(site) + buf;
}

Result<std::string> new_group_id() {
  std::array<unsigned char, 16> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    return make_error(WbemCode::kFailed, "the system random generator failed");
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "{";
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[raw[i] >> 4];
    out += kHex[raw[i] & 0xF];
  }
  out += '}';
  return out;
}

}  // namespace pkgcast::site::internal
