// Fuzzes the DP agent's version records (src/dp/version_record.h): any bytes are parsed without a crash; a record
// accepted names the manifest its first line names, and what it trusts survives being written and read again.
// The first input byte chooses how many manifest entries the record is read against.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "dp/version_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace dp = pkgcast::dp;
  if (size == 0) return 0;
  const std::size_t entries = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto record = dp::parse_version_record(text, entries);
  if (!record) {
    if (dp::first_line_digest(text)) {
      std::fprintf(stderr, "refused a record whose first line is a manifest hash\n");
      std::abort();
    }
    return 0;
  }
  if (record->fingerprints.size() != entries || dp::first_line_digest(text) != record->manifest_hash) {
    std::fprintf(stderr, "a record of the wrong size or manifest\n");
    std::abort();
  }
  const auto again = dp::parse_version_record(dp::serialize_version_record(record->manifest_hash, record->fingerprints),
                                              entries);
  if (!again || again->manifest_hash != record->manifest_hash) std::abort();
  for (std::size_t i = 0; i < entries; ++i) {
    const dp::FileFingerprint& a = record->fingerprints[i];
    const dp::FileFingerprint& b = again->fingerprints[i];
    if (a.known != b.known || (a.known && (!a.same_state(b) || a.whole != b.whole))) {
      std::fprintf(stderr, "entry %zu changed on a round trip\n", i);
      std::abort();
    }
  }
  return 0;
}
