// The DP's content server (docs/dp-protocol.md, "What a DP agent serves"): GET/HEAD /content/manifests/{hash},
// /content/chunks/{sha256} (with a single-range `Range`) and /health, without a token.
//
// It never sends a byte it has not verified: a chunk is read from an installed version through the ChunkIndex
// (which hashes the bytes it reads every time), a manifest from <data-dir>/manifests/ and hashed before it is sent.
//
// Threads and bounds: Boost.Beast, asynchronous, on `threads` threads (default 1) running one io_context; each
// connection's handlers run on its own strand; no thread is ever held by a connection. At most max_connections
// connections, and max_connections_per_address from one IP address: beyond either, the connection idle longest
// (waiting for or receiving a request head; of that address at the per-address limit) is closed to admit the new
// one, so idle connections cannot lock a client out; when none is idle the new one is closed at once. A request
// head of at most 8 KiB and no body; an idle keep-alive connection is closed after idle_timeout, and so is one that
// takes no byte of its response for idle_timeout (a slow reader that keeps taking bytes is not cut off). A response
// holds at most one chunk (<= 1 MiB, the agent's manifest limit) or one manifest in memory, so memory is bounded by
// max_connections times that.
//
// Thread safety: start/stop from one thread; port() from any.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "content/content.h"
#include "dp/chunk_index.h"
#include "core/result.h"

namespace pkgcast::dp {

struct ContentServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (see port())
  std::size_t threads = 1;
  std::size_t max_connections = 64;
  std::size_t max_connections_per_address = 0;  // 0: a quarter of max_connections (at least 1)
  std::size_t max_manifest_bytes = 32u << 20;  // larger manifests are not served (413)
  std::chrono::milliseconds idle_timeout{30'000};
  std::string name;  // reported by /health
  // Content bytes this agent received over HTTP since it started, reported by /health (unset: not reported).
  std::function<std::uint64_t()> bytes_received;
};

class ContentServer {
 public:
  // Binds and starts serving. `index` and `manifests_dir` must outlive the server.
  static Result<std::unique_ptr<ContentServer>> start(const ContentServerOptions& options, const ChunkIndex& index,
                                                      const std::filesystem::path& manifests_dir);
  virtual ~ContentServer() = default;
  virtual std::uint16_t port() const = 0;
  // Stops accepting, closes every connection and joins the threads. Idempotent; the destructor calls it.
  virtual void stop() = 0;
};

// A `Range` header's single byte range over `size` bytes: [first, last] inclusive. nullopt for "not a range we
// serve" (the whole body is sent); {1, 0} (first > last) for an unsatisfiable one (416). Exposed for tests.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};
std::optional<ByteRange> parse_range(std::string_view header, std::uint64_t size);

}  // namespace pkgcast::dp
