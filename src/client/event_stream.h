// One event subscription over GET /api/v1/events (internal): its reader thread connects, parses the stream,
// delivers events in revision order exactly once, and reconnects with resume (since=<last revision>) after
// transport failures, with back-off; see docs/client.md for the rules.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "client/http_client.h"
#include "client/scope_impl.h"
#include "core/mutex.h"
#include "core/result.h"
#include "core/thread_annotations.h"
#include "pkgcast/instance.h"

namespace pkgcast::client_detail {

// Where a subscription's events go. Called from the reader thread only, one call at a time.
class Delivery {
 public:
  virtual ~Delivery() = default;
  virtual void event(const Instance& e) = 0;
  virtual void resync(const Error& gap) = 0;
  virtual void completed(const Status& status) = 0;
};

class SubscriptionState {
 public:
  // Subscribes and returns once the server answered: the stream (the reader thread then runs until the
  // subscription ends), or the refusal (no thread is left).
  static Result<std::shared_ptr<SubscriptionState>> start(std::shared_ptr<const ScopeImpl> scope, std::string wql,
                                                          std::optional<std::uint64_t> since,
                                                          std::unique_ptr<Delivery> delivery);
  ~SubscriptionState();

  // See Subscription::cancel.
  void cancel();
  std::optional<std::uint64_t> last_revision() const;
  bool active() const { return !ended_.load(); }

  SubscriptionState(std::shared_ptr<const ScopeImpl> scope, std::string wql, std::optional<std::uint64_t> since,
                    std::unique_ptr<Delivery> delivery);

 private:
  enum class Outcome { kTransient, kGap, kFinal, kCancelled };
  struct Attempt {
    Outcome outcome = Outcome::kTransient;
    Error error;
    bool got_stream = false;  // the server answered 200
  };

  void run();
  Attempt read_once();
  // The server's last committed revision (GET /api/v1/health); nullopt when it cannot be had.
  std::optional<std::uint64_t> current_revision();
  void signal_handshake(Status status);
  // False when cancelled while waiting.
  bool wait_before_retry(std::chrono::milliseconds delay);
  void finish(const Status& status);
  // Runs a sink call; a sink that throws ends the subscription (no exception leaves the reader thread).
  template <typename F>
  bool guarded(F&& f);

  const std::shared_ptr<const ScopeImpl> scope_;
  const std::string wql_;
  const std::unique_ptr<Delivery> delivery_;
  std::unique_ptr<client::HttpClient> http_;  // the reader thread's; cancel() may call http_->cancel()

  std::atomic<bool> cancelled_{false};
  std::atomic<bool> ended_{false};
  std::optional<Error> sink_failure_;  // reader thread only

  mutable Mutex mu_;
  CondVar cv_;
  std::optional<std::uint64_t> last_revision_ PKG_GUARDED_BY(mu_);
  std::optional<Status> handshake_ PKG_GUARDED_BY(mu_);
  bool established_ PKG_GUARDED_BY(mu_) = false;

  Mutex join_mu_;
  std::thread thread_;
};

}  // namespace pkgcast::client_detail
