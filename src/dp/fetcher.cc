#include "dp/fetcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <optional>

#include "core/paths.h"

namespace pkgcast::dp {
namespace {

bool same_origin(const client::ServerUrl& a, const client::ServerUrl& b) {
  return a.tls == b.tls && a.port == b.port && a.host == b.host;
}

Error cancelled() { return make_error(WbemCode::kCallCancelled, "job cancelled"); }

bool stops_at_once(const Error& e) {
  return e.code == WbemCode::kOutOfDiskSpace || e.code == WbemCode::kCallCancelled;
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
    : options_(std::move(options)), pool_(pool), clients_(pool.size() + 1) {
  for (std::size_t i = 0; i <= pool.size(); ++i) {
    ZstdDecoder d(ZSTD_createDCtx());
    // A chunk is at most 256 KiB: a frame asking for a larger window is refused, whatever a source sends.
    ZSTD_DCtx_setParameter(d.get(), ZSTD_d_windowLogMax, 19);
    decoders_.push_back(std::move(d));
  }
}

Fetcher::~Fetcher() = default;

Result<client::HttpClient*> Fetcher::client_for(const client::ServerUrl& source, std::size_t worker) {
  auto& mine = clients_[worker];
  const std::string key = source.to_string();
  auto it = mine.find(key);
  if (it != mine.end()) return it->second.get();
  client::HttpOptions http;
  http.timeout = options_.http_timeout;
  http.ca_file = options_.ca_file;
  http.insecure = options_.insecure;
  if (same_origin(source, options_.server)) http.token = options_.token;
  PKG_ASSIGN_OR_RETURN(auto c, client::HttpClient::create(source, std::move(http)));
  return mine.emplace(key, std::move(c)).first->second.get();
}

Result<std::string> Fetcher::fetch_manifest(const FetchJob& job, const content::Digest& hash, std::size_t max_bytes) {
  const std::size_t me = pool_.size();
  Error last = make_error(WbemCode::kFailed, "no source");
  const std::size_t attempts = job.sources.size() * std::max(1u, options_.attempts_per_source);
  for (std::size_t attempt = 0; attempt < attempts; ++attempt) {
    if (job.cancel && job.cancel->load()) return cancelled();
    const auto& source = job.sources[attempt % job.sources.size()];
    PKG_ASSIGN_OR_RETURN(client::HttpClient * c, client_for(source, me));
    std::string body;
    bool too_big = false;
    const std::string target = "/manifests/" + hash.hex();
    client::StreamRequest req;
    req.target = target;
    req.accept = "*/*";
    req.on_data = [&](std::string_view piece) {
      bytes_received_ += piece.size();
      if (body.size() + piece.size() > max_bytes) {
        too_big = true;
        return false;
      }
      body.append(piece);
      return !(job.cancel && job.cancel->load());
    };
    auto r = c->stream(req);
    if (job.cancel && job.cancel->load()) return cancelled();
    if (too_big) {
      return make_error(WbemCode::kQuotaViolation, "manifest " + hash.hex() + " from " + source.to_string() +
                                                       " is larger than " + std::to_string(max_bytes) + " bytes");
    }
    if (!r.ok()) {
      last = std::move(r).error();
      continue;
    }
    if (r->status != 200) {
      last = make_error(WbemCode::kFailed, "manifest " + hash.hex() + ": " + source.to_string() + " answered HTTP " +
                                               std::to_string(r->status));
      continue;
    }
    if (content::sha256(body) != hash) {
      last = make_error(WbemCode::kFailed,
                        "manifest " + hash.hex() + " from " + source.to_string() + " failed verification");
      continue;
    }
    return body;
  }
  return last;
}

Result<std::string> Fetcher::fetch_chunk(const FetchJob& job, const content::ChunkRef& ref, std::size_t worker,
                                         const ChunkCheck& check) {
  Error last = make_error(WbemCode::kFailed, "no source");
  std::string have;
  have.reserve(ref.size);
  const std::size_t attempts = job.sources.size() * std::max(1u, options_.attempts_per_source);
  for (std::size_t attempt = 0; attempt < attempts; ++attempt) {
    if (job.cancel && job.cancel->load()) return cancelled();
    const auto& source = job.sources[attempt % job.sources.size()];
    // What a cut download of this source left is resumed; another source starts over (a prefix from one source
    // is not trusted to continue with another's bytes: the hash would catch it, but only after a whole chunk).
    if (attempt > 0 && attempt % job.sources.size() != (attempt - 1) % job.sources.size()) have.clear();
    Status got = download_chunk(job, source, ref, have, worker);
    if (!got.ok()) {
      if (stops_at_once(got.error())) return std::move(got).error();
      last = std::move(got).error();
      continue;
    }
    if (check ? !check(have) : content::sha256(have) != ref.hash) {
      have.clear();  // refetch from scratch, from the next source
      last = make_error(WbemCode::kFailed, "chunk " + ref.hash.hex() + " from " + source.to_string() +
                                               " failed verification");
      continue;
    }
    return have;
  }
  return last;
}

Status Fetcher::download_chunk(const FetchJob& job, const client::ServerUrl& source, const content::ChunkRef& ref,
                               std::string& have, std::size_t worker) {
  if (have.size() >= ref.size) have.clear();
  PKG_ASSIGN_OR_RETURN(client::HttpClient * c, client_for(source, worker));
  ZSTD_DCtx* dctx = decoders_[worker].get();
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
  const std::string target = "/chunks/" + ref.hash.hex();
  const std::uint64_t resumed_at = have.size();
  client::StreamRequest req;
  req.target = target;
  req.accept = "*/*";
  if (resumed_at > 0) {
    req.headers.emplace_back("Range", "bytes=" + std::to_string(resumed_at) + "-");
  } else {
    req.headers.emplace_back("Accept-Encoding", "zstd");
  }
  std::optional<Error> failure;
  bool encoded = false;
  std::size_t frame_left = 1;  // ZSTD_decompressStream's hint; 0 once the frame is complete
  // While a frame is decoded, `have` is sized once to the announced size plus one byte (one byte of room beyond it
  // tells "larger than announced" from "exactly full") and `decoded` says how much of it holds output: resizing
  // per piece would zero the rest of the chunk again for every piece. `have` is cut to `decoded` before return.
  std::size_t decoded = 0;
  have.reserve(ref.size + 1);
  const auto too_large = [&] {
    return make_error(WbemCode::kFailed, "chunk " + ref.hash.hex() + " from " + source.to_string() +
                                             " is larger than announced (" + std::to_string(ref.size) + " bytes)");
  };
  req.on_head = [&](const client::HttpResponse& head) {
    const std::string coding = head.header("Content-Encoding");
    if (!coding.empty() && coding != "identity") {
      if (coding != "zstd" || resumed_at > 0) {
        failure = make_error(WbemCode::kFailed, source.to_string() + target + ": unexpected Content-Encoding " + coding);
        return false;
      }
      encoded = true;
    }
    if (head.status == 206 && resumed_at > 0) {
      if (content_range_start(head.header("Content-Range")) == resumed_at) return true;
      failure = make_error(WbemCode::kFailed, source.to_string() + target + ": unexpected Content-Range");
      return false;
    }
    if (head.status == 200) {
      have.clear();  // whole: a source that ignored Range starts over
      return true;
    }
    failure = make_error(WbemCode::kFailed,
                         "chunk " + ref.hash.hex() + ": " + source.to_string() + " answered HTTP " +
                             std::to_string(head.status));
    return false;
  };
  req.on_data = [&](std::string_view piece) {
    bytes_received_ += piece.size();
    if (job.bucket && !job.bucket->consume(piece.size(), *job.cancel)) return false;
    if (job.cancel && job.cancel->load()) return false;
    if (!encoded) {
      if (have.size() + piece.size() > ref.size) {
        failure = too_large();
        return false;
      }
      have.append(piece);
      return true;
    }
    ZSTD_inBuffer in{piece.data(), piece.size(), 0};
    if (have.size() != ref.size + 1) have.resize(ref.size + 1);  // the encoded answer starts from nothing
    while (in.pos < in.size) {
      if (frame_left == 0) {  // bytes after the frame
        failure = make_error(WbemCode::kFailed, "chunk " + ref.hash.hex() + " from " + source.to_string() +
                                                    ": data after the zstd frame");
        return false;
      }
      ZSTD_outBuffer out{have.data(), have.size(), decoded};
      frame_left = ZSTD_decompressStream(dctx, &out, &in);
      decoded = out.pos;
      if (ZSTD_isError(frame_left)) {
        failure = make_error(WbemCode::kFailed, "chunk " + ref.hash.hex() + " from " + source.to_string() +
                                                    ": bad zstd data: " + ZSTD_getErrorName(frame_left));
        return false;
      }
      if (decoded > ref.size) {
        failure = too_large();
        return false;
      }
    }
    return true;
  };
  auto r = c->stream(req);
  if (encoded) have.resize(decoded);
  if (job.cancel && job.cancel->load()) return cancelled();
  if (failure) {
    if (encoded) have.clear();  // a bad frame's output is no prefix to resume from
    return *failure;
  }
  if (!r.ok()) return std::move(r).error();
  if ((encoded && frame_left != 0) || have.size() != ref.size) {
    return make_error(WbemCode::kTransportFailure, "chunk " + ref.hash.hex() + " from " + source.to_string() +
                                                       " ended after " + std::to_string(have.size()) + " of " +
                                                       std::to_string(ref.size) + " bytes");
  }
  return ok_status();
}

}  // namespace pkgcast::dp
