#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>

#include "content/library_test_util.h"

namespace pkgcast::content {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the helpers of this test
namespace fs = std::filesystem;

const std::string kUnicodeName =
    "a/\xc3\xbcnic\xc3\xb6"
    "de \xe2\x9c\x93.txt";

// A tree with every kind of entry an ingest keeps.
void make_tree(const fs::path& src, std::size_t big_size = 6 << 20) {
  fs::create_directories(src / "a" / "b");  // "a/b" stays empty
  write(src / "empty", "");
  write(src / "a" / "run.sh", "#!/bin/sh\necho hi\n", 0755);
  write(src / kUnicodeName,
        "gr\xc3\xbc\xc3\x9f"
        "e\n");
  const auto noise = random_bytes(big_size / 2, 7);
  write(src / "big.bin", std::string(noise.begin(), noise.end()) + text_bytes(big_size - big_size / 2, 8));
  fs::create_symlink("a/run.sh", src / "link");
  fs::create_symlink("../big.bin", src / "a" / "up");
  ::chmod((src / "a").c_str(), 0750);
}

TEST(Ingest, KeepsEveryKindOfEntry) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src";
  make_tree(src);
  auto lib = open_library(tmp.path() / "lib");
  auto r = lib->ingest(src);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const Manifest& m = r->manifest;

  std::vector<std::string> paths;
  for (const ManifestEntry& e : m.entries) paths.push_back(e.path);
  EXPECT_EQ(paths,
            (std::vector<std::string>{"a", "a/b", "a/run.sh", "a/up", kUnicodeName, "big.bin", "empty", "link"}));
  EXPECT_EQ(find_entry(m, "a")->mode, 0750u);
  EXPECT_EQ(find_entry(m, "a/b")->type, EntryType::kDirectory);
  EXPECT_EQ(find_entry(m, "a/run.sh")->mode, 0755u);
  EXPECT_EQ(find_entry(m, "empty")->size, 0u);
  EXPECT_TRUE(find_entry(m, "empty")->chunks.empty());
  EXPECT_EQ(find_entry(m, "empty")->sha256, sha256(""));
  EXPECT_EQ(find_entry(m, "link")->type, EntryType::kSymlink);
  EXPECT_EQ(find_entry(m, "link")->target, "a/run.sh");
  EXPECT_EQ(find_entry(m, "a/up")->target, "../big.bin");
  struct stat st {};
  ASSERT_EQ(::lstat((src / "big.bin").c_str(), &st), 0);
  EXPECT_GE(m.source_date, Micros{st.st_mtim.tv_sec} * 1'000'000 + st.st_mtim.tv_nsec / 1000);

  for (const std::string path : {"a/run.sh", kUnicodeName.c_str(), "big.bin"}) {
    const ManifestEntry* e = find_entry(m, path);
    ASSERT_NE(e, nullptr) << path;
    const std::string bytes = read(src / path);
    EXPECT_EQ(e->size, bytes.size());
    EXPECT_EQ(e->sha256, sha256(bytes));
    EXPECT_EQ(assemble(lib->chunks(), *e), bytes) << path;
  }
  EXPECT_GT(find_entry(m, "big.bin")->chunks.size(), 40u);
  EXPECT_EQ(r->source_bytes, m.total_size());
  EXPECT_EQ(r->new_chunk_count, r->chunk_count);            // nothing repeats in this tree
  EXPECT_LT(r->compressed_bytes, r->source_bytes * 3 / 4);  // the text half compresses

  // The manifest is stored under its id, verified, and reads back as it was.
  EXPECT_EQ(r->manifest_id, manifest_id(m));
  EXPECT_TRUE(lib->has_manifest(r->manifest_id));
  EXPECT_EQ(lib->manifest_path(r->manifest_id), tmp.path() / "lib" / "manifests" / r->manifest_id.hex());
  auto bytes = lib->manifest_bytes(r->manifest_id);
  ASSERT_TRUE(bytes.ok());
  auto parsed = parse_manifest(*bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, m);
  EXPECT_EQ(lib->manifest_bytes(sha256("nothing")).error().code, WbemCode::kNotFound);
}

TEST(Ingest, SecondIngestAddsNothingAndASmallEditAddsLittle) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src";
  make_tree(src);
  auto lib = open_library(tmp.path() / "lib");
  auto first = lib->ingest(src);
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  auto second = lib->ingest(src);
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  EXPECT_EQ(second->manifest_id, first->manifest_id);
  EXPECT_EQ(second->new_chunk_count, 0u);
  EXPECT_EQ(second->new_chunk_bytes, 0u);
  EXPECT_EQ(second->compressed_bytes, first->compressed_bytes);

  // Rewrite 1% of big.bin in its middle.
  std::string big = read(src / "big.bin");
  for (std::size_t i = 0; i < big.size() / 100; ++i) big[big.size() / 2 + i] ^= 0x5a;
  write(src / "big.bin", big);
  auto third = lib->ingest(src);
  ASSERT_TRUE(third.ok()) << third.error().to_string();
  EXPECT_NE(third->manifest_id, first->manifest_id);
  EXPECT_GE(third->new_chunk_count, 1u);
  EXPECT_LE(third->new_chunk_count, 4u);
  EXPECT_LT(third->new_chunk_bytes, big.size() / 10);
  EXPECT_EQ(assemble(lib->chunks(), *find_entry(third->manifest, "big.bin")), big);
}

void expect_refused(Library& lib, const fs::path& src, WbemCode code, std::string_view words,
                    const IngestOptions& options = {}) {
  auto r = lib.ingest(src, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, code) << r.error().to_string();
  EXPECT_NE(r.error().message.find(words), std::string::npos) << r.error().to_string();
}

TEST(Ingest, RefusesLinksOutOfTheTree) {
  TempDir tmp;
  auto lib = open_library(tmp.path() / "lib");
  const fs::path src = tmp.path() / "src";
  make_tree(src);
  fs::create_symlink("../../etc/passwd", src / "a" / "escape");
  expect_refused(*lib, src, WbemCode::kInvalidParameter, "a/escape");
  fs::remove(src / "a" / "escape");
  fs::create_symlink("/etc/passwd", src / "abs");
  expect_refused(*lib, src, WbemCode::kInvalidParameter, "absolute");
  fs::remove(src / "abs");
  fs::create_symlink("b/../../..", src / "a" / "sneaky");
  expect_refused(*lib, src, WbemCode::kInvalidParameter, "sneaky");
  EXPECT_EQ(count_files(tmp.path() / "lib" / "manifests"), 0u);
}

TEST(Ingest, RefusesFifosAndBadNames) {
  TempDir tmp;
  auto lib = open_library(tmp.path() / "lib");
  const fs::path src = tmp.path() / "src";
  make_tree(src);
  ASSERT_EQ(::mkfifo((src / "a" / "pipe").c_str(), 0644), 0);
  expect_refused(*lib, src, WbemCode::kInvalidParameter, "a/pipe': it is a fifo");
  fs::remove(src / "a" / "pipe");
  write(src / "bad\xff.txt", "x");
  expect_refused(*lib, src, WbemCode::kInvalidParameter, "bad\\xff.txt': the name is not valid UTF-8");
  fs::remove(src / "bad\xff.txt");
  write(src / "back\\slash", "x");
  expect_refused(*lib, src, WbemCode::kInvalidParameter, "backslash");
  fs::remove(src / "back\\slash");
  EXPECT_EQ(count_files(tmp.path() / "lib" / "manifests"), 0u);
  expect_refused(*lib, src / "empty", WbemCode::kInvalidParameter, "not a directory");
  expect_refused(*lib, tmp.path() / "missing", WbemCode::kNotFound, "missing");
  EXPECT_TRUE(lib->ingest(src).ok());
}

TEST(Ingest, SeesAFileChangedWhileItWasRead) {
  TempDir tmp;
  auto lib = open_library(tmp.path() / "lib");
  const fs::path src = tmp.path() / "src";
  make_tree(src);
  IngestOptions grow;
  grow.after_read_for_test = [](const fs::path& file) {
    if (file.filename() == "big.bin") std::ofstream(file, std::ios::app) << "more";
  };
  expect_refused(*lib, src, WbemCode::kInvalidOperation, "changed while it was read", grow);

  IngestOptions retime;  // same size, new mtime
  retime.after_read_for_test = [](const fs::path& file) {
    if (file.filename() == "run.sh") {
      const struct timespec times[2] = {{0, UTIME_NOW}, {12345, 0}};
      ::utimensat(AT_FDCWD, file.c_str(), times, 0);
    }
  };
  expect_refused(*lib, src, WbemCode::kInvalidOperation, "run.sh' changed while it was read", retime);

  IngestOptions add_file;  // a new entry in a directory already walked
  add_file.after_read_for_test = [&](const fs::path& file) {
    if (file.filename() == "empty") write(src / "a" / "b" / "late", "x");
  };
  expect_refused(*lib, src, WbemCode::kInvalidOperation, "changed while it was read", add_file);
  EXPECT_EQ(count_files(tmp.path() / "lib" / "manifests"), 0u);
}

// A few files to read get a thread each, beyond the threads allowed: three files read with two allowed are read
// at once (each waits in the hook, after its read, until all three have been read; two threads could not get there).
// With one thread allowed, they are read one after the other.
TEST(Ingest, AFewFilesToReadAreReadAtOnce) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src";
  for (int i = 0; i < 3; ++i) {
    const auto bytes = random_bytes(300'000, 70 + static_cast<std::uint64_t>(i));
    write(src / ("f" + std::to_string(i)), std::string(bytes.begin(), bytes.end()));
  }
  for (const std::size_t allowed : {2u, 1u}) {
    SCOPED_TRACE(allowed);
    std::mutex mu;
    std::condition_variable all_read;
    int arrived = 0;  // files read so far
    int inside = 0;   // threads in the hook now
    int most_at_once = 0;
    IngestOptions options;
    options.threads = allowed;
    options.reuse_unchanged_files = false;
    options.after_read_for_test = [&](const fs::path&) {
      std::unique_lock<std::mutex> lock(mu);
      ++arrived;
      most_at_once = std::max(most_at_once, ++inside);
      all_read.notify_all();
      all_read.wait_for(lock, std::chrono::seconds(allowed == 1 ? 0 : 10), [&] { return arrived == 3; });
      --inside;
    };
    TempDir lib_dir;
    auto lib = open_library(lib_dir.path() / "lib");
    auto r = lib->ingest(src, options);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(most_at_once, allowed == 1 ? 1 : 3);
  }
}

// Several reading threads change the time an ingest takes, nothing it records: the same manifest, the same counts,
// a chunk two files share stored once; and a file changed while it was read fails the ingest and stores nothing.
TEST(Ingest, ThreadsChangeNothingButTheTime) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src";
  make_tree(src, 3 << 20);
  const auto shared = random_bytes(700'000, 41);
  for (int i = 0; i < 24; ++i) {
    const auto own = random_bytes(static_cast<std::size_t>(1000 + 37'000 * i), 50 + static_cast<std::uint64_t>(i));
    std::string bytes(own.begin(), own.end());
    if (i % 3 == 0) bytes += std::string(shared.begin(), shared.end());  // dedup across files read at once
    write(src / ("d" + std::to_string(i % 4)) / ("f" + std::to_string(i)), bytes);
  }
  const fs::path f11 = src / "d3" / "f11";
  struct stat f11_st {};
  ASSERT_EQ(::stat(f11.c_str(), &f11_st), 0);
  const struct timespec f11_mtime = f11_st.st_mtim;
  IngestOptions one;
  one.threads = 1;
  auto lib1 = open_library(tmp.path() / "lib1");
  auto r1 = lib1->ingest(src, one);
  ASSERT_TRUE(r1.ok()) << r1.error().to_string();
  for (const std::size_t threads : {2u, 4u, 64u}) {
    SCOPED_TRACE(threads);
    IngestOptions many;
    many.threads = threads;
    many.reuse_unchanged_files = false;
    TempDir lib_dir;
    auto lib = open_library(lib_dir.path() / "lib");
    auto r = lib->ingest(src, many);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->manifest_id, r1->manifest_id);
    EXPECT_EQ(r->source_bytes, r1->source_bytes);
    EXPECT_EQ(r->compressed_bytes, r1->compressed_bytes);
    EXPECT_EQ(r->chunk_count, r1->chunk_count);
    EXPECT_EQ(r->new_chunk_count, r1->new_chunk_count);
    EXPECT_EQ(r->new_chunk_bytes, r1->new_chunk_bytes);
    EXPECT_EQ(count_files(lib_dir.path() / "lib" / "chunks"), r1->new_chunk_count);
    for (const ManifestEntry& e : r->manifest.entries) {
      if (e.type == EntryType::kFile) {
        EXPECT_EQ(assemble(lib->chunks(), e), read(src / e.path)) << e.path;
      }
    }

    IngestOptions grow = many;
    grow.after_read_for_test = [](const fs::path& file) {
      if (file.filename() == "f11") std::ofstream(file, std::ios::app) << "more";
    };
    TempDir failed_dir;
    auto failed_lib = open_library(failed_dir.path() / "lib");
    expect_refused(*failed_lib, src, WbemCode::kInvalidOperation, "f11' changed while it was read", grow);
    EXPECT_EQ(count_files(failed_dir.path() / "lib" / "manifests"), 0u);
    EXPECT_EQ(count_files(failed_dir.path() / "lib" / "chunks"), 0u);
    // Put back as it was for the next round, its time included (the manifest's SourceDate is the latest mtime).
    std::string bytes = read(f11);
    bytes.resize(bytes.size() - 4);
    write(f11, bytes);
    const struct timespec times[2] = {{0, UTIME_OMIT}, f11_mtime};
    ASSERT_EQ(::utimensat(AT_FDCWD, f11.c_str(), times, 0), 0);
  }
}

TEST(Ingest, LimitsAndDeadline) {
  TempDir tmp;
  auto lib = open_library(tmp.path() / "lib");
  const fs::path src = tmp.path() / "src";
  make_tree(src, 1 << 20);
  IngestOptions few;
  few.limits.max_entries = 3;
  expect_refused(*lib, src, WbemCode::kQuotaViolation, "entries", few);
  IngestOptions small;
  small.limits.max_total_size = 1000;
  expect_refused(*lib, src, WbemCode::kQuotaViolation, "add up", small);
  IngestOptions late;
  late.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  expect_refused(*lib, src, WbemCode::kTimedOut, "deadline", late);
  IngestOptions bad_params;
  bad_params.chunking.avg_size = 60000;
  expect_refused(*lib, src, WbemCode::kInvalidParameter, "chunking", bad_params);
}

TEST(Ingest, OtherChunkingParametersAreRecorded) {
  TempDir tmp;
  auto lib = open_library(tmp.path() / "lib");
  const fs::path src = tmp.path() / "src";
  make_tree(src, 1 << 20);
  IngestOptions o;
  o.chunking = {.min_size = 2048, .avg_size = 8192, .max_size = 32768};
  auto r = lib->ingest(src, o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->manifest.chunking, o.chunking);
  EXPECT_GT(find_entry(r->manifest, "big.bin")->chunks.size(), 60u);
  EXPECT_EQ(assemble(lib->chunks(), *find_entry(r->manifest, "big.bin")), read(src / "big.bin"));
}


// A file is read in steps while its chunks are cut: the chunks must be those of the whole file cut in memory, also
// when a chunk may be larger than a read step or the read buffer.
TEST(Ingest, StreamedCutsAreThoseOfTheWholeFile) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src";
  const auto noise = random_bytes(5 << 20, 11);
  const std::string bytes = std::string(noise.begin(), noise.end()) + text_bytes((9 << 20) + 12345, 12);
  write(src / "big.bin", bytes);
  const std::span<const std::uint8_t> all(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  for (const ChunkingParams params : {ChunkingParams{}, ChunkingParams{.min_size = 1 << 20, .avg_size = 2 << 20,
                                                                        .max_size = 6 << 20}}) {
    std::vector<std::uint32_t> expected;
    const Chunker chunker(params);
    for (std::size_t at = 0; at < all.size(); at += expected.back()) {
      expected.push_back(static_cast<std::uint32_t>(chunker.next_cut(all.subspan(at), true)));
    }
    auto lib = open_library(tmp.path() / ("lib" + std::to_string(params.max_size)));
    IngestOptions o;
    o.chunking = params;
    auto r = lib->ingest(src, o);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    const ManifestEntry* e = find_entry(r->manifest, "big.bin");
    ASSERT_NE(e, nullptr);
    std::vector<std::uint32_t> sizes;
    for (const ChunkRef& c : e->chunks) sizes.push_back(c.size);
    EXPECT_EQ(sizes, expected) << params.max_size;
    EXPECT_EQ(e->sha256, sha256(bytes));
  }
}

}  // namespace
}  // namespace pkgcast::content
