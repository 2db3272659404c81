#include "dp/agent.h"

#include <cerrno>
#include <cstdio>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "client/http_client.h"
#include "client/reconnect.h"
#include "client/sse_parser.h"
#include "client/url.h"
#include "dp/content_server.h"
#include "dp/fetcher.h"
#include "dp/installer.h"
#include "dp/pool.h"

namespace pkgcast::dp {
namespace {

using nlohmann::json;

// A status names at most this many paths: a tree with thousands of stray files still makes a message the server
// accepts (its body limit is 1 MiB), and an administrator reads the count.
constexpr std::size_t kPathsNamedPerStatus = 100;
// A download that places no chunk still reports, this often, that bytes are arriving (Agent::run_job).
constexpr std::chrono::seconds kReceivingReportEvery{10};

// " a b c", or " a b ... and 42 more".
std::string path_list(const std::vector<std::string>& paths) {
  std::string text;
  for (std::size_t i = 0; i < paths.size() && i < kPathsNamedPerStatus; ++i) text += " " + paths[i];
  if (paths.size() > kPathsNamedPerStatus) {
    text += " ... and " + std::to_string(paths.size() - kPathsNamedPerStatus) + " more";
  }
  return text;
}

std::string sanitize_key_part(std::string_view s, std::size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    out += ok ? c : '_';
  }
  return out.empty() ? "dp" : out;
}

// "HOST:PORT", "[v6]:PORT".
Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return make_error(WbemCode::kInvalidParameter, "--listen '" + std::string(text) + "' is not HOST:PORT");
  }
  std::string host(text.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text(text.substr(colon + 1));
  char* end = nullptr;
  const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port > 65535) {
    return make_error(WbemCode::kInvalidParameter, "--listen '" + std::string(text) + "': bad port");
  }
  return std::make_pair(host.empty() ? std::string("0.0.0.0") : host, static_cast<std::uint16_t>(port));
}

}  // namespace

Agent::Agent(AgentOptions options) : options_(std::move(options)) {
  key_prefix_ = sanitize_key_part(options_.name, 40);
  // Every call names the DP: a DP's token for another DP is refused with both names rather than followed under
  // the wrong one, and an admin's token acts for the DP named (docs/dp-protocol.md).
  dp_param_ = "dp=" + client::url_encode(options_.name);
}

Agent::~Agent() { stop(); }

Result<std::unique_ptr<Agent>> Agent::create(AgentOptions options) {
  std::unique_ptr<Agent> agent(new Agent(std::move(options)));
  PKG_TRY(agent->init());
  return agent;
}

Status Agent::init() {
  PKG_ASSIGN_OR_RETURN(client::ServerUrl server, client::parse_server_url(options_.server));
  PKG_TRY(ensure_dir(options_.data_dir));
  PKG_ASSIGN_OR_RETURN(data_dir_lock_, lock_data_dir(options_.data_dir));
  index_ = std::make_unique<ChunkIndex>(options_.data_dir / "content");
  const std::filesystem::path state_file = options_.data_dir / "state.json";
  Result<AgentState> loaded = load_state(state_file);
  std::string unusable;
  if (!loaded.ok() && loaded.error().code == WbemCode::kInvalidParameter) {
    unusable = loaded.error().message;  // written atomically: damage or a hand edit
  } else if (loaded.ok() && !loaded->name.empty() && loaded->name != options_.name) {
    // A data directory copied from another DP: its generations would hide this DP's jobs.
    unusable = "agent state '" + state_file.string() + "' belongs to DP '" + loaded->name + "'";
  }
  if (!unusable.empty()) {
    // What it holds saves work, nothing more: the agent lists every job at start, and a job acted on again reports
    // under the same idempotency key. So it is set aside for whoever looks into it, and the agent starts afresh
    // rather than refusing to run until someone does.
    std::filesystem::path aside = state_file;
    aside += ".bad";
    if (::rename(state_file.c_str(), aside.c_str()) != 0) return io_error("set aside", state_file, errno);
    spdlog::warn("dp agent: {}; moved to '{}', starting with no state", unusable, aside.string());
    loaded = AgentState{};
  }
  PKG_ASSIGN_OR_RETURN(AgentState state, std::move(loaded));
  state.name = options_.name;
  {
    MutexLock lock(mu_);
    state_ = std::move(state);
  }
  pool_ = std::make_unique<WorkerPool>(options_.download_workers);
  FetcherOptions fo;
  fo.server = server;
  fo.token = options_.token;
  fo.ca_file = options_.ca_file;
  fo.insecure = options_.insecure;
  fo.http_timeout = options_.http_timeout;
  fo.max_chunk_bytes = options_.limits.max_chunk_bytes;
  fo.write_fault = options_.write_fault_for_test;
  fetcher_ = std::make_unique<Fetcher>(std::move(fo), *pool_);
  installer_ = std::make_unique<Installer>(
      InstallerOptions{options_.data_dir, options_.limits, options_.write_fault_for_test}, *index_, *fetcher_, *pool_);
  PKG_TRY(installer_->prepare());

  // The sender's client lives on the sender thread (the only caller of this function).
  auto send_client = std::make_shared<std::unique_ptr<client::HttpClient>>();
  client::HttpOptions http{.token = options_.token, .ca_file = options_.ca_file, .insecure = options_.insecure,
                           .timeout = options_.http_timeout};
  SendStatus send = [send_client, server, http, dp_param = dp_param_](const StatusMessage& m) -> Status {
    if (!*send_client) {
      PKG_ASSIGN_OR_RETURN(*send_client, client::HttpClient::create(server, http));
    }
    PKG_ASSIGN_OR_RETURN(client::HttpResponse r,
                         (*send_client)->request("POST", "/api/v1/dp/status?" + dp_param, m.to_json()));
    if (r.status >= 500) return client::error_from_response(r);
    if (r.status >= 300) {
      spdlog::warn("dp agent: status {} for {} refused: HTTP {} {}", m.key, m.package_id, r.status, r.body);
    }
    return ok_status();
  };
  PKG_ASSIGN_OR_RETURN(outbox_, Outbox::open(options_.data_dir / "outbox", std::move(send), options_.outbox,
                                             key_prefix_ + ":"));

  if (!options_.listen.empty()) {
    PKG_ASSIGN_OR_RETURN(auto listen, parse_listen(options_.listen));
    ContentServerOptions so;
    so.host = listen.first;
    so.port = listen.second;
    so.threads = options_.server_threads;
    so.max_connections = options_.max_connections;
    so.max_manifest_bytes = options_.limits.max_bytes;
    so.name = options_.name;
    so.bytes_received = [fetcher = fetcher_.get()] { return fetcher->bytes_received(); };
    PKG_ASSIGN_OR_RETURN(content_server_, ContentServer::start(so, *index_, options_.data_dir / "manifests"));
  }
  return ok_status();
}

void Agent::start() {
  outbox_->start();
  control_thread_ = std::thread([this] { control_loop(); });
  job_thread_ = std::thread([this] { job_loop(); });
}

void Agent::stop() {
  {
    MutexLock lock(mu_);
    if (stopping_ && !control_thread_.joinable() && !job_thread_.joinable()) return;
    stopping_ = true;
    if (stream_client_) stream_client_->cancel();
    if (running_cancel_) running_cancel_->store(true);
    cv_.notify_all();
  }
  if (control_thread_.joinable()) control_thread_.join();
  if (job_thread_.joinable()) job_thread_.join();
  if (outbox_) outbox_->stop();
  if (content_server_) content_server_->stop();
}

std::uint16_t Agent::content_port() const { return content_server_ ? content_server_->port() : 0; }

AgentState Agent::state() const {
  MutexLock lock(mu_);
  return state_;
}

std::size_t Agent::outbox_pending() const { return outbox_->pending(); }
bool Agent::wait_outbox_empty(std::chrono::milliseconds timeout) const { return outbox_->wait_empty(timeout); }
std::uint64_t Agent::bytes_received() const { return fetcher_->bytes_received(); }

bool Agent::sleep_for(std::chrono::milliseconds d) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  MutexLock lock(mu_);
  while (!stopping_) {
    if (!cv_.wait_until(mu_, deadline)) break;
  }
  return !stopping_;
}

// ---- The job stream ------------------------------------------------------------------------------------------

void Agent::control_loop() {
  std::mt19937_64 rng(std::random_device{}());
  auto server = client::parse_server_url(options_.server);
  unsigned failures = 0;
  bool need_list = true;
  for (;;) {
    client::HttpOptions http{.token = options_.token, .ca_file = options_.ca_file, .insecure = options_.insecure,
                             .timeout = options_.stream_idle_timeout};
    auto made = client::HttpClient::create(*server, http);
    StreamEnd end = StreamEnd::kBroken;
    Error refused_error;
    if (made.ok()) {
      std::unique_ptr<client::HttpClient> c = std::move(made).value();
      {
        MutexLock lock(mu_);
        if (stopping_) return;
        stream_client_ = c.get();
      }
      bool progressed = false;
      if (need_list) {
        auto listed = list_jobs(*c);
        if (listed.ok()) {
          need_list = false;
          progressed = true;
        } else if (listed.error().code == WbemCode::kAccessDenied ||
                   listed.error().code == WbemCode::kInvalidParameter) {
          // 401/403: the token is unknown, expired, revoked, not a DP's, or another DP's.
          end = StreamEnd::kRefused;
          refused_error = listed.error();
        } else if (listed.error().code == WbemCode::kNotFound || listed.error().code == WbemCode::kInvalidParameter) {
          // An admin's token for a DP the site does not have; a name the server cannot take.
          end = StreamEnd::kRefused;
          refused_error = listed.error();
        } else {
          spdlog::warn("dp agent: cannot list jobs: {}", listed.error().to_string());
        }
      }
      if (!need_list && end != StreamEnd::kRefused) {
        bool got_head = false;
        end = follow(*c, got_head, refused_error);
        progressed = progressed || got_head;
        if (end == StreamEnd::kGone) need_list = true;
      }
      {
        MutexLock lock(mu_);
        stream_client_ = nullptr;
        if (stopping_) return;
      }
      if (progressed) failures = 0;
    }
    if (end == StreamEnd::kStopped) return;
    if (end == StreamEnd::kRefused) {
      refuse(std::move(refused_error));
      return;
    }
    if (end == StreamEnd::kGone && failures == 0) continue;  // list again at once
    ++failures;
    const double unit = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    if (!sleep_for(client_detail::reconnect_delay(failures, options_.reconnect_initial, options_.reconnect_max,
                                                  unit))) {
      return;
    }
  }
}

Result<std::uint64_t> Agent::list_jobs(client::HttpClient& c) {
  PKG_ASSIGN_OR_RETURN(std::string body, c.call("GET", "/api/v1/dp/jobs?" + dp_param_));
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("revision") || !j["revision"].is_number_unsigned() || !j.contains("jobs") ||
      !j["jobs"].is_array()) {
    return make_error(WbemCode::kFailed, "GET /api/v1/dp/jobs: malformed answer");
  }
  const auto revision = j["revision"].get<std::uint64_t>();
  std::set<std::string> listed;
  bool complete = true;
  for (const auto& item : j["jobs"]) {
    auto job = parse_job(item.dump());
    if (!job.ok()) {
      spdlog::warn("dp agent: ignoring a job: {}", job.error().to_string());
      complete = false;
      continue;
    }
    listed.insert(job->package_id);
    if (job->sent) offer(*job);
  }
  // A package with no job any more (deleted while this agent was not following) may get one again later, starting
  // from generation 1: what was handled of its old job must not hide it.
  if (complete) {
    MutexLock lock(mu_);
    const std::size_t before = state_.handled.size();
    std::erase_if(state_.handled, [&](const auto& h) { return !listed.contains(h.first); });
    if (state_.handled.size() != before) {
      if (auto s = save_state(options_.data_dir / "state.json", state_); !s.ok()) {
        spdlog::warn("dp agent: cannot save state: {}", s.error().to_string());
      }
    }
  }
  // And what this DP holds of a package it has no job for any more goes, as when the deletion arrives on the stream:
  // the deletion may have come while the agent was not following, or been taken from the stream (the revision
  // saved) by an agent killed before its clean-up ran. Content of a package not targeted here is never kept.
  if (complete) {
    auto held = installer_->held_packages();
    if (!held.ok()) {
      spdlog::warn("dp agent: cannot list the content this DP holds: {}", held.error().to_string());
    } else {
      for (const auto& package_id : *held) {
        if (listed.contains(package_id)) continue;
        spdlog::info("dp agent: {} has no job here any more; removing what this DP holds of it", package_id);
        withdraw(package_id);
      }
    }
  }
  note_revision(revision);
  return revision;
}

void Agent::refuse(Error error) {
  error.message = "the server refused this DP: " + error.message;
  spdlog::error("dp agent: {}; the agent stops following jobs", error.to_string());
  {
    MutexLock lock(mu_);
    refused_ = error;
  }
  if (options_.on_refused) options_.on_refused(error);
}

std::optional<Error> Agent::refused() const {
  MutexLock lock(mu_);
  return refused_;
}

Agent::StreamEnd Agent::follow(client::HttpClient& c, bool& got_head, Error& refused_error) {
  std::uint64_t since = 0;
  {
    MutexLock lock(mu_);
    since = state_.revision;
  }
  const std::string target = "/api/v1/dp/jobs/events?since=" + std::to_string(since) + "&" + dp_param_;
  client::SseParser parser;
  bool gone = false;
  bool refused = false;
  client::SseCallbacks callbacks;
  callbacks.on_event = [&](const client::SseEvent& e) {
    if (e.type == "error") {
      json err = json::parse(e.data, nullptr, false);
      if (err.is_object() && err.contains("error") && err["error"] == "WBEM_E_NOT_FOUND") gone = true;
      spdlog::info("dp agent: the server ended the job stream: {}", e.data);
      return false;
    }
    handle_event(e.data);
    return true;
  };
  client::StreamRequest req;
  req.target = target;
  req.accept = "text/event-stream";
  req.on_head = [&](const client::HttpResponse& head) {
    if (head.status == 410) {
      gone = true;
      return false;
    }
    if (head.status == 401 || head.status == 403) {
      refused = true;
      refused_error = make_error(WbemCode::kAccessDenied,
                                 "HTTP " + std::to_string(head.status) + " on the job stream");
      return false;
    }
    if (head.status != 200) {
      spdlog::warn("dp agent: job stream answered HTTP {}", head.status);
      return false;
    }
    got_head = true;
    return true;
  };
  req.on_data = [&](std::string_view piece) {
    auto fed = parser.feed(piece, callbacks);
    return fed.ok() && *fed;
  };
  auto r = c.stream(req);
  {
    MutexLock lock(mu_);
    if (stopping_) return StreamEnd::kStopped;
  }
  if (gone) return StreamEnd::kGone;
  if (refused) return StreamEnd::kRefused;
  if (!r.ok()) spdlog::info("dp agent: job stream broken: {}", r.error().to_string());
  return StreamEnd::kBroken;
}

void Agent::handle_event(std::string_view data) {
  json e = json::parse(data, nullptr, false);
  if (!e.is_object()) return;
  // Members read only when they have the type expected (json::value throws on another type, and nothing a server
  // sends may end this thread).
  const auto text_of = [](const json& object, const char* name, std::string fallback) {
    const auto it = object.find(name);
    return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
  };
  const std::string cls = text_of(e, "__CLASS", "");
  const auto target = e.find("TargetInstance");
  if (target != e.end() && target->is_object() && text_of(*target, "__CLASS", "PKG_DPJob") == "PKG_DPJob") {
    if (cls == "__InstanceDeletionEvent") {
      // Only a well-formed PackageID names what to remove (it is a prefix of staged and installed names).
      const auto id = target->find("PackageID");
      if (id != target->end() && id->is_string() && valid_package_id(id->get<std::string>())) {
        withdraw(id->get<std::string>());
      } else {
        spdlog::warn("dp agent: a job deletion without a valid PackageID is ignored");
      }
    } else {
      auto job = parse_job(target->dump());
      if (job.ok()) {
        if (job->sent) offer(*job);  // a QUEUED job waits for its slot; a DONE or FAILED one is over
      } else {
        spdlog::warn("dp agent: ignoring a job: {}", job.error().to_string());
      }
    }
  }
  if (auto rev = e.find("__REVISION"); rev != e.end() && rev->is_number_unsigned()) {
    note_revision(rev->get<std::uint64_t>());
  }
}

void Agent::note_revision(std::uint64_t revision) {
  MutexLock lock(mu_);
  if (revision == state_.revision) return;
  state_.revision = revision;
  if (auto s = save_state(options_.data_dir / "state.json", state_); !s.ok()) {
    spdlog::warn("dp agent: cannot save state: {}", s.error().to_string());
  }
}

void Agent::offer(const DpJob& job) {
  MutexLock lock(mu_);
  if (auto it = state_.handled.find(job.package_id); it != state_.handled.end() && job.generation <= it->second) {
    return;
  }
  if (running_ && running_->package_id == job.package_id) {
    if (job.generation <= running_->generation) return;
    running_cancel_->store(true);  // superseded
  }
  if (auto it = queued_.find(job.package_id); it != queued_.end() && it->second.generation >= job.generation) return;
  queued_[job.package_id] = job;
  cv_.notify_all();
}

// The package's job is gone: its removal was reported, the package was deleted, or the DP removed. What this DP
// holds of the package (installed versions, a staged tree) goes too, and the generations handled are forgotten,
// since a job made again for the package starts from generation 1.
void Agent::withdraw(const std::string& package_id) {
  MutexLock lock(mu_);
  if (running_ && running_->package_id == package_id) running_cancel_->store(true);
  if (state_.handled.erase(package_id) > 0) {
    if (auto s = save_state(options_.data_dir / "state.json", state_); !s.ok()) {
      spdlog::warn("dp agent: cannot save state: {}", s.error().to_string());
    }
  }
  DpJob cleanup;
  cleanup.package_id = package_id;
  cleanup.action = JobAction::kRemove;
  cleanup.cleanup = true;
  queued_[package_id] = std::move(cleanup);  // a job of the server's for the package replaces it (generation 0)
  cv_.notify_all();
}

// ---- Jobs ------------------------------------------------------------------------------------------------------

void Agent::job_loop() {
  for (;;) {
    DpJob job;
    std::shared_ptr<std::atomic<bool>> cancel;
    {
      MutexLock lock(mu_);
      while (!stopping_ && queued_.empty()) cv_.wait(mu_);
      if (stopping_) return;
      auto it = queued_.begin();
      job = std::move(it->second);
      queued_.erase(it);
      running_ = job;
      cancel = std::make_shared<std::atomic<bool>>(false);
      running_cancel_ = cancel;
    }
    const bool reported = execute(job, cancel);
    MutexLock lock(mu_);
    running_.reset();
    running_cancel_.reset();
    // Cancelled work (superseded, withdrawn, or the agent stopping) is not recorded: its outcome was not reported;
    // nor is a job whose outcome could not be written to the outbox.
    if (reported && !cancel->load()) {
      auto& handled = state_.handled[job.package_id];
      handled = std::max(handled, job.generation);
      if (auto s = save_state(options_.data_dir / "state.json", state_); !s.ok()) {
        spdlog::warn("dp agent: cannot save state: {}", s.error().to_string());
      }
    }
    cv_.notify_all();
  }
}

std::string Agent::key_for(const DpJob& job, std::string_view state, std::uint64_t extra) const {
  std::string key = key_prefix_ + ":" + job.package_id + ":" + std::to_string(job.generation) + ":" +
                    std::string(state);
  if (state == "progress") {
    // Progress repeats its figures as a heartbeat while no chunk moves, so the bytes alone do not make a report
    // unique; the time does (reports are progress_interval apart). A repeat with the same key would be refused
    // by the server as a duplicate.
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    key += ":" + std::to_string(extra) + "." + std::to_string(ms);
  }
  return key;
}

bool Agent::report(const DpJob& job, std::string_view state, std::string message, std::uint64_t done,
                   std::uint64_t total) {
  StatusMessage m;
  m.key = key_for(job, state, done);
  m.package_id = job.package_id;
  m.generation = job.generation;
  m.state = std::string(state);
  m.bytes_done = done;
  m.bytes_total = total;
  m.message = std::move(message);
  if (auto s = outbox_->put(m); !s.ok()) {
    // The disk refused even the small status file (full?): a final message is still sent from memory, but the job
    // is not recorded as handled, so the next run of the agent (or a new generation) does it again and reports.
    spdlog::error("dp agent: cannot write status {} to the outbox{}: {}", m.key,
                  m.state == "progress" ? "" : " (sending it from memory)", s.error().to_string());
    return false;
  }
  return true;
}

bool Agent::execute(const DpJob& job, const std::shared_ptr<std::atomic<bool>>& cancel) {
  if (job.cleanup) {
    // Nothing to report (the job is gone), and nothing recorded as handled.
    if (Status s = installer_->remove(job); !s.ok()) {
      spdlog::warn("dp agent: cannot remove the content of {}, whose job was deleted: {}", job.package_id,
                   s.error().to_string());
    } else {
      spdlog::info("dp agent: the job of {} was deleted; whatever this DP held of it is removed", job.package_id);
    }
    return false;
  }
  spdlog::info("dp agent: {} {} generation {}", action_name(job.action), job.content_id, job.generation);
  std::unique_ptr<TokenBucket> bucket;
  if (job.transfer_rate_kib > 0) bucket = std::make_unique<TokenBucket>(std::uint64_t{job.transfer_rate_kib} * 1024);
  FetchJob fetch;
  fetch.bucket = bucket.get();
  fetch.cancel = cancel.get();
  if (job.action == JobAction::kInstall || job.action == JobAction::kValidate) {
    // "server" names the site server this agent follows (the server need not know the URL it is reached by).
    std::vector<std::string> urls;
    for (const auto& source : job.sources) {
      if (source != "server") {
        urls.push_back(source);
        continue;
      }
      std::string base = options_.server;
      while (!base.empty() && base.back() == '/') base.pop_back();
      urls.push_back(base + "/api/v1/content");
    }
    auto sources = parse_sources(urls);
    if (!sources.ok()) {
      return report(job, job.action == JobAction::kInstall ? "failed" : "validation_failed",
                    sources.error().to_string());
    }
    fetch.sources = std::move(sources).value();
  }
  switch (job.action) {
    case JobAction::kCancel:
      return report(job, "cancelled");
    case JobAction::kRemove: {
      Status s = installer_->remove(job);
      return report(job, s.ok() ? "removed" : "remove_failed", s.ok() ? std::string() : s.error().to_string());
    }
    case JobAction::kInstall: {
      // Progress at most every progress_interval per job, from whichever worker placed a chunk, and unchanged as a
      // heartbeat while the installer works without moving chunks.
      Mutex progress_mu;
      auto last = std::chrono::steady_clock::now() - options_.progress_interval;
      std::uint64_t last_done = 0;
      std::uint64_t last_total = job.content_size;
      ProgressFn progress = [&](std::uint64_t done, std::uint64_t total) {
        MutexLock lock(progress_mu);
        last_done = done;
        last_total = total;
        const auto now = std::chrono::steady_clock::now();
        if (now - last < options_.progress_interval) return;
        last = now;
        report(job, "progress", {}, done, total);
      };
      // The first report says the job has started (the server counts a job its agent has not started as waiting
      // behind the agent's others, not as stalled); bytes arriving between two placed chunks repeat the last one,
      // at most every kReceivingReportEvery, so a slow download is not taken for a stalled one.
      progress(0, job.content_size);
      fetch.receiving = [&] {
        MutexLock lock(progress_mu);
        const auto now = std::chrono::steady_clock::now();
        if (now - last <
            std::max<std::chrono::steady_clock::duration>(options_.progress_interval, kReceivingReportEvery)) {
          return;
        }
        last = now;
        report(job, "progress", {}, last_done, last_total);
      };
      const auto started = std::chrono::steady_clock::now();
      const std::uint64_t received_before = fetcher_->bytes_received();
      Status s = installer_->install(job, fetch, progress);
      if (cancel->load()) return false;
      if (s.ok()) {
        spdlog::info("dp agent: installed {} in {:.2f} s, {} bytes received",
                     job.content_id,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                     fetcher_->bytes_received() - received_before);
        const bool reported = report(job, "installed", {}, job.content_size, job.content_size);
        // The new version is in place and reported: older ones go (a failure here leaves them for the next install).
        if (Status r = installer_->remove_older(job); !r.ok()) {
          spdlog::warn("dp agent: cannot remove older versions of {}: {}", job.package_id, r.error().to_string());
        }
        return reported;
      }
      spdlog::warn("dp agent: install of {} failed: {}", job.content_id, s.error().to_string());
      installer_->discard_failed(job, s.error().code == WbemCode::kOutOfDiskSpace);
      return report(job, "failed", s.error().to_string());
    }
    case JobAction::kValidate: {
      auto outcome = installer_->validate(job, fetch, [&](const std::vector<std::string>& bad) {
        // Not an outcome: the job goes on, and `validated` (or `validation_failed` with the repair's error) ends it.
        report(job, "repairing", "mismatch:" + path_list(bad));
      });
      if (cancel->load()) return false;
      if (!outcome.ok()) return report(job, "validation_failed", outcome.error().to_string());
      std::string text;
      if (!outcome->mismatched.empty()) text = "repaired:" + path_list(outcome->mismatched);
      return report(job, "validated", text);
    }
  }
  return false;
}

}  // namespace pkgcast::dp
