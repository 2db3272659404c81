#include "dp/fetcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>

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

Fetcher::Fetcher(FetcherOptions options, content::ChunkStore& store, WorkerPool& pool)
    : options_(std::move(options)), store_(store), pool_(pool), clients_(pool.size() + 1) {}

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

Status Fetcher::fetch_chunks(const FetchJob& job, const std::vector<content::ChunkRef>& chunks) {
  Mutex mu;
  std::optional<Error> first;
  std::atomic<bool> failed{false};
  pool_.run(chunks.size(), [&](std::size_t i, std::size_t worker) {
    if (failed.load()) return;
    Status s = fetch_chunk(job, chunks[i], worker);
    if (s.ok()) return;
    MutexLock lock(mu);
    if (!first) first = std::move(s).error();
    failed.store(true);
  });
  MutexLock lock(mu);
  if (first) return *first;
  return ok_status();
}

Status Fetcher::fetch_chunk(const FetchJob& job, const content::ChunkRef& ref, std::size_t worker) {
  if (store_.contains(ref.hash)) {
    if (job.on_stored) job.on_stored(ref);
    return ok_status();
  }
  const auto partial = options_.partial_dir / (ref.hash.hex() + ".part");
  Error last = make_error(WbemCode::kFailed, "no source");
  const std::size_t attempts = job.sources.size() * std::max(1u, options_.attempts_per_source);
  for (std::size_t attempt = 0; attempt < attempts; ++attempt) {
    if (job.cancel && job.cancel->load()) return cancelled();
    const auto& source = job.sources[attempt % job.sources.size()];
    Status got = download_chunk(job, source, ref, partial, worker);
    if (!got.ok()) {
      if (stops_at_once(got.error())) return got;
      last = std::move(got).error();
      continue;
    }
    // Complete: verify the bytes before anything else sees them. A chunk is at most max_size (256 KiB) bytes.
    auto bytes = read_file(partial.string());
    if (!bytes.ok()) return std::move(bytes).error();
    std::span<const std::uint8_t> raw(reinterpret_cast<const std::uint8_t*>(bytes->data()), bytes->size());
    if (content::sha256(raw) != ref.hash) {
      std::error_code ec;
      std::filesystem::remove(partial, ec);  // refetch from scratch, from the next source
      last = make_error(WbemCode::kFailed, "chunk " + ref.hash.hex() + " from " + source.to_string() +
                                               " failed verification");
      continue;
    }
    PKG_TRY(store_.put(ref.hash, raw));
    std::error_code ec;
    std::filesystem::remove(partial, ec);
    if (job.on_stored) job.on_stored(ref);
    return ok_status();
  }
  return last;
}

Status Fetcher::download_chunk(const FetchJob& job, const client::ServerUrl& source, const content::ChunkRef& ref,
                               const std::filesystem::path& partial, std::size_t worker) {
  Fd fd(::open(partial.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return io_error("open", partial, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("stat", partial, errno);
  std::uint64_t have = static_cast<std::uint64_t>(st.st_size);
  if (have > ref.size) {
    if (::ftruncate(fd.get(), 0) != 0) return io_error("truncate", partial, errno);
    have = 0;
  }
  if (have == ref.size) return ok_status();  // complete from an earlier run; the caller verifies
  if (::lseek(fd.get(), static_cast<off_t>(have), SEEK_SET) < 0) return io_error("seek", partial, errno);

  PKG_ASSIGN_OR_RETURN(client::HttpClient * c, client_for(source, worker));
  const std::string target = "/chunks/" + ref.hash.hex();
  client::StreamRequest req;
  req.target = target;
  req.accept = "*/*";
  if (have > 0) req.headers.emplace_back("Range", "bytes=" + std::to_string(have) + "-");
  std::optional<Error> failure;
  req.on_head = [&](const client::HttpResponse& head) {
    if (head.status == 206 && have > 0) {
      if (content_range_start(head.header("Content-Range")) == have) return true;
      failure = make_error(WbemCode::kFailed, source.to_string() + target + ": unexpected Content-Range");
      return false;
    }
    if (head.status == 200) {
      if (have > 0) {  // the source ignored Range: start over
        if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) < 0) {
          failure = io_error("truncate", partial, errno);
          return false;
        }
        have = 0;
      }
      return true;
    }
    failure = make_error(WbemCode::kFailed,
                         "chunk " + ref.hash.hex() + ": " + source.to_string() + " answered HTTP " +
                             std::to_string(head.status));
    return false;
  };
  req.on_data = [&](std::string_view piece) {
    bytes_received_ += piece.size();
    if (have + piece.size() > ref.size) {
      failure = make_error(WbemCode::kFailed, "chunk " + ref.hash.hex() + " from " + source.to_string() +
                                                  " is larger than announced (" + std::to_string(ref.size) + " bytes)");
      ::ftruncate(fd.get(), 0);
      return false;
    }
    if (job.bucket && !job.bucket->consume(piece.size(), *job.cancel)) return false;
    if (job.cancel && job.cancel->load()) return false;
    Status w = write_all(fd.get(), {reinterpret_cast<const std::uint8_t*>(piece.data()), piece.size()}, partial,
                         options_.write_fault);
    if (!w.ok()) {
      failure = std::move(w).error();
      return false;
    }
    have += piece.size();
    return true;
  };
  auto r = c->stream(req);
  if (job.cancel && job.cancel->load()) return cancelled();
  if (failure) return *failure;
  if (!r.ok()) return std::move(r).error();
  if (have != ref.size) {
    return make_error(WbemCode::kTransportFailure, "chunk " + ref.hash.hex() + " from " + source.to_string() +
                                                       " ended after " + std::to_string(have) + " of " +
                                                       std::to_string(ref.size) + " bytes");
  }
  return ok_status();
}

}  // namespace pkgcast::dp
