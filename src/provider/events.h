// The event engine: intrinsic events (__InstanceCreationEvent, __InstanceModificationEvent,
// __InstanceDeletionEvent, and __InstanceOperationEvent for all three; __AggregateEvent for GROUP WITHIN) pushed to
// subscribers as changes commit (design.md sections 5, 6 and 9; docs/events.md is the contract).
//
// Shape:
// - The engine listens to the store's commits. The listener only appends the committed entries to an inbox (quick,
//   never blocks: past EventOptions::max_inbox_entries the inbox is dropped and every subscriber catches up from
//   the journal instead). One dispatcher thread, the engine's only thread, matches each entry against the
//   subscriptions that can match it: an index by concrete class (a subscription on a base class is filed under
//   every concrete subclass), event kind and, within those, by the values of an equality on a key property
//   (`TargetInstance.PackageID = 'ABC00001'`). Only those candidates are evaluated with the full condition.
// - An event is built and serialized to JSON once per entry (per projection) and the bytes are shared by every
//   subscriber it goes to.
// - A subscription is a pull source: poll() hands out what is queued, never blocks on other subscribers and owns
//   no thread. When poll() returns kIdle, the wake callback is called (once) when there is something to poll.
// - Every event carries __REVISION. Subscribing with `since` delivers every later matching event exactly once, in
//   revision order: first from the journal (catch-up, a page per poll), then from the live path, without gap or
//   duplicate. A subscriber whose queue fills (EventOptions::max_queue_events / max_queue_bytes) stops receiving
//   live events and catches up from the journal, after its last queued revision, once it has drained its queue;
//   it rejoins the live path when it is current (etcd's synced / unsynced watchers).
// - A caller limited to sites sees only events whose instances it may read (site_scope.h, the rule of queries).
//
// Thread safety: EventEngine's methods may be called from any thread. A Subscription is used by one thread at a
// time (its owner); different subscriptions may be polled concurrently.
// Lifetime: the store and the provider must outlive the engine. A Subscription may outlive the engine (its poll()
// then ends with WBEM_E_SHUTTING_DOWN) but not the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "provider/provider.h"
#include "site/tokens.h"
#include "store/store.h"
#include "wql/wql.h"

namespace pkgcast::provider {

// Named bounds (docs/events.md); every resource a subscriber can make the server hold is limited by one of these.
struct EventOptions {
  // Open subscriptions, engine-wide; past it subscribe() answers WBEM_E_SERVER_TOO_BUSY.
  std::size_t max_subscriptions = 20'000;
  // Events queued for one subscriber before it is switched to catching up from the journal.
  std::size_t max_queue_events = 1'024;
  // Bytes of event JSON queued for one subscriber (counted in full even where shared) before the same switch.
  std::size_t max_queue_bytes = 1 << 20;
  // Journal entries read per catch-up step (one step per poll()).
  std::size_t catch_up_page = 256;
  // Committed entries waiting for the dispatcher; past it they are dropped and every subscriber catches up.
  std::size_t max_inbox_entries = 100'000;
  // Open GROUP WITHIN groups (distinct BY values) per subscription; past it the subscription ends with
  // WBEM_E_QUOTA_VIOLATION.
  std::size_t max_groups = 10'000;
  // Bytes those groups may hold per subscription (their BY values and representative events, estimated); past it
  // the subscription ends with WBEM_E_QUOTA_VIOLATION. A group's key may hold 256 values, so the count alone would
  // let one subscription hold hundreds of megabytes.
  std::size_t max_group_bytes = 16u << 20;
  // GROUP WITHIN windows are timed by this clock (tests inject a ManualClock).
  Clock* clock = &Clock::system();
};

// One event as delivered: its revision (the SSE id) and its JSON object (design.md section 6), shared by every
// subscriber it goes to.
struct Event {
  std::uint64_t revision = 0;
  std::shared_ptr<const std::string> json;
};

enum class PollState : std::uint8_t {
  kReady,  // call poll() again now: more is queued, or the catch-up has more to read
  kIdle,   // nothing to send; the wake callback will be called when there is
  kEnded,  // the subscription is over; PollResult::error says why
};

struct PollResult {
  std::vector<Event> events;  // in revision order; at most `max`
  PollState state = PollState::kIdle;
  Status error;  // kEnded only: the reason (WBEM_E_NOT_FOUND when the journal was compacted past the
                 // subscriber's position, WBEM_E_SHUTTING_DOWN, WBEM_E_QUOTA_VIOLATION, ...)
};

// Called, on the engine's thread, when a subscription whose last poll() returned kIdle has something to poll.
// It must be quick, must not block, and must not destroy its Subscription (post the work elsewhere instead).
// It is never called after the Subscription is destroyed.
using WakeFn = std::function<void()>;

class EventEngine;
struct SubscriptionState;
struct EngineCore;

// An open subscription. Destroying it unsubscribes (its queue and index entries are released at once).
class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // Up to `max` (>= 1) events. Never waits for new events; during catch-up it reads at most one journal page.
  PollResult poll(std::size_t max);

  std::uint64_t id() const;
  const wql::BoundQuery& query() const;
  // The revision the subscription has delivered through: the last event handed out by poll(), or the starting
  // revision. A client resumes from here.
  std::uint64_t delivered() const;

 private:
  friend struct EngineCore;
  Subscription(std::shared_ptr<EngineCore> core, std::shared_ptr<SubscriptionState> state);
  std::shared_ptr<EngineCore> core_;
  std::shared_ptr<SubscriptionState> state_;
};

// Counters, for /metrics and for tests.
struct EventStats {
  std::size_t subscriptions = 0;     // open now
  std::size_t index_slots = 0;       // (class, kind, key value) slots holding subscriptions now
  std::size_t queued_events = 0;     // events queued across subscribers now
  std::uint64_t entries_dispatched = 0;  // journal entries the dispatcher has processed
  std::uint64_t evaluations = 0;         // conditions evaluated (live path and catch-up): the index's selectivity
  std::uint64_t events_serialized = 0;   // JSON objects built (once per entry and projection on the live path)
  std::uint64_t events_queued = 0;       // events put on subscriber queues
  std::uint64_t overflows = 0;           // subscribers switched to catch-up because their queue was full
  std::uint64_t inbox_overflows = 0;     // times the dispatcher fell behind and every subscriber caught up
  std::uint64_t catch_up_pages = 0;      // journal pages read for catch-up
  std::uint64_t dispatched_revision = 0;  // every entry up to here has been fanned out
};

class EventEngine {
 public:
  // Registers the engine's commit listener on `store` and starts the dispatcher thread. `provider` answers the
  // namespace and the server name events are located at. WBEM_E_INVALID_PARAMETER for a zero bound.
  static Result<std::unique_ptr<EventEngine>> create(store::Store& store, const Provider& provider,
                                                     EventOptions options = {});
  ~EventEngine();  // stops the dispatcher; open subscriptions end with WBEM_E_SHUTTING_DOWN
  EventEngine(const EventEngine&) = delete;
  EventEngine& operator=(const EventEngine&) = delete;

  // Opens a subscription for an event query. `since`: resume after that revision (every later matching event is
  // delivered); nullopt starts after the last revision committed when subscribe() is called.
  // Errors: WBEM_E_INVALID_NAMESPACE; the compiler's (WBEM_E_INVALID_QUERY with a position, _INVALID_CLASS, ...);
  // WBEM_E_INVALID_QUERY_TYPE for a data query; WBEM_E_NOT_FOUND when `since` is older than the journal keeps
  // (the message names the oldest revision a resume can start from); WBEM_E_INVALID_PARAMETER when `since` is
  // beyond the last revision; WBEM_E_SERVER_TOO_BUSY past max_subscriptions.
  Result<std::unique_ptr<Subscription>> subscribe(std::string_view ns, std::string_view query,
                                                  const site::TokenRecord& caller, std::optional<std::uint64_t> since,
                                                  WakeFn wake);

  // The answer subscribe() would give, without subscribing (HEAD /api/v1/events): its errors but
  // WBEM_E_SERVER_TOO_BUSY, which only an open subscription counts against.
  Status check(std::string_view ns, std::string_view query, const site::TokenRecord& caller,
               std::optional<std::uint64_t> since) const;

  EventStats stats() const;
  const EventOptions& options() const;

  // Blocks until every entry committed before the call has been fanned out (tests, shutdown ordering).
  void wait_dispatched_for_test();
  // Makes the dispatcher read the clock now and close the GROUP WITHIN windows that are due (a test moves its
  // ManualClock, then calls this); returns once it has.
  void run_timers_for_test();

 private:
  explicit EventEngine(std::shared_ptr<EngineCore> core);
  std::shared_ptr<EngineCore> core_;
};

}  // namespace pkgcast::provider
