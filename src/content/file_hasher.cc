// SHA-256 (FIPS 180-4) block compression with the x86 SHA extensions, one or two independent streams at a time,
// after the layout of Intel's reference code: the state kept as ABEF/CDGH vectors, four rounds per group, the
// message schedule in four vectors rotated by group. Only the compression function is ours; padding is the standard
// one, and file_hasher_test.cc checks every path against OpenSSL.
#include "content/file_hasher.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define PKGCAST_SHA_NI 1
#endif

namespace pkgcast::content {
namespace {

constexpr std::uint32_t kInitial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

// A SHA-256 in progress: the chaining state, the bytes of an incomplete block, and the length so far.
struct State {
  std::uint32_t h[8];
  std::uint8_t tail[64];
  std::size_t tail_size = 0;
  std::uint64_t total = 0;

  State() { std::memcpy(h, kInitial, sizeof h); }
};

#if PKGCAST_SHA_NI

bool cpu_has_sha_ni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool ssse3 = (ecx & bit_SSSE3) != 0, sse41 = (ecx & bit_SSE4_1) != 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return ssse3 && sse41 && (ebx & bit_SHA) != 0;
}

#define PKGCAST_SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

alignas(16) constexpr std::uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// The chaining state as the round instruction wants it: {A, B, E, F} and {C, D, G, H}.
struct Lanes {
  __m128i abef, cdgh;
};

PKGCAST_SHA_TARGET inline Lanes load_lanes(const std::uint32_t* h) {
  const __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)), 0xB1);
  const __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4)), 0x1B);
  return {_mm_alignr_epi8(dcba, efgh, 8), _mm_blend_epi16(efgh, dcba, 0xF0)};
}

PKGCAST_SHA_TARGET inline void store_lanes(const Lanes& s, std::uint32_t* h) {
  const __m128i feba = _mm_shuffle_epi32(s.abef, 0x1B);
  const __m128i dchg = _mm_shuffle_epi32(s.cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), _mm_alignr_epi8(dchg, feba, 8));
}

// Message words 4g..4g+3 of a block: loaded (g < 4) or scheduled from the previous four groups, which w[] holds
// rotated by group (w[g % 4] is overwritten).
#define PKGCAST_SHA_MESSAGE(w, p, g)                                                                                 \
  if constexpr ((g) < 4) {                                                                                           \
    w[(g)&3] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>((p) + 16 * (g))), kBswap);          \
  } else {                                                                                                           \
    const __m128i s0 = _mm_sha256msg1_epu32(w[(g)&3], w[((g)-3) & 3]);                                               \
    w[(g)&3] =                                                                                                       \
        _mm_sha256msg2_epu32(_mm_add_epi32(s0, _mm_alignr_epi8(w[((g)-1) & 3], w[((g)-2) & 3], 4)), w[((g)-1) & 3]); \
  }

// Rounds 4g..4g+3.
#define PKGCAST_SHA_ROUNDS(s, w, g)                                                                                 \
  {                                                                                                                 \
    const __m128i wk = _mm_add_epi32(w[(g)&3], _mm_load_si128(reinterpret_cast<const __m128i*>(kRound + 4 * (g)))); \
    s.cdgh = _mm_sha256rnds2_epu32(s.cdgh, s.abef, wk);                                                             \
    s.abef = _mm_sha256rnds2_epu32(s.abef, s.cdgh, _mm_shuffle_epi32(wk, 0x0E));                                    \
  }

#define PKGCAST_SHA_GROUP1(g)     \
  PKGCAST_SHA_MESSAGE(w, data, g) \
  PKGCAST_SHA_ROUNDS(s, w, g)

// Two streams interleaved group by group, so their round instructions overlap.
#define PKGCAST_SHA_GROUP2(g)        \
  PKGCAST_SHA_MESSAGE(wa, a_data, g) \
  PKGCAST_SHA_MESSAGE(wb, b_data, g) \
  PKGCAST_SHA_ROUNDS(a, wa, g)       \
  PKGCAST_SHA_ROUNDS(b, wb, g)

// clang-format off
#define PKGCAST_SHA_SIXTEEN(GROUP) \
  GROUP(0) GROUP(1) GROUP(2) GROUP(3) GROUP(4) GROUP(5) GROUP(6) GROUP(7) \
  GROUP(8) GROUP(9) GROUP(10) GROUP(11) GROUP(12) GROUP(13) GROUP(14) GROUP(15)
// clang-format on

// `blocks` 64-byte blocks at `data` into the chaining state `h`.
PKGCAST_SHA_TARGET void compress1(std::uint32_t* h, const std::uint8_t* data, std::size_t blocks) {
  const __m128i kBswap = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
  Lanes s = load_lanes(h);
  for (; blocks != 0; --blocks, data += 64) {
    const Lanes before = s;
    __m128i w[4];
    PKGCAST_SHA_SIXTEEN(PKGCAST_SHA_GROUP1)
    s.abef = _mm_add_epi32(s.abef, before.abef);
    s.cdgh = _mm_add_epi32(s.cdgh, before.cdgh);
  }
  store_lanes(s, h);
}

// `blocks` blocks at `a_data` into `a_h` and as many at `b_data` into `b_h`.
PKGCAST_SHA_TARGET void compress2(std::uint32_t* a_h, const std::uint8_t* a_data, std::uint32_t* b_h,
                                  const std::uint8_t* b_data, std::size_t blocks) {
  const __m128i kBswap = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
  Lanes a = load_lanes(a_h), b = load_lanes(b_h);
  for (; blocks != 0; --blocks, a_data += 64, b_data += 64) {
    const Lanes a_before = a, b_before = b;
    __m128i wa[4], wb[4];
    PKGCAST_SHA_SIXTEEN(PKGCAST_SHA_GROUP2)
    a.abef = _mm_add_epi32(a.abef, a_before.abef);
    a.cdgh = _mm_add_epi32(a.cdgh, a_before.cdgh);
    b.abef = _mm_add_epi32(b.abef, b_before.abef);
    b.cdgh = _mm_add_epi32(b.cdgh, b_before.cdgh);
  }
  store_lanes(a, a_h);
  store_lanes(b, b_h);
}

#undef PKGCAST_SHA_SIXTEEN
#undef PKGCAST_SHA_GROUP2
#undef PKGCAST_SHA_GROUP1
#undef PKGCAST_SHA_ROUNDS
#undef PKGCAST_SHA_MESSAGE
#undef PKGCAST_SHA_TARGET

#else  // no SHA extensions on this architecture: FileHasher always uses OpenSSL

bool cpu_has_sha_ni() {
  return false;
}
void compress1(std::uint32_t*, const std::uint8_t*, std::size_t) {
  std::abort();
}
void compress2(std::uint32_t*, const std::uint8_t*, std::uint32_t*, const std::uint8_t*, std::size_t) {
  std::abort();
}

#endif

// Pads the message (0x80, zeros, the length in bits, big-endian) and returns the digest.
Digest finish_state(State& state) {
  std::uint8_t last[128] = {};
  std::memcpy(last, state.tail, state.tail_size);
  last[state.tail_size] = 0x80;
  const std::size_t blocks = state.tail_size < 56 ? 1 : 2;
  const std::uint64_t bits = state.total * 8;
  for (int i = 0; i < 8; ++i) last[blocks * 64 - 1 - i] = static_cast<std::uint8_t>(bits >> (8 * i));
  compress1(state.h, last, blocks);
  Digest d;
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) d.bytes[4 * i + j] = static_cast<std::uint8_t>(state.h[i] >> (24 - 8 * j));
  }
  return d;
}

}  // namespace

struct FileHasher::Ni {
  State whole;
};

bool FileHasher::accelerated() {
  static const bool has = cpu_has_sha_ni();
  return has;
}

FileHasher::FileHasher(Engine engine) : use_ni_(engine == Engine::kBest && accelerated()) {
  if (use_ni_) {
    ni_ = std::make_unique<Ni>();
  } else {
    whole_.emplace();
  }
}

FileHasher::~FileHasher() = default;

Digest FileHasher::add_chunk(std::span<const std::uint8_t> chunk) {
  if (!use_ni_) {
    whole_->update(chunk);
    return sha256(chunk);
  }
  State part;
  if (chunk.empty()) return finish_state(part);  // (and no memcpy from the null data() of an empty span)
  const std::uint8_t* data = chunk.data();
  const std::size_t size = chunk.size();
  part.total = size;
  std::size_t part_blocks = size / 64;  // the chunk's whole blocks, from data
  const std::uint8_t* part_at = data;

  // The file's hash first completes the block it had started; that block pairs with the chunk's first one.
  State& whole = ni_->whole;
  whole.total += size;
  std::size_t used = 0;  // bytes of the chunk the file's hash has consumed
  if (whole.tail_size != 0) {
    used = std::min(size, 64 - whole.tail_size);
    std::memcpy(whole.tail + whole.tail_size, data, used);
    whole.tail_size += used;
    if (whole.tail_size == 64) {
      if (part_blocks != 0) {
        compress2(part.h, part_at, whole.h, whole.tail, 1);
        part_at += 64;
        --part_blocks;
      } else {
        compress1(whole.h, whole.tail, 1);
      }
      whole.tail_size = 0;
    }
  }
  if (whole.tail_size == 0) {
    // Both now read whole blocks straight from the chunk, at different offsets when the file's blocks do not start
    // where the chunk does.
    const std::uint8_t* whole_at = data + used;
    std::size_t whole_blocks = (size - used) / 64;
    const std::size_t both = std::min(part_blocks, whole_blocks);
    compress2(part.h, part_at, whole.h, whole_at, both);
    compress1(part.h, part_at + 64 * both, part_blocks - both);
    compress1(whole.h, whole_at + 64 * both, whole_blocks - both);
    whole_at += 64 * whole_blocks;
    whole.tail_size = static_cast<std::size_t>(data + size - whole_at);
    std::memcpy(whole.tail, whole_at, whole.tail_size);
  }
  part.tail_size = size % 64;
  std::memcpy(part.tail, data + size / 64 * 64, part.tail_size);
  return finish_state(part);
}

void FileHasher::append(std::span<const std::uint8_t> bytes) {
  if (!use_ni_) {
    whole_->update(bytes);
    return;
  }
  if (bytes.empty()) return;
  State& whole = ni_->whole;
  const std::uint8_t* at = bytes.data();
  std::size_t left = bytes.size();
  whole.total += left;
  if (whole.tail_size != 0) {
    const std::size_t used = std::min(left, 64 - whole.tail_size);
    std::memcpy(whole.tail + whole.tail_size, at, used);
    whole.tail_size += used;
    at += used;
    left -= used;
    if (whole.tail_size < 64) return;
    compress1(whole.h, whole.tail, 1);
    whole.tail_size = 0;
  }
  compress1(whole.h, at, left / 64);
  whole.tail_size = left % 64;
  std::memcpy(whole.tail, at + left / 64 * 64, whole.tail_size);
}

Digest FileHasher::finish() {
  if (!use_ni_) return whole_->finish();
  return finish_state(ni_->whole);
}

}  // namespace pkgcast::content
