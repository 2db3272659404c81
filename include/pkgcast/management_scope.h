// A connection to one namespace of a pkgcast server, like .NET's ManagementScope: data queries, and event
// subscriptions in WMI's three forms (semi-synchronous, asynchronous with a sink, and EventWatcher on top).
//
//   pkgcast::ManagementScope scope("http://127.0.0.1:8750", R"(root\sms\site_ABC)", {.token = token});
//   for (const auto& row : scope.exec_query("SELECT * FROM SMS_PackageStatusRootSummarizer")) ...
//   auto events = scope.exec_notification_query("SELECT * FROM __InstanceModificationEvent WHERE ...");
//   while (auto e = events.next_event(5s)) ...
//
// Event subscriptions speak the server's event stream (GET /api/v1/events, text/event-stream) and survive
// disconnects: after a transport failure or a server restart they reconnect on their own with exponential
// back-off and resume from the last revision delivered (since=REV), so no event is lost or delivered twice.
// Thread safety: a scope may be used from any number of threads at once; copies share one pool of connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "pkgcast/connection_options.h"
#include "pkgcast/error.h"
#include "pkgcast/event_sink.h"
#include "pkgcast/instance.h"
#include "pkgcast/wql_event_query.h"

namespace pkgcast {

namespace client_detail {
class ScopeImpl;
class SubscriptionState;
}  // namespace client_detail

// The handle of an asynchronous subscription. Destroying it cancels the subscription. Movable, not copyable.
class Subscription {
 public:
  Subscription() = default;
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  ~Subscription();

  // Ends the subscription: the sink's on_completed(WBEM_E_CALL_CANCELLED) runs (unless it already ended) and,
  // when called from another thread than the sink's, cancel returns after it did, so the sink may be destroyed
  // then. Idempotent. Called from inside a sink callback, it returns at once and nothing is called after the
  // callback but on_completed.
  void cancel();

  // The revision of the last event delivered (inside on_object_ready: of the event being delivered; before the
  // first event, of the server when the subscription was made): what the subscription resumes from. Pass it as `since` to a new subscription to continue this one.
  std::optional<std::uint64_t> last_revision() const;

  bool active() const;

 private:
  friend class ManagementScope;
  explicit Subscription(std::shared_ptr<client_detail::SubscriptionState> state);
  std::shared_ptr<client_detail::SubscriptionState> state_;
};

// The semi-synchronous form: events are read by a background thread into a bounded queue
// (ConnectionOptions::event_queue_limit) and taken with next_event. Movable; destroying it ends the subscription.
class EventEnumerator {
 public:
  EventEnumerator() = default;
  EventEnumerator(EventEnumerator&&) noexcept;
  EventEnumerator& operator=(EventEnumerator&&) noexcept;
  ~EventEnumerator();

  // The next event, or nullopt when none arrived within `timeout` (WMI's WBEM_S_TIMEDOUT). Once the
  // subscription has ended (see EventSink::on_completed for the reasons) and the queued events are taken,
  // throws ManagementError with the reason. One caller at a time.
  std::optional<Instance> next_event(std::chrono::milliseconds timeout);
  Result<std::optional<Instance>> try_next_event(std::chrono::milliseconds timeout);

  // How many times the subscription resynchronized over a gap (EventSink::on_resync); events were lost there.
  std::uint64_t resync_count() const;
  std::optional<std::uint64_t> last_revision() const;
  // Ends the subscription; next_event then reports WBEM_E_CALL_CANCELLED after the queued events.
  void cancel();

 private:
  friend class ManagementScope;
  class Queue;
  EventEnumerator(std::shared_ptr<Queue> queue, Subscription subscription);
  std::shared_ptr<Queue> queue_;
  Subscription subscription_;
};

class ManagementScope {
 public:
  // `url`: "http://host:port" (https for TLS; default port 8750). `namespace_path`: "root\sms\site_ABC", or ""
  // for the server's own site. Nothing is sent yet. Throws ManagementError for a bad URL or an unreadable
  // token file; try_create returns it.
  ManagementScope(std::string_view url, std::string namespace_path, ConnectionOptions options = {});
  static Result<ManagementScope> try_create(std::string_view url, std::string namespace_path,
                                            ConnectionOptions options = {});

  const std::string& namespace_path() const;
  const ConnectionOptions& options() const;

  // A data query (POST /api/v1/query). The answer is decoded as it streams in, one instance at a time.
  std::vector<Instance> exec_query(std::string_view wql) const;
  Result<std::vector<Instance>> try_exec_query(std::string_view wql) const;
  // The same, handing each instance to `on_instance` as it arrives (a large answer never sits in memory whole);
  // on_instance returns false to stop early (then the status is OK).
  void exec_query(std::string_view wql, const std::function<bool(Instance&&)>& on_instance) const;
  Status try_exec_query(std::string_view wql, const std::function<bool(Instance&&)>& on_instance) const;

  // Subscribes and returns once the server accepted the query (a refused query, a bad token or an unreachable
  // server is the call's error, and no thread is left behind). `since` resumes from a revision (the events after
  // it come first); without it, delivery starts with changes committed after the call.
  [[nodiscard]] EventEnumerator exec_notification_query(std::string_view wql,
                                          std::optional<std::uint64_t> since = std::nullopt) const;
  Result<EventEnumerator> try_exec_notification_query(std::string_view wql,
                                                      std::optional<std::uint64_t> since = std::nullopt) const;

  // As above, delivering to `sink` from the subscription's own thread (see EventSink). The sink must outlive the
  // returned handle, and the subscription lasts as long as the handle (unlike WMI, where it lasts until
  // CancelAsyncCall): keep it.
  [[nodiscard]] Subscription exec_notification_query_async(EventSink& sink, std::string_view wql,
                                             std::optional<std::uint64_t> since = std::nullopt) const;
  Result<Subscription> try_exec_notification_query_async(EventSink& sink, std::string_view wql,
                                                         std::optional<std::uint64_t> since = std::nullopt) const;

 private:
  explicit ManagementScope(std::shared_ptr<const client_detail::ScopeImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const client_detail::ScopeImpl> impl_;
};

}  // namespace pkgcast
