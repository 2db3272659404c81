// Ingest's quick check: a file unchanged since the previous ingest of the same directory is taken from that
// ingest's manifest unread; any change to it (contents with size and mtime put back, another file renamed over it,
// a chunk gone from the store, a damaged record) makes it read again, and the manifest is the same as a full read's.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "content/library_test_util.h"

namespace pkgcast::content {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the helpers of this test
namespace fs = std::filesystem;

struct ReuseFixture : ::testing::Test {
  TempDir tmp;
  fs::path src = tmp.path() / "src";
  std::unique_ptr<Library> lib = open_library(tmp.path() / "lib");
  IngestOptions quick;  // files written by the test count as settled at once

  void SetUp() override {
    quick.racy_margin = std::chrono::milliseconds(0);
    const auto noise = random_bytes(3 << 20, 21);
    write(src / "big.bin", std::string(noise.begin(), noise.end()));
    write(src / "doc" / "readme.txt", text_bytes(200000, 22));
    write(src / "doc" / "empty", "");
    write(src / "run.sh", "#!/bin/sh\n", 0755);
    // Past the coarse timestamp tick, so that a later write gets another ctime.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }

  IngestResult ingest(const IngestOptions& o) {
    auto r = lib->ingest(src, o);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? std::move(r).value() : IngestResult{};
  }

  // What a full read of the tree as it is now records.
  IngestResult full_read() {
    IngestOptions o = quick;
    o.reuse_unchanged_files = false;
    return ingest(o);
  }
};

TEST_F(ReuseFixture, AnUnchangedTreeIsNotReadAgainAndGivesTheSameManifest) {
  const IngestResult first = ingest(quick);
  EXPECT_EQ(first.reused_files, 0u);
  const IngestResult second = ingest(quick);
  EXPECT_EQ(second.reused_files, 4u);
  EXPECT_EQ(second.reused_bytes, first.source_bytes);
  EXPECT_EQ(second.manifest_id, first.manifest_id);
  EXPECT_EQ(second.chunk_count, first.chunk_count);
  EXPECT_EQ(second.compressed_bytes, first.compressed_bytes);
  EXPECT_EQ(second.source_bytes, first.source_bytes);
  EXPECT_EQ(second.new_chunk_count, 0u);

  // A mode change is seen (modes come from the walk, never from the record) and the file is still not read.
  ::chmod((src / "run.sh").c_str(), 0700);
  const IngestResult third = ingest(quick);
  EXPECT_EQ(find_entry(third.manifest, "run.sh")->mode, 0700u);
  EXPECT_EQ(third.manifest_id, full_read().manifest_id);
}

TEST_F(ReuseFixture, ContentsChangedWithSizeAndMtimePutBackAreRead) {
  ingest(quick);
  struct stat before {};
  ASSERT_EQ(::stat((src / "big.bin").c_str(), &before), 0);
  std::string big = read(src / "big.bin");
  big[big.size() / 2] ^= 0x40;
  write(src / "big.bin", big);
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (src / "big.bin").c_str(), times, 0), 0);  // as `touch -r` would

  const IngestResult r = ingest(quick);
  EXPECT_EQ(r.reused_files, 3u);
  EXPECT_EQ(find_entry(r.manifest, "big.bin")->sha256, sha256(big));
  EXPECT_EQ(assemble(lib->chunks(), *find_entry(r.manifest, "big.bin")), big);
  EXPECT_EQ(r.manifest_id, full_read().manifest_id);
}

TEST_F(ReuseFixture, AnotherFileRenamedOverItIsRead) {
  ingest(quick);
  struct stat before {};
  ASSERT_EQ(::stat((src / "doc" / "readme.txt").c_str(), &before), 0);
  std::string text = read(src / "doc" / "readme.txt");
  text[0] = 'X';
  write(tmp.path() / "new.txt", text);
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (tmp.path() / "new.txt").c_str(), times, 0), 0);
  fs::rename(tmp.path() / "new.txt", src / "doc" / "readme.txt");

  const IngestResult r = ingest(quick);
  EXPECT_EQ(r.reused_files, 3u);
  EXPECT_EQ(find_entry(r.manifest, "doc/readme.txt")->sha256, sha256(text));
}

TEST_F(ReuseFixture, AChunkGoneFromTheStoreIsReadAndStoredAgain) {
  const IngestResult first = ingest(quick);
  const ChunkRef lost = find_entry(first.manifest, "big.bin")->chunks[5];
  ASSERT_TRUE(lib->chunks().remove(lost.hash).ok());
  const IngestResult r = ingest(quick);
  EXPECT_EQ(r.reused_files, 3u);
  EXPECT_EQ(r.manifest_id, first.manifest_id);
  EXPECT_EQ(r.new_chunk_count, 1u);
  EXPECT_TRUE(lib->chunks().contains(lost.hash));
}

TEST_F(ReuseFixture, FilesChangedJustBeforeTheIngestAreNotRecorded) {
  IngestOptions careful;  // the default margin: everything here was written a moment ago
  ingest(careful);
  EXPECT_EQ(ingest(careful).reused_files, 0u);
  IngestOptions off = quick;
  off.reuse_unchanged_files = false;
  ingest(quick);
  EXPECT_EQ(ingest(off).reused_files, 0u);
}

TEST_F(ReuseFixture, ADamagedOrForeignRecordIsIgnored) {
  const IngestResult first = ingest(quick);
  const fs::path records = tmp.path() / "lib" / "sources";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(records)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  std::string bytes = read(files[0]);
  bytes[bytes.size() / 2] ^= 0x01;
  write(files[0], bytes, 0600);
  const IngestResult r = ingest(quick);
  EXPECT_EQ(r.reused_files, 0u);
  EXPECT_EQ(r.manifest_id, first.manifest_id);
  EXPECT_EQ(ingest(quick).reused_files, 4u);  // the damaged record was replaced

  // The record of one directory says nothing of another with the same files.
  fs::copy(src, tmp.path() / "copy", fs::copy_options::recursive);
  auto copy = lib->ingest(tmp.path() / "copy", quick);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->reused_files, 0u);
}

TEST_F(ReuseFixture, ARecordWhoseManifestIsCollectedIsIgnoredThenRemoved) {
  const IngestResult first = ingest(quick);
  auto gc = lib->collect_garbage({}, std::chrono::seconds(0));
  ASSERT_TRUE(gc.ok()) << gc.error().to_string();
  EXPECT_FALSE(lib->has_manifest(first.manifest_id));
  EXPECT_TRUE(fs::is_empty(tmp.path() / "lib" / "sources"));
  const IngestResult r = ingest(quick);
  EXPECT_EQ(r.reused_files, 0u);
  EXPECT_EQ(r.manifest_id, first.manifest_id);
  EXPECT_EQ(r.new_chunk_count, r.chunk_count);
}

}  // namespace
}  // namespace pkgcast::content
