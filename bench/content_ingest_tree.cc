// One ingest of a real directory into a new library, timed by the process's CPU (user + system, every thread) and
// by the wall clock:
//   build/<preset>/bench/content_ingest_tree SOURCE LIBRARY
// LIBRARY must not exist; it is left in place for inspection (remove it yourself). Prints one line: bytes, wall
// seconds, CPU seconds (user and system) and MB/s per core (source bytes / CPU seconds), the figure of issue 8's
// ingest target. bench/content/run generates the tree it measures (half random bytes, half text).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "content/content.h"

namespace {

double seconds(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pkgcast::content;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SOURCE LIBRARY\n", argv[0]);
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
  std::printf("%llu bytes, %zu chunks (%zu new), stored %llu bytes; wall %.2f s (%.0f MB/s); CPU %.2f s "
              "(user %.2f, sys %.2f): %.0f MB/s per core\n",
              static_cast<unsigned long long>(r->source_bytes), r->chunk_count, r->new_chunk_count,
              static_cast<unsigned long long>(r->compressed_bytes), wall, mb / wall, user + sys, user, sys,
              mb / (user + sys));
  return 0;
}
