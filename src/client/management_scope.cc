#include "pkgcast/management_scope.h"

#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "client/event_stream.h"
#include "client/query_stream.h"
#include "client/scope_impl.h"
#include "client/url.h"

namespace pkgcast {
namespace {

// An error answer's body is read up to this size.
constexpr std::size_t kMaxErrorBody = 64 * 1024;

Result<std::string> read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(WbemCode::kInvalidParameter, "cannot read the token file '" + path + "'");
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
  if (line.empty()) return make_error(WbemCode::kInvalidParameter, "the token file '" + path + "' is empty");
  return line;
}

class SinkDelivery final : public client_detail::Delivery {
 public:
  explicit SinkDelivery(EventSink& sink) : sink_(sink) {}
  void event(const Instance& e) override { sink_.on_object_ready(e); }
  void resync(const Error& gap) override { sink_.on_resync(gap); }
  void completed(const Status& status) override { sink_.on_completed(status); }

 private:
  EventSink& sink_;
};

}  // namespace

// ---- EventEnumerator's queue ---------------------------------------------------------------------------------

class EventEnumerator::Queue final : public client_detail::Delivery {
 public:
  explicit Queue(std::size_t limit) : limit_(limit == 0 ? 1 : limit) {}

  void event(const Instance& e) override {
    std::unique_lock lock(mu_);
    // A full queue holds up the reader (and so the stream): back-pressure, not loss.
    not_full_.wait(lock, [&] { return events_.size() < limit_ || closed_; });
    if (closed_) return;
    events_.push_back(e);
    not_empty_.notify_one();
  }
  void resync(const Error&) override {
    std::lock_guard lock(mu_);
    ++resyncs_;
  }
  void completed(const Status& status) override {
    std::lock_guard lock(mu_);
    end_ = status;
    not_empty_.notify_all();
  }
  // Unblocks a reader waiting for room; later events are dropped (the subscription is being cancelled).
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_full_.notify_all();
  }

  Result<std::optional<Instance>> next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    not_empty_.wait_for(lock, timeout, [&] { return !events_.empty() || end_.has_value(); });
    if (!events_.empty()) {
      Instance e = std::move(events_.front());
      events_.pop_front();
      not_full_.notify_one();
      return std::optional<Instance>(std::move(e));
    }
    if (end_.has_value()) {
      if (end_->ok()) return make_error(WbemCode::kFailed, "the subscription ended");
      return end_->error();
    }
    return std::optional<Instance>();
  }

  std::uint64_t resyncs() const {
    std::lock_guard lock(mu_);
    return resyncs_;
  }

 private:
  const std::size_t limit_;
  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Instance> events_;
  std::optional<Status> end_;
  std::uint64_t resyncs_ = 0;
  bool closed_ = false;
};

// ---- Subscription ---------------------------------------------------------------------------------------------

Subscription::Subscription(std::shared_ptr<client_detail::SubscriptionState> state) : state_(std::move(state)) {}
Subscription::Subscription(Subscription&&) noexcept = default;
Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    cancel();
    state_ = std::move(other.state_);
  }
  return *this;
}
Subscription::~Subscription() { cancel(); }

void Subscription::cancel() {
  if (state_) state_->cancel();
}

std::optional<std::uint64_t> Subscription::last_revision() const {
  return state_ ? state_->last_revision() : std::nullopt;
}

bool Subscription::active() const { return state_ && state_->active(); }

// ---- EventEnumerator ------------------------------------------------------------------------------------------

EventEnumerator::EventEnumerator(std::shared_ptr<Queue> queue, Subscription subscription)
    : queue_(std::move(queue)), subscription_(std::move(subscription)) {}
EventEnumerator::EventEnumerator(EventEnumerator&&) noexcept = default;
EventEnumerator& EventEnumerator::operator=(EventEnumerator&& other) noexcept {
  if (this != &other) {
    cancel();
    queue_ = std::move(other.queue_);
    subscription_ = std::move(other.subscription_);
  }
  return *this;
}
EventEnumerator::~EventEnumerator() { cancel(); }

void EventEnumerator::cancel() {
  if (queue_) queue_->close();
  subscription_.cancel();
}

Result<std::optional<Instance>> EventEnumerator::try_next_event(std::chrono::milliseconds timeout) {
  if (!queue_) return make_error(WbemCode::kInvalidOperation, "the enumerator holds no subscription");
  return queue_->next(timeout);
}

std::optional<Instance> EventEnumerator::next_event(std::chrono::milliseconds timeout) {
  return value_or_throw(try_next_event(timeout));
}

std::uint64_t EventEnumerator::resync_count() const { return queue_ ? queue_->resyncs() : 0; }
std::optional<std::uint64_t> EventEnumerator::last_revision() const { return subscription_.last_revision(); }

// ---- ManagementScope ------------------------------------------------------------------------------------------

Result<ManagementScope> ManagementScope::try_create(std::string_view url, std::string namespace_path,
                                                    ConnectionOptions options) {
  PKG_ASSIGN_OR_RETURN(client::ServerUrl parsed, client::parse_server_url(url));
  std::string token = options.token;
  if (token.empty() && !options.token_file.empty()) {
    PKG_ASSIGN_OR_RETURN(token, read_token_file(options.token_file));
  }
  return ManagementScope(std::make_shared<const client_detail::ScopeImpl>(
      std::move(parsed), std::move(namespace_path), std::move(options), std::move(token)));
}

ManagementScope::ManagementScope(std::string_view url, std::string namespace_path, ConnectionOptions options)
    : ManagementScope(value_or_throw(try_create(url, std::move(namespace_path), std::move(options)))) {}

const std::string& ManagementScope::namespace_path() const { return impl_->namespace_path(); }
const ConnectionOptions& ManagementScope::options() const { return impl_->options(); }

Status ManagementScope::try_exec_query(std::string_view wql,
                                       const std::function<bool(Instance&&)>& on_instance) const {
  nlohmann::json body = {{"query", std::string(wql)}};
  if (!impl_->namespace_path().empty()) body["namespace"] = impl_->namespace_path();
  const std::string body_text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  PKG_ASSIGN_OR_RETURN(auto http, impl_->acquire());
  client::QueryAnswerDecoder decoder(on_instance);
  unsigned status = 0;
  std::string error_body;
  std::optional<Error> decode_error;
  bool stopped = false;

  client::StreamRequest req;
  req.method = "POST";
  req.target = "/api/v1/query";
  req.body = body_text;
  req.on_head = [&](const client::HttpResponse& head) {
    status = head.status;
    return true;
  };
  req.on_data = [&](std::string_view piece) {
    if (status < 200 || status >= 300) {
      error_body.append(piece.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
      return error_body.size() < kMaxErrorBody;
    }
    auto r = decoder.feed(piece);
    if (!r.ok()) {
      decode_error = r.error();
      return false;
    }
    if (!*r) stopped = true;
    return *r;
  };
  auto result = http->stream(req);
  if (!result.ok()) return std::move(result).error();  // the connection is dropped with its client
  if (status < 200 || status >= 300) {
    client::HttpResponse r;
    r.status = status;
    r.body = std::move(error_body);
    impl_->release(std::move(http));
    return client::error_from_response(r);
  }
  if (decode_error) return *decode_error;
  impl_->release(std::move(http));
  if (stopped) return ok_status();
  return decoder.finish();
}

Result<std::vector<Instance>> ManagementScope::try_exec_query(std::string_view wql) const {
  std::vector<Instance> rows;
  PKG_TRY(try_exec_query(wql, [&](Instance&& inst) {
    rows.push_back(std::move(inst));
    return true;
  }));
  return rows;
}

std::vector<Instance> ManagementScope::exec_query(std::string_view wql) const {
  return value_or_throw(try_exec_query(wql));
}

void ManagementScope::exec_query(std::string_view wql, const std::function<bool(Instance&&)>& on_instance) const {
  throw_if_error(try_exec_query(wql, on_instance));
}

Result<Subscription> ManagementScope::try_exec_notification_query_async(EventSink& sink, std::string_view wql,
                                                                        std::optional<std::uint64_t> since) const {
  PKG_ASSIGN_OR_RETURN(auto state, client_detail::SubscriptionState::start(
                                       impl_, std::string(wql), since, std::make_unique<SinkDelivery>(sink)));
  return Subscription(std::move(state));
}

Subscription ManagementScope::exec_notification_query_async(EventSink& sink, std::string_view wql,
                                                            std::optional<std::uint64_t> since) const {
  return value_or_throw(try_exec_notification_query_async(sink, wql, since));
}

namespace {

// The queue is shared by the enumerator and the subscription's delivery.
class QueueDelivery final : public client_detail::Delivery {
 public:
  explicit QueueDelivery(std::shared_ptr<client_detail::Delivery> queue) : queue_(std::move(queue)) {}
  void event(const Instance& e) override { queue_->event(e); }
  void resync(const Error& gap) override { queue_->resync(gap); }
  void completed(const Status& status) override { queue_->completed(status); }

 private:
  std::shared_ptr<client_detail::Delivery> queue_;
};

}  // namespace

Result<EventEnumerator> ManagementScope::try_exec_notification_query(std::string_view wql,
                                                                     std::optional<std::uint64_t> since) const {
  auto queue = std::make_shared<EventEnumerator::Queue>(impl_->options().event_queue_limit);
  PKG_ASSIGN_OR_RETURN(auto state, client_detail::SubscriptionState::start(
                                       impl_, std::string(wql), since, std::make_unique<QueueDelivery>(queue)));
  return EventEnumerator(std::move(queue), Subscription(std::move(state)));
}

EventEnumerator ManagementScope::exec_notification_query(std::string_view wql,
                                                         std::optional<std::uint64_t> since) const {
  return value_or_throw(try_exec_notification_query(wql, since));
}

}  // namespace pkgcast
