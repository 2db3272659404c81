#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "content/content.h"

namespace pkgcast::content {
namespace {

ChunkRef chunk(std::string_view seed, std::uint32_t size) {
  return ChunkRef{sha256(seed), size};
}

ManifestEntry dir(std::string path, std::uint32_t mode = 0755) {
  ManifestEntry e;
  e.path = std::move(path);
  e.type = EntryType::kDirectory;
  e.mode = mode;
  return e;
}

ManifestEntry file(std::string path, std::vector<ChunkRef> chunks, std::uint32_t mode = 0644) {
  ManifestEntry e;
  e.path = std::move(path);
  e.mode = mode;
  e.chunks = std::move(chunks);
  for (const ChunkRef& c : e.chunks) e.size += c.size;
  e.sha256 = sha256(e.path);
  return e;
}

ManifestEntry link(std::string path, std::string target) {
  ManifestEntry e;
  e.path = std::move(path);
  e.type = EntryType::kSymlink;
  e.target = std::move(target);
  return e;
}

Manifest sample() {
  Manifest m;
  m.source_date = 1'764'000'000'123'456;
  m.entries = {
      dir("bin"),
      file("bin/tool", {chunk("a", 70000), chunk("b", 20000), chunk("c", 5)}, 0755),
      dir("empty", 0700),
      file("empty.txt", {}),
      link("latest", "bin/tool"),
      dir("sub"),
      link("sub/up", "../empty.txt"),
      file("sub/\xc3\xbc"
           "ber \"quoted\"\n\x01.txt",
           {chunk("d", 100)}),
  };
  return m;
}

// Replaces the first occurrence of `from` in the canonical bytes of `m`.
std::string edited(const Manifest& m, std::string_view from, std::string_view to) {
  std::string s = serialize_manifest(m);
  const std::size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

void expect_refused(std::string_view bytes, WbemCode code, std::string_view words, const ManifestLimits& limits = {}) {
  auto r = parse_manifest(bytes, limits);
  ASSERT_FALSE(r.ok()) << bytes;
  EXPECT_EQ(r.error().code, code) << r.error().to_string();
  EXPECT_NE(r.error().message.find(words), std::string::npos) << r.error().to_string();
}

TEST(Manifest, RoundTrips) {
  const Manifest m = sample();
  const std::string bytes = serialize_manifest(m);
  auto parsed = parse_manifest(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  EXPECT_EQ(*parsed, m);
  EXPECT_EQ(serialize_manifest(*parsed), bytes);
  EXPECT_EQ(manifest_id(m), sha256(bytes));
  EXPECT_EQ(m.total_size(), 90105u);
}

TEST(Manifest, CanonicalFormIsDocumented) {
  Manifest m;
  m.entries = {dir("d"), file("d/f", {chunk("a", 3)}), link("l", "d/f")};
  EXPECT_EQ(serialize_manifest(m),
            R"({"format":"pkgcast-manifest","version":1,"chunking":{"min":16384,"avg":65536,"max":262144},)"
            R"("source_date":0,"entries":[{"path":"d","type":"dir","mode":493},)"
            R"({"path":"d/f","type":"file","mode":420,"size":3,"sha256":")" +
                sha256("d/f").hex() + R"(","chunks":[{"sha256":")" + sha256("a").hex() +
                R"(","size":3}]},)"
                R"({"path":"l","type":"symlink","target":"d/f"}]})");
}

TEST(Manifest, EmptyTreeAndNegativeDate) {
  Manifest m;
  m.source_date = -5;
  auto parsed = parse_manifest(serialize_manifest(m));
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  EXPECT_EQ(*parsed, m);
}

TEST(EntryPath, Rules) {
  EXPECT_TRUE(check_entry_path("a/b c/\xc3\xa9t\xc3\xa9").ok());
  for (std::string_view bad : {"", "/etc/x", "../../etc/x", "a/../b", "./a", "a//b", "a/", "a\\b",
                               "bad\xff"
                               "utf8",
                               "\xc0\xaf"}) {
    auto s = check_entry_path(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().code, WbemCode::kInvalidParameter) << bad;
  }
  EXPECT_FALSE(check_entry_path(std::string_view("a\0b", 3)).ok());
  EXPECT_EQ(check_entry_path(std::string(5000, 'a')).error().code, WbemCode::kQuotaViolation);
}

TEST(ManifestRefuses, DotDotPath) {
  expect_refused(edited(sample(), "\"bin\"", "\"../../etc/x\""), WbemCode::kInvalidParameter, "'..' component");
}

TEST(ManifestRefuses, AbsolutePath) {
  expect_refused(edited(sample(), "\"empty.txt\"", "\"/etc/passwd\""), WbemCode::kInvalidParameter, "absolute");
}

TEST(ManifestRefuses, NulInPath) {
  expect_refused(edited(sample(), "\"empty.txt\"", "\"empty\\u0000.txt\""), WbemCode::kInvalidParameter, "NUL");
}

TEST(ManifestRefuses, Backslash) {
  expect_refused(edited(sample(), "\"empty.txt\"", "\"a\\\\b\""), WbemCode::kInvalidParameter, "backslash");
}

TEST(ManifestRefuses, InvalidUtf8) {
  expect_refused(edited(sample(), "\"empty.txt\"", "\"e\xff.txt\""), WbemCode::kInvalidParameter, "UTF-8");
}

TEST(ManifestRefuses, DuplicatePath) {
  Manifest m = sample();
  m.entries.insert(m.entries.begin() + 3, file("empty.txt", {}));
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "appears twice");
}

TEST(ManifestRefuses, OutOfOrder) {
  Manifest m = sample();
  std::swap(m.entries[2], m.entries[3]);
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "out of order");
}

TEST(ManifestRefuses, MissingParent) {
  Manifest m = sample();
  m.entries.erase(m.entries.begin());  // "bin"
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "parent");
  Manifest under_file;
  under_file.entries = {file("f", {}), file("f/g", {})};
  expect_refused(serialize_manifest(under_file), WbemCode::kInvalidParameter, "parent");
}

TEST(ManifestRefuses, ChunkSumMismatch) {
  Manifest m = sample();
  m.entries[1].size += 1;
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "add up");
  m.entries[1].size -= 2;
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "add up");
}

TEST(ManifestRefuses, ChunkSizesOutOfBounds) {
  Manifest m = sample();
  m.entries[1].chunks[0].size = 300000;  // above max
  m.entries[1].size = 320005;
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "outside");
  m = sample();
  m.entries[1].chunks[1].size = 100;  // below min and not last
  m.entries[1].size = 70105;
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "shorter than the minimum");
  m = sample();
  m.entries[7].chunks[0].size = 0;
  m.entries[7].size = 0;
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "outside");
}

// A chunk is named by its hash: one name, one size. Listed twice with two sizes, a receiver that writes it once by
// name would put bytes where the manifest says others go.
TEST(ManifestRefuses, OneChunkWithTwoSizes) {
  Manifest m = sample();
  m.entries[7].chunks = {chunk("a", 99)};  // "a" is 70000 bytes in bin/tool
  m.entries[7].size = 99;
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "is listed with 70000 and 99 bytes");
  // The same chunk with the same size, in two files or twice in one, is what dedup looks like: accepted.
  m.entries[7].chunks = {chunk("a", 70000), chunk("a", 70000)};
  m.entries[7].size = 140000;
  EXPECT_TRUE(parse_manifest(serialize_manifest(m)).ok());
}

TEST(ManifestRefuses, LinkOut) {
  Manifest m = sample();
  m.entries[6].target = "../../etc/passwd";
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "outside the tree");
  m.entries[6].target = "/etc/passwd";
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "absolute");
  m.entries[6].target = "x/../../..";
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "after a name");
  m.entries[6].target = "";
  expect_refused(serialize_manifest(m), WbemCode::kInvalidParameter, "empty");
  m.entries[6].target = "./../bin//tool";  // "." and "" are skipped: stays inside
  EXPECT_TRUE(parse_manifest(serialize_manifest(m)).ok());
}

TEST(ManifestRefuses, Limits) {
  const std::string bytes = serialize_manifest(sample());
  expect_refused(bytes, WbemCode::kQuotaViolation, "bytes", ManifestLimits{.max_bytes = 100});
  expect_refused(bytes, WbemCode::kQuotaViolation, "entries", ManifestLimits{.max_entries = 3});
  expect_refused(bytes, WbemCode::kQuotaViolation, "add up", ManifestLimits{.max_total_size = 1000});
  expect_refused(bytes, WbemCode::kQuotaViolation, "longer", ManifestLimits{.max_path_bytes = 8});
  expect_refused(bytes, WbemCode::kQuotaViolation, "deeper", ManifestLimits{.max_depth = 1});
  // The chunking's max (256 KiB here) against the largest chunk a reader will hold.
  expect_refused(bytes, WbemCode::kQuotaViolation, "chunks of up to 262144 bytes",
                 ManifestLimits{.max_chunk_bytes = 65536});
  EXPECT_TRUE(parse_manifest(bytes, ManifestLimits{.max_chunk_bytes = 262144}).ok());
}

TEST(ManifestRefuses, DuplicateKey) {
  expect_refused(edited(sample(), "\"mode\":493,", "\"mode\":493,\"mode\":493,"), WbemCode::kInvalidParameter,
                 "duplicate key 'mode'");
  expect_refused(edited(sample(), "\"version\":1,", "\"version\":1,\"format\":\"x\","), WbemCode::kInvalidParameter,
                 "duplicate key 'format'");
}

TEST(ManifestRefuses, NonCanonicalForms) {
  const Manifest m = sample();
  expect_refused(edited(m, "\"version\":1", "\"version\": 1"), WbemCode::kInvalidParameter, "expected a number");
  expect_refused(edited(m, "\"version\":1", "\"version\":2"), WbemCode::kInvalidParameter, "unsupported version");
  expect_refused(edited(m, "\"mode\":493", "\"mode\":0493"), WbemCode::kInvalidParameter, "leading zero");
  expect_refused(edited(m, "\"bin\"", "\"\\u0062in\""), WbemCode::kInvalidParameter, "escape");
  expect_refused(edited(m, "\"path\":\"bin\",\"type\":\"dir\"", "\"type\":\"dir\",\"path\":\"bin\""),
                 WbemCode::kInvalidParameter, "unexpected key 'type'");
  expect_refused(serialize_manifest(m) + " ", WbemCode::kInvalidParameter, "after the manifest");
  expect_refused(edited(m, "\"type\":\"dir\"", "\"type\":\"fifo\""), WbemCode::kInvalidParameter, "unknown entry");
  expect_refused(edited(m, "\"mode\":493", "\"mode\":4096"), WbemCode::kInvalidParameter, "mode");
  expect_refused(edited(m, "\"avg\":65536", "\"avg\":65535"), WbemCode::kInvalidParameter, "chunking");
  const std::string bytes = serialize_manifest(m);
  for (std::size_t cut = 0; cut < bytes.size(); cut += 7) {
    EXPECT_FALSE(parse_manifest(bytes.substr(0, cut)).ok()) << cut;
  }
}

}  // namespace
}  // namespace pkgcast::content

namespace pkgcast::content {
namespace {

// The fuzz target's seeds are canonical manifests (so the fuzzer starts from inputs that get past the reader).
TEST(Manifest, FuzzSeedsAreCanonical) {
  const char* env = std::getenv("PKGCAST_SOURCE_DIR");
  const std::filesystem::path dir =
      std::filesystem::path(env != nullptr ? env : PKGCAST_SOURCE_DIR_DEFAULT) / "fuzz" / "corpus" / "manifest";
  std::size_t seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    auto m = parse_manifest(bytes);
    ASSERT_TRUE(m.ok()) << entry.path() << ": " << m.error().to_string();
    EXPECT_EQ(serialize_manifest(*m), bytes);
    ++seeds;
  }
  EXPECT_GE(seeds, 3u);
}

}  // namespace
}  // namespace pkgcast::content
