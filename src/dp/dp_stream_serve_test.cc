// End-to-end: the job stream's resume rules, and the content the agent serves (to clients and pull DPs).
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "client/http_client.h"
#include "client/url.h"
#include "core/paths.h"
#include "dp/agent_fixture.h"

namespace pkgcast::dp {
namespace {

using namespace agent_testing;  // NOLINT(google-build-using-namespace): the shared fixture of these tests
namespace tt = ::pkgcast::dp::testing;

TEST_F(AgentTest, TheJobStreamResumesFromItsRevisionAndListsAgainWhenCompacted) {
  write_file(tmp.path() / "src/a.txt", "hello");
  const BuiltContent c = publish(tmp.path() / "src");
  auto agent = start_agent(options(tmp.path() / "dp"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  EXPECT_EQ(server.list_requests(), 1);
  server.drop_streams();
  server.put_job(install_job("ABC00002", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00002", "installed", 1));
  EXPECT_EQ(server.list_requests(), 1);  // resumed, not re-listed
  EXPECT_GE(server.stream_requests(), 2);

  // Compacted while away: 410, then the list shows what changed.
  server.put_job(install_job("ABC00003", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00003", "installed", 1));
  agent->stop();
  agent.reset();
  server.put_job(install_job("ABC00004", 1, 1, c, {server.content_url()}));
  server.compact();
  auto again = start_agent(options(tmp.path() / "dp"));
  ASSERT_TRUE(server.wait_status("ABC00004", "installed", 1));
  EXPECT_EQ(again->state().revision, 4u);
}

// ---- Serving ----------------------------------------------------------------------------------------------------

struct Got {
  unsigned status = 0;
  std::string body;
  std::string content_range;
};

Got http_get(std::uint16_t port, const std::string& target, const std::string& range = {}) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket(ioc);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!range.empty()) req.set(http::field::range, range);
  http::write(socket, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  return {res.result_int(), res.body(), std::string(res[http::field::content_range])};
}

TEST_F(AgentTest, ServesVerifiedContentWithRangeAndAPullDpInstallsFromIt) {
  make_tree(tmp.path() / "src");
  const BuiltContent c = publish(tmp.path() / "src");
  AgentOptions o = options(tmp.path() / "dp");
  o.listen = "127.0.0.1:0";
  auto agent = start_agent(std::move(o));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  const std::uint16_t port = agent->content_port();
  ASSERT_NE(port, 0);

  EXPECT_EQ(http_get(port, "/health").status, 200u);
  const auto& [hex, bytes] = *c.chunks.begin();
  Got whole = http_get(port, "/content/chunks/" + hex);
  EXPECT_EQ(whole.status, 200u);
  EXPECT_TRUE(whole.body == bytes);
  Got part = http_get(port, "/content/chunks/" + hex, "bytes=10-19");
  EXPECT_EQ(part.status, 206u);
  EXPECT_EQ(part.body, bytes.substr(10, 10));
  EXPECT_EQ(part.content_range, "bytes 10-19/" + std::to_string(bytes.size()));
  EXPECT_EQ(http_get(port, "/content/chunks/" + hex, "bytes=999999999-").status, 416u);
  Got manifest = http_get(port, "/content/manifests/" + c.manifest_hash);
  EXPECT_EQ(manifest.status, 200u);
  EXPECT_EQ(manifest.body, c.manifest_bytes);
  EXPECT_EQ(http_get(port, "/content/chunks/" + std::string(64, '0')).status, 404u);
  // A query (a cache-busting or signing proxy's) names nothing.
  Got queried = http_get(port, "/content/chunks/" + hex + "?cb=1");
  EXPECT_EQ(queried.status, 200u);
  EXPECT_TRUE(queried.body == bytes);

  // A pull DP: its first source is the DP above (a dead one before it), the site server last.
  FakeSiteServer server2{kToken};
  AgentOptions o2 = options(tmp.path() / "dp2");
  o2.server = server2.url();
  o2.name = "dp2";
  auto pull = start_agent(std::move(o2));
  const std::uint64_t site_before = server.chunk_bytes_served();
  server2.put_job(install_job("ABC00001", 1, 1, c,
                              {"http://127.0.0.1:1/content", "http://127.0.0.1:" + std::to_string(port) + "/content",
                               server.content_url()}));
  ASSERT_TRUE(server2.wait_status("ABC00001", "installed", 1));
  EXPECT_EQ(server.chunk_bytes_served(), site_before);  // nothing from the site server
  EXPECT_EQ(tt::diff_trees(tmp.path() / "src", tmp.path() / "dp2/content/ABC00001.1"), "");

  // A chunk whose bytes went bad on disk is not served.
  bool flipped = false;
  for (const auto& f : fs::recursive_directory_iterator(tmp.path() / "dp/content/ABC00001.1")) {
    if (!f.is_regular_file() || f.is_symlink()) continue;
    auto text = read_file(f.path().string());
    ASSERT_TRUE(text.ok());
    const auto at = text->find(bytes);
    if (at == std::string::npos) continue;
    std::FILE* file = std::fopen(f.path().c_str(), "r+b");
    ASSERT_NE(file, nullptr);
    std::fseek(file, static_cast<long>(at + bytes.size() / 2), SEEK_SET);
    std::fputc((*text)[at + bytes.size() / 2] ^ 0x20, file);
    std::fclose(file);
    flipped = true;
    break;
  }
  ASSERT_TRUE(flipped);
  EXPECT_NE(http_get(port, "/content/chunks/" + hex).status, 200u);
}

// A downloaded chunk reaches the fetcher in large pieces, not 512 bytes per read (each read is a recvmsg, an epoll
// wait and a timer re-arm: at 512 bytes the agent spent most of its CPU there; bench/content).
TEST(HttpClientReads, AChunkArrivesInLargePieces) {
  FakeSiteServer server{kToken};
  const std::string bytes = tt::pseudo_random(256 * 1024, 7);
  const std::string hex(64, 'a');
  server.add_chunk(hex, bytes);
  auto url = client::parse_server_url(server.content_url());
  ASSERT_TRUE(url.ok());
  client::HttpOptions o;
  o.token = kToken;
  auto http = client::HttpClient::create(*url, o);
  ASSERT_TRUE(http.ok());
  const std::string target = "/chunks/" + hex;
  std::string got;
  int pieces = 0;
  client::StreamRequest req;
  req.target = target;
  req.accept = "*/*";
  req.on_data = [&](std::string_view piece) {
    got += piece;
    ++pieces;
    return true;
  };
  auto r = (*http)->stream(req);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(got, bytes);
  EXPECT_LE(pieces, 64) << "256 KiB in " << pieces << " pieces";  // 512-byte reads: 512 pieces
}

}  // namespace
}  // namespace pkgcast::dp
