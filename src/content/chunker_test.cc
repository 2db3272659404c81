#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <random>
#include <set>

#include "content/content.h"
#include "content/test_util.h"

namespace pkgcast::content {
namespace {

using testing::random_bytes;

// Cuts `data` the way an ingest does, feeding at most `window` bytes at a time (at least max_size).
std::vector<std::size_t> cut_all(const Chunker& c, std::span<const std::uint8_t> data, std::size_t window) {
  std::vector<std::size_t> sizes;
  std::size_t at = 0;
  while (at < data.size()) {
    const std::size_t n = std::min(window, data.size() - at);
    const std::size_t cut = c.next_cut(data.subspan(at, n), at + n == data.size());
    EXPECT_GT(cut, 0u);
    if (cut == 0) break;
    sizes.push_back(cut);
    at += cut;
  }
  return sizes;
}

std::multiset<Digest> chunk_hashes(std::span<const std::uint8_t> data, const std::vector<std::size_t>& sizes) {
  std::multiset<Digest> out;
  std::size_t at = 0;
  for (std::size_t s : sizes) {
    out.insert(sha256(data.subspan(at, s)));
    at += s;
  }
  return out;
}

TEST(Chunker, DeterministicAndIndependentOfTheWindow) {
  const auto data = random_bytes(3 << 20, 1);
  const Chunker a, b;
  const auto whole = cut_all(a, data, data.size());
  EXPECT_EQ(whole, cut_all(b, data, data.size()));
  EXPECT_EQ(whole, cut_all(a, data, 256 * 1024));
  EXPECT_EQ(whole, cut_all(a, data, 300 * 1024 + 7));
}

TEST(Chunker, SizesStayWithinBoundsAndNearTheAverage) {
  const auto data = random_bytes(16 << 20, 2);
  const ChunkingParams p;
  const auto sizes = cut_all(Chunker(p), data, data.size());
  std::size_t total = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_LE(sizes[i], p.max_size);
    if (i + 1 < sizes.size()) {
      EXPECT_GE(sizes[i], p.min_size);
    }
    total += sizes[i];
  }
  EXPECT_EQ(total, data.size());
  const double mean = static_cast<double>(total) / static_cast<double>(sizes.size());
  EXPECT_GT(mean, 0.6 * p.avg_size);
  EXPECT_LT(mean, 1.6 * p.avg_size);
}

TEST(Chunker, NeedsMaxSizeBytesUnlessAtTheEnd) {
  const auto data = random_bytes(300 * 1024, 3);
  const Chunker c;
  const std::span<const std::uint8_t> all(data);
  EXPECT_EQ(c.next_cut(all.first(100 * 1024), false), 0u);
  EXPECT_GT(c.next_cut(all.first(100 * 1024), true), 0u);
  EXPECT_EQ(c.next_cut(all.first(10), true), 10u);  // a short last chunk
  EXPECT_EQ(c.next_cut(all.first(0), true), 0u);
  EXPECT_LE(c.next_cut(all, false), 256u * 1024);
}

TEST(Chunker, ConstantBytesCutWithinBounds) {
  const std::vector<std::uint8_t> zeros(2 << 20, 0);
  const auto sizes = cut_all(Chunker(), zeros, zeros.size());
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    EXPECT_GE(sizes[i], 16u * 1024);
    EXPECT_LE(sizes[i], 256u * 1024);
  }
}

TEST(Chunker, AnInsertionMovesOnlyTheChunksAroundIt) {
  const auto data = random_bytes(10 << 20, 4);
  std::vector<std::uint8_t> edited = data;
  const auto extra = random_bytes(100, 5);
  edited.insert(edited.begin() + (5 << 20), extra.begin(), extra.end());
  const Chunker c;
  const auto before = chunk_hashes(data, cut_all(c, data, data.size()));
  const auto after = chunk_hashes(edited, cut_all(c, edited, edited.size()));
  std::size_t fresh = 0;
  for (const Digest& d : after) fresh += before.count(d) == 0 ? 1 : 0;
  EXPECT_LE(fresh, 3u) << "of " << after.size();
  EXPECT_GE(fresh, 1u);
}

TEST(Chunker, SmallParameters) {
  const ChunkingParams p{.min_size = 256, .avg_size = 1024, .max_size = 4096};
  const auto data = random_bytes(1 << 20, 6);
  const auto sizes = cut_all(Chunker(p), data, p.max_size);
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    EXPECT_GE(sizes[i], p.min_size);
    EXPECT_LE(sizes[i], p.max_size);
  }
  EXPECT_GT(sizes.size(), 400u);
}

// docs/content.md's "Cutting one chunk", one byte at a time, as written there: the reference the chunker's
// unrolled loop must match exactly.
std::size_t reference_cut(const ChunkingParams& p, std::span<const std::uint8_t> d) {
  std::array<std::uint64_t, 256> gear{};
  std::uint64_t state = 0x706b67636173745full;
  for (std::uint64_t& g : gear) {
    state += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    g = z ^ (z >> 31);
  }
  const std::size_t n = d.size();
  if (n <= p.min_size) return n;
  const std::size_t limit = std::min<std::size_t>(n, p.max_size);
  const std::size_t normal = std::min<std::size_t>(p.avg_size, limit);
  const unsigned b = static_cast<unsigned>(std::countr_zero(p.avg_size));
  const std::uint64_t hard = ~std::uint64_t{0} << (64 - (b + 2));
  const std::uint64_t easy = ~std::uint64_t{0} << (64 - (b > 2 ? b - 2 : 1));
  std::uint64_t h = 0;
  for (std::size_t i = p.min_size > 64 ? p.min_size - 64 : 0; i < p.min_size; ++i) h = (h << 1) + gear[d[i]];
  for (std::size_t i = p.min_size; i < normal; ++i) {
    h = (h << 1) + gear[d[i]];
    if ((h & hard) == 0) return i + 1;
  }
  for (std::size_t i = std::max<std::size_t>(p.min_size, normal); i < limit; ++i) {
    h = (h << 1) + gear[d[i]];
    if ((h & easy) == 0) return i + 1;
  }
  return limit;
}

std::vector<std::uint8_t> text_sample() {
  const std::string text = testing::text_bytes(1 << 20, 9);
  return {text.begin(), text.end()};
}

// Random lengths (so the four-byte steps end at every offset), parameters from the smallest valid ones up, and
// data that is random, constant (forced cuts at max_size) or text-like (cuts in both the hard and the easy part).
TEST(Chunker, EqualsTheOneByteReference) {
  std::mt19937_64 rng(77);
  const ChunkingParams params[] = {{},
                                   {.min_size = 64, .avg_size = 64, .max_size = 64},
                                   {.min_size = 64, .avg_size = 128, .max_size = 1000},
                                   {.min_size = 100, .avg_size = 256, .max_size = 4099},
                                   {.min_size = 2048, .avg_size = 8192, .max_size = 65537}};
  const std::vector<std::uint8_t> samples[] = {testing::random_bytes(1 << 20, 8), std::vector<std::uint8_t>(300000, 7),
                                               text_sample()};
  std::size_t compared = 0;
  for (const ChunkingParams& p : params) {
    const Chunker chunker(p);
    for (const std::vector<std::uint8_t>& sample : samples) {
      const std::span<const std::uint8_t> all(sample);
      for (std::size_t at = 0; at < all.size();) {
        const std::size_t n = std::min<std::size_t>(all.size() - at, p.max_size + rng() % (2 * p.max_size));
        const std::span<const std::uint8_t> rest = all.subspan(at, rng() % 8 == 0 ? rng() % (n + 1) : n);
        const std::size_t cut = chunker.next_cut(rest, true);
        ASSERT_EQ(cut, reference_cut(p, rest)) << "min " << p.min_size << " at " << at << " of " << rest.size();
        ++compared;
        at += std::max<std::size_t>(cut, 1);
      }
    }
  }
  EXPECT_GT(compared, 5000u);
}

}  // namespace
}  // namespace pkgcast::content

namespace pkgcast::content {
namespace {

// The cut points are part of the format (docs/content.md): the same bytes must give the same chunks in every
// version and implementation. These sizes pin the gear table and the algorithm.
TEST(Chunker, GoldenCutPoints) {
  const auto data = testing::random_bytes(1 << 20, 2026);  // std::mt19937_64: specified by the standard
  const auto sizes = cut_all(Chunker(), data, data.size());
  std::string printed;
  for (std::size_t s : sizes) printed += std::to_string(s) + " ";
  EXPECT_EQ(printed, "80031 66631 51304 66085 78369 92500 70440 90650 69397 74795 80896 65840 75743 85895 ");
}

}  // namespace
}  // namespace pkgcast::content
