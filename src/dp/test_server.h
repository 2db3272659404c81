// A stand-in for the site server's side of docs/dp-protocol.md, for the agent's tests: the job list and job event
// stream (with 410 after compact()), POST /api/v1/dp/status with idempotency keys, and the content endpoints with
// Range. Real HTTP on loopback (Boost.Beast, one thread per connection: a test fixture, not a server). Faults are
// injected per call: corrupt or cut chunk responses, 503 on status posts, dropped event streams.
//
// Thread safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/mutex.h"
#include "dp/test_tree.h"

namespace pkgcast::dp::testing {

class FakeSiteServer {
 public:
  explicit FakeSiteServer(std::string token);
  ~FakeSiteServer();

  std::uint16_t port() const { return port_; }
  std::string url() const;          // http://127.0.0.1:<port>
  std::string content_url() const;  // url() + "/api/v1/content"

  void add_content(const BuiltContent& c);
  void add_manifest(const std::string& hex, const std::string& bytes);
  void add_chunk(const std::string& hex, const std::string& bytes);

  // A PKG_DPJob instance (JSON object with PackageID ...): a creation or modification event at a new revision.
  void put_job(const nlohmann::json& job);
  void delete_job(const std::string& package_id);
  void compact();       // every `since` below the current revision is now 410
  void drop_streams();  // closes the open event streams

  // Faults.
  void corrupt_chunk(const std::string& hex, int times);  // flips a byte in the next `times` answers
  void cut_chunks(std::size_t after_bytes, int times);    // the next `times` chunk bodies stop early
  void fail_status(int times);                            // the next `times` status posts get 503
  void fail_chunks(int times);                            // the next `times` chunk requests get 503
  void set_chunk_delay(std::chrono::milliseconds d);      // before each chunk answer
  // Whole chunks go out zstd-encoded to a client that accepts zstd (as the site server sends stored frames);
  // corrupt_chunk and cut_chunks then apply to the encoded body.
  void serve_zstd(bool on);

  // Observations.
  std::uint64_t chunk_bytes_served() const;
  int chunk_requests(const std::string& hex) const;
  int range_requests() const;
  int list_requests() const;
  int refused_requests() const;  // /api/v1/dp/ calls answered 401 (a wrong token)
  int stream_requests() const;
  int duplicate_statuses() const;
  std::vector<nlohmann::json> statuses() const;  // applied ones, in order
  // The first applied status of `package_id` with `state` (and generation, when not 0); nullopt at the timeout.
  std::optional<nlohmann::json> wait_status(const std::string& package_id, const std::string& state,
                                            std::uint32_t generation = 0,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

 private:
  struct Conn;
  void accept_loop();
  void serve(std::shared_ptr<Conn> conn);

  const std::string token_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread acceptor_;

  mutable Mutex mu_;
  mutable CondVar cv_;
  bool stopping_ PKG_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ PKG_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Conn>> conns_ PKG_GUARDED_BY(mu_);
  std::map<std::string, std::string> manifests_ PKG_GUARDED_BY(mu_);
  std::map<std::string, std::string> chunks_ PKG_GUARDED_BY(mu_);
  std::map<std::string, nlohmann::json> jobs_ PKG_GUARDED_BY(mu_);
  std::vector<std::pair<std::uint64_t, std::string>> events_ PKG_GUARDED_BY(mu_);
  std::uint64_t revision_ PKG_GUARDED_BY(mu_) = 0;
  std::uint64_t compacted_ PKG_GUARDED_BY(mu_) = 0;
  std::uint64_t drop_epoch_ PKG_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> corrupt_ PKG_GUARDED_BY(mu_);
  std::size_t cut_after_ PKG_GUARDED_BY(mu_) = 0;
  int cut_times_ PKG_GUARDED_BY(mu_) = 0;
  bool serve_zstd_ PKG_GUARDED_BY(mu_) = false;
  int fail_status_ PKG_GUARDED_BY(mu_) = 0;
  int fail_chunks_ PKG_GUARDED_BY(mu_) = 0;
  std::chrono::milliseconds chunk_delay_ PKG_GUARDED_BY(mu_){0};
  std::uint64_t chunk_bytes_ PKG_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> chunk_requests_ PKG_GUARDED_BY(mu_);
  int range_requests_ PKG_GUARDED_BY(mu_) = 0;
  int list_requests_ PKG_GUARDED_BY(mu_) = 0;
  int refused_requests_ PKG_GUARDED_BY(mu_) = 0;
  int stream_requests_ PKG_GUARDED_BY(mu_) = 0;
  std::set<std::string> keys_ PKG_GUARDED_BY(mu_);
  int duplicates_ PKG_GUARDED_BY(mu_) = 0;
  std::vector<nlohmann::json> statuses_ PKG_GUARDED_BY(mu_);
};

}  // namespace pkgcast::dp::testing
