// The DP agent (design.md section 1, step 5; docs/dp-protocol.md): follows this DP's PKG_DPJob stream, carries out
// each job's newest generation once, reports through the durable outbox, and serves what it holds.
//
// Threads, fixed whatever the number of jobs: one control thread (list, then follow the job event stream with
// resume and back-off), one job thread (one job at a time), `download_workers` download workers, one outbox
// sender, `server_threads` content-server threads.
//
// Jobs: a job whose generation is not above the one recorded as handled in state.json is ignored. A newer
// generation of the package being worked on cancels the work in progress (silently: the newer generation's
// outcome is what gets reported); a CANCEL job reports `cancelled`. A deleted job stops its work, removes what
// the DP holds of the package and forgets its generations (a job made again starts from 1; so does the listing of
// a package that has no job any more). A job is recorded as handled only after its outcome is in the outbox, so a
// crash in between repeats the job, whose outcome then carries the same idempotency key.
//
// At start the agent always lists the jobs (work in progress lived in memory); after a broken stream it resumes
// from the last revision it processed, and lists again only when the server answers 410 (compacted).
//
// Thread safety: create, start and stop from one thread; the accessors from any.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "content/content.h"
#include "core/mutex.h"
#include "core/result.h"
#include "dp/fs_util.h"
#include "dp/job.h"
#include "dp/outbox.h"
#include "dp/state.h"

namespace pkgcast::client {
class HttpClient;
}

namespace pkgcast::dp {

class ChunkIndex;
class ContentServer;
class Fetcher;
class Installer;
class WorkerPool;

struct AgentOptions {
  std::string server;  // the site server's URL
  std::string token;   // this DP's token (role dp)
  std::string name;    // this DP's name (in /health and the idempotency keys)
  std::filesystem::path data_dir;
  std::string listen;  // "HOST:PORT" to serve content on; empty: do not serve
  bool insecure = false;
  std::string ca_file;

  std::size_t download_workers = 4;
  std::size_t server_threads = 1;
  std::size_t max_connections = 64;
  content::ManifestLimits limits = default_limits();
  std::chrono::milliseconds progress_interval{500};
  std::chrono::milliseconds reconnect_initial{500};
  std::chrono::milliseconds reconnect_max{30'000};
  std::chrono::milliseconds http_timeout{30'000};
  // The job stream's read timeout: the server sends heartbeats every 15 s, so silence this long is a dead link.
  std::chrono::milliseconds stream_idle_timeout{60'000};
  OutboxOptions outbox;
  WriteFault write_fault_for_test;
  // Called once, from the control thread, when the server refuses this DP's token (an unknown, expired or revoked
  // token: 401; a token whose role is not `dp`: 403 or 400). The agent has stopped following jobs by then:
  // retrying cannot help until the agent runs with another token. `pkgcast dp-agent` exits 1 on it.
  std::function<void(const Error&)> on_refused;

  // ManifestLimits with max_bytes lowered to 32 MiB: a manifest is held in memory while it is parsed.
  static content::ManifestLimits default_limits() {
    content::ManifestLimits l;
    l.max_bytes = 32u << 20;
    // A chunk is held whole in memory while it is fetched, checked and served (several per worker, one per
    // response): 1 MiB, four times what pkgcast cuts, keeps that to a few MiB.
    l.max_chunk_bytes = 1u << 20;
    return l;
  }
};

class Agent {
 public:
  // Opens the data directory (installed versions, outbox, state), empties trash/, and starts serving
  // content when `listen` is set. Does not contact the server.
  static Result<std::unique_ptr<Agent>> create(AgentOptions options);
  ~Agent();  // stop()

  void start();  // control, job and outbox threads
  // Stops every thread; work in progress is abandoned as a crash would leave it (and resumed by the next run).
  void stop();

  std::uint16_t content_port() const;  // 0 when not serving
  AgentState state() const;
  std::size_t outbox_pending() const;
  bool wait_outbox_empty(std::chrono::milliseconds timeout) const;
  std::uint64_t bytes_received() const;  // content bytes received over HTTP by this object
  // Set when the server refused this DP: its token, or a DP the site does not have (see AgentOptions::on_refused);
  // the agent follows no more jobs.
  std::optional<Error> refused() const;

 private:
  explicit Agent(AgentOptions options);
  Status init();
  void control_loop();
  // Lists the jobs; false when the call failed.
  Result<std::uint64_t> list_jobs(client::HttpClient& c);
  enum class StreamEnd { kBroken, kGone, kStopped, kRefused };
  // `refused_error` is set when the server refused the token (kRefused).
  StreamEnd follow(client::HttpClient& c, bool& got_head, Error& refused_error);
  void handle_event(std::string_view data);
  void offer(const DpJob& job);
  void withdraw(const std::string& package_id);
  void note_revision(std::uint64_t revision);
  void refuse(Error error);  // records and announces a refused token

  void job_loop();
  // True when the job's outcome is in the outbox (false: cancelled, or the outbox could not be written).
  bool execute(const DpJob& job, const std::shared_ptr<std::atomic<bool>>& cancel);
  // True when the message is in the outbox.
  bool report(const DpJob& job, std::string_view state, std::string message = {}, std::uint64_t done = 0,
              std::uint64_t total = 0);
  std::string key_for(const DpJob& job, std::string_view state, std::uint64_t extra) const;
  bool sleep_for(std::chrono::milliseconds d);  // false when stopping

  const AgentOptions options_;
  std::string key_prefix_;
  std::string dp_param_;  // "dp=<name>", URL-encoded: every call to the server names the DP
  Fd data_dir_lock_;  // <data-dir>/lock, held while the agent exists
  std::unique_ptr<ChunkIndex> index_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<Fetcher> fetcher_;
  std::unique_ptr<Installer> installer_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<ContentServer> content_server_;

  mutable Mutex mu_;
  CondVar cv_;
  bool stopping_ PKG_GUARDED_BY(mu_) = false;
  AgentState state_ PKG_GUARDED_BY(mu_);
  std::map<std::string, DpJob> queued_ PKG_GUARDED_BY(mu_);  // newest waiting generation per package
  std::optional<DpJob> running_ PKG_GUARDED_BY(mu_);
  std::shared_ptr<std::atomic<bool>> running_cancel_ PKG_GUARDED_BY(mu_);
  client::HttpClient* stream_client_ PKG_GUARDED_BY(mu_) = nullptr;  // cancelled by stop()
  std::optional<Error> refused_ PKG_GUARDED_BY(mu_);

  std::thread control_thread_;
  std::thread job_thread_;
};

}  // namespace pkgcast::dp
