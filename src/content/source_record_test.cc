#include "content/source_record.h"

#include <gtest/gtest.h>

#include <string>

namespace pkgcast::content {
namespace {

SourceRecord sample() {
  SourceRecord r;
  r.manifest_id = sha256("manifest");
  r.files.push_back({0, FileStamp{2049, 131, 0, 1700000000, 5, 1700000001, 999999999}});
  r.files.push_back({7, FileStamp{2049, 18446744073709551615u, 1u << 30, -86400, 0, 0, 0}});  // pre-1970 mtime
  return r;
}

TEST(SourceRecord, RoundTripsAndNamesItsManifest) {
  const SourceRecord r = sample();
  const std::string bytes = serialize_source_record(r);
  EXPECT_TRUE(bytes.starts_with("pkgcast-source-record 1\nmanifest " + r.manifest_id.hex() + "\n0 2049 131 0 "));
  auto back = parse_source_record(bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, r);
  EXPECT_EQ(source_record_manifest(bytes.substr(0, 120)), r.manifest_id);

  SourceRecord empty;
  empty.manifest_id = sha256("other");
  EXPECT_EQ(parse_source_record(serialize_source_record(empty)), empty);
}

// Any change to a byte is refused: by the checksum, or, where the checksum itself changed, by its mismatch.
TEST(SourceRecord, RefusesEveryChangedByteAndEveryTruncation) {
  const std::string bytes = serialize_source_record(sample());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(parse_source_record(bad).has_value()) << "byte " << i;
    EXPECT_FALSE(parse_source_record(bytes.substr(0, i)).has_value()) << "first " << i << " bytes";
  }
  EXPECT_FALSE(parse_source_record(bytes + "\n").has_value());
  EXPECT_FALSE(source_record_manifest("pkgcast-source-record 2\nmanifest " + sha256("x").hex() + "\n"));
  EXPECT_FALSE(source_record_manifest("pkgcast-source-record 1\nmanifest " + sha256("x").hex()));
}

// Well-checksummed text that is not in the canonical form is refused too: one record, one form.
TEST(SourceRecord, RefusesNonCanonicalLinesEvenWithAGoodChecksum) {
  const std::string head = "pkgcast-source-record 1\nmanifest " + sha256("m").hex() + "\n";
  auto sealed = [](const std::string& covered) { return covered + "sha256 " + sha256(covered).hex() + "\n"; };
  EXPECT_TRUE(parse_source_record(sealed(head + "3 1 2 3 4 5 6 7\n")).has_value());
  for (const char* line : {"03 1 2 3 4 5 6 7\n", "3  1 2 3 4 5 6 7\n", "3 1 2 3 4 5 6\n", "3 1 2 3 4 5 6 7 8\n",
                           "3 1 2 -3 4 5 6 7\n", "3 1 2 3 -0 5 6 7\n", "3 1 2 3 +4 5 6 7\n", "3 1 2 3 4 5 6 7 \n",
                           "x 1 2 3 4 5 6 7\n", "3 1 2 3 4 5 6 99999999999999999999\n"}) {
    EXPECT_FALSE(parse_source_record(sealed(head + line)).has_value()) << line;
  }
  // Entries strictly increasing.
  EXPECT_FALSE(parse_source_record(sealed(head + "3 1 2 3 4 5 6 7\n3 1 2 3 4 5 6 7\n")).has_value());
  EXPECT_FALSE(parse_source_record(sealed(head + "4 1 2 3 4 5 6 7\n3 1 2 3 4 5 6 7\n")).has_value());
  // The manifest id in lower case only.
  std::string upper = head;
  for (std::size_t i = 33; i < upper.size() - 1; ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  EXPECT_FALSE(parse_source_record(sealed(upper)).has_value());
}

}  // namespace
}  // namespace pkgcast::content
