#include "client/fake_event_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

namespace pkgcast::client::testing {

FakeConnection::~FakeConnection() { close(); }

bool FakeConnection::write(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void FakeConnection::close() {
  if (fd_ >= 0) {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    fd_ = -1;
  }
}

void FakeConnection::wait_for_client_close() {
  char buf[256];
  while (fd_ >= 0 && !stopping_->load()) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) < 0) return;
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      if (::recv(fd_, buf, sizeof buf, 0) <= 0) return;
    }
  }
}

bool FakeConnection::chunk(std::string_view data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return write(std::string(size) + std::string(data) + "\r\n");
}

bool FakeConnection::event(std::uint64_t revision, std::string_view json) {
  const std::string body = json.empty() ? event_json(revision) : std::string(json);
  return chunk("id: " + std::to_string(revision) + "\ndata: " + body + "\n\n");
}

bool FakeConnection::error_event_and_end(std::string_view wbem_name, std::string_view message) {
  return chunk("event: error\ndata: {\"error\":\"" + std::string(wbem_name) + "\",\"message\":\"" +
               std::string(message) + "\"}\n\n") &&
         end_chunks();
}

bool FakeConnection::json_error(int status, std::string_view reason, std::string_view wbem_name,
                                std::string_view message) {
  const std::string body = "{\"error\":\"" + std::string(wbem_name) + "\",\"hresult\":\"0x0\",\"message\":\"" +
                           std::string(message) + "\"}";
  return write("HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
               "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\nConnection: close\r\n\r\n" + body);
}

std::string event_json(std::uint64_t revision) {
  return R"({"__CLASS":"__InstanceModificationEvent","__REVISION":)" + std::to_string(revision) +
         R"(,"TargetInstance":{"__CLASS":"SMS_PackageStatusRootSummarizer","PackageID":"ABC00001","Installed":)" +
         std::to_string(revision) + "}}";
}

FakeEventServer::FakeEventServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

FakeEventServer::~FakeEventServer() {
  stopping_.store(true);
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  acceptor_.join();
  for (auto& t : threads_) t.join();
}

void FakeEventServer::accept_loop() {
  while (!stopping_.load()) {
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    std::lock_guard lock(mu_);
    threads_.emplace_back([this, fd] {
      // One request per connection: read its head, record the target, let the handler answer.
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<std::size_t>(n));
      }
      const std::size_t sp1 = head.find(' ');
      const std::size_t sp2 = head.find(' ', sp1 + 1);
      const std::string target = sp1 == std::string::npos || sp2 == std::string::npos
                                     ? std::string()
                                     : head.substr(sp1 + 1, sp2 - sp1 - 1);
      int index;
      {
        std::lock_guard l(mu_);
        index = static_cast<int>(targets_.size());
        targets_.push_back(target);
        cv_.notify_all();
      }
      FakeConnection conn(fd, &stopping_);
      if (!target.empty()) handler_(conn, target, index);
    });
  }
}

std::vector<std::string> FakeEventServer::targets() const {
  std::lock_guard lock(mu_);
  return targets_;
}

bool FakeEventServer::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return targets_.size() >= n; });
}

}  // namespace pkgcast::client::testing
