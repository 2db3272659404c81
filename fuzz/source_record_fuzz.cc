// Fuzzes the ingest's source record reader (src/content/source_record.h). The input is sealed with its own
// checksum line first, so that the line parser behind the checksum is reached: a record is refused, or it is
// canonical (serializing it gives the sealed input back) and names the manifest its first lines name.
// The unsealed input is parsed too: it must be refused unless it happens to be a sealed record itself.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "content/source_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace content = pkgcast::content;
  const std::string_view covered(reinterpret_cast<const char*>(data), size);
  const std::string sealed = std::string(covered) + "sha256 " + content::sha256(covered).hex() + "\n";
  for (const std::string_view bytes : {std::string_view(sealed), covered}) {
    const auto record = content::parse_source_record(bytes);
    if (!record) continue;
    if (content::serialize_source_record(*record) != bytes) {
      std::fprintf(stderr, "accepted a record that is not canonical\n");
      std::abort();
    }
    if (content::source_record_manifest(bytes) != record->manifest_id) {
      std::fprintf(stderr, "the head names another manifest\n");
      std::abort();
    }
  }
  return 0;
}
