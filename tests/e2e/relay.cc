#include "relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace pkgcast::testing {
namespace {

constexpr std::string_view kChunkRequest = "GET /api/v1/content/chunks/";
// How far into a chunk's payload the corrupted byte lies (or its last byte, for a shorter chunk): past the first
// bytes, so a zstd frame's magic number stays intact and the fault reaches the decoder or the hash.
constexpr std::size_t kCorruptOffset = 1000;

bool send_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

struct Relay::Conn {
  int client = -1;
  int server = -1;
  std::string request_tail;  // client bytes that may begin a chunk request split across reads
  bool armed = false;        // the answer to this connection's last request is to be corrupted
  std::string target;        // that request's target
  std::string pending;       // answer bytes held back while armed
};

Relay::Relay(int target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    return;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

Relay::~Relay() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void Relay::hold_at(std::uint64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  hold_limit_ = limit;
}

void Relay::release() {
  std::lock_guard<std::mutex> lock(mu_);
  hold_limit_ = UINT64_MAX;
}

bool Relay::wait_held(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (allowance() == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return allowance() == 0;
}

void Relay::corrupt_next_chunk_body() {
  std::lock_guard<std::mutex> lock(mu_);
  corrupt_armed_ = true;
}

std::string Relay::corrupted_target() const {
  std::lock_guard<std::mutex> lock(mu_);
  return corrupted_target_;
}

int Relay::requests_for(const std::string& target) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = requests_.find(target);
  return it == requests_.end() ? 0 : it->second;
}

std::size_t Relay::allowance() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (hold_limit_ == UINT64_MAX) return SIZE_MAX;
  const std::uint64_t done = to_client_.load();
  return done >= hold_limit_ ? 0 : static_cast<std::size_t>(hold_limit_ - done);
}

void Relay::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.push_back(fd);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void Relay::serve(int client_fd) {
  Conn c;
  c.client = client_fd;
  c.server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(target_port_));
  bool open = c.server >= 0 && ::connect(c.server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (c.server >= 0) {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.push_back(c.server);
  }
  std::vector<char> buf(256 * 1024);
  while (open && !stopping_) {
    const bool may_read_server = allowance() > 0;
    pollfd p[2] = {{c.client, POLLIN, 0}, {c.server, static_cast<short>(may_read_server ? POLLIN : 0), 0}};
    if (::poll(p, 2, 20) <= 0) continue;
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::read(c.client, buf.data(), buf.size());
      open = n > 0 && client_to_server(c, buf.data(), static_cast<std::size_t>(n));
    }
    if (open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = 0;
      {
        // Read and count as one step, so that concurrent connections never pass the hold limit together.
        std::lock_guard<std::mutex> lock(read_mu_);
        const std::size_t allowed = std::min(allowance(), buf.size());
        if (allowed == 0) continue;
        n = ::read(c.server, buf.data(), allowed);
        if (n > 0) to_client_ += static_cast<std::uint64_t>(n);
      }
      open = n > 0 && server_to_client(c, buf.data(), static_cast<std::size_t>(n));
    }
  }
  if (!c.pending.empty()) send_all(c.client, c.pending.data(), c.pending.size());
  if (c.armed) corrupt_next_chunk_body();  // the answer never came whole: the next one gets the fault
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : {c.client, c.server}) {
    if (fd < 0) continue;
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
    ::close(fd);
  }
}

bool Relay::client_to_server(Conn& c, const char* data, std::size_t n) {
  std::string text = c.request_tail + std::string(data, n);
  std::size_t pos = 0;
  c.request_tail.clear();
  while (true) {
    const std::size_t at = text.find(kChunkRequest, pos);
    if (at == std::string::npos) {
      const std::size_t keep = std::min(text.size() - pos, kChunkRequest.size() - 1);
      c.request_tail = text.substr(text.size() - keep);
      break;
    }
    const std::size_t space = text.find(' ', at + 4);
    if (space == std::string::npos) {
      c.request_tail = text.substr(at);
      break;
    }
    const std::string target = text.substr(at + 4, space - at - 4);
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_[target];
    if (corrupt_armed_) {
      corrupt_armed_ = false;
      c.armed = true;
      c.target = target;
    }
    pos = space;
  }
  return send_all(c.server, data, n);
}

bool Relay::server_to_client(Conn& c, const char* data, std::size_t n) {
  if (!c.armed) return send_all(c.client, data, n);
  c.pending.append(data, n);
  const std::size_t header_end = c.pending.find("\r\n\r\n");
  if (header_end == std::string::npos) return true;
  const std::string headers = lower(c.pending.substr(0, header_end + 2));
  bool corrupt = headers.rfind("http/1.1 200", 0) == 0;
  std::size_t payload = header_end + 4;
  std::size_t size = 0;
  if (corrupt && headers.find("\r\ntransfer-encoding: chunked\r\n") != std::string::npos) {
    const std::size_t line_end = c.pending.find("\r\n", payload);
    if (line_end == std::string::npos) return true;
    size = std::strtoul(c.pending.substr(payload, line_end - payload).c_str(), nullptr, 16);
    payload = line_end + 2;
  } else if (const std::size_t at = headers.find("\r\ncontent-length:"); corrupt && at != std::string::npos) {
    size = std::strtoul(headers.c_str() + at + 17, nullptr, 10);
  } else {
    corrupt = false;
  }
  if (corrupt && size > 0) {
    const std::size_t victim = payload + std::min(size - 1, kCorruptOffset);
    if (c.pending.size() <= victim) return true;  // wait for that byte
    c.pending[victim] = static_cast<char>(c.pending[victim] ^ 0x20);
    std::lock_guard<std::mutex> lock(mu_);
    corrupted_target_ = c.target;
  } else {
    corrupt_next_chunk_body();  // not a whole 200 answer: leave it and corrupt the next one
  }
  c.armed = false;
  std::string out;
  out.swap(c.pending);
  return send_all(c.client, out.data(), out.size());
}

}  // namespace pkgcast::testing
