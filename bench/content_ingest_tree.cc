// One ingest of a real directory into a new library, timed by the process's CPU (user + system, every thread) and
// by the wall clock:
//   build/<preset>/bench/content_ingest_tree SOURCE LIBRARY
// LIBRARY must not exist; it is left in place for inspection (remove it yourself). Prints one line: bytes, wall
// seconds, CPU seconds (user and system) and MB/s per core (source bytes / CPU seconds), the figure of issue 8's
// ingest target. bench/content/run generates the tree it measures (half random bytes, half text).
//
//   build/<preset>/bench/content_ingest_tree --phases SOURCE
// The CPU of an ingest's in-memory stages on the same files, one at a time: the cut search, both hashes
// (FileHasher), and compression of every chunk (random ones skipped by the entropy sample, as an ingest does).
// What an ingest costs beyond their sum is the kernel's (reads, writes, file creation) and bookkeeping.
//
//   build/<preset>/bench/content_ingest_tree --levels SOURCE LEVEL...
// For each zstd level (negative: zstd's --fast=N), the CPU of compressing every chunk of the text-like files (those
// whose sampled bytes do not look random, which an ingest compresses) and the stored/raw ratio: what the level
// chosen for chunks costs and saves on the same data.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "content/content.h"
#include "content/disk_chunk_store.h"
#include "content/file_hasher.h"

namespace {

using namespace pkgcast::content;

double seconds(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

volatile std::uint8_t hash_sink = 0;

double thread_cpu() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

int phases(const std::filesystem::path& source) {
  const Chunker chunker;
  ChunkCompressor compressor;
  double cut_s = 0, hash_s = 0, compress_s = 0;
  std::uint64_t bytes = 0, stored = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(source)) {
    if (!entry.is_regular_file() || entry.is_symlink()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::span<const std::uint8_t> all(data);
    std::vector<std::size_t> cuts;
    double t = thread_cpu();
    for (std::size_t at = 0; at < all.size();) {
      cuts.push_back(chunker.next_cut(all.subspan(at), true));
      at += cuts.back();
    }
    cut_s += thread_cpu() - t;
    t = thread_cpu();
    FileHasher hasher;
    std::uint8_t sink = 0;
    for (std::size_t at = 0; const std::size_t n : cuts) {
      sink ^= hasher.add_chunk(all.subspan(at, n)).bytes[0];
      at += n;
    }
    sink ^= hasher.finish().bytes[0];
    hash_s += thread_cpu() - t;
    t = thread_cpu();
    for (std::size_t at = 0; const std::size_t n : cuts) {
      const auto packed = compressor.compress(all.subspan(at, n));
      stored += packed ? packed->size() : n;
      at += n;
    }
    compress_s += thread_cpu() - t;
    hash_sink = sink;  // keeps the hashes from being optimized away
    bytes += data.size();
  }
  const double mb = static_cast<double>(bytes) / 1e6;
  std::printf(
      "%llu bytes, stored %llu: cut search %.2f CPU s (%.0f MB/s), hashes %.2f s (%.0f MB/s), "
      "compression %.2f s (%.0f MB/s); together %.2f s: %.0f MB/s per core\n",
      static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(stored), cut_s, mb / cut_s, hash_s,
      mb / hash_s, compress_s, mb / compress_s, cut_s + hash_s + compress_s, mb / (cut_s + hash_s + compress_s));
  return 0;
}

// The chunks of every file under `source`, cut as an ingest cuts them, that an ingest would try to compress (whose
// sampled bytes do not look random).
std::vector<std::vector<std::uint8_t>> compressible_chunks_of(const std::filesystem::path& source) {
  const Chunker chunker;
  std::vector<std::vector<std::uint8_t>> chunks;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(source)) {
    if (!entry.is_regular_file() || entry.is_symlink()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::span<const std::uint8_t> all(data);
    for (std::size_t at = 0; at < all.size();) {
      const std::size_t n = chunker.next_cut(all.subspan(at), true);
      if (ChunkCompressor::would_try(all.subspan(at, n))) {
        chunks.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(at),
                            all.begin() + static_cast<std::ptrdiff_t>(at + n));
      }
      at += n;
    }
  }
  return chunks;
}

int levels(const std::filesystem::path& source, std::span<char*> level_args) {
  const std::vector<std::vector<std::uint8_t>> chunks = compressible_chunks_of(source);
  std::uint64_t raw = 0;
  for (const auto& c : chunks) raw += c.size();
  std::vector<std::uint8_t> out(ZSTD_compressBound(ChunkingParams{}.max_size));
  for (char* arg : level_args) {
    const int level = std::atoi(arg);
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
    std::uint64_t stored = 0;
    const double t = thread_cpu();
    for (const auto& c : chunks) {
      const std::size_t n = ZSTD_compress2(cctx, out.data(), out.size(), c.data(), c.size());
      stored += ZSTD_isError(n) || n >= c.size() ? c.size() : n;
    }
    const double s = thread_cpu() - t;
    ZSTD_freeCCtx(cctx);
    std::printf("level %d: %llu compressible bytes -> %.3f of them stored, %.2f CPU s (%.0f MB/s)\n", level,
                static_cast<unsigned long long>(raw), static_cast<double>(stored) / static_cast<double>(raw), s,
                static_cast<double>(raw) / 1e6 / s);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--phases") == 0) return phases(argv[2]);
  if (argc >= 4 && std::strcmp(argv[1], "--levels") == 0) {
    return levels(argv[2], std::span<char*>(argv + 3, static_cast<std::size_t>(argc - 3)));
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SOURCE LIBRARY | --phases SOURCE | --levels SOURCE LEVEL...\n", argv[0]);
    return 2;
  }
  if (std::filesystem::exists(argv[2])) {
    std::fprintf(stderr, "%s exists; give a new directory\n", argv[2]);
    return 2;
  }
  auto library = Library::open(argv[2]);
  if (!library.ok()) {
    std::fprintf(stderr, "%s\n", library.error().to_string().c_str());
    return 1;
  }
  rusage before{}, after{};
  ::getrusage(RUSAGE_SELF, &before);
  const auto start = std::chrono::steady_clock::now();
  auto r = (*library)->ingest(argv[1]);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::getrusage(RUSAGE_SELF, &after);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
    return 1;
  }
  const double user = seconds(after.ru_utime) - seconds(before.ru_utime);
  const double sys = seconds(after.ru_stime) - seconds(before.ru_stime);
  const double mb = static_cast<double>(r->source_bytes) / 1e6;
  std::printf(
      "%llu bytes, %zu chunks (%zu new), stored %llu bytes; wall %.2f s (%.0f MB/s); CPU %.2f s "
      "(user %.2f, sys %.2f): %.0f MB/s per core\n",
      static_cast<unsigned long long>(r->source_bytes), r->chunk_count, r->new_chunk_count,
      static_cast<unsigned long long>(r->compressed_bytes), wall, mb / wall, user + sys, user, sys, mb / (user + sys));
  return 0;
}
