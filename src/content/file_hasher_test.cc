#include "content/file_hasher.h"

#include <gtest/gtest.h>

#include <iostream>
#include <random>
#include <vector>

namespace pkgcast::content {
namespace {

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint8_t> out(n);
  for (std::uint8_t& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

// Cuts `data` into chunks of the given sizes (the last takes the rest) and checks every chunk's digest and the
// file's against OpenSSL, for both engines.
void check_cuts(const std::vector<std::uint8_t>& data, const std::vector<std::size_t>& sizes) {
  for (const FileHasher::Engine engine : {FileHasher::Engine::kBest, FileHasher::Engine::kOpenSsl}) {
    FileHasher hasher(engine);
    std::size_t at = 0;
    for (std::size_t i = 0; i <= sizes.size(); ++i) {
      const std::size_t n = i < sizes.size() ? std::min(sizes[i], data.size() - at) : data.size() - at;
      const std::span<const std::uint8_t> chunk(data.data() + at, n);
      ASSERT_EQ(hasher.add_chunk(chunk), sha256(chunk)) << "chunk " << i << " at " << at << " of " << n;
      at += n;
    }
    ASSERT_EQ(hasher.finish(), sha256(data)) << "file of " << data.size();
  }
}

TEST(FileHasher, KnownVectors) {
  FileHasher empty;
  EXPECT_EQ(empty.finish().hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  FileHasher abc;
  const std::uint8_t bytes[] = {'a', 'b', 'c'};
  EXPECT_EQ(abc.add_chunk(bytes).hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(abc.finish().hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// Every length around the block and padding boundaries, as one chunk and split so that the file's blocks start
// at every offset inside the chunk's.
TEST(FileHasher, EqualsOpenSslAroundBlockBoundaries) {
  const std::vector<std::uint8_t> data = random_bytes(600, 1);
  for (std::size_t n = 0; n <= 300; ++n) {
    const std::vector<std::uint8_t> prefix(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    check_cuts(prefix, {});
    for (std::size_t first : {std::size_t{1}, std::size_t{55}, std::size_t{56}, std::size_t{63}, std::size_t{64},
                              std::size_t{65}, std::size_t{127}}) {
      if (first < n) check_cuts(prefix, {first, 0, 64, 1});
    }
  }
}

TEST(FileHasher, EqualsOpenSslOnRandomCuts) {
  std::mt19937_64 rng(2026);
  for (int round = 0; round < 40; ++round) {
    const std::vector<std::uint8_t> data = random_bytes(rng() % (1u << 20), rng());
    std::vector<std::size_t> sizes;
    for (std::size_t total = 0; total < data.size();) {
      const std::size_t n = rng() % 4 == 0 ? rng() % 200 : rng() % 100'000;
      sizes.push_back(n);
      total += n;
    }
    check_cuts(data, sizes);
  }
}

// Chunks whose digests are known already go in with append(); the file's digest is the same, whatever the mix.
TEST(FileHasher, AppendMixedWithChunksEqualsOpenSsl) {
  std::mt19937_64 rng(29);
  for (int round = 0; round < 40; ++round) {
    const std::vector<std::uint8_t> data = random_bytes(rng() % 300'000, rng());
    for (const FileHasher::Engine engine : {FileHasher::Engine::kBest, FileHasher::Engine::kOpenSsl}) {
      FileHasher hasher(engine);
      for (std::size_t at = 0; at < data.size();) {
        const std::size_t n = std::min<std::size_t>(data.size() - at, rng() % 3 == 0 ? rng() % 130 : rng() % 70'000);
        const std::span<const std::uint8_t> piece(data.data() + at, n);
        if (rng() % 2 == 0) {
          hasher.append(piece);
        } else {
          ASSERT_EQ(hasher.add_chunk(piece), sha256(piece));
        }
        at += n;
      }
      ASSERT_EQ(hasher.finish(), sha256(data)) << "round " << round;
    }
  }
}

TEST(FileHasher, ReportsWhetherAccelerated) {
  // Informational: on a CPU without SHA extensions both engines are OpenSSL and the tests above compare it with
  // itself.
  std::cout << "SHA extensions " << (FileHasher::accelerated() ? "used" : "not available") << "\n";
}

}  // namespace
}  // namespace pkgcast::content
