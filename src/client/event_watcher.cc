#include "pkgcast/event_watcher.h"

#include "core/mutex.h"

namespace pkgcast {

class EventWatcher::State final : public EventSink {
 public:
  State(ManagementScope scope, std::string query) : scope(std::move(scope)), query(std::move(query)) {}

  void on_object_ready(const Instance& e) override {
    if (arrived) arrived(e);
  }
  void on_completed(const Status& status) override {
    if (stopped) stopped(status);
  }
  void on_resync(const Error& gap) override {
    if (resynced) resynced(gap);
  }

  const ManagementScope scope;
  const std::string query;
  // Written only while no subscription runs (before start), read by the reader thread.
  std::function<void(const Instance&)> arrived;
  std::function<void(const Status&)> stopped;
  std::function<void(const Error&)> resynced;

  Mutex mu;  // guards the two subscriptions' handles
  Subscription subscription;
  std::shared_ptr<EventEnumerator> enumerator;
};

EventWatcher::EventWatcher(ManagementScope scope, WqlEventQuery query)
    : EventWatcher(std::move(scope), query.query_string()) {}

EventWatcher::EventWatcher(ManagementScope scope, std::string query)
    : state_(std::make_unique<State>(std::move(scope), std::move(query))) {}

EventWatcher::~EventWatcher() { stop(); }

void EventWatcher::on_event_arrived(std::function<void(const Instance&)> handler) {
  MutexLock lock(state_->mu);
  if (!state_->subscription.active()) state_->arrived = std::move(handler);
}
void EventWatcher::on_stopped(std::function<void(const Status&)> handler) {
  MutexLock lock(state_->mu);
  if (!state_->subscription.active()) state_->stopped = std::move(handler);
}
void EventWatcher::on_resync(std::function<void(const Error&)> handler) {
  MutexLock lock(state_->mu);
  if (!state_->subscription.active()) state_->resynced = std::move(handler);
}

Status EventWatcher::try_start(std::optional<std::uint64_t> since) {
  MutexLock lock(state_->mu);
  if (state_->subscription.active()) return ok_status();
  PKG_ASSIGN_OR_RETURN(state_->subscription,
                       state_->scope.try_exec_notification_query_async(*state_, state_->query, since));
  return ok_status();
}

void EventWatcher::start(std::optional<std::uint64_t> since) { throw_if_error(try_start(since)); }

void EventWatcher::stop() {
  Subscription subscription;
  std::shared_ptr<EventEnumerator> enumerator;
  {
    MutexLock lock(state_->mu);
    subscription = std::move(state_->subscription);
    enumerator = std::move(state_->enumerator);
  }
  // Cancelled outside the lock: on_stopped may call back into the watcher.
  subscription.cancel();
  if (enumerator) enumerator->cancel();
}

Result<Instance> EventWatcher::try_wait_for_next_event(std::chrono::milliseconds timeout) {
  std::shared_ptr<EventEnumerator> e;
  {
    MutexLock lock(state_->mu);
    if (!state_->enumerator) {
      PKG_ASSIGN_OR_RETURN(EventEnumerator fresh, state_->scope.try_exec_notification_query(state_->query));
      state_->enumerator = std::make_shared<EventEnumerator>(std::move(fresh));
    }
    e = state_->enumerator;
  }
  PKG_ASSIGN_OR_RETURN(std::optional<Instance> next, e->try_next_event(timeout));
  if (!next) {
    return make_error(WbemCode::kTimedOut, "no event within " + std::to_string(timeout.count()) + " ms");
  }
  return std::move(*next);
}

Instance EventWatcher::wait_for_next_event(std::chrono::milliseconds timeout) {
  return value_or_throw(try_wait_for_next_event(timeout));
}

const std::string& EventWatcher::query_string() const { return state_->query; }

}  // namespace pkgcast
