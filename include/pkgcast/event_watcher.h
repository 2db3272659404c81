// .NET's ManagementEventWatcher: one event query on one scope, delivered to handlers (start/stop) or waited for
// (wait_for_next_event).
//
//   pkgcast::EventWatcher watcher(scope, pkgcast::WqlEventQuery{.event_class_name = "__InstanceModificationEvent",
//       .within = 120s, .condition = "TargetInstance ISA 'SMS_PackageStatusRootSummarizer'"});
//   watcher.on_event_arrived([](const pkgcast::Instance& e) { ... e["TargetInstance"]["Installed"] ... });
//   watcher.start();   ...   watcher.stop();
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "pkgcast/management_scope.h"

namespace pkgcast {

// Thread safety: the members may be called from any thread; the handlers run on the watcher's reader thread (see
// EventSink). Set handlers before start(); a handler set while started applies from the next start().
class EventWatcher {
 public:
  EventWatcher(ManagementScope scope, WqlEventQuery query);
  EventWatcher(ManagementScope scope, std::string query);
  EventWatcher(const EventWatcher&) = delete;
  EventWatcher& operator=(const EventWatcher&) = delete;
  ~EventWatcher();  // stop()

  void on_event_arrived(std::function<void(const Instance&)> handler);
  // The subscription ended (EventSink::on_completed's reasons; WBEM_E_CALL_CANCELLED after stop()).
  void on_stopped(std::function<void(const Status&)> handler);
  // Events were lost over a gap and the watcher resubscribed (EventSink::on_resync).
  void on_resync(std::function<void(const Error&)> handler);

  // Subscribes (asynchronously: events go to on_event_arrived). Throws ManagementError when the server refuses;
  // a watcher already started is left as it is.
  void start(std::optional<std::uint64_t> since = std::nullopt);
  Status try_start(std::optional<std::uint64_t> since = std::nullopt);
  // Ends the asynchronous subscription and the one wait_for_next_event keeps; returns after on_stopped ran.
  void stop();

  // The semi-synchronous form, independent of start(): the first call subscribes, later calls continue that
  // subscription until stop(). Throws ManagementError(WBEM_E_TIMED_OUT) when no event arrives within timeout,
  // as .NET's WaitForNextEvent does with Options.Timeout.
  Instance wait_for_next_event(std::chrono::milliseconds timeout);
  Result<Instance> try_wait_for_next_event(std::chrono::milliseconds timeout);

  // The text subscribed to.
  const std::string& query_string() const;

 private:
  class State;
  std::unique_ptr<State> state_;
};

}  // namespace pkgcast
