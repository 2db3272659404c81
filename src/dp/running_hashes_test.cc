// RunningHashes: a file's digest exists only when every byte of it came through once, in order, each chunk right.
#include "dp/running_hashes.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

namespace pkgcast::dp {
namespace {

std::string random_text(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// A file cut into pieces of the given sizes (the last takes the rest).
struct Cut {
  std::string data;
  std::vector<std::pair<std::uint64_t, std::string>> pieces;  // offset, bytes

  Cut(std::size_t size, const std::vector<std::size_t>& sizes, std::uint64_t seed) : data(random_text(size, seed)) {
    std::size_t at = 0;
    for (std::size_t i = 0; at < size; ++i) {
      const std::size_t n = i < sizes.size() ? std::min(sizes[i], size - at) : size - at;
      pieces.emplace_back(at, data.substr(at, n));
      at += n;
    }
  }
  content::Digest hash(std::size_t i) const { return content::sha256(pieces[i].second); }
};

TEST(RunningHashes, ChunksInOrderGiveTheFilesDigest) {
  const Cut file(300'000, {70'000, 1, 63, 64, 65'536, 100'000}, 1);
  RunningHashes running({0, file.data.size()}, 1 << 20);
  for (std::size_t i = 0; i < file.pieces.size(); ++i) {
    const auto checked = running.check_at(1, file.pieces[i].first, file.pieces[i].second, file.hash(i));
    EXPECT_TRUE(checked.right);
    EXPECT_TRUE(checked.taken);
    if (i + 1 < file.pieces.size()) {
      EXPECT_FALSE(running.digest(1));
    }
  }
  EXPECT_EQ(running.digest(1), content::sha256(file.data));
  EXPECT_EQ(running.waiting_bytes(), 0u);
}

TEST(RunningHashes, ChunksOutOfOrderWaitAndFollowOn) {
  const Cut file(200'000, {50'000, 50'000, 50'000}, 2);
  RunningHashes running({file.data.size()}, 1 << 20);
  // The last two first: checked on their own, not taken, then added and kept until the first comes.
  for (std::size_t i : {3u, 1u}) {
    const auto checked = running.check_at(0, file.pieces[i].first, file.pieces[i].second, file.hash(i));
    EXPECT_TRUE(checked.right);
    EXPECT_FALSE(checked.taken);
    running.add(0, file.pieces[i].first, file.pieces[i].second);
  }
  EXPECT_EQ(running.waiting_bytes(), 100'000u);
  ASSERT_TRUE(running.check_at(0, 0, file.pieces[0].second, file.hash(0)).taken);
  EXPECT_EQ(running.waiting_bytes(), 50'000u);  // piece 3 still waits for piece 2
  EXPECT_FALSE(running.digest(0));
  running.add(0, file.pieces[2].first, file.pieces[2].second);
  EXPECT_EQ(running.waiting_bytes(), 0u);
  EXPECT_EQ(running.digest(0), content::sha256(file.data));
}

TEST(RunningHashes, AWrongChunkIsRefusedAndGivesItsFileUp) {
  const Cut file(100'000, {40'000}, 3);
  RunningHashes running({file.data.size()}, 1 << 20);
  std::string bad = file.pieces[0].second;
  bad[123] ^= 1;
  const auto checked = running.check_at(0, 0, bad, file.hash(0));
  EXPECT_FALSE(checked.right);
  EXPECT_FALSE(checked.taken);
  // The right bytes from another source: right, but the file's hash held the wrong ones, so it is read from disk.
  EXPECT_TRUE(running.check_at(0, 0, file.pieces[0].second, file.hash(0)).right);
  running.add(0, 0, file.pieces[0].second);
  running.add(0, file.pieces[1].first, file.pieces[1].second);
  EXPECT_FALSE(running.digest(0));
  // A wrong chunk out of order is refused too, and leaves the file's hash alone.
  RunningHashes other({file.data.size()}, 1 << 20);
  std::string bad_second = file.pieces[1].second;
  bad_second[0] ^= 1;
  EXPECT_FALSE(other.check_at(0, file.pieces[1].first, bad_second, file.hash(1)).right);
  EXPECT_TRUE(other.check_at(0, 0, file.pieces[0].second, file.hash(0)).taken);
  EXPECT_TRUE(other.check_at(0, file.pieces[1].first, file.pieces[1].second, file.hash(1)).taken);
  EXPECT_EQ(other.digest(0), content::sha256(file.data));
}

TEST(RunningHashes, WhatWouldPassTheBoundGivesTheFileUpAndFreesItsBytes) {
  const Cut a(90'000, {30'000, 30'000}, 4), b(90'000, {30'000, 30'000}, 5);
  RunningHashes running({a.data.size(), b.data.size()}, 50'000);
  running.add(0, a.pieces[2].first, a.pieces[2].second);  // waits: 30,000 of 50,000
  running.add(1, b.pieces[2].first, b.pieces[2].second);  // would pass the bound: file 1 is given up
  EXPECT_EQ(running.waiting_bytes(), 30'000u);
  for (std::size_t i : {0u, 1u}) {
    running.add(0, a.pieces[i].first, a.pieces[i].second);
    running.add(1, b.pieces[i].first, b.pieces[i].second);
  }
  EXPECT_EQ(running.digest(0), content::sha256(a.data));
  EXPECT_FALSE(running.digest(1));
  EXPECT_EQ(running.waiting_bytes(), 0u);
  // Giving up frees what a file kept waiting.
  RunningHashes other({a.data.size()}, 1 << 20);
  other.add(0, a.pieces[1].first, a.pieces[1].second);
  EXPECT_EQ(other.waiting_bytes(), 30'000u);
  other.give_up(0);
  EXPECT_EQ(other.waiting_bytes(), 0u);
  other.add(0, a.pieces[0].first, a.pieces[0].second);
  other.add(0, a.pieces[2].first, a.pieces[2].second);
  EXPECT_FALSE(other.digest(0));
}

TEST(RunningHashes, AGapAPlaceFilledTwiceOrTooManyBytesGiveNoDigest) {
  const Cut file(60'000, {20'000, 20'000}, 6);
  {
    RunningHashes running({file.data.size()}, 1 << 20);
    running.add(0, 0, file.pieces[0].second);
    running.add(0, file.pieces[2].first, file.pieces[2].second);
    EXPECT_FALSE(running.digest(0));  // piece 1 never came
  }
  {
    RunningHashes running({file.data.size()}, 1 << 20);
    running.add(0, 0, file.pieces[0].second);
    running.add(0, 0, file.pieces[0].second);
    running.add(0, file.pieces[1].first, file.pieces[1].second);
    running.add(0, file.pieces[2].first, file.pieces[2].second);
    EXPECT_FALSE(running.digest(0));
  }
  {
    RunningHashes running({file.data.size() - 1}, 1 << 20);  // the manifest says one byte less
    for (const auto& [offset, bytes] : file.pieces) running.add(0, offset, bytes);
    EXPECT_FALSE(running.digest(0));
  }
}

// Places that overlap (a manifest whose chunk sizes do not tile the file) never give a digest, whatever the order.
TEST(RunningHashes, OverlappingPlacesGiveNoDigest) {
  const std::string data = random_text(30, 7);
  const auto piece = [&](std::size_t at, std::size_t n) { return std::string_view(data).substr(at, n); };
  {
    RunningHashes running({30}, 1 << 20);
    running.add(0, 10, piece(10, 10));  // waits
    running.add(0, 0, piece(0, 20));    // appended: now 20 bytes in, the waiting one starts at 10
    running.add(0, 20, piece(20, 10));
    EXPECT_FALSE(running.digest(0));
  }
  {
    RunningHashes running({30}, 1 << 20);
    running.add(0, 20, piece(20, 10));
    running.add(0, 15, piece(15, 10));  // overlaps the one waiting after it
    running.add(0, 0, piece(0, 15));
    EXPECT_FALSE(running.digest(0));
    EXPECT_EQ(running.waiting_bytes(), 0u);
  }
  {
    RunningHashes running({30}, 1 << 20);
    running.add(0, 10, piece(10, 10));
    running.add(0, 15, piece(15, 15));  // overlaps the one waiting before it
    running.add(0, 0, piece(0, 10));
    EXPECT_FALSE(running.digest(0));
  }
}

TEST(RunningHashes, ManyWorkersOnManyFiles) {
  std::vector<Cut> files;
  std::vector<std::uint64_t> sizes;
  for (std::uint64_t f = 0; f < 8; ++f) {
    files.emplace_back(100'000 + 7'919 * f, std::vector<std::size_t>(40, 2'000 + 97 * f), 10 + f);
    sizes.push_back(files.back().data.size());
  }
  struct Task {
    std::uint32_t file;
    std::size_t piece;
  };
  std::vector<Task> tasks;
  for (std::uint32_t f = 0; f < files.size(); ++f) {
    for (std::size_t i = 0; i < files[f].pieces.size(); ++i) tasks.push_back({f, i});
  }
  RunningHashes running(sizes, 64 << 20);
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      for (std::size_t t; (t = next.fetch_add(1)) < tasks.size();) {
        const auto& [f, i] = tasks[t];
        const auto& [offset, bytes] = files[f].pieces[i];
        const auto checked = running.check_at(f, offset, bytes, files[f].hash(i));
        ASSERT_TRUE(checked.right);
        if (!checked.taken) running.add(f, offset, bytes);
      }
    });
  }
  for (auto& w : workers) w.join();
  for (std::uint32_t f = 0; f < files.size(); ++f) EXPECT_EQ(running.digest(f), content::sha256(files[f].data));
  EXPECT_EQ(running.waiting_bytes(), 0u);
}

}  // namespace
}  // namespace pkgcast::dp
