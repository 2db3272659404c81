// Fuzzes the manifest reader on arbitrary bytes (with small limits, so the limit paths are reached too):
//   parse -> (error: must carry a known code and a message) or serialize -> must equal the input (only the
//   canonical form is accepted) -> parse again -> must equal the first manifest; the id must be the hash of the
//   bytes.
// Any crash, sanitizer report, hang or broken round trip is a bug; the round trip aborts explicitly.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "content/content.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "%s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace content = pkgcast::content;
  using pkgcast::WbemCode;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const content::ManifestLimits limits{.max_bytes = 1 << 20,
                                       .max_entries = 64,
                                       .max_total_size = std::uint64_t{1} << 32,
                                       .max_path_bytes = 256,
                                       .max_depth = 16};
  auto m = content::parse_manifest(bytes, limits);
  if (!m.ok()) {
    const WbemCode code = m.error().code;
    if (m.error().message.empty()) fail("error without a message", bytes);
    if (code != WbemCode::kInvalidParameter && code != WbemCode::kQuotaViolation) fail("unexpected code", bytes);
    return 0;
  }
  const std::string printed = content::serialize_manifest(*m);
  if (printed != bytes) fail("serialize(parse(b)) != b", printed);
  auto again = content::parse_manifest(printed, limits);
  if (!again.ok()) fail("canonical form does not parse", again.error().to_string());
  if (!(*again == *m)) fail("parse(serialize(m)) != m", printed);
  if (content::manifest_id(*m) != content::sha256(bytes)) fail("id is not the hash of the bytes", printed);
  (void)m->total_size();
  return 0;
}
