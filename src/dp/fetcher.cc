#include "dp/fetcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <optional>
#include <thread>

#include "core/paths.h"

namespace pkgcast::dp {
namespace {

bool same_origin(const client::ServerUrl& a, const client::ServerUrl& b) {
  return a.tls == b.tls && a.port == b.port && a.host == b.host;
}

Error cancelled() {
  return make_error(WbemCode::kCallCancelled, "job cancelled");
}

bool stops_at_once(const Error& e) {
  return e.code == WbemCode::kOutOfDiskSpace || e.code == WbemCode::kCallCancelled;
}

// A source that could not be reached or was too busy to answer, as opposed to one that answered wrongly: worth
// waiting for (FetcherOptions::unreachable_patience).
bool unreachable(const Error& e) {
  return e.code == WbemCode::kTransportFailure;
}

bool busy_status(unsigned status) {
  return status == 502 || status == 503 || status == 504;
}

// A source's answer other than the content: a gateway or server that is busy or restarting says so with 502-504.
Error status_error(std::string_view what, const client::ServerUrl& source, unsigned status) {
  return make_error(busy_status(status) ? WbemCode::kTransportFailure : WbemCode::kFailed,
                    std::string(what) + ": " + source.to_string() + " answered HTTP " + std::to_string(status));
}

// The first offset of "bytes <first>-<last>/<total>".
std::optional<std::uint64_t> content_range_start(std::string_view value) {
  if (!value.starts_with("bytes ")) return std::nullopt;
  value.remove_prefix(6);
  std::uint64_t first = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), first);
  if (ec != std::errc() || p == value.data() + value.size() || *p != '-') return std::nullopt;
  return first;
}

}  // namespace

Result<std::vector<client::ServerUrl>> parse_sources(const std::vector<std::string>& sources) {
  std::vector<client::ServerUrl> out;
  for (const auto& s : sources) {
    auto url = client::parse_server_url(s);
    if (url.ok()) out.push_back(std::move(url).value());
  }
  if (out.empty()) return make_error(WbemCode::kInvalidParameter, "the job names no usable content source");
  return out;
}

Fetcher::Fetcher(FetcherOptions options, WorkerPool& pool)
    : options_(std::move(options)), pool_(pool), clients_(pool.size() + 1), client_uses_(pool.size() + 1, 0) {
  for (std::size_t i = 0; i <= pool.size(); ++i) {
    ZstdDecoder d(ZSTD_createDCtx());
    // A frame may need a window as large as the largest chunk a manifest may name (a one-shot frame's window is
    // its whole content), and a frame asking for more is refused, whatever a source sends.
    const auto largest = std::max<std::size_t>(options_.max_chunk_bytes, 2);
    const int window_log = std::clamp(static_cast<int>(std::bit_width(largest - 1)), 10, 31);  // zstd's bounds
    ZSTD_DCtx_setParameter(d.get(), ZSTD_d_windowLogMax, window_log);
    decoders_.push_back(std::move(d));
  }
}

Fetcher::~Fetcher() = default;

Result<client::HttpClient*> Fetcher::client_for(const client::ServerUrl& source, std::size_t worker) {
  auto& mine = clients_[worker];
  const std::uint64_t now = ++client_uses_[worker];
  const std::string key = source.to_string();
  auto it = mine.find(key);
  if (it != mine.end()) {
    it->second.last_used = now;
    return it->second.client.get();
  }
  client::HttpOptions http;
  http.timeout = options_.http_timeout;
  http.ca_file = options_.ca_file;
  http.insecure = options_.insecure;
  if (same_origin(source, options_.server)) http.token = options_.token;
  PKG_ASSIGN_OR_RETURN(auto c, client::HttpClient::create(source, std::move(http)));
  // No caller holds a client across calls, so the least recently used one can go.
  if (mine.size() >= kMaxSourcesKept) {
    mine.erase(std::min_element(mine.begin(), mine.end(),
                                [](const auto& a, const auto& b) { return a.second.last_used < b.second.last_used; }));
  }
  return mine.emplace(key, KeptClient{std::move(c), now}).first->second.client.get();
}

Result<std::string> Fetcher::fetch_manifest(const FetchJob& job, const content::Digest& hash, std::size_t max_bytes) {
  const std::size_t me = pool_.size();
  Error last = make_error(WbemCode::kFailed, "no source");
  const std::size_t attempts = job.sources.size() * std::max(1u, options_.attempts_per_source);
  const auto started = std::chrono::steady_clock::now();
  for (unsigned round = 0;; ++round) {
    if (round > 0 && !(unreachable(last) && wait_for_sources(job, started, round))) {
      return job.cancel && job.cancel->load() ? cancelled() : last;
    }
    const std::size_t start = job.start();
    bool reached = false;
    for (std::size_t attempt = 0; attempt < attempts; ++attempt) {
      if (job.cancel && job.cancel->load()) return cancelled();
      const std::size_t index = (start + attempt) % job.sources.size();
      const auto& source = job.sources[index];
      PKG_ASSIGN_OR_RETURN(client::HttpClient * c, client_for(source, me));
      std::string body;
      bool too_big = false;
      std::optional<Error> too_slow;
      const std::string target = "/manifests/" + hash.hex();
      client::StreamRequest req;
      req.target = target;
      req.accept = "*/*";
      req.abort = job.cancel;
      // Like a chunk's (allowed_for), but from the bytes received, since a manifest's size is known only from what
      // the source announces: once its first bytes came, it may take http_timeout plus what has arrived at 1 KiB/s.
      // A source that drips it is left for the next instead of holding the job.
      std::optional<std::chrono::steady_clock::time_point> first_bytes;
      req.on_data = [&](std::string_view piece) {
        bytes_received_ += piece.size();
        if (job.receiving) job.receiving();
        if (body.size() + piece.size() > max_bytes) {
          too_big = true;
          return false;
        }
        body.append(piece);
        const auto now = std::chrono::steady_clock::now();
        if (!first_bytes) first_bytes = now;
        const auto allowed = options_.http_timeout + std::chrono::milliseconds(std::uint64_t{body.size()} * 1000 /
                                                                               kSlowestSourceBytesPerSecond);
        if (now - *first_bytes > allowed) {
          too_slow = make_error(WbemCode::kTransportFailure,
                                "manifest " + hash.hex() + " from " + source.to_string() + ": " +
                                    std::to_string(body.size()) + " bytes in " +
                                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(allowed).count()) +
                                    " s, slower than the agent takes");
          return false;
        }
        return !(job.cancel && job.cancel->load());
      };
      auto r = c->stream(req);
      if (job.cancel && job.cancel->load()) return cancelled();
      if (too_big) {
        return make_error(WbemCode::kQuotaViolation, "manifest " + hash.hex() + " from " + source.to_string() +
                                                         " is larger than " + std::to_string(max_bytes) + " bytes");
      }
      if (too_slow) {
        last = std::move(*too_slow);
        job.demote(index);
        continue;
      }
      if (!r.ok()) {
        last = std::move(r).error();
        job.demote(index);
        continue;
      }
      if (r->status != 200) {
        last = status_error("manifest " + hash.hex(), source, r->status);
        reached = reached || !unreachable(last);
        job.demote(index);
        continue;
      }
      if (content::sha256(body) != hash) {
        last = make_error(WbemCode::kFailed,
                          "manifest " + hash.hex() + " from " + source.to_string() + " failed verification");
        reached = true;
        job.demote(index);
        continue;
      }
      return body;
    }
    // A source that answered wrongly is not waited for, even when another could not be reached.
    if (reached && unreachable(last)) return last;
  }
}

Result<std::string> Fetcher::fetch_chunk(const FetchJob& job, const content::ChunkRef& ref, std::size_t worker,
                                         const ChunkCheck& check) {
  return fetch_chunk_resuming(job, ref, worker, check, std::string(), kNoSource);
}

Result<std::string> Fetcher::fetch_chunk_resuming(const FetchJob& job, const content::ChunkRef& ref, std::size_t worker,
                                                  const ChunkCheck& check, std::string have, std::size_t have_from) {
  Error last = make_error(WbemCode::kFailed, "no source");
  have.reserve(ref.size);
  if (job.sources.empty()) return last;
  const std::size_t attempts = job.sources.size() * std::max(1u, options_.attempts_per_source);
  const auto started = std::chrono::steady_clock::now();
  bool reached = false;
  for (unsigned round = 0;; ++round) {
    if (round > 0 && (reached || !unreachable(last) || !wait_for_sources(job, started, round))) {
      return job.cancel && job.cancel->load() ? cancelled() : last;
    }
    // The source that sent `have` first, when there is one (it resumes); else the job's current first source.
    const std::size_t start = have_from < job.sources.size() ? have_from : job.start();
    for (std::size_t attempt = 0; attempt < attempts; ++attempt) {
      if (job.cancel && job.cancel->load()) return cancelled();
      const std::size_t index = (start + attempt) % job.sources.size();
      const auto& source = job.sources[index];
      // What a cut download of this source left is resumed; another source starts over (a prefix from one source
      // is not trusted to continue with another's bytes: the hash would catch it, but only after a whole chunk).
      if (index != have_from) have.clear();
      have_from = index;
      Status got = download_chunk(job, source, ref, have, worker);
      if (!got.ok()) {
        if (stops_at_once(got.error())) return std::move(got).error();
        last = std::move(got).error();
        // A source that answered wrongly is not waited for, even when another could not be reached.
        reached = reached || !unreachable(last);
        job.demote(index);
        continue;
      }
      if (check ? !check(have) : content::sha256(have) != ref.hash) {
        have.clear();  // refetch from scratch, from the next source
        last = make_error(WbemCode::kFailed,
                          "chunk " + ref.hash.hex() + " from " + source.to_string() + " failed verification");
        reached = true;
        job.demote(index);
        continue;
      }
      return have;
    }
  }
}

bool Fetcher::wait_for_sources(const FetchJob& job, std::chrono::steady_clock::time_point started,
                               unsigned round) const {
  constexpr std::chrono::milliseconds kLongestWait{30'000};
  const auto backoff = std::min<std::chrono::milliseconds>(
      kLongestWait, options_.unreachable_backoff * (std::uint64_t{1} << std::min(round - 1, 16u)));
  const auto until = std::chrono::steady_clock::now() + backoff;
  if (until - started > options_.unreachable_patience) return false;
  // In slices, so that a cancelled job (or an agent stopping, which cancels its jobs) ends the wait at once.
  while (std::chrono::steady_clock::now() < until) {
    if (job.cancel && job.cancel->load()) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
  }
  return !(job.cancel && job.cancel->load());
}

// One download of a chunk from one source: its request, and what the answer left in `have` (the bytes decoded so
// far, resumable when the download was cut) and why it failed. Appends to `have` what the source sends, decoding
// zstd, never beyond the announced size.
class Fetcher::ChunkDownload {
 public:
  // `allowed`: how long the download may take once its first bytes came, not counting the time the job's transfer
  // rate holds it back (a source that sends a byte a second never times out, and would never be left).
  ChunkDownload(const FetchJob& job, const client::ServerUrl& source, const content::ChunkRef& ref, std::string& have,
                ZSTD_DCtx* dctx, std::atomic<std::uint64_t>& received, std::chrono::milliseconds allowed)
      : job_(job), source_(source), ref_(ref), have_(have), dctx_(dctx), received_(received), allowed_(allowed) {
    if (have_.size() >= ref_.size) have_.clear();
    have_.reserve(ref_.size + 1);
    resumed_at_ = have_.size();
    target_ = "/chunks/" + ref_.hash.hex();
    request_.target = target_;
    request_.accept = "*/*";
    if (resumed_at_ > 0) {
      request_.headers.emplace_back("Range", "bytes=" + std::to_string(resumed_at_) + "-");
    } else {
      request_.headers.emplace_back("Accept-Encoding", "zstd");
    }
    request_.on_head = [this](const client::HttpResponse& head) { return on_head(head); };
    request_.on_data = [this](std::string_view piece) { return on_data(piece); };
    request_.abort = job_.cancel;  // a stopped job ends a wait on a silent source at once
  }
  ChunkDownload(const ChunkDownload&) = delete;
  ChunkDownload& operator=(const ChunkDownload&) = delete;

  const client::StreamRequest& request() const { return request_; }

  // The download's outcome, given the transport's: ok when `have` holds the whole chunk (not yet verified).
  Status finish(const Result<client::HttpResponse>& answer) {
    if (encoded_) have_.resize(decoded_);
    if (job_.cancel && job_.cancel->load()) return cancelled();
    if (failure_) {
      if (encoded_) have_.clear();  // a bad frame's output is no prefix to resume from
      return *failure_;
    }
    if (!answer.ok()) return answer.error();
    if ((encoded_ && frame_left_ != 0) || have_.size() != ref_.size) {
      return make_error(WbemCode::kTransportFailure, "chunk " + ref_.hash.hex() + " from " + source_.to_string() +
                                                         " ended after " + std::to_string(have_.size()) + " of " +
                                                         std::to_string(ref_.size) + " bytes");
    }
    return ok_status();
  }

 private:
  Error too_large() const {
    return make_error(WbemCode::kFailed, "chunk " + ref_.hash.hex() + " from " + source_.to_string() +
                                             " is larger than announced (" + std::to_string(ref_.size) + " bytes)");
  }

  bool on_head(const client::HttpResponse& head) {
    const std::string coding = head.header("Content-Encoding");
    if (!coding.empty() && coding != "identity") {
      if (coding != "zstd" || resumed_at_ > 0) {
        failure_ =
            make_error(WbemCode::kFailed, source_.to_string() + target_ + ": unexpected Content-Encoding " + coding);
        return false;
      }
      encoded_ = true;
      // The worker's decoder, shared by its downloads one at a time (a pipelined batch's answers come in turn).
      ZSTD_DCtx_reset(dctx_, ZSTD_reset_session_only);
      // While a frame is decoded, `have` is sized once to the announced size plus one byte (one byte of room beyond
      // it tells "larger than announced" from "exactly full") and `decoded_` says how much of it holds output:
      // resizing per piece would zero the rest of the chunk again for every piece. Cut to decoded_ by finish().
      have_.reserve(ref_.size + 1);
    }
    if (head.status == 206 && resumed_at_ > 0) {
      if (content_range_start(head.header("Content-Range")) == resumed_at_) return true;
      failure_ = make_error(WbemCode::kFailed, source_.to_string() + target_ + ": unexpected Content-Range");
      return false;
    }
    if (head.status == 200) {
      have_.clear();  // whole: a source that ignored Range starts over
      return true;
    }
    failure_ = status_error("chunk " + ref_.hash.hex(), source_, head.status);
    return false;
  }

  bool on_data(std::string_view piece) {
    received_ += piece.size();
    if (job_.receiving) job_.receiving();
    const auto now = std::chrono::steady_clock::now();
    if (!first_bytes_) {
      first_bytes_ = now;
    } else if (now - *first_bytes_ - held_back_ > allowed_) {
      failure_ = make_error(WbemCode::kTransportFailure,
                            "chunk " + ref_.hash.hex() + " from " + source_.to_string() + ": " +
                                std::to_string(have_.size()) + " of " + std::to_string(ref_.size) + " bytes in " +
                                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(allowed_).count()) +
                                " s, slower than the agent takes");
      return false;
    }
    if (job_.bucket) {
      const bool admitted = job_.bucket->consume(piece.size(), *job_.cancel);
      held_back_ += std::chrono::steady_clock::now() - now;
      if (!admitted) return false;
    }
    if (job_.cancel && job_.cancel->load()) return false;
    if (!encoded_) {
      if (have_.size() + piece.size() > ref_.size) {
        failure_ = too_large();
        return false;
      }
      have_.append(piece);
      return true;
    }
    ZSTD_inBuffer in{piece.data(), piece.size(), 0};
    if (have_.size() != ref_.size + 1) have_.resize(ref_.size + 1);  // the encoded answer starts from nothing
    while (in.pos < in.size) {
      if (frame_left_ == 0) {  // bytes after the frame
        failure_ = make_error(WbemCode::kFailed, "chunk " + ref_.hash.hex() + " from " + source_.to_string() +
                                                     ": data after the zstd frame");
        return false;
      }
      ZSTD_outBuffer out{have_.data(), have_.size(), decoded_};
      frame_left_ = ZSTD_decompressStream(dctx_, &out, &in);
      decoded_ = out.pos;
      if (ZSTD_isError(frame_left_)) {
        failure_ = make_error(WbemCode::kFailed, "chunk " + ref_.hash.hex() + " from " + source_.to_string() +
                                                     ": bad zstd data: " + ZSTD_getErrorName(frame_left_));
        return false;
      }
      if (decoded_ > ref_.size) {
        failure_ = too_large();
        return false;
      }
    }
    return true;
  }

  const FetchJob& job_;
  const client::ServerUrl& source_;
  const content::ChunkRef& ref_;
  std::string& have_;
  ZSTD_DCtx* const dctx_;
  std::atomic<std::uint64_t>& received_;
  std::string target_;
  std::uint64_t resumed_at_ = 0;
  client::StreamRequest request_;
  std::optional<Error> failure_;
  bool encoded_ = false;
  std::size_t frame_left_ = 1;  // ZSTD_decompressStream's hint; 0 once the frame is complete
  std::size_t decoded_ = 0;
  const std::chrono::milliseconds allowed_;
  std::optional<std::chrono::steady_clock::time_point> first_bytes_;
  std::chrono::steady_clock::duration held_back_{};  // in the job's transfer rate
};

std::chrono::milliseconds Fetcher::allowed_for(const content::ChunkRef& ref) const {
  return options_.http_timeout +
         std::chrono::milliseconds(std::uint64_t{ref.size} * 1000 / kSlowestSourceBytesPerSecond);
}

Status Fetcher::download_chunk(const FetchJob& job, const client::ServerUrl& source, const content::ChunkRef& ref,
                               std::string& have, std::size_t worker) {
  PKG_ASSIGN_OR_RETURN(client::HttpClient * c, client_for(source, worker));
  ChunkDownload download(job, source, ref, have, decoders_[worker].get(), bytes_received_, allowed_for(ref));
  const auto answer = c->stream(download.request());
  return download.finish(answer);
}

std::vector<Result<std::string>> Fetcher::fetch_chunks(const FetchJob& job, std::span<const content::ChunkRef> refs,
                                                       std::size_t worker, std::span<const ChunkCheck> checks) {
  std::vector<Result<std::string>> out;
  out.reserve(refs.size());
  std::vector<std::string> have(refs.size());
  std::vector<Status> got(refs.size(), ok_status());
  // Every chunk asked of the first source at once; any that did not arrive whole and right is then fetched alone
  // as fetch_chunk() does (the other sources, the attempts, a resumed Range).
  const std::size_t first = job.start();
  if (refs.size() > 1 && !job.sources.empty() && !(job.cancel && job.cancel->load())) {
    const client::ServerUrl& source = job.sources[first];
    auto c = client_for(source, worker);
    if (c.ok()) {
      std::vector<std::unique_ptr<ChunkDownload>> downloads;
      std::vector<client::StreamRequest> requests;
      downloads.reserve(refs.size());
      requests.reserve(refs.size());
      for (std::size_t i = 0; i < refs.size(); ++i) {
        downloads.push_back(std::make_unique<ChunkDownload>(job, source, refs[i], have[i], decoders_[worker].get(),
                                                            bytes_received_, allowed_for(refs[i])));
        requests.push_back(downloads.back()->request());
      }
      const auto answers = (*c)->stream_pipelined(requests);
      for (std::size_t i = 0; i < refs.size(); ++i) got[i] = downloads[i]->finish(answers[i]);
    } else {
      for (auto& g : got) g = c.error();
    }

  } else {
    for (auto& g : got) g = make_error(WbemCode::kFailed, "not asked yet");
  }
  // Each answer checked once (a check may add the bytes to their file's running hash); the source is demoted before
  // any is fetched again when it failed one, so that a silent source costs one timeout per batch, not per chunk.
  enum class Verdict : std::uint8_t { kRight, kFinal, kAgain };
  std::vector<Verdict> verdicts(refs.size(), Verdict::kAgain);
  const bool asked = refs.size() > 1 && !job.sources.empty();
  bool source_failed = false;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    const ChunkCheck& check = i < checks.size() ? checks[i] : ChunkCheck();
    if (got[i].ok()) {
      if (check ? check(have[i]) : content::sha256(have[i]) == refs[i].hash) {
        verdicts[i] = Verdict::kRight;
        continue;
      }
      have[i].clear();  // wrong bytes: fetched again from scratch
    } else if (stops_at_once(got[i].error())) {
      verdicts[i] = Verdict::kFinal;
      continue;
    }
    source_failed = asked;
  }
  if (source_failed) job.demote(first);
  for (std::size_t i = 0; i < refs.size(); ++i) {
    switch (verdicts[i]) {
      case Verdict::kRight: out.emplace_back(std::move(have[i])); break;
      case Verdict::kFinal: out.emplace_back(got[i].error()); break;
      case Verdict::kAgain: {
        // What a cut answer left is resumed from the same source; a chunk with nothing yet starts afresh.
        const ChunkCheck& check = i < checks.size() ? checks[i] : ChunkCheck();
        const std::size_t from = have[i].empty() ? kNoSource : first;
        out.push_back(fetch_chunk_resuming(job, refs[i], worker, check, std::move(have[i]), from));
        break;
      }
    }
  }
  return out;
}

}  // namespace pkgcast::dp
