// File bodies (server/file_body.h) on a real server: sendfile on plain connections, a bounded buffer on TLS, spans,
// HEAD, keep-alive, and files that change under the sender.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "server/http_test_fixture.h"
#include "server/test_tls.h"

namespace pkgcast::server::testing {
namespace {

namespace fs = std::filesystem;

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

class FileBodyTest : public HttpServerTest {
 protected:
  void SetUp() override {
    HttpServerTest::SetUp();
    char tmpl[] = "/tmp/pkgcast-file-body-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // Larger than loopback socket buffers take at once, so the sender waits for the socket more than once.
    bytes_ = random_bytes(3u << 20, 7);
    write(dir_ / "f", bytes_);
    // GET /api/v1/file?off=O&len=N: that span of the file; &then=unlink|shrink changes the file after it is opened.
    router_.add("GET", "/api/v1/file", Access::kPublic, [this](Request& r) {
      auto file = OpenFile::open(dir_ / "f");
      if (!file.ok()) return error_response(file.error());
      const std::uint64_t off = r.query.count("off") ? std::stoull(r.query.at("off")) : 0;
      const std::uint64_t len = r.query.count("len") ? std::stoull(r.query.at("len")) : (*file)->size() - off;
      const std::string then = r.query.count("then") ? r.query.at("then") : "";
      if (then == "unlink") fs::remove(dir_ / "f");
      if (then == "shrink") fs::resize_file(dir_ / "f", (*file)->size() / 2);
      Response resp;
      resp.content_type = "application/octet-stream";
      resp.headers.emplace_back("ETag", "\"f\"");
      resp.file = FileBody{std::move(*file), off, len};
      return resp;
    });
  }
  void TearDown() override {
    HttpServerTest::TearDown();
    fs::remove_all(dir_);
  }
  static void write(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

  fs::path dir_;
  std::string bytes_;
};

TEST_F(FileBodyTest, WholeSpansAndHeadOnOneKeptAliveConnection) {
  start();
  TestClient c(server_->port());
  for (int i = 0; i < 3; ++i) {
    auto whole = c.get("/api/v1/file");
    ASSERT_EQ(whole.result_int(), 200);
    EXPECT_EQ(whole[http::field::content_length], std::to_string(bytes_.size()));
    EXPECT_EQ(whole[http::field::etag], "\"f\"");
    EXPECT_TRUE(whole.body() == bytes_) << "the body differs from the file";
    EXPECT_TRUE(whole.keep_alive());
  }
  auto span = c.get("/api/v1/file?off=1000&len=70000");
  EXPECT_TRUE(span.body() == bytes_.substr(1000, 70000));
  EXPECT_EQ(c.get("/api/v1/file?off=5&len=0").body(), "");
  auto head = c.head("/api/v1/file?off=10&len=20");
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(head[http::field::content_length], "20");
  EXPECT_EQ(head.body(), "");
  // The HEAD answer carried no body: the next request on the connection is read and answered as usual.
  EXPECT_EQ(c.get("/api/v1/file?off=3&len=4").body(), bytes_.substr(3, 4));
  EXPECT_EQ(metrics_.open_connections(), 1);
}

TEST_F(FileBodyTest, AFileUnlinkedAfterItWasOpenedIsSentWhole) {
  start();
  TestClient c(server_->port());
  auto r = c.get("/api/v1/file?then=unlink");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_TRUE(r.body() == bytes_);
  EXPECT_FALSE(fs::exists(dir_ / "f"));
  // Gone now: the handler's own error, on the same connection.
  EXPECT_EQ(c.get("/api/v1/file").result_int(), 404);
}

TEST_F(FileBodyTest, AFileThatShrinksUnderTheSenderEndsTheConnectionNotTheServer) {
  start();
  {
    TestClient c(server_->port());
    EXPECT_THROW(c.get("/api/v1/file?then=shrink"), boost::system::system_error);
  }
  write(dir_ / "f", bytes_);
  TestClient again(server_->port());
  EXPECT_TRUE(again.get("/api/v1/file").body() == bytes_);
  EXPECT_EQ(again.get("/api/v1/health").result_int(), 200);
}

TEST_F(FileBodyTest, AClientThatStopsReadingIsCutAfterTheWriteTimeout) {
  bytes_ = random_bytes(64u << 20, 9);  // more than loopback buffers hold
  write(dir_ / "f", bytes_);
  HttpServerOptions o;
  o.write_timeout = std::chrono::milliseconds(300);
  start(o);
  TestClient c(server_->port());
  c.write_raw("GET /api/v1/file HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(c.read_header().get().result_int(), 200);  // the connection is open and the body under way
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (metrics_.open_connections() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(metrics_.open_connections(), 0);
  EXPECT_LT(c.read_until_closed().size(), bytes_.size());
}

TEST_F(FileBodyTest, TlsConnectionsGetTheFileThroughABuffer) {
  const auto cert = make_self_signed();
  write_file(dir_ / "cert.pem", cert.cert_pem);
  write_file(dir_ / "key.pem", cert.key_pem);
  HttpServerOptions o;
  o.tls = TlsFiles{dir_ / "cert.pem", dir_ / "key.pem"};
  start(o);
  TestClient c(server_->port(), cert.cert_pem);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(c.get("/api/v1/file").body() == bytes_);
  EXPECT_TRUE(c.get("/api/v1/file?off=65530&len=70000").body() == bytes_.substr(65530, 70000));
  EXPECT_EQ(c.head("/api/v1/file")[http::field::content_length], std::to_string(bytes_.size()));
  EXPECT_EQ(c.get("/api/v1/health").result_int(), 200);
}

TEST(OpenFileTest, AbsentOrNotARegularFileIsNotFound) {
  auto missing = OpenFile::open("/nonexistent/pkgcast/file");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, WbemCode::kNotFound);
  auto dir = OpenFile::open("/tmp");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().code, WbemCode::kNotFound);
}

}  // namespace
}  // namespace pkgcast::server::testing
