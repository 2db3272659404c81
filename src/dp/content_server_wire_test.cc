// The content server on the wire, attacked with raw sockets: idle connections, from one address or from many, must
// not lock a client out of a DP's content, busy ones are never cut to make room; requests it cannot read are
// answered; conditional requests (If-None-Match, If-Range) are honoured.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "content/content.h"
#include "dp/chunk_index.h"
#include "dp/content_server.h"
#include "dp/test_tree.h"

namespace pkgcast::dp {
namespace {

using std::chrono::milliseconds;

// A connection to 127.0.0.1:port from the loopback address `source` (127.0.0.N), so one test plays many clients.
int connect_from(const std::string& source, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// Everything the peer sends until it closes, or until `timeout` passes.
std::string read_until_close(int fd, milliseconds timeout) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return got;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return got;
    char buffer[65536];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return got;
    got.append(buffer, static_cast<std::size_t>(n));
  }
}

// True when the peer has closed `fd` (EOF or reset), without waiting.
bool peer_closed(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if ((p.revents & (POLLHUP | POLLERR | POLLRDHUP)) != 0) return true;
  char c;
  return ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

// How many of `fds` the server still holds open, once the count has stopped changing (closes are asynchronous).
std::size_t still_open(const std::vector<int>& fds) {
  std::size_t previous = fds.size() + 1;
  for (int round = 0; round < 50; ++round) {
    std::size_t open = 0;
    for (int fd : fds) open += peer_closed(fd) ? 0 : 1;
    if (open == previous) return open;
    previous = open;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return previous;
}

class ContentServerWireTest : public ::testing::Test {
 protected:
  void start(std::size_t max_connections, std::size_t per_address, std::size_t threads = 1,
             milliseconds idle_timeout = milliseconds(30'000)) {
    std::filesystem::create_directories(tmp_.path() / "manifests");
    ContentServerOptions o;
    o.idle_timeout = idle_timeout;
    o.max_connections = max_connections;
    o.max_connections_per_address = per_address;
    o.threads = threads;
    o.max_manifest_bytes = 64u << 20;
    o.name = "dp-limits";
    auto started = ContentServer::start(o, index_, tmp_.path() / "manifests");
    ASSERT_TRUE(started.ok()) << started.error().message;
    server_ = std::move(started).value();
  }

  std::uint16_t port() const { return server_->port(); }

  // GET /health from `source`: answered 200.
  bool served(const std::string& source = "127.0.0.1") {
    const int fd = connect_from(source, port());
    if (fd < 0) return false;
    const bool sent = send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::string reply = sent ? read_until_close(fd, milliseconds(5000)) : "";
    ::close(fd);
    return reply.starts_with("HTTP/1.1 200 ");
  }

  void close_all(std::vector<int>& fds) {
    for (int fd : fds) ::close(fd);
    fds.clear();
  }

  testing::TempDir tmp_;
  ChunkIndex index_{tmp_.path() / "content"};
  std::unique_ptr<ContentServer> server_;
};

TEST_F(ContentServerWireTest, IdleConnectionsFromOneAddressCannotLockItOut) {
  start(8, 0);  // a quarter of 8 from one address
  std::vector<int> idle;
  for (int i = 0; i < 20; ++i) {
    const int fd = connect_from("127.0.0.1", port());
    ASSERT_GE(fd, 0) << i;
    idle.push_back(fd);
  }
  // Half a head is still idle: it has no request in progress.
  ASSERT_TRUE(send_all(idle.back(), "GET /health HTTP/1.1\r\nHo"));
  EXPECT_TRUE(served());
  EXPECT_LE(still_open(idle), 2U);
  // Other addresses were never affected.
  EXPECT_TRUE(served("127.0.0.2"));
  close_all(idle);
}

TEST_F(ContentServerWireTest, IdleConnectionsFromManyAddressesCannotLockOutAnother) {
  start(8, 8);
  std::vector<int> idle;
  for (int i = 0; i < 40; ++i) {
    const int fd = connect_from("127.0.0." + std::to_string(2 + i % 5), port());
    ASSERT_GE(fd, 0) << i;
    idle.push_back(fd);
  }
  EXPECT_TRUE(served());
  EXPECT_LE(still_open(idle), 8U);
  close_all(idle);
}

TEST_F(ContentServerWireTest, ConnectionsWithARequestInProgressAreNotEvicted) {
  start(8, 2);
  // A manifest larger than loopback buffers hold: a client that does not read keeps its answer being written.
  const std::string manifest = testing::pseudo_random(24u << 20, 3);
  const std::string hash = content::sha256(manifest).hex();
  std::ofstream(tmp_.path() / "manifests" / hash, std::ios::binary) << manifest;
  const std::string request = "GET /content/manifests/" + hash + " HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<int> downloads;
  for (int i = 0; i < 2; ++i) {
    downloads.push_back(connect_from("127.0.0.1", port()));
    ASSERT_GE(downloads.back(), 0);
    ASSERT_TRUE(send_all(downloads.back(), request));
  }
  std::this_thread::sleep_for(milliseconds(500));  // both answers are being written
  const int third = connect_from("127.0.0.1", port());
  ASSERT_GE(third, 0);
  send_all(third, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");  // may fail: the server has closed it
  EXPECT_EQ(read_until_close(third, milliseconds(5000)), "") << "refused, not answered";
  ::close(third);
  EXPECT_EQ(still_open(downloads), 2U) << "a download was cut to make room";
  // Another address is not limited by this one's busy connections.
  EXPECT_TRUE(served("127.0.0.2"));
  // Once one download is taken whole, its connection is idle again and gives way.
  const std::string whole = read_until_close(downloads[0], milliseconds(2000));
  EXPECT_NE(whole.find(manifest.substr(0, 64)), std::string::npos);
  EXPECT_TRUE(served());
  close_all(downloads);
}

// idle_timeout bounds a pause, not a whole answer: a client that keeps taking bytes gets a large manifest however long
// it takes; one that stops taking them is cut off.
TEST_F(ContentServerWireTest, ASlowReaderIsServedWholeAndAStalledOneIsCutOff) {
  // An idle timeout long enough that a loaded machine's scheduling of this reader is not taken for a stall.
  start(8, 4, 1, milliseconds(1000));
  const std::string manifest = testing::pseudo_random(24u << 20, 5);
  const std::string hash = content::sha256(manifest).hex();
  std::ofstream(tmp_.path() / "manifests" / hash, std::ios::binary) << manifest;
  const std::string request = "GET /content/manifests/" + hash + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

  const int slow = connect_from("127.0.0.1", port());
  ASSERT_GE(slow, 0);
  ASSERT_TRUE(send_all(slow, request));
  std::string got;
  const auto started = std::chrono::steady_clock::now();
  for (;;) {
    pollfd p{slow, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    std::string piece(256 * 1024, '\0');
    const ssize_t n = ::recv(slow, piece.data(), piece.size(), 0);
    if (n <= 0) break;
    got.append(piece.data(), static_cast<std::size_t>(n));
    std::this_thread::sleep_for(milliseconds(25));  // about 10 MiB/s: the whole answer takes seconds
  }
  ::close(slow);
  EXPECT_GT(std::chrono::steady_clock::now() - started, milliseconds(2000));  // well past one idle_timeout
  ASSERT_GT(got.size(), manifest.size());
  EXPECT_EQ(got.substr(got.size() - manifest.size()), manifest);

  const int stalled = connect_from("127.0.0.1", port());
  ASSERT_GE(stalled, 0);
  ASSERT_TRUE(send_all(stalled, request));
  std::this_thread::sleep_for(milliseconds(3500));  // takes nothing for three idle timeouts
  const std::string partial = read_until_close(stalled, milliseconds(5000));
  ::close(stalled);
  EXPECT_LT(partial.size(), manifest.size());
}

TEST_F(ContentServerWireTest, ChurnAtTheBoundLeavesItServing) {
  // Connections opened, used, reset and abandoned from several threads while the server is at its bound: slots are
  // taken, evicted and given back concurrently on two server threads.
  start(4, 4, 2);
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([this, t] {
      for (int i = 0; i < 300; ++i) {
        const int fd = connect_from("127.0.0." + std::to_string(2 + t % 2), port());
        if (fd < 0) continue;
        if (i % 3 != 0) send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        if (i % 3 == 1) read_until_close(fd, milliseconds(5));
        if (i % 2 == 0) {
          linger reset{1, 0};  // close with a reset, as a killed client
          ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        }
        ::close(fd);
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_TRUE(served());
}

TEST_F(ContentServerWireTest, RequestsThatAreNotHttpAreAnsweredBeforeTheClose) {
  start(8, 0);
  struct Case {
    std::string request;
    std::string status_line;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"GARBAGE\r\n\r\n", "HTTP/1.1 400 ", "WBEM_E_INVALID_PARAMETER"},
      {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 400 ",
       "WBEM_E_INVALID_PARAMETER"},
      {"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'b') + "\r\n\r\n", "HTTP/1.1 431 ",
       "WBEM_E_QUOTA_VIOLATION"},
      {"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 413 ",
       "WBEM_E_QUOTA_VIOLATION"},
      {"PUT /health HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" + std::string(200'000, 'x'),
       "HTTP/1.1 413 ", "WBEM_E_QUOTA_VIOLATION"},
  };
  for (const auto& c : cases) {
    const int fd = connect_from("127.0.0.1", port());
    ASSERT_GE(fd, 0);
    send_all(fd, c.request);  // may stop short once the server has answered and closed
    const std::string reply = read_until_close(fd, milliseconds(5000));
    ::close(fd);
    EXPECT_TRUE(reply.starts_with(c.status_line)) << c.request.substr(0, 80) << " -> " << reply;
    EXPECT_NE(reply.find(c.error), std::string::npos) << reply;
    EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
    EXPECT_TRUE(served());
  }
  // A method it does not serve: 405 naming the ones it does.
  const int fd = connect_from("127.0.0.1", port());
  ASSERT_GE(fd, 0);
  send_all(fd, "DELETE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string reply = read_until_close(fd, milliseconds(5000));
  ::close(fd);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 405 ")) << reply;
  EXPECT_NE(reply.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos) << reply;
}

TEST_F(ContentServerWireTest, ConditionalRequestsFollowTheETag) {
  start(8, 0);
  const std::string manifest = testing::pseudo_random(1000, 5);
  const std::string hash = content::sha256(manifest).hex();
  std::ofstream(tmp_.path() / "manifests" / hash, std::ios::binary) << manifest;
  const std::string etag = "\"" + hash + "\"";
  auto get = [&](const std::string& path, const std::string& headers) {
    const int fd = connect_from("127.0.0.1", port());
    EXPECT_GE(fd, 0);
    send_all(fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + "\r\n");
    std::string reply = read_until_close(fd, milliseconds(5000));
    ::close(fd);
    return reply;
  };
  const std::string path = "/content/manifests/" + hash;
  auto body_of = [](const std::string& reply) {
    const auto at = reply.find("\r\n\r\n");
    return at == std::string::npos ? std::string("?") : reply.substr(at + 4);
  };

  // The ETag is the hash in lower case, however the request spelled it.
  std::string upper = hash;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string reply = get("/content/manifests/" + upper, "");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 ")) << reply.substr(0, 200);
  EXPECT_NE(reply.find("ETag: " + etag + "\r\n"), std::string::npos) << reply.substr(0, 300);

  for (const std::string& inm : {etag, std::string("*"), "\"other\", " + etag}) {
    reply = get(path, "If-None-Match: " + inm + "\r\n");
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 304 ")) << inm << ": " << reply.substr(0, 200);
    EXPECT_EQ(reply.find("Content-Length"), std::string::npos) << reply;
    EXPECT_EQ(body_of(reply), "") << inm;
  }
  reply = get(path, "If-None-Match: \"other\"\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 ")) << reply.substr(0, 200);
  EXPECT_TRUE(body_of(reply) == manifest);

  // A Range field given twice cannot be understood: ignored, the whole is sent.
  reply = get(path, "Range: bytes=0-1\r\nRange: bytes=3-4\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 ")) << reply.substr(0, 200);
  EXPECT_TRUE(body_of(reply) == manifest);
  reply = get(path, "Range: bytes=0-4\r\nIf-Range: " + etag + "\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 206 ")) << reply.substr(0, 200);
  EXPECT_EQ(body_of(reply), manifest.substr(0, 5));
  for (const std::string& other : {"W/" + etag, std::string("\"other\""), std::string("Sat, 29 Oct 1994 19:43:31 GMT")}) {
    reply = get(path, "Range: bytes=0-4\r\nIf-Range: " + other + "\r\n");
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 ")) << other << ": " << reply.substr(0, 200);
    EXPECT_TRUE(body_of(reply) == manifest) << other;
  }
  // A 304 on a kept-alive connection is followed at once by the next answer.
  const int fd = connect_from("127.0.0.1", port());
  ASSERT_GE(fd, 0);
  send_all(fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + etag + "\r\n\r\nGET /health HTTP/1.1\r\n" +
                   "Host: x\r\nConnection: close\r\n\r\n");
  reply = read_until_close(fd, milliseconds(5000));
  ::close(fd);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 304 ")) << reply;
  EXPECT_NE(reply.find("\r\n\r\nHTTP/1.1 200 "), std::string::npos) << reply;
}

// A manifest is hashed when first served and again only once its file changed (a GET after that reads it but does
// not hash it); HEAD and 304 answers read nothing. A byte changed in place is still never served.
TEST_F(ContentServerWireTest, AManifestIsHashedOnceAndAChangedOneIsNotServed) {
  start(8, 0);
  const std::string manifest = testing::pseudo_random(100'000, 6);
  const std::string hash = content::sha256(manifest).hex();
  const auto file = tmp_.path() / "manifests" / hash;
  std::ofstream(file, std::ios::binary) << manifest;
  auto ask = [&](const std::string& method, const std::string& headers) {
    const int fd = connect_from("127.0.0.1", port());
    EXPECT_GE(fd, 0);
    send_all(fd, method + " /content/manifests/" + hash + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers +
                     "\r\n");
    std::string reply = read_until_close(fd, milliseconds(5000));
    ::close(fd);
    return reply;
  };
  for (int i = 0; i < 3; ++i) {
    const std::string reply = ask("GET", "");
    ASSERT_TRUE(reply.starts_with("HTTP/1.1 200 ")) << reply.substr(0, 200);
    EXPECT_TRUE(reply.substr(reply.find("\r\n\r\n") + 4) == manifest) << i;
  }
  std::string head = ask("HEAD", "");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200 ")) << head;
  EXPECT_NE(head.find("Content-Length: 100000\r\n"), std::string::npos) << head;
  EXPECT_TRUE(head.ends_with("\r\n\r\n")) << head;
  head = ask("HEAD", "Range: bytes=10-19\r\n");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 206 ")) << head;
  EXPECT_NE(head.find("Content-Length: 10\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Range: bytes 10-19/100000\r\n"), std::string::npos) << head;

  // One byte changed in place, size kept: its change time moved, so it is hashed again and refused. (File times
  // move by the kernel's clock tick, a few milliseconds: the change comes after one.)
  std::this_thread::sleep_for(milliseconds(50));
  {
    std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(500);
    f.put(static_cast<char>(manifest[500] ^ 1));
  }
  EXPECT_TRUE(ask("GET", "").starts_with("HTTP/1.1 404 "));
  std::ofstream(file, std::ios::binary | std::ios::trunc) << manifest;  // put right again
  EXPECT_TRUE(ask("GET", "").starts_with("HTTP/1.1 200 "));
  std::filesystem::remove(file);
  EXPECT_TRUE(ask("HEAD", "").starts_with("HTTP/1.1 404 "));
  EXPECT_TRUE(ask("GET", "If-None-Match: \"" + hash + "\"\r\n").starts_with("HTTP/1.1 404 "));
}

}  // namespace
}  // namespace pkgcast::dp
