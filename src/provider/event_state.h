// Internal to the event engine: one subscription's state and the engine's shared core (events.h is the contract).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "provider/event_build.h"
#include "provider/event_group.h"
#include "provider/event_index.h"
#include "provider/events.h"

namespace pkgcast::provider {

// Synced / unsynced (etcd's terms): a synced subscription receives live events from the dispatcher; an unsynced
// one reads the journal in poll() from `position` until it reaches the dispatcher's revision, then turns synced.
// The turn happens with EngineCore::mu held (the dispatcher is then between entries), which is what makes the
// switch exact: every entry up to the dispatched revision came from the journal, every later one will come from
// the dispatcher, and the dispatcher skips entries at or below `position`.
struct SubscriptionState : std::enable_shared_from_this<SubscriptionState> {
  // Immutable after subscribe().
  std::uint64_t id = 0;
  std::shared_ptr<const wql::BoundQuery> query;
  std::vector<std::string> sites;  // the caller's site limit; empty = every site
  WakeFn wake;
  std::array<const std::vector<std::size_t>*, 3> omitted{};  // per change kind: the projection; nullptr = all
  std::vector<IndexSlot> slots;

  Mutex mu;  // after EngineCore::mu when both are held
  std::deque<Event> queue PKG_GUARDED_BY(mu);
  std::size_t queue_bytes PKG_GUARDED_BY(mu) = 0;
  bool synced PKG_GUARDED_BY(mu) = false;  // changes only with EngineCore::mu held too
  // Every entry up to here is accounted for: queued (or grouped) when it matched, skipped when it did not.
  std::uint64_t position PKG_GUARDED_BY(mu) = 0;
  std::uint64_t delivered PKG_GUARDED_BY(mu) = 0;  // revision of the last event poll() handed out
  bool waiting PKG_GUARDED_BY(mu) = false;          // the last poll() returned kIdle: wake on the next event
  bool ended PKG_GUARDED_BY(mu) = false;
  Status end_reason PKG_GUARDED_BY(mu);
  std::unique_ptr<Grouper> grouper PKG_GUARDED_BY(mu);  // GROUP WITHIN only

  Mutex wake_mu;  // held while calling `wake`, so that no call follows the handle's destruction
  bool closed PKG_GUARDED_BY(wake_mu) = false;
};

struct EngineCore : std::enable_shared_from_this<EngineCore> {
  EngineCore(store::Store& s, const Provider& p, EventOptions o, EventClasses c);

  // The commit listener (writer thread): append and notify, nothing else.
  void on_commit(const std::vector<store::JournalEntry>& entries) PKG_EXCLUDES(inbox_mu);
  void dispatcher_loop() PKG_EXCLUDES(mu, inbox_mu);
  // Joins the dispatcher and ends every subscription with WBEM_E_SHUTTING_DOWN. Idempotent.
  void stop() PKG_EXCLUDES(mu, inbox_mu);
  // The dispatcher could not go on: every subscription ends with WBEM_E_FAILED naming `reason`.
  void fail(const std::string& reason) PKG_EXCLUDES(mu, inbox_mu);

  // What subscribe() checks before it registers anything: the namespace, the query (an event query some stored
  // class can match) and that `since` can be resumed from. The subscription's immutable part, not yet registered.
  Result<std::shared_ptr<SubscriptionState>> prepare(std::string_view ns, std::string_view query_text,
                                                      const site::TokenRecord& caller,
                                                      std::optional<std::uint64_t> since) PKG_EXCLUDES(mu, inbox_mu);
  Status check(std::string_view ns, std::string_view query_text, const site::TokenRecord& caller,
               std::optional<std::uint64_t> since) PKG_EXCLUDES(mu, inbox_mu);
  // The newest revision a `since` may name: what the engine has received, or what the store has committed (a
  // client may read the store's, as /health reports it, a moment before the commit listener hands it over; the
  // live path skips entries at or before a subscription's position, so starting past the dispatcher is safe).
  std::uint64_t last_known() PKG_EXCLUDES(inbox_mu);
  Result<std::unique_ptr<Subscription>> subscribe(std::string_view ns, std::string_view query_text,
                                                  const site::TokenRecord& caller, std::optional<std::uint64_t> since,
                                                  WakeFn wake) PKG_EXCLUDES(mu, inbox_mu);
  void unsubscribe(const std::shared_ptr<SubscriptionState>& sub) PKG_EXCLUDES(mu, sub->mu, sub->wake_mu);
  PollResult poll(SubscriptionState& sub, std::size_t max) PKG_EXCLUDES(mu, sub.mu);

  store::Store& store;
  const Provider& provider;
  const EventOptions options;
  const EventClasses classes;
  const std::string server;
  const std::string namespace_path;
  std::atomic<bool> stopped{false};

  // Inbox: entries committed, not yet fanned out.
  Mutex inbox_mu;  // after mu when both are held
  CondVar inbox_cv;
  std::vector<store::JournalEntry> inbox PKG_GUARDED_BY(inbox_mu);
  std::uint64_t received PKG_GUARDED_BY(inbox_mu) = 0;         // last revision the listener saw
  std::uint64_t dropped_through PKG_GUARDED_BY(inbox_mu) = 0;  // > 0: entries up to here were dropped
  std::uint64_t timer_requested PKG_GUARDED_BY(inbox_mu) = 0;  // run_timers_for_test() tickets
  bool stopping PKG_GUARDED_BY(inbox_mu) = false;
  Micros next_timer PKG_GUARDED_BY(inbox_mu) = 0;  // 0 = no GROUP window open

  // Subscriptions and the live position.
  mutable Mutex mu;
  CondVar progress_cv;  // with mu: the dispatcher finished a step
  SubscriptionIndex index PKG_GUARDED_BY(mu);
  std::unordered_map<std::uint64_t, std::shared_ptr<SubscriptionState>> subs PKG_GUARDED_BY(mu);
  std::uint64_t dispatched PKG_GUARDED_BY(mu) = 0;  // every entry up to here has been fanned out
  std::uint64_t timer_served PKG_GUARDED_BY(mu) = 0;  // tickets the dispatcher has answered
  std::uint64_t next_id PKG_GUARDED_BY(mu) = 0;
  std::set<std::pair<Micros, std::uint64_t>> timers PKG_GUARDED_BY(mu);  // (window end, subscription id)
  std::set<std::vector<std::size_t>> projections PKG_GUARDED_BY(mu);     // interned; few (event classes are small)

  std::atomic<std::uint64_t> entries_dispatched{0};
  std::atomic<std::uint64_t> evaluations{0};
  std::atomic<std::uint64_t> events_serialized{0};
  std::atomic<std::uint64_t> events_queued{0};
  std::atomic<std::uint64_t> overflows{0};
  std::atomic<std::uint64_t> inbox_overflows{0};
  std::atomic<std::uint64_t> catch_up_pages{0};

  std::thread thread;

 private:
  using Wakes = std::vector<std::shared_ptr<SubscriptionState>>;
  void fan_out(const store::JournalEntry& entry, std::vector<SubscriptionState*>& scratch, Wakes& wakes)
      PKG_REQUIRES(mu);
  // Queues events (or feeds the grouper) for a matched entry.
  void deliver(SubscriptionState& sub, EventEntry& ev, Wakes& wakes) PKG_REQUIRES(mu, sub.mu);
  void push_aggregates(SubscriptionState& sub, Grouper::Output out, Wakes* wakes) PKG_REQUIRES(sub.mu);
  void end_locked(SubscriptionState& sub, Error reason, Wakes* wakes) PKG_REQUIRES(sub.mu);
  void run_timers(Micros now, Wakes& wakes) PKG_REQUIRES(mu);
  void add_timer(std::uint64_t id, Micros at) PKG_REQUIRES(mu);
  void publish_next_timer() PKG_REQUIRES(mu) PKG_EXCLUDES(inbox_mu);
  void call_wakes(Wakes& wakes) PKG_EXCLUDES(mu);
  PollResult take(SubscriptionState& sub, std::size_t max) PKG_REQUIRES(sub.mu);
  PollResult catch_up(SubscriptionState& sub, std::size_t max) PKG_EXCLUDES(mu, sub.mu);
};

}  // namespace pkgcast::provider
