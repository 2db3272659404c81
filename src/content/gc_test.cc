#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "content/library_test_util.h"

namespace pkgcast::content {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the helpers of this test
namespace fs = std::filesystem;
using std::chrono::seconds;

std::set<Digest> chunks_of(const Manifest& m) {
  std::set<Digest> out;
  for (const ManifestEntry& e : m.entries) {
    for (const ChunkRef& c : e.chunks) out.insert(c.hash);
  }
  return out;
}

struct TwoTrees {
  TempDir tmp;
  std::unique_ptr<Library> lib = open_library(tmp.path() / "lib");
  IngestResult a, b;

  TwoTrees() {
    const auto shared = random_bytes(1 << 20, 11);
    write(tmp.path() / "a" / "shared.bin", std::string(shared.begin(), shared.end()));
    write(tmp.path() / "a" / "only-a.txt", text_bytes(300000, 12));
    write(tmp.path() / "b" / "shared.bin", std::string(shared.begin(), shared.end()));
    write(tmp.path() / "b" / "only-b.txt", text_bytes(300000, 13));
    auto ra = lib->ingest(tmp.path() / "a");
    auto rb = lib->ingest(tmp.path() / "b");
    EXPECT_TRUE(ra.ok() && rb.ok());
    a = std::move(ra).value();
    b = std::move(rb).value();
  }
};

TEST(CollectGarbage, KeepsSharedChunksAndRemovesTheRest) {
  TwoTrees t;
  auto stats = t.lib->collect_garbage({t.a.manifest_id}, seconds(0));
  ASSERT_TRUE(stats.ok()) << stats.error().to_string();
  EXPECT_EQ(stats->manifests_removed, 1u);
  EXPECT_TRUE(t.lib->has_manifest(t.a.manifest_id));
  EXPECT_FALSE(t.lib->has_manifest(t.b.manifest_id));
  const std::set<Digest> kept = chunks_of(t.a.manifest);
  for (const Digest& d : kept) EXPECT_TRUE(t.lib->chunks().contains(d));
  std::size_t only_b = 0;
  for (const Digest& d : chunks_of(t.b.manifest)) {
    if (kept.contains(d)) continue;
    ++only_b;
    EXPECT_FALSE(t.lib->chunks().contains(d));
  }
  EXPECT_GT(only_b, 0u);
  EXPECT_EQ(stats->chunks_removed, only_b);
  EXPECT_GT(stats->bytes_freed, 0u);
  EXPECT_EQ(assemble(t.lib->chunks(), *find_entry(t.a.manifest, "only-a.txt")), text_bytes(300000, 12));

  // Nothing left to collect; then nothing kept at all.
  auto again = t.lib->collect_garbage({t.a.manifest_id}, seconds(0));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->manifests_removed + again->chunks_removed, 0u);
  auto all = t.lib->collect_garbage({}, seconds(0));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->manifests_removed, 1u);
  EXPECT_EQ(count_files(t.tmp.path() / "lib"), 0u);
}

TEST(CollectGarbage, RespectsTheGracePeriod) {
  TwoTrees t;
  auto stats = t.lib->collect_garbage({}, seconds(3600));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->manifests_removed + stats->chunks_removed, 0u);
  EXPECT_TRUE(t.lib->has_manifest(t.b.manifest_id));
  for (const Digest& d : chunks_of(t.b.manifest)) EXPECT_TRUE(t.lib->chunks().contains(d));
}

TEST(CollectGarbage, DoesNotSweepTheChunksOfARunningIngest) {
  TwoTrees t;
  IngestOptions o;
  bool collected = false;
  o.after_read_for_test = [&](const fs::path&) {
    if (collected) return;
    collected = true;
    // Every manifest goes; the chunks this ingest already uses must stay.
    auto stats = t.lib->collect_garbage({}, seconds(0));
    EXPECT_TRUE(stats.ok());
  };
  auto r = t.lib->ingest(t.tmp.path() / "a", o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(collected);
  EXPECT_EQ(r->manifest_id, t.a.manifest_id);
  for (const Digest& d : chunks_of(r->manifest)) EXPECT_TRUE(t.lib->chunks().contains(d)) << d.hex();
  EXPECT_EQ(assemble(t.lib->chunks(), *find_entry(r->manifest, "shared.bin")), read(t.tmp.path() / "a" / "shared.bin"));
}

TEST(CollectGarbage, ACorruptManifestIsRemoved) {
  TwoTrees t;
  write(t.lib->manifest_path(t.b.manifest_id), "{}", 0600);
  EXPECT_EQ(t.lib->manifest_bytes(t.b.manifest_id).error().code, WbemCode::kFailed);
  auto stats = t.lib->collect_garbage({t.a.manifest_id, t.b.manifest_id}, seconds(0));
  ASSERT_TRUE(stats.ok()) << stats.error().to_string();
  EXPECT_EQ(stats->manifests_removed, 1u);
  EXPECT_FALSE(t.lib->has_manifest(t.b.manifest_id));
}

}  // namespace
}  // namespace pkgcast::content

namespace pkgcast::content {
namespace {

// What a crash mid-write leaves (a temporary chunk or manifest file) is swept once older than the grace period.
TEST(CollectGarbage, SweepsTemporaryFilesACrashLeft) {
  TwoTrees t;
  const fs::path lib = t.tmp.path() / "lib";
  const std::string hex = t.a.manifest_id.hex();
  const fs::path chunk_tmp = lib / "chunks" / hex.substr(0, 2) / (".tmp." + hex + ".abcdef");
  const fs::path manifest_tmp = lib / "manifests" / (hex + ".tmp.abcdef");
  write(chunk_tmp, "partial", 0600);
  write(manifest_tmp, "{\"form", 0600);
  auto young = t.lib->collect_garbage({t.a.manifest_id, t.b.manifest_id}, seconds(3600));
  ASSERT_TRUE(young.ok());
  EXPECT_TRUE(fs::exists(chunk_tmp));
  EXPECT_TRUE(fs::exists(manifest_tmp));
  auto old = t.lib->collect_garbage({t.a.manifest_id, t.b.manifest_id}, seconds(0));
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(fs::exists(chunk_tmp));
  EXPECT_FALSE(fs::exists(manifest_tmp));
  EXPECT_EQ(old->manifests_removed + old->chunks_removed, 0u);
}

// A killed ingest's temporary files (chunks, a manifest, a source record: one may be whole, never renamed into
// place) go when the library is opened again (at the server's start), whatever their age; the stored files stay.
TEST(CollectGarbage, OpeningTheLibrarySweepsTemporaryFiles) {
  TwoTrees t;
  const fs::path lib = t.tmp.path() / "lib";
  const std::string hex = t.a.manifest_id.hex();
  const fs::path chunk_tmp = lib / "chunks" / hex.substr(0, 2) / (".tmp." + hex + ".abcdef");
  const fs::path manifest_tmp = lib / "manifests" / (hex + ".tmp.abcdef");
  const fs::path source_tmp = lib / "sources" / (hex + ".tmp.ghijkl");
  write(chunk_tmp, "partial", 0600);
  write(manifest_tmp, "{\"form", 0600);
  write(source_tmp, "a whole record, never renamed", 0600);
  const std::size_t files = count_files(lib);
  t.lib.reset();
  auto again = open_library(lib);
  EXPECT_FALSE(fs::exists(chunk_tmp));
  EXPECT_FALSE(fs::exists(manifest_tmp));
  EXPECT_FALSE(fs::exists(source_tmp));
  EXPECT_EQ(count_files(lib), files - 3);
  EXPECT_EQ(assemble(again->chunks(), *find_entry(t.a.manifest, "shared.bin")), read(t.tmp.path() / "a" / "shared.bin"));
}

}  // namespace
}  // namespace pkgcast::content

namespace pkgcast::content {
namespace {

// Ingests that reuse old, unreferenced chunks while collections run in a loop: every manifest an ingest returned
// (and that is kept from then on) must still name only chunks that are stored and verify. The reused chunks are
// exactly what a collection would sweep if reuse (pin and touch) and sweep (re-check under the lock) could
// interleave.
TEST(CollectGarbage, RacesWithIngestsThatReuseOldChunks) {
  TempDir tmp;
  auto lib = open_library(tmp.path() / "lib");
  std::vector<std::string> files;
  for (int i = 0; i < 6; ++i) files.push_back(text_bytes(200000 + 1000 * i, 100 + static_cast<std::uint64_t>(i)));
  for (int i = 0; i < 6; ++i) write(tmp.path() / "old" / ("f" + std::to_string(i)), files[i]);
  auto old = lib->ingest(tmp.path() / "old");
  ASSERT_TRUE(old.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));  // its manifest and chunks are now past the grace

  // Trees made of the old files plus one new one each.
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 6; ++i) write(tmp.path() / ("t" + std::to_string(t)) / ("f" + std::to_string(i)), files[i]);
    write(tmp.path() / ("t" + std::to_string(t)) / "new", text_bytes(50000, 200 + static_cast<std::uint64_t>(t)));
  }

  // The old manifest is kept until an ingest has looked at its first file (and so found old chunks to reuse);
  // then it goes, and each ingest pauses once so that a collection runs while it holds reused chunks.
  std::mutex mu;  // guards kept (test state)
  std::vector<Digest> kept{old->manifest_id};
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::thread collector([&] {
    while (!done) {
      std::vector<Digest> keep;
      {
        std::lock_guard<std::mutex> lock(mu);
        keep = kept;
      }
      if (!lib->collect_garbage(keep, seconds(3)).ok()) ++failures;
    }
  });
  std::vector<std::thread> ingesters;
  for (int t = 0; t < 2; ++t) {
    ingesters.emplace_back([&, t] {
      for (int round = 0; round < 2; ++round) {
        IngestOptions options;
        bool paused = false;
        options.after_read_for_test = [&](const fs::path&) {
          if (paused) return;
          paused = true;
          {
            std::lock_guard<std::mutex> lock(mu);
            std::erase(kept, old->manifest_id);
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        };
        auto r = lib->ingest(tmp.path() / ("t" + std::to_string(2 * t + round)), options);
        if (!r.ok()) {
          ++failures;
          continue;
        }
        // Right away (before another ingest could store a swept chunk again), every chunk it names is there.
        for (const ManifestEntry& e : r->manifest.entries) {
          for (const ChunkRef& c : e.chunks) {
            if (!lib->chunks().contains(c.hash)) ++failures;
          }
        }
        std::lock_guard<std::mutex> lock(mu);
        kept.push_back(r->manifest_id);
      }
    });
  }
  for (std::thread& t : ingesters) t.join();
  done = true;
  collector.join();
  EXPECT_EQ(failures, 0);
  ASSERT_EQ(kept.size(), 4u);
  for (const Digest& id : kept) {
    auto bytes = lib->manifest_bytes(id);
    ASSERT_TRUE(bytes.ok()) << bytes.error().to_string();
    auto m = parse_manifest(*bytes);
    ASSERT_TRUE(m.ok());
    for (int i = 0; i < 6; ++i) {
      EXPECT_EQ(assemble(lib->chunks(), *find_entry(*m, "f" + std::to_string(i))), files[i]);
    }
  }
}

}  // namespace
}  // namespace pkgcast::content
