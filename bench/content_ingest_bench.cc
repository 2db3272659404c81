// Content ingest throughput on generated data, half random (incompressible) and half text-like (compressible):
//   build/<preset>/bench/content_ingest_bench
// - BM_Gear: the FastCDC cut search alone; BM_Sha256: hashing alone (OpenSSL, SHA-NI where present);
// - BM_ChunkAndHash: cut, hash the chunk, hash the whole file, with OpenSSL one hash at a time;
// - BM_ChunkAndHashPaired: the same as an ingest does it, both hashes in one pass (FileHasher);
// - BM_Compress: zstd on the chunks a first ingest stores (random ones skipped by the entropy sample);
// - BM_IngestFirst: a whole ingest into an empty library (every chunk new: compressed and written);
// - BM_IngestAgain: the same tree into a library that has it (every chunk deduplicated).
// bytes_per_second is source bytes. The library and the source live under $PKGCAST_BENCH_DIR when set, else
// /dev/shm when it exists (to measure the CPU, not the disk), else the temporary directory.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "content/content.h"
#include "content/disk_chunk_store.h"
#include "content/file_hasher.h"

namespace pkgcast::content {
namespace {
namespace fs = std::filesystem;

constexpr std::size_t kDataSize = 64u << 20;

// Half random bytes, half words from a small vocabulary.
const std::vector<std::uint8_t>& data() {
  static const std::vector<std::uint8_t> bytes = [] {
    std::vector<std::uint8_t> out(kDataSize);
    std::mt19937_64 rng(42);
    for (std::size_t i = 0; i < kDataSize / 2; i += 8) {
      const std::uint64_t v = rng();
      std::memcpy(out.data() + i, &v, 8);
    }
    static const char* const kWords[] = {"package ", "content ", "chunk ",        "manifest ", "the ",
                                         "of ",      "point ",   "distribution ", "and ",      "status\n",
                                         "version ", "site ",    "{\"id\": ",     "}, "};
    std::size_t at = kDataSize / 2;
    while (at < kDataSize) {
      const std::string_view w = kWords[rng() % (sizeof kWords / sizeof kWords[0])];
      const std::size_t n = std::min(w.size(), kDataSize - at);
      std::memcpy(out.data() + at, w.data(), n);
      at += n;
    }
    return out;
  }();
  return bytes;
}

fs::path bench_root() {
  if (const char* dir = std::getenv("PKGCAST_BENCH_DIR")) return dir;
  if (fs::is_directory("/dev/shm")) return "/dev/shm";
  return fs::temp_directory_path();
}

// A scratch directory removed at exit.
struct Scratch {
  fs::path path;
  Scratch() {
    std::string templ = (bench_root() / "pkgcast-content-bench-XXXXXX").string();
    path = ::mkdtemp(templ.data());
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// The source tree: the data cut into 4 files of 16 MiB (two random, two text).
const fs::path& source_tree() {
  static Scratch scratch;
  static const fs::path src = [&] {
    fs::path dir = scratch.path / "src";
    fs::create_directories(dir);
    const std::size_t part = kDataSize / 4;
    for (int i = 0; i < 4; ++i) {
      std::ofstream(dir / ("file" + std::to_string(i)), std::ios::binary)
          .write(reinterpret_cast<const char*>(data().data()) + i * part, static_cast<std::streamsize>(part));
    }
    return dir;
  }();
  return src;
}

void BM_Gear(benchmark::State& state) {
  const Chunker chunker;
  const std::span<const std::uint8_t> all(data());
  for (auto _ : state) {
    std::size_t at = 0, chunks = 0;
    while (at < all.size()) {
      at += chunker.next_cut(all.subspan(at), true);
      ++chunks;
    }
    benchmark::DoNotOptimize(chunks);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kDataSize));
}
BENCHMARK(BM_Gear)->Unit(benchmark::kMillisecond);

void BM_Sha256(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(sha256(data()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kDataSize));
}
BENCHMARK(BM_Sha256)->Unit(benchmark::kMillisecond);

void BM_ChunkAndHash(benchmark::State& state) {
  const Chunker chunker;
  const std::span<const std::uint8_t> all(data());
  for (auto _ : state) {
    Sha256 whole;
    std::size_t at = 0;
    while (at < all.size()) {
      const std::span<const std::uint8_t> chunk = all.subspan(at, chunker.next_cut(all.subspan(at), true));
      benchmark::DoNotOptimize(sha256(chunk));
      whole.update(chunk);
      at += chunk.size();
    }
    benchmark::DoNotOptimize(whole.finish());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kDataSize));
}
BENCHMARK(BM_ChunkAndHash)->Unit(benchmark::kMillisecond);

// The same through FileHasher, as an ingest does it: both hashes in one pass (interleaved with SHA-NI).
void BM_ChunkAndHashPaired(benchmark::State& state) {
  const Chunker chunker;
  const std::span<const std::uint8_t> all(data());
  for (auto _ : state) {
    FileHasher hasher;
    std::size_t at = 0;
    while (at < all.size()) {
      const std::span<const std::uint8_t> chunk = all.subspan(at, chunker.next_cut(all.subspan(at), true));
      benchmark::DoNotOptimize(hasher.add_chunk(chunk));
      at += chunk.size();
    }
    benchmark::DoNotOptimize(hasher.finish());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kDataSize));
}
BENCHMARK(BM_ChunkAndHashPaired)->Unit(benchmark::kMillisecond);

void BM_Compress(benchmark::State& state) {
  const Chunker chunker;
  const std::span<const std::uint8_t> all(data());
  ChunkCompressor compressor;
  std::uint64_t stored = 0;
  for (auto _ : state) {
    stored = 0;
    std::size_t at = 0;
    while (at < all.size()) {
      const std::span<const std::uint8_t> chunk = all.subspan(at, chunker.next_cut(all.subspan(at), true));
      const auto packed = compressor.compress(chunk);
      stored += packed ? packed->size() : chunk.size();
      at += chunk.size();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kDataSize));
  state.counters["stored_ratio"] = static_cast<double>(stored) / kDataSize;
}
BENCHMARK(BM_Compress)->Unit(benchmark::kMillisecond);

void BM_IngestFirst(benchmark::State& state) {
  Scratch scratch;
  const fs::path& src = source_tree();
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const fs::path dir = scratch.path / ("lib" + std::to_string(round++));
    auto lib = Library::open(dir);
    state.ResumeTiming();
    auto r = (*lib)->ingest(src);
    state.PauseTiming();
    if (!r.ok()) {
      state.SkipWithError(r.error().to_string().c_str());
      break;
    }
    fs::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kDataSize));
}
BENCHMARK(BM_IngestFirst)->Unit(benchmark::kMillisecond)->UseRealTime();

// A second ingest of the same tree. Arg 0: every file read again (what a changed file costs: nothing new is
// stored); arg 1: the quick check, files unchanged since the first ingest taken unread.
void BM_IngestAgain(benchmark::State& state) {
  Scratch scratch;
  const fs::path& src = source_tree();
  auto lib = Library::open(scratch.path / "lib");
  IngestOptions options;
  options.reuse_unchanged_files = state.range(0) != 0;
  options.racy_margin = std::chrono::milliseconds(0);  // the tree was written before the first ingest began
  if (!(*lib)->ingest(src, options).ok()) state.SkipWithError("first ingest failed");
  for (auto _ : state) {
    auto r = (*lib)->ingest(src, options);
    if (!r.ok() || r->new_chunk_count != 0) state.SkipWithError("ingest failed or added chunks");
    if (r.ok() && r->reused_bytes != (options.reuse_unchanged_files ? r->source_bytes : 0)) {
      state.SkipWithError("the quick check took other files than expected");
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kDataSize));
}
BENCHMARK(BM_IngestAgain)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace pkgcast::content

BENCHMARK_MAIN();
