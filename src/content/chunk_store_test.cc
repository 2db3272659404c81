#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "content/content.h"
#include "content/disk.h"
#include "content/disk_chunk_store.h"
#include "content/test_util.h"

namespace pkgcast::content {
namespace {

using testing::as_bytes;
using testing::random_bytes;
using testing::TempDir;
using testing::text_bytes;

std::unique_ptr<ChunkStore> open_store(const std::filesystem::path& dir) {
  auto store = ChunkStore::open(dir);
  EXPECT_TRUE(store.ok()) << store.error().to_string();
  return std::move(store).value();
}

TEST(ChunkStore, PutGetLocateCompressibleAndRandom) {
  TempDir tmp;
  auto store = open_store(tmp.path() / "chunks");
  struct stat st {};
  ASSERT_EQ(::stat((tmp.path() / "chunks").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  const std::string text = text_bytes(100000, 1);
  const std::vector<std::uint8_t> noise = random_bytes(100000, 2);
  const Digest th = sha256(text), nh = sha256(noise);
  EXPECT_FALSE(store->contains(th));
  ASSERT_TRUE(store->put(th, as_bytes(text)).ok());
  ASSERT_TRUE(store->put(nh, noise).ok());
  ASSERT_TRUE(store->put(th, as_bytes(text)).ok());  // again: a no-op
  EXPECT_TRUE(store->contains(th));

  auto text_back = store->get(th);
  ASSERT_TRUE(text_back.ok()) << text_back.error().to_string();
  EXPECT_EQ(*text_back, text);
  auto noise_back = store->get(nh);
  ASSERT_TRUE(noise_back.ok());
  EXPECT_EQ(*noise_back, std::string(noise.begin(), noise.end()));

  auto t = store->locate(th);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->compressed);
  EXPECT_EQ(t->raw_size, text.size());
  EXPECT_LT(t->stored_size, text.size() / 2);
  EXPECT_EQ(t->file, tmp.path() / "chunks" / th.hex().substr(0, 2) / (th.hex() + ".zst"));
  ASSERT_EQ(::stat(t->file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto n = store->locate(nh);
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(n->compressed);
  EXPECT_EQ(n->raw_size, noise.size());
  EXPECT_EQ(n->stored_size, noise.size());

  // Opened as kept: the descriptor reads the stored file's bytes, whichever form it has.
  for (const auto& [hash, compressed] : {std::pair{th, true}, std::pair{nh, false}}) {
    auto opened = store->open_stored(hash);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    const UniqueFd owned(opened->fd);
    EXPECT_EQ(opened->compressed, compressed);
    const auto kept = store->locate(hash);
    ASSERT_TRUE(kept.ok());
    EXPECT_EQ(opened->stored_size, kept->stored_size);
    std::string bytes(opened->stored_size + 1, '\0');
    EXPECT_EQ(::pread(opened->fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(opened->stored_size));
    bytes.resize(opened->stored_size);
    EXPECT_EQ(bytes, *read_whole_file(kept->file, 1 << 20));
    EXPECT_NE(::fcntl(opened->fd, F_GETFD) & FD_CLOEXEC, 0);
  }

  std::set<Digest> listed;
  ASSERT_TRUE(store->for_each([&](const Digest& d, auto) { listed.insert(d); }).ok());
  EXPECT_EQ(listed, (std::set<Digest>{th, nh}));

  ASSERT_TRUE(store->remove(th).ok());
  ASSERT_TRUE(store->remove(th).ok());
  EXPECT_FALSE(store->contains(th));
  EXPECT_EQ(store->get(th).error().code, WbemCode::kNotFound);
  EXPECT_EQ(store->locate(th).error().code, WbemCode::kNotFound);
  EXPECT_EQ(store->open_stored(th).error().code, WbemCode::kNotFound);
}

TEST(ChunkStore, RefusesBytesThatDoNotMatch) {
  TempDir tmp;
  auto store = open_store(tmp.path());
  const std::string text = "hello";
  auto s = store->put(sha256("other"), as_bytes(text));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, WbemCode::kInvalidParameter);
  EXPECT_FALSE(store->contains(sha256("other")));
}

void flip_a_byte(const std::filesystem::path& file, std::streamoff at) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(at);
  char c = 0;
  f.get(c);
  f.seekp(at);
  f.put(static_cast<char>(c ^ 0x40));
}

TEST(ChunkStore, DetectsCorruptionAndRemovesTheFile) {
  TempDir tmp;
  auto store = open_store(tmp.path());
  const std::vector<std::uint8_t> noise = random_bytes(5000, 3);
  const std::string text = text_bytes(50000, 4);
  for (const auto& [hash, bytes] :
       {std::pair{sha256(noise), std::span<const std::uint8_t>(noise)}, std::pair{sha256(text), as_bytes(text)}}) {
    ASSERT_TRUE(store->put(hash, bytes).ok());
    auto stored = store->locate(hash);
    ASSERT_TRUE(stored.ok());
    flip_a_byte(stored->file, static_cast<std::streamoff>(stored->stored_size / 2));
    auto got = store->get(hash);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code, WbemCode::kFailed);
    EXPECT_NE(got.error().message.find(hash.hex()), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(stored->file));
    EXPECT_FALSE(store->contains(hash));
  }
}

TEST(ChunkStore, EmptyChunk) {
  TempDir tmp;
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store->put(sha256(""), {}).ok());
  auto got = store->get(sha256(""));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "");
}

}  // namespace
}  // namespace pkgcast::content

namespace pkgcast::content {
namespace {

TEST(ChunkStore, WriterCommitsManyChunksTogether) {
  testing::TempDir tmp;
  auto store = open_store(tmp.path());
  std::vector<std::string> chunks;
  for (int i = 0; i < 20; ++i) chunks.push_back(testing::text_bytes(1000 + i, static_cast<std::uint64_t>(i)));
  {
    auto writer = store->writer();
    for (const std::string& c : chunks) ASSERT_TRUE(writer->add(sha256(c), testing::as_bytes(c)).ok());
    auto bad = writer->add(sha256("x"), testing::as_bytes("y"));
    EXPECT_EQ(bad.error().code, WbemCode::kInvalidParameter);
    ASSERT_TRUE(writer->commit().ok());
    for (const std::string& c : chunks) EXPECT_EQ(*store->get(sha256(c)), c);
    // Added but not committed: gone with the writer.
    ASSERT_TRUE(writer->add(sha256("late"), testing::as_bytes("late")).ok());
    EXPECT_FALSE(store->contains(sha256("late")));
  }
  EXPECT_FALSE(store->contains(sha256("late")));
  std::size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(tmp.path())) files += e.is_regular_file();
  EXPECT_EQ(files, chunks.size());  // no temporary file left
}

// More chunks than one batch holds (8 files here, 1024 in an ingest): full batches commit on a background thread
// while the writer goes on, and commit() returns only when every one of them is durable under its name.
TEST(ChunkStore, BatchCommitsInTheBackground) {
  testing::TempDir tmp;
  DiskChunkStore store(tmp.path());
  std::vector<std::string> chunks;
  for (int i = 0; i < 30; ++i) chunks.push_back("chunk " + std::to_string(i));
  {
    ChunkWriteBatch batch(store, 8);
    for (const std::string& c : chunks) ASSERT_TRUE(batch.add(sha256(c), testing::as_bytes(c)).ok());
    ASSERT_TRUE(batch.commit().ok());
    for (const std::string& c : chunks) ASSERT_TRUE(store.contains(sha256(c))) << c;
    // Destroyed with a batch in flight and more pending: waits for the one, removes the rest.
    for (int i = 0; i < 12; ++i) {
      const std::string c = "late " + std::to_string(i);
      ASSERT_TRUE(batch.add(sha256(c), testing::as_bytes(c)).ok());
    }
  }
  EXPECT_FALSE(store.contains(sha256("late 11")));
  std::size_t temporaries = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(tmp.path())) {
    temporaries += e.path().filename().string().starts_with(".tmp.");
  }
  EXPECT_EQ(temporaries, 0u);
  for (const std::string& c : chunks) EXPECT_EQ(*store.get(sha256(c)), c);
}

// A background commit that fails (here: one of its temporary files vanished) fails the next commit().
TEST(ChunkStore, BackgroundCommitErrorsReachCommit) {
  testing::TempDir tmp;
  DiskChunkStore store(tmp.path());
  ChunkWriteBatch batch(store, 8);
  for (int i = 0; i < 7; ++i) {
    const std::string c = "chunk " + std::to_string(i);
    ASSERT_TRUE(batch.add(sha256(c), testing::as_bytes(c)).ok());
  }
  for (const auto& e : std::filesystem::recursive_directory_iterator(tmp.path())) {
    if (e.path().filename().string().starts_with(".tmp.")) {
      std::filesystem::remove(e.path());
      break;
    }
  }
  ASSERT_TRUE(batch.add(sha256("chunk 7"), testing::as_bytes("chunk 7")).ok());  // hands the 8 to the background
  const Status s = batch.commit();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cannot rename"), std::string::npos) << s.error().to_string();
}

}  // namespace
}  // namespace pkgcast::content
