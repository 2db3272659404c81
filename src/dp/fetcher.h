// Fetches manifests and chunks from a job's sources (docs/dp-protocol.md, "Sources"): each source is a content base
// URL; "/manifests/{hash}" and "/chunks/{sha256}" are appended to it. Sources are tried in order and the next one
// is used after a transport error, an HTTP error or bytes that fail verification, a bounded number of times.
//
// A chunk (at most 256 KiB) is received into the calling worker's memory, asked for zstd-encoded (the site server
// then sends a compressed chunk as it stores it, without decoding it) and decoded as it arrives, never beyond its
// announced size. A cut download resumes with `Range: bytes=<have>-` (unencoded) from the bytes decoded so far.
// The whole chunk is verified against its SHA-256 before it is handed out: nothing unverified leaves the fetcher.
//
// The bearer token is sent only to the origin of the site server (--server), never to a source DP.
//
// Thread safety: fetch_manifest from one thread at a time; fetch_chunks runs its downloads on the worker pool.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <zstd.h>

#include "client/http_client.h"
#include "content/content.h"
#include "core/result.h"
#include "dp/fs_util.h"
#include "dp/pool.h"

namespace pkgcast::dp {

struct FetcherOptions {
  client::ServerUrl server;  // the site server: its origin gets the token
  std::string token;
  std::string ca_file;    // https sources: trust these certificates (default: the system store)
  bool insecure = false;  // https sources without certificate checks
  std::chrono::milliseconds http_timeout{30'000};
  unsigned attempts_per_source = 2;  // per chunk or manifest, over all sources: attempts_per_source * sources
  // When every attempt failed because no source could be reached (a refused or cut connection, a timeout, a 502,
  // 503 or 504: a site server restarting, a source DP rebooting), the download waits and tries them all again,
  // backing off from unreachable_backoff to 30 s, for up to unreachable_patience before the job fails: a server
  // restart must not turn into a failed install and a retry half an hour later. Other failures (wrong bytes, 404)
  // end the download at once.
  std::chrono::milliseconds unreachable_backoff{1'000};
  std::chrono::milliseconds unreachable_patience{10 * 60'000};
  // The largest chunk a manifest may name (ManifestLimits::max_chunk_bytes): a zstd frame may ask for a window that
  // large (a one-shot frame's window is its content), and no larger.
  std::size_t max_chunk_bytes = 1u << 20;
  WriteFault write_fault;
};

// One job's view: its sources, pacing and cancellation. The pointers outlive the calls that use them.
struct FetchJob {
  std::vector<client::ServerUrl> sources;
  TokenBucket* bucket = nullptr;  // nullptr: unlimited
  const std::atomic<bool>* cancel = nullptr;
  // Called as bytes arrive (from any worker; may be empty): the agent's sign of life for its job while a download
  // is slower than a chunk between two progress reports.
  std::function<void()> receiving;
  // The source every download of the job starts with: the first in priority order until one fails (a refused
  // connection, a timeout, an error status, wrong bytes), then the next after it, for the rest of the job. Without
  // it a silent source would cost its timeout once per chunk, hours for a large package. Shared by the workers.
  std::shared_ptr<std::atomic<std::size_t>> first_source = std::make_shared<std::atomic<std::size_t>>(0);
  std::size_t start() const { return sources.empty() ? 0 : first_source->load() % sources.size(); }
  // Source `index` failed: later downloads start after it (unless another worker moved on already).
  void demote(std::size_t index) const {
    if (sources.size() < 2) return;
    std::size_t expected = index;
    first_source->compare_exchange_strong(expected, (index + 1) % sources.size());
  }
};

// Parses a job's Sources; those that are not URLs are skipped. WBEM_E_INVALID_PARAMETER when none is left.
Result<std::vector<client::ServerUrl>> parse_sources(const std::vector<std::string>& sources);

class Fetcher {
 public:
  Fetcher(FetcherOptions options, WorkerPool& pool);
  ~Fetcher();

  // The manifest's bytes, verified: their SHA-256 is `hash`. At most max_bytes (WBEM_E_QUOTA_VIOLATION past it).
  Result<std::string> fetch_manifest(const FetchJob& job, const content::Digest& hash, std::size_t max_bytes);

  // The chunk's verified raw bytes, from the first source that has them. Called by pool worker `worker` (or by
  // the pool's caller with worker == pool.size()), which owns its connections. Cancellation stops at once
  // (WBEM_E_CALL_CANCELLED).
  // `check` says whether a complete download is the chunk, in place of comparing its SHA-256 with ref.hash (the
  // installer's check also appends the bytes to their file's hash in the same pass); called once per download.
  using ChunkCheck = std::function<bool(std::string_view bytes)>;
  Result<std::string> fetch_chunk(const FetchJob& job, const content::ChunkRef& ref, std::size_t worker,
                                  const ChunkCheck& check = {});

  // fetch_chunk for each of `refs`, asked of the first source together on one connection (HTTP/1.1 pipelining:
  // one wait for the server per batch, not per chunk) and answered in order; a chunk that did not arrive whole
  // and right that way is then fetched alone by fetch_chunk. `checks[i]` (when given) checks `refs[i]`, in order.
  // Memory: the whole batch is held until it returns (at most refs.size() x 256 KiB).
  std::vector<Result<std::string>> fetch_chunks(const FetchJob& job, std::span<const content::ChunkRef> refs,
                                                std::size_t worker, std::span<const ChunkCheck> checks);

  // Raw bytes received over HTTP since construction (for tests and logs).
  std::uint64_t bytes_received() const { return bytes_received_.load(); }

 private:
  class ChunkDownload;

  // fetch_chunk, resuming from `have`: a prefix of the chunk that source `have_from` sent before the download was cut
  // (kNoSource: none).
  static constexpr std::size_t kNoSource = static_cast<std::size_t>(-1);
  Result<std::string> fetch_chunk_resuming(const FetchJob& job, const content::ChunkRef& ref, std::size_t worker,
                                           const ChunkCheck& check, std::string have, std::size_t have_from);

  // Appends to `have` what the source sends, decoding zstd; `have` keeps what arrived when the download is cut.
  Status download_chunk(const FetchJob& job, const client::ServerUrl& source, const content::ChunkRef& ref,
                        std::string& have, std::size_t worker);
  Result<client::HttpClient*> client_for(const client::ServerUrl& source, std::size_t worker);
  // After a round of attempts that all failed with `unreachable` errors, in a download that began at `started`: waits
  // the round's back-off and says whether to try again (false once patience is spent or the job is cancelled).
  bool wait_for_sources(const FetchJob& job, std::chrono::steady_clock::time_point started, unsigned round) const;
  // A chunk's download fails (and its source is left for the job's next, FetchJob::demote) when it takes longer
  // than http_timeout plus its size at kSlowestSourceBytesPerSecond once its first bytes came, not counting the
  // time the job's transfer rate holds it back: a source dripping bytes never times out.
  static constexpr std::uint64_t kSlowestSourceBytesPerSecond = 1024;  // 8 kbit/s: slower than any link a DP is on
  std::chrono::milliseconds allowed_for(const content::ChunkRef& ref) const;

  const FetcherOptions options_;
  WorkerPool& pool_;
  // One set of kept-alive connections per worker (index pool.size() is the calling thread's), touched only by it,
  // to at most kMaxSourcesKept sources each (the least recently used goes): jobs name sources of their own, and an
  // agent that ran for months would otherwise keep a connection to every one it ever used.
  static constexpr std::size_t kMaxSourcesKept = 8;
  struct KeptClient {
    std::unique_ptr<client::HttpClient> client;
    std::uint64_t last_used = 0;
  };
  std::vector<std::map<std::string, KeptClient>> clients_;
  std::vector<std::uint64_t> client_uses_;  // per worker, the clock of last_used
  struct FreeDecoder {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
  };
  using ZstdDecoder = std::unique_ptr<ZSTD_DCtx, FreeDecoder>;
  std::vector<ZstdDecoder> decoders_;  // one per worker, as clients_
  std::atomic<std::uint64_t> bytes_received_{0};
};

}  // namespace pkgcast::dp
