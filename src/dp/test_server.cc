#include "dp/test_server.h"

#include <zstd.h>

#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>

namespace pkgcast::dp::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

std::string response(unsigned status, std::string_view reason, std::string_view content_type, std::string_view body,
                     std::string_view extra = {}) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: " + std::string(content_type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += extra;
  out += "\r\n";
  out += body;
  return out;
}

std::string error(unsigned status, std::string_view code, std::string_view message) {
  return response(status, "Error", "application/json", json{{"error", code}, {"message", message}}.dump());
}

}  // namespace

struct FakeSiteServer::Conn {
  explicit Conn(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
};

namespace {
asio::io_context& fixture_ioc() {
  static asio::io_context ioc;
  return ioc;
}
}  // namespace

FakeSiteServer::FakeSiteServer(std::string token) : token_(std::move(token)) {
  auto acceptor = std::make_shared<tcp::acceptor>(fixture_ioc(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  port_ = acceptor->local_endpoint().port();
  listen_fd_ = acceptor->native_handle();
  acceptor_ = std::thread([this, acceptor] {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket s(fixture_ioc());
      acceptor->accept(s, ec);
      MutexLock lock(mu_);
      if (stopping_) return;
      if (ec) continue;
      auto conn = std::make_shared<Conn>(std::move(s));
      conns_.push_back(conn);
      threads_.emplace_back([this, conn] { serve(conn); });
    }
  });
}

FakeSiteServer::~FakeSiteServer() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    for (auto& c : conns_) ::shutdown(c->socket.native_handle(), SHUT_RDWR);
    cv_.notify_all();
  }
  acceptor_.join();
  std::vector<std::thread> threads;
  {
    MutexLock lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

std::string FakeSiteServer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }
std::string FakeSiteServer::content_url() const { return url() + "/api/v1/content"; }

void FakeSiteServer::add_content(const BuiltContent& c) {
  add_manifest(c.manifest_hash, c.manifest_bytes);
  for (const auto& [h, b] : c.chunks) add_chunk(h, b);
}
void FakeSiteServer::add_manifest(const std::string& hex, const std::string& bytes) {
  MutexLock lock(mu_);
  manifests_[hex] = bytes;
}
void FakeSiteServer::add_chunk(const std::string& hex, const std::string& bytes) {
  MutexLock lock(mu_);
  chunks_[hex] = bytes;
}

void FakeSiteServer::put_job(const json& job) {
  MutexLock lock(mu_);
  const std::string pkg = job.at("PackageID").get<std::string>();
  json event = {{"__CLASS", jobs_.count(pkg) ? "__InstanceModificationEvent" : "__InstanceCreationEvent"},
                {"__REVISION", ++revision_},
                {"TargetInstance", job}};
  event["TargetInstance"]["__CLASS"] = "PKG_DPJob";
  if (jobs_.count(pkg)) event["PreviousInstance"] = jobs_[pkg];
  jobs_[pkg] = job;
  events_.emplace_back(revision_, event.dump());
  cv_.notify_all();
}

void FakeSiteServer::delete_job(const std::string& package_id) {
  MutexLock lock(mu_);
  auto it = jobs_.find(package_id);
  if (it == jobs_.end()) return;
  json event = {{"__CLASS", "__InstanceDeletionEvent"}, {"__REVISION", ++revision_}, {"TargetInstance", it->second}};
  jobs_.erase(it);
  events_.emplace_back(revision_, event.dump());
  cv_.notify_all();
}

void FakeSiteServer::compact() {
  MutexLock lock(mu_);
  compacted_ = revision_;
}
void FakeSiteServer::drop_streams() {
  MutexLock lock(mu_);
  ++drop_epoch_;
  cv_.notify_all();
}
void FakeSiteServer::corrupt_chunk(const std::string& hex, int times) {
  MutexLock lock(mu_);
  corrupt_[hex] = times;
}
void FakeSiteServer::serve_zstd(bool on) {
  MutexLock lock(mu_);
  serve_zstd_ = on;
}

void FakeSiteServer::cut_chunks(std::size_t after_bytes, int times) {
  MutexLock lock(mu_);
  cut_after_ = after_bytes;
  cut_times_ = times;
}
void FakeSiteServer::fail_chunks(int times) {
  MutexLock lock(mu_);
  fail_chunks_ = times;
}

void FakeSiteServer::fail_status(int times) {
  MutexLock lock(mu_);
  fail_status_ = times;
}
void FakeSiteServer::set_chunk_delay(std::chrono::milliseconds d) {
  MutexLock lock(mu_);
  chunk_delay_ = d;
}
std::uint64_t FakeSiteServer::chunk_bytes_served() const {
  MutexLock lock(mu_);
  return chunk_bytes_;
}
int FakeSiteServer::chunk_requests(const std::string& hex) const {
  MutexLock lock(mu_);
  auto it = chunk_requests_.find(hex);
  return it == chunk_requests_.end() ? 0 : it->second;
}
int FakeSiteServer::range_requests() const {
  MutexLock lock(mu_);
  return range_requests_;
}
int FakeSiteServer::list_requests() const {
  MutexLock lock(mu_);
  return list_requests_;
}

int FakeSiteServer::refused_requests() const {
  MutexLock lock(mu_);
  return refused_requests_;
}
int FakeSiteServer::stream_requests() const {
  MutexLock lock(mu_);
  return stream_requests_;
}
int FakeSiteServer::duplicate_statuses() const {
  MutexLock lock(mu_);
  return duplicates_;
}
std::vector<json> FakeSiteServer::statuses() const {
  MutexLock lock(mu_);
  return statuses_;
}

std::optional<json> FakeSiteServer::wait_status(const std::string& package_id, const std::string& state,
                                                std::uint32_t generation, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(mu_);
  for (;;) {
    for (const auto& s : statuses_) {
      if (s["package_id"] == package_id && s["state"] == state &&
          (generation == 0 || s["generation"].get<std::uint32_t>() == generation)) {
        return s;
      }
    }
    if (!cv_.wait_until(mu_, deadline)) return std::nullopt;
  }
}

void FakeSiteServer::serve(std::shared_ptr<Conn> conn) {
  auto& socket = conn->socket;
  // Whatever ends the exchange, the peer sees the connection end (the descriptor is closed with the server).
  struct HangUp {
    int fd;
    ~HangUp() { ::shutdown(fd, SHUT_RDWR); }
  } hang_up{socket.native_handle()};
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    boost::system::error_code ec;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    std::string target(req.target());
    // The agent names its DP last in every call (?dp= or &dp=); this server serves one DP.
    for (const char* sep : {"&dp=", "?dp="}) {
      if (const auto at = target.rfind(sep); at != std::string::npos && target.find('&', at + 1) == std::string::npos) {
        target.resize(at);
        break;
      }
    }
    const bool authorized = req[http::field::authorization] == "Bearer " + token_;
    std::string out;
    if (target.starts_with("/api/v1/dp/")) {
      if (!authorized) {
        {
          MutexLock lock(mu_);
          ++refused_requests_;
        }
        out = error(401, "WBEM_E_ACCESS_DENIED", "bad token");
      } else if (target == "/api/v1/dp/jobs") {
        MutexLock lock(mu_);
        ++list_requests_;
        json body = {{"revision", revision_}, {"jobs", json::array()}};
        for (const auto& [k, j] : jobs_) body["jobs"].push_back(j);
        out = response(200, "OK", "application/json", body.dump());
      } else if (target.starts_with("/api/v1/dp/jobs/events?since=")) {
        std::uint64_t since = 0;
        const std::string s = target.substr(target.find('=') + 1);
        std::from_chars(s.data(), s.data() + s.size(), since);
        std::uint64_t epoch = 0;
        {
          MutexLock lock(mu_);
          ++stream_requests_;
          epoch = drop_epoch_;
          if (since < compacted_) out = error(410, "WBEM_E_NOT_FOUND", "compacted");
        }
        if (out.empty()) {
          const std::string head =
              "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: "
              "close\r\n\r\nretry: 2000\nid: " + std::to_string(since) + "\n: pkgcast revision " +
                  std::to_string(since) + "\n\n";
          asio::write(socket, asio::buffer(head), ec);
          std::uint64_t sent = since;
          while (!ec) {
            std::string piece;
            {
              MutexLock lock(mu_);
              for (;;) {
                if (stopping_ || drop_epoch_ != epoch) return;
                for (const auto& [rev, text] : events_) {
                  if (rev > sent) {
                    piece += "id: " + std::to_string(rev) + "\ndata: " + text + "\n\n";
                    sent = rev;
                  }
                }
                if (!piece.empty()) break;
                if (!cv_.wait_for(mu_, std::chrono::milliseconds(200))) {
                  piece = ": heartbeat\n\n";
                  break;
                }
              }
            }
            asio::write(socket, asio::buffer(piece), ec);
          }
          return;
        }
      } else if (target == "/api/v1/dp/status" && req.method() == http::verb::post) {
        json m = json::parse(req.body(), nullptr, false);
        MutexLock lock(mu_);
        if (fail_status_ > 0) {
          --fail_status_;
          out = error(503, "WBEM_E_SERVER_TOO_BUSY", "try later");
        } else if (!m.is_object() || !m.contains("key")) {
          out = error(400, "WBEM_E_INVALID_PARAMETER", "bad status");
        } else if (!keys_.insert(m["key"].get<std::string>()).second) {
          ++duplicates_;
          out = response(200, "OK", "application/json", R"({"applied":false,"reason":"duplicate key"})");
        } else {
          statuses_.push_back(m);
          cv_.notify_all();
          out = response(200, "OK", "application/json", R"({"applied":true})");
        }
      } else {
        out = error(404, "WBEM_E_NOT_FOUND", "no route");
      }
    } else if (target.starts_with("/api/v1/content/manifests/")) {
      MutexLock lock(mu_);
      auto it = manifests_.find(target.substr(26));
      out = it == manifests_.end() ? error(404, "WBEM_E_NOT_FOUND", "no manifest")
                                   : response(200, "OK", "application/octet-stream", it->second);
    } else if (target.starts_with("/api/v1/content/chunks/")) {
      const std::string hex = target.substr(23);
      std::string body;
      std::size_t cut = 0;
      std::chrono::milliseconds delay{0};
      std::uint64_t first = 0;
      bool found = false;
      std::string encoding;
      bool busy = false;
      const std::string accept(req[http::field::accept_encoding]);
      {
        MutexLock lock(mu_);
        ++chunk_requests_[hex];
        delay = chunk_delay_;
        auto it = chunks_.find(hex);
        if (fail_chunks_ > 0) {
          --fail_chunks_;
          busy = true;
        } else if (it != chunks_.end()) {
          found = true;
          body = it->second;
          if (serve_zstd_ && accept.find("zstd") != std::string::npos && req[http::field::range].empty()) {
            std::string frame(ZSTD_compressBound(body.size()), '\0');
            frame.resize(ZSTD_compress(frame.data(), frame.size(), body.data(), body.size(), 3));
            body = std::move(frame);
            encoding = "Content-Encoding: zstd\r\n";
          }
          if (auto c = corrupt_.find(hex); c != corrupt_.end() && c->second > 0) {
            --c->second;
            body[body.size() / 2] ^= 0x01;
          }
          if (cut_times_ > 0) {
            --cut_times_;
            cut = cut_after_;
          }
        }
      }
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
      if (busy) {
        out = error(503, "WBEM_E_SERVER_TOO_BUSY", "busy");
      } else if (!found) {
        out = error(404, "WBEM_E_NOT_FOUND", "no chunk");
      } else {
        const std::string range(req[http::field::range]);
        const std::uint64_t size = body.size();
        if (range.starts_with("bytes=")) {
          std::from_chars(range.data() + 6, range.data() + range.size(), first);
          MutexLock lock(mu_);
          ++range_requests_;
        }
        if (first >= size && size > 0) {
          out = error(416, "WBEM_E_VALUE_OUT_OF_RANGE", "range");
        } else {
          std::string extra = encoding;
          if (first > 0) {
            extra = "Content-Range: bytes " + std::to_string(first) + "-" + std::to_string(size - 1) + "/" +
                    std::to_string(size) + "\r\n";
          }
          out = response(first > 0 ? 206 : 200, first > 0 ? "Partial Content" : "OK", "application/octet-stream",
                         std::string_view(body).substr(first), extra);
          const std::size_t head = out.size() - (size - first);
          if (cut > 0 && cut < size - first) {
            out.resize(head + cut);  // the body stops early and the connection closes
            asio::write(socket, asio::buffer(out), ec);
            MutexLock lock(mu_);
            chunk_bytes_ += cut;
            return;
          }
          MutexLock lock(mu_);
          chunk_bytes_ += size - first;
        }
      }
    } else {
      out = error(404, "WBEM_E_NOT_FOUND", "no route");
    }
    asio::write(socket, asio::buffer(out), ec);
    if (ec || !req.keep_alive()) return;
  }
}

}  // namespace pkgcast::dp::testing
