// Immutable content (docs/dp-protocol.md): manifests by content ID or hash, chunks by SHA-256. Any role may read
// them (DP agents above all), but a site-limited token names by content ID only its sites' packages. Each answer carries a strong ETag (the hash), is cacheable forever, honours a single
// byte range, and a chunk kept zstd-compressed goes out as it is stored when the client accepts zstd. A chunk's
// body is sent from its stored file (server/file_body.h) whenever the stored form is what is asked for.
#include <memory>
#include <optional>
#include <utility>

#include "core/strings.h"
#include "server/file_body.h"
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";

Result<content::Digest> digest_of(std::string_view text) {
  auto d = content::Digest::from_hex(text);
  if (!d) return make_error(WbemCode::kInvalidParameter, "'" + std::string(text.substr(0, 80)) + "' is not a SHA-256");
  return *d;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool accepts_zstd(const Request& req) {
  // A coding named with q=0 is refused by the client; anything else that names zstd accepts it.
  std::string_view list = req.header("accept-encoding");
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view part = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (!starts_with_icase(part, "zstd")) continue;
    const std::string_view rest = trim(part.substr(4));
    if (rest.empty()) return true;
    const auto q = rest.find("q=");
    return q == std::string_view::npos || trim(rest.substr(q + 2)).find_first_not_of("0.") != std::string_view::npos;
  }
  return false;
}

// "bytes=a-b", "bytes=a-", "bytes=-n" over `size` bytes: the [first, last] it asks for; nullopt when the header is
// absent or names several ranges (answered whole, as RFC 9110 allows); an error when unsatisfiable.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};
Result<std::optional<ByteRange>> range_of(std::string_view header, std::uint64_t size) {
  if (header.empty()) return std::optional<ByteRange>();
  if (!starts_with_icase(header, "bytes=") || header.find(',') != std::string_view::npos) {
    return std::optional<ByteRange>();
  }
  const std::string_view spec = trim(header.substr(6));
  const auto dash = spec.find('-');
  auto parse = [](std::string_view t, std::uint64_t& v) {
    if (t.empty() || t.size() > 19 || t.find_first_not_of("0123456789") != std::string_view::npos) return false;
    v = std::stoull(std::string(t));
    return true;
  };
  ByteRange r;
  const Error unsatisfiable = make_error(WbemCode::kValueOutOfRange, "range not satisfiable");
  if (dash == std::string_view::npos) return std::optional<ByteRange>();
  const std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  if (a.empty()) {
    std::uint64_t n = 0;
    if (!parse(b, n)) return std::optional<ByteRange>();
    if (n == 0 || size == 0) return unsatisfiable;
    r.first = n >= size ? 0 : size - n;
    r.last = size - 1;
  } else {
    if (!parse(a, r.first)) return std::optional<ByteRange>();
    if (b.empty()) {
      r.last = size == 0 ? 0 : size - 1;
    } else if (!parse(b, r.last) || r.last < r.first) {
      return std::optional<ByteRange>();
    }
    if (r.first >= size) return unsatisfiable;
    r.last = std::min(r.last, size - 1);
  }
  return std::optional<ByteRange>(r);
}

// The status and headers of the answer for an immutable representation of `size` bytes named by `etag`, honouring
// If-None-Match, Range and If-Range, and the bytes of it the body holds: [first, first + length); none for 304 and 416.
struct Framed {
  Response response;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> body;  // first, length
};
Framed frame(const Request& req, std::uint64_t size, const std::string& etag, std::string content_type,
             std::string_view encoding) {
  Framed out;
  Response& r = out.response;
  r.content_type = std::move(content_type);
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Cache-Control", std::string(kImmutable));
  r.headers.emplace_back("Accept-Ranges", "bytes");
  r.headers.emplace_back("Vary", "Accept-Encoding");
  if (!encoding.empty()) r.headers.emplace_back("Content-Encoding", std::string(encoding));
  const std::string_view inm = req.header("if-none-match");
  if (!inm.empty() && (inm == "*" || inm.find(etag) != std::string_view::npos)) {
    r.status = 304;
    return out;
  }
  // If-Range (RFC 9110 section 13.1.5): the range applies only to the representation the client names by its
  // strong ETag; for any other (a weak tag, another encoding's tag, or a date: nothing here has a Last-Modified)
  // the whole representation is sent, so a resumed download never splices bytes of two representations.
  const std::string_view if_range = trim(req.header("if-range"));
  auto range = range_of(if_range.empty() || if_range == etag ? req.header("range") : std::string_view(), size);
  if (!range.ok()) {
    Response e = error_response(range.error());
    e.status = 416;
    e.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
    out.response = std::move(e);
    return out;
  }
  if (*range) {
    const ByteRange br = **range;
    r.status = 206;
    r.headers.emplace_back("Content-Range", "bytes " + std::to_string(br.first) + "-" + std::to_string(br.last) + "/" +
                                                std::to_string(size));
    out.body.emplace(br.first, br.last - br.first + 1);
    return out;
  }
  r.status = 200;
  out.body.emplace(0, size);
  return out;
}

// The answer for `bytes` held in memory.
Response immutable(const Request& req, std::string bytes, const std::string& etag, std::string content_type,
                   std::string_view encoding) {
  Framed f = frame(req, bytes.size(), etag, std::move(content_type), encoding);
  if (f.body) {
    f.response.body = f.body->second == bytes.size() ? std::move(bytes) : bytes.substr(f.body->first, f.body->second);
  }
  return std::move(f.response);
}

// The answer for the bytes of `file`, sent from the file (server/file_body.h): neither read nor copied here.
Response immutable(const Request& req, std::shared_ptr<const OpenFile> file, const std::string& etag,
                   std::string content_type, std::string_view encoding) {
  Framed f = frame(req, file->size(), etag, std::move(content_type), encoding);
  if (f.body) f.response.file = FileBody{std::move(file), f.body->first, f.body->second};
  return std::move(f.response);
}

Result<Response> get_manifest(ApiContext& ctx, const Request& req) {
  if (!ctx.library) return make_error(WbemCode::kNotSupported, "this server keeps no content library");
  const std::string& id = req.params.at("id");
  content::Digest digest;
  if (const auto dot = id.find('.'); dot != std::string::npos) {
    // A content ID names a package: a site-limited token reads it only for its sites' packages, and one outside
    // them answers as one that does not exist (by hash, content stays anyone's). A DP's token reads every package
    // it may be sent, whichever site made it.
    const site::TokenRecord& caller = caller_of(req);
    if (caller.role != site::Role::kDp && !caller.sites.empty() && !visible_package(ctx, req, id.substr(0, dot)).ok()) {
      return make_error(WbemCode::kNotFound, "content " + id + " does not exist");
    }
    PKG_ASSIGN_OR_RETURN(auto recorded, site::recorded_content(ctx.store, to_upper(id)));
    if (!recorded) return make_error(WbemCode::kNotFound, "content " + id + " does not exist");
    PKG_ASSIGN_OR_RETURN(digest, digest_of(recorded->manifest_hash));
  } else {
    PKG_ASSIGN_OR_RETURN(digest, digest_of(id));
  }
  PKG_ASSIGN_OR_RETURN(std::string bytes, ctx.library->manifest_bytes(digest));
  return immutable(req, std::move(bytes), "\"" + digest.hex() + "\"", "application/json", "");
}

// The answer for a chunk. Without `may_decode`, a request that only decoding the stored chunk would answer is not
// answered: `declined` is set and the result is to be ignored. Every other answer opens one file and reads nothing,
// so it may be given on a network thread (router.h, InlineHandler).
Result<Response> chunk_answer(ApiContext& ctx, const Request& req, bool may_decode, bool& declined) {
  declined = false;
  if (!ctx.library) return make_error(WbemCode::kNotSupported, "this server keeps no content library");
  PKG_ASSIGN_OR_RETURN(content::Digest digest, digest_of(req.params.at("sha256")));
  const std::string etag = "\"" + digest.hex() + "\"";
  // The stored file itself, unread and unverified here: the client verifies every chunk after decoding it
  // (docs/dp-protocol.md), so the server need not hash what it sends. Kept zstd-compressed, it goes out as stored
  // when the client takes zstd and wants it whole (fewer bytes on the wire, nothing decoded here); kept raw, it
  // goes out as stored whatever the client asked (a Range is a span of the file). It may go (garbage collection)
  // once opened: the open descriptor still reads it whole.
  PKG_ASSIGN_OR_RETURN(const content::ChunkStore::OpenedChunk opened, ctx.library->chunks().open_stored(digest));
  auto file = OpenFile::adopt(opened.fd, opened.stored_size);
  if (!opened.compressed) return immutable(req, std::move(file), etag, "application/octet-stream", "");
  if (accepts_zstd(req) && req.header("range").empty()) {
    return immutable(req, std::move(file), "\"zstd-" + digest.hex() + "\"", "application/octet-stream", "zstd");
  }
  if (!may_decode) {
    declined = true;
    return make_error(WbemCode::kFailed, "decoding is left to a worker");
  }
  // The raw bytes of a compressed chunk (a client without zstd, or a resumed download's Range): decoded, and so
  // verified, by the store.
  PKG_ASSIGN_OR_RETURN(std::string raw, ctx.library->chunks().get(digest));
  return immutable(req, std::move(raw), etag, "application/octet-stream", "");
}

}  // namespace

void register_content(Router& router, ApiContext& ctx) {
  router.add("GET", path("/content/manifests/{id}"), Access::kAnyRole,
             handler([&ctx](Request& req) { return get_manifest(ctx, req); }));
  router.add(
      "GET", path("/content/chunks/{sha256}"), Access::kAnyRole, handler([&ctx](Request& req) {
        bool declined = false;
        return chunk_answer(ctx, req, /*may_decode=*/true, declined);
      }),
      QueryToken::kRefused, [&ctx](Request& req) -> std::optional<Response> {
        bool declined = false;
        auto answer = chunk_answer(ctx, req, /*may_decode=*/false, declined);
        if (declined) return std::nullopt;
        if (!answer.ok()) return error_response(answer.error());
        return std::move(answer).value();
      });
}

}  // namespace pkgcast::server::routes
