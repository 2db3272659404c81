// FastCDC (Xia et al., USENIX ATC 2016) with normalized chunking, level 2:
// - a gear hash, h = (h << 1) + G[byte], whose bit k depends on the last k + 1 bytes, so the mask tests the top
//   bits (they see a 64-byte window);
// - no cut before min_size (those bytes are not even hashed, but the 64 bytes before min_size warm the hash, so a
//   cut depends only on the window before it, never on where the chunk began);
// - a harder mask (log2(avg) + 2 bits) before avg_size and an easier one (log2(avg) - 2 bits) after it, which
//   pulls chunk sizes towards avg_size;
// - a forced cut at max_size.
#include <bit>

#include "content/content.h"

namespace pkgcast::content {
namespace {

// The gear table: 256 pseudo-random 64-bit words from splitmix64 with a fixed seed. Changing it changes every
// cut point (and so every chunk hash) — it is part of the format (docs/content.md).
constexpr std::uint64_t kGearSeed = 0x706b67636173745full;  // "pkgcast_"

constexpr std::array<std::uint64_t, 256> make_gear() {
  std::array<std::uint64_t, 256> table{};
  std::uint64_t state = kGearSeed;
  for (std::uint64_t& word : table) {
    state += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    word = z ^ (z >> 31);
  }
  return table;
}

constexpr std::array<std::uint64_t, 256> kGear = make_gear();
constexpr std::size_t kWindow = 64;  // bytes the hash remembers

// The top `bits` bits set.
constexpr std::uint64_t top_bits(unsigned bits) {
  return bits == 0 ? 0 : ~std::uint64_t{0} << (64 - bits);
}

// The first i in [from, to) after which (h & mask) == 0, returning i + 1 (a cut after byte i); 0 when there is
// none.
inline std::size_t scan(const std::uint8_t* data, std::size_t from, std::size_t to, std::uint64_t mask,
                        std::uint64_t& h) {
  for (std::size_t i = from; i < to; ++i) {
    h = (h << 1) + kGear[data[i]];
    if ((h & mask) == 0) return i + 1;
  }
  return 0;
}

}  // namespace

Chunker::Chunker(ChunkingParams params) : params_(params) {}

std::size_t Chunker::next_cut(std::span<const std::uint8_t> data, bool at_end) const {
  const std::size_t n = data.size();
  const std::size_t min = params_.min_size, max = params_.max_size;
  if (n < max && !at_end) return 0;
  if (n <= min) return n;
  const std::size_t limit = std::min(n, max);
  const std::size_t normal = std::min<std::size_t>(params_.avg_size, limit);
  const unsigned bits = static_cast<unsigned>(std::countr_zero(params_.avg_size));
  const std::uint64_t hard = top_bits(bits + 2);
  const std::uint64_t easy = top_bits(bits > 2 ? bits - 2 : 1);

  std::uint64_t h = 0;
  for (std::size_t i = min > kWindow ? min - kWindow : 0; i < min; ++i) h = (h << 1) + kGear[data[i]];
  if (const std::size_t cut = scan(data.data(), min, normal, hard, h); cut != 0) return cut;
  if (const std::size_t cut = scan(data.data(), std::max(min, normal), limit, easy, h); cut != 0) return cut;
  return limit;
}

}  // namespace pkgcast::content
