// GET /content/chunks/{sha256} at the route: which form of a stored chunk is answered (the file as stored, or
// decoded bytes in memory), with ETag, If-None-Match, Range and Content-Encoding. The bytes on the wire (sendfile,
// HEAD, TLS) are server/http_file_body_test.cc's.
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "content/content.h"
#include "server/routes/routes_fixture.h"

namespace pkgcast::server {
namespace {

struct Answer {
  unsigned status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
  bool from_file = false;  // the body is a span of a file (Response::file)
  bool declined = false;   // the route's InlineHandler left the request to a worker
};

std::string text_bytes(std::size_t n) {
  std::string out;
  for (std::size_t i = 0; out.size() < n; ++i) out += "line " + std::to_string(i % 97) + " of some text\n";
  out.resize(n);
  return out;
}

std::string random_bytes(std::size_t n) {
  std::mt19937_64 rng(3);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class ContentRouteTest : public RoutesTest {
 protected:
  void configure(ApiOptions& options) override { options.content_library = dir_ / "library"; }

  void SetUp() override {
    RoutesTest::SetUp();
    // The same library, opened beside the server's: chunks put here are found by the server's store on disk.
    auto library = content::Library::open(dir_ / "library");
    ASSERT_TRUE(library.ok()) << library.error().to_string();
    library_ = std::move(*library);
    raw_ = random_bytes(100'000);
    text_ = text_bytes(100'000);
    raw_hash_ = content::sha256(raw_);
    text_hash_ = content::sha256(text_);
    for (const std::string* b : {&raw_, &text_}) {
      const auto* p = reinterpret_cast<const std::uint8_t*>(b->data());
      ASSERT_TRUE(library_->chunks().put(content::sha256(*b), {p, b->size()}).ok());
    }
    auto stored = library_->chunks().locate(text_hash_);
    ASSERT_TRUE(stored.ok());
    ASSERT_TRUE(stored->compressed) << "text should be stored as a zstd frame";
    text_file_ = stored->file;
    ASSERT_FALSE(library_->chunks().locate(raw_hash_)->compressed);
  }

  // The route's answer: its Handler's (a worker's), or with `on_network_thread` its InlineHandler's.
  Answer get(const content::Digest& hash, std::vector<std::pair<std::string, std::string>> headers = {},
             bool on_network_thread = false) {
    return get_path("/api/v1/content/chunks/" + hash.hex(), std::move(headers), on_network_thread);
  }

  Answer get_path(const std::string& path, std::vector<std::pair<std::string, std::string>> headers,
                  bool on_network_thread) {
    Request req;
    req.method = "GET";
    req.path = path;
    for (auto& [name, value] : headers) req.headers[name] = value;
    req.caller = dp_;
    auto match = router_.match("GET", req.path);
    EXPECT_TRUE(match && match->handler);
    if (!match || !match->handler) return {};
    req.params = match->params;
    Response resp;
    if (on_network_thread) {
      EXPECT_TRUE(match->inline_handler);
      if (!match->inline_handler) return {};
      std::optional<Response> answered = (*match->inline_handler)(req);
      if (!answered) {
        Answer declined;
        declined.declined = true;
        return declined;
      }
      resp = std::move(*answered);
    } else {
      resp = (*match->handler)(req);
    }
    Answer a;
    a.status = resp.status;
    for (auto& [name, value] : resp.headers) a.headers[name] = value;
    a.body = resp.body;
    if (resp.file) {
      a.from_file = true;
      a.body.assign(resp.file->length, '\0');
      EXPECT_EQ(::pread(resp.file->file->fd(), a.body.data(), a.body.size(), static_cast<off_t>(resp.file->offset)),
                static_cast<ssize_t>(a.body.size()));
    }
    return a;
  }

  std::unique_ptr<content::Library> library_;
  std::string raw_, text_;
  content::Digest raw_hash_, text_hash_;
  std::filesystem::path text_file_;
};

TEST_F(ContentRouteTest, ARawChunkIsSentFromItsFileWholeOrASpan) {
  for (const char* accept : {"", "zstd"}) {
    Answer a = get(raw_hash_, {{"accept-encoding", accept}});
    EXPECT_EQ(a.status, 200u);
    EXPECT_TRUE(a.from_file);
    EXPECT_TRUE(a.body == raw_);
    EXPECT_EQ(a.headers["ETag"], "\"" + raw_hash_.hex() + "\"");
    EXPECT_EQ(a.headers.count("Content-Encoding"), 0u);
  }
  Answer span = get(raw_hash_, {{"range", "bytes=10-19"}});
  EXPECT_EQ(span.status, 206u);
  EXPECT_TRUE(span.from_file);
  EXPECT_EQ(span.body, raw_.substr(10, 10));
  EXPECT_EQ(span.headers["Content-Range"], "bytes 10-19/100000");
  Answer tail = get(raw_hash_, {{"range", "bytes=-5"}});
  EXPECT_EQ(tail.status, 206u);
  EXPECT_EQ(tail.body, raw_.substr(raw_.size() - 5));
  Answer past = get(raw_hash_, {{"range", "bytes=100000-"}});
  EXPECT_EQ(past.status, 416u);
  EXPECT_FALSE(past.from_file);
  EXPECT_EQ(past.headers["Content-Range"], "bytes */100000");
  // If-Range: the span only when the client names this representation by its strong ETag.
  const std::string etag = "\"" + raw_hash_.hex() + "\"";
  Answer same = get(raw_hash_, {{"range", "bytes=10-19"}, {"if-range", etag}});
  EXPECT_EQ(same.status, 206u);
  EXPECT_EQ(same.body, raw_.substr(10, 10));
  for (const std::string& other : {"\"zstd-" + raw_hash_.hex() + "\"", "W/" + etag, std::string("\"other\""),
                                  std::string("Sat, 29 Oct 1994 19:43:31 GMT")}) {
    Answer whole = get(raw_hash_, {{"range", "bytes=10-19"}, {"if-range", other}});
    EXPECT_EQ(whole.status, 200u) << other;
    EXPECT_TRUE(whole.body == raw_) << other;
    EXPECT_EQ(whole.headers.count("Content-Range"), 0u) << other;
  }
  Answer cached = get(raw_hash_, {{"if-none-match", "\"" + raw_hash_.hex() + "\""}});
  EXPECT_EQ(cached.status, 304u);
  EXPECT_FALSE(cached.from_file);
  EXPECT_EQ(cached.body, "");
}

TEST_F(ContentRouteTest, ACompressedChunkGoesAsStoredOnlyToAClientThatTakesZstdWhole) {
  Answer encoded = get(text_hash_, {{"accept-encoding", "gzip, zstd"}});
  EXPECT_EQ(encoded.status, 200u);
  EXPECT_TRUE(encoded.from_file);
  EXPECT_EQ(encoded.headers["Content-Encoding"], "zstd");
  EXPECT_EQ(encoded.headers["ETag"], "\"zstd-" + text_hash_.hex() + "\"");
  EXPECT_TRUE(encoded.body == slurp(text_file_));
  EXPECT_LT(encoded.body.size(), text_.size());
  EXPECT_EQ(
      get(text_hash_, {{"accept-encoding", "zstd"}, {"if-none-match", "\"zstd-" + text_hash_.hex() + "\""}}).status,
      304u);

  // Refused zstd, none asked, or a range: the raw bytes, decoded (and verified) by the store.
  for (const char* accept : {"", "zstd;q=0"}) {
    Answer raw = get(text_hash_, {{"accept-encoding", accept}});
    EXPECT_EQ(raw.status, 200u);
    EXPECT_FALSE(raw.from_file);
    EXPECT_TRUE(raw.body == text_);
    EXPECT_EQ(raw.headers.count("Content-Encoding"), 0u);
    EXPECT_EQ(raw.headers["ETag"], "\"" + text_hash_.hex() + "\"");
  }
  Answer span = get(text_hash_, {{"accept-encoding", "zstd"}, {"range", "bytes=99990-"}});
  EXPECT_EQ(span.status, 206u);
  EXPECT_EQ(span.body, text_.substr(99990));
  EXPECT_EQ(span.headers.count("Content-Encoding"), 0u);
}

// On the network thread the route answers whatever it can from the stored file alone, exactly as a worker would,
// and leaves to a worker only what needs the chunk decoded.
TEST_F(ContentRouteTest, OnTheNetworkThreadOnlyWhatNeedsDecodingIsLeftToAWorker) {
  const std::vector<std::vector<std::pair<std::string, std::string>>> asks = {
      {}, {{"accept-encoding", "zstd"}}, {{"range", "bytes=10-19"}}, {{"if-none-match", "\"" + raw_hash_.hex() + "\""}}};
  for (const auto& headers : asks) {
    const Answer worker = get(raw_hash_, headers);
    const Answer here = get(raw_hash_, headers, /*on_network_thread=*/true);
    EXPECT_FALSE(here.declined);
    EXPECT_EQ(here.status, worker.status);
    EXPECT_EQ(here.headers, worker.headers);
    EXPECT_TRUE(here.body == worker.body);
    EXPECT_EQ(here.from_file, worker.from_file);
  }
  const Answer encoded = get(text_hash_, {{"accept-encoding", "zstd"}}, true);
  EXPECT_FALSE(encoded.declined);
  EXPECT_TRUE(encoded.from_file);
  EXPECT_EQ(encoded.headers.at("Content-Encoding"), "zstd");
  EXPECT_TRUE(get(text_hash_, {}, true).declined);
  EXPECT_TRUE(get(text_hash_, {{"accept-encoding", "zstd"}, {"range", "bytes=5-"}}, true).declined);
  // Errors are answered where they are found.
  EXPECT_EQ(get(content::sha256(std::string("never stored")), {}, true).status, 404u);
  const Answer bad = get_path("/api/v1/content/chunks/not-a-hash", {}, true);
  EXPECT_FALSE(bad.declined);
  EXPECT_EQ(bad.status, 400u);
}

TEST_F(ContentRouteTest, AChunkThatIsGoneIsNotFound) {
  ASSERT_TRUE(library_->chunks().remove(raw_hash_).ok());
  Answer a = get(raw_hash_);
  EXPECT_EQ(a.status, 404u);
  EXPECT_FALSE(a.from_file);
  EXPECT_EQ(get(content::sha256(std::string("never stored"))).status, 404u);
}

}  // namespace
}  // namespace pkgcast::server
