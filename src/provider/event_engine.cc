// The event engine's core: inbox, dispatcher, subscribe/unsubscribe. Catch-up and poll are in event_poll.cc.
#include <algorithm>
#include <chrono>
#include <exception>
#include <string>

#include "provider/event_state.h"

namespace pkgcast::provider {

EngineCore::EngineCore(store::Store& s, const Provider& p, EventOptions o, EventClasses c)
    : store(s),
      provider(p),
      options(std::move(o)),
      classes(c),
      server(p.server_name()),
      namespace_path(p.namespace_path()) {}

void EngineCore::on_commit(const std::vector<store::JournalEntry>& entries) {
  if (entries.empty()) return;
  {
    MutexLock lock(inbox_mu);
    if (stopping) return;
    if (inbox.size() + entries.size() > options.max_inbox_entries) {
      // The dispatcher is that far behind: rather than grow or block the writer, forget these entries and let
      // every subscriber read them from the journal (the dispatcher turns them all unsynced).
      inbox.clear();
      dropped_through = entries.back().revision;
    } else {
      inbox.insert(inbox.end(), entries.begin(), entries.end());
    }
    received = entries.back().revision;
  }
  inbox_cv.notify_one();
}

void EngineCore::dispatcher_loop() {
  std::vector<store::JournalEntry> batch;
  std::vector<SubscriptionState*> scratch;
  std::uint64_t seen_requests = 0;
  for (;;) {
    std::uint64_t dropped = 0;
    {
      MutexLock lock(inbox_mu);
      for (;;) {
        if (stopping) return;
        if (!inbox.empty() || dropped_through > 0 || timer_requested > seen_requests) break;
        if (next_timer == 0) {
          inbox_cv.wait(inbox_mu);  // idle: no CPU until a commit, a timer request or stop
          continue;
        }
        const Micros now = options.clock->now_micros();
        if (now >= next_timer) break;
        // Real time until the next window closes, re-read at least every second (the clock may be moved).
        (void)inbox_cv.wait_for(inbox_mu, std::chrono::microseconds(std::min<Micros>(next_timer - now, 1'000'000)));
      }
      batch.swap(inbox);
      dropped = std::exchange(dropped_through, 0);
      seen_requests = timer_requested;
    }
    Wakes wakes;
    {
      MutexLock lock(mu);
      if (dropped > dispatched) {
        ++inbox_overflows;
        for (auto& [id, sub] : subs) {
          MutexLock sub_lock(sub->mu);
          if (!sub->synced) continue;
          sub->synced = false;
          sub->position = std::max(sub->position, dispatched);
          if (sub->waiting) {
            sub->waiting = false;
            wakes.push_back(sub);
          }
        }
        dispatched = dropped;
      }
      for (const store::JournalEntry& entry : batch) fan_out(entry, scratch, wakes);
      run_timers(options.clock->now_micros(), wakes);
      timer_served = seen_requests;
    }
    progress_cv.notify_all();
    call_wakes(wakes);
    batch.clear();
  }
}

void EngineCore::fan_out(const store::JournalEntry& entry, std::vector<SubscriptionState*>& scratch, Wakes& wakes) {
  if (entry.revision <= dispatched) return;
  ++entries_dispatched;
  if (entry.instance) {
    scratch.clear();
    index.candidates(*entry.instance, entry.kind, scratch);
    if (!scratch.empty()) {
      EventEntry ev(entry, classes, server, namespace_path);
      for (SubscriptionState* sub : scratch) {
        {
          // While mu is held only this thread turns a synced subscription unsynced, and only poll() (also under
          // mu) turns it synced: the answer read here holds until deliver().
          MutexLock sub_lock(sub->mu);
          if (sub->ended || !sub->synced || entry.revision <= sub->position) continue;
        }
        ++evaluations;
        if (!wql::matches_event(*sub->query, *ev.event())) continue;
        if (!sub->sites.empty() && !ev.visible_to(sub->sites)) continue;
        MutexLock sub_lock(sub->mu);
        deliver(*sub, ev, wakes);
      }
      events_serialized += ev.serializations();
    }
  }
  dispatched = entry.revision;
}

void EngineCore::deliver(SubscriptionState& sub, EventEntry& ev, Wakes& wakes) {
  if (sub.ended) return;
  const store::JournalEntry& entry = ev.entry();
  if (sub.grouper) {
    auto out = sub.grouper->add(ev.event(), entry.revision, entry.time);
    sub.position = entry.revision;
    if (!out.ok()) {
      end_locked(sub, std::move(out).error(), &wakes);
      return;
    }
    if (out->opened) add_timer(sub.id, *out->opened);
    push_aggregates(sub, std::move(*out), &wakes);
    return;
  }
  std::shared_ptr<const std::string> json = ev.json(sub.omitted[kind_slot(entry.kind)]);
  if (!sub.queue.empty() && (sub.queue.size() >= options.max_queue_events ||
                             sub.queue_bytes + json->size() > options.max_queue_bytes)) {
    // Too slow to keep up: stop queueing. Everything up to the previous entry is queued; once the subscriber has
    // drained its queue, poll() reads on from the journal and rejoins the live path when current.
    sub.synced = false;
    sub.position = entry.revision - 1;
    ++overflows;
    return;
  }
  sub.queue_bytes += json->size();
  sub.queue.push_back(Event{entry.revision, std::move(json)});
  sub.position = entry.revision;
  ++events_queued;
  if (sub.waiting) {
    sub.waiting = false;
    wakes.push_back(sub.shared_from_this());
  }
}

void EngineCore::push_aggregates(SubscriptionState& sub, Grouper::Output out, Wakes* wakes) {
  for (const cim::Instance& aggregate : out.aggregates) {
    if (sub.ended) return;
    if (sub.queue.size() >= options.max_queue_events) {
      // Aggregates cannot be re-read from the journal; a subscriber this far behind is ended instead.
      end_locked(sub,
                 make_error(WbemCode::kServerTooBusy, "the subscriber fell " +
                                                          std::to_string(options.max_queue_events) +
                                                          " aggregate events behind; subscribe again"),
                 wakes);
      return;
    }
    auto json = event_json(aggregate, nullptr);
    ++events_serialized;
    sub.queue_bytes += json->size();
    sub.queue.push_back(Event{*aggregate.revision(), std::move(json)});
    ++events_queued;
    if (sub.waiting && wakes != nullptr) {
      sub.waiting = false;
      wakes->push_back(sub.shared_from_this());
    }
  }
}

void EngineCore::end_locked(SubscriptionState& sub, Error reason, Wakes* wakes) {
  if (sub.ended) return;
  sub.ended = true;
  sub.end_reason = std::move(reason);
  if (sub.grouper) sub.grouper.reset();
  if (sub.waiting && wakes != nullptr) {
    sub.waiting = false;
    wakes->push_back(sub.shared_from_this());
  }
}

void EngineCore::add_timer(std::uint64_t id, Micros at) {
  const bool earliest = timers.empty() || at < timers.begin()->first;
  timers.emplace(at, id);
  if (earliest) {
    publish_next_timer();
    inbox_cv.notify_one();
  }
}

void EngineCore::publish_next_timer() {
  MutexLock lock(inbox_mu);
  next_timer = timers.empty() ? 0 : timers.begin()->first;
}

void EngineCore::run_timers(Micros now, Wakes& wakes) {
  while (!timers.empty() && timers.begin()->first <= now) {
    const std::uint64_t id = timers.begin()->second;
    timers.erase(timers.begin());
    auto it = subs.find(id);
    if (it == subs.end()) continue;  // unsubscribed since
    SubscriptionState& sub = *it->second;
    MutexLock sub_lock(sub.mu);
    if (sub.ended || !sub.grouper) continue;
    push_aggregates(sub, sub.grouper->close_due(now), &wakes);
  }
  publish_next_timer();
}

void EngineCore::call_wakes(Wakes& wakes) {
  for (const auto& sub : wakes) {
    MutexLock lock(sub->wake_mu);
    if (sub->closed || !sub->wake) continue;
    try {
      sub->wake();
    } catch (...) {  // NOLINT(bugprone-empty-catch): a callback's exception must not end the dispatcher
    }
  }
  wakes.clear();
}

void EngineCore::fail(const std::string& reason) {
  {
    MutexLock lock(inbox_mu);
    stopping = true;
    inbox.clear();
  }
  stopped = true;
  Wakes wakes;
  {
    MutexLock lock(mu);
    for (auto& [id, sub] : subs) {
      MutexLock sub_lock(sub->mu);
      end_locked(*sub, make_error(WbemCode::kFailed, reason), &wakes);
    }
  }
  progress_cv.notify_all();
  call_wakes(wakes);
}

void EngineCore::stop() {
  {
    MutexLock lock(inbox_mu);
    stopping = true;
    inbox.clear();
  }
  inbox_cv.notify_all();
  if (thread.joinable()) thread.join();
  stopped = true;
  Wakes wakes;
  {
    MutexLock lock(mu);
    for (auto& [id, sub] : subs) {
      MutexLock sub_lock(sub->mu);
      end_locked(*sub, make_error(WbemCode::kShuttingDown, "the event engine is stopping"), &wakes);
    }
    subs.clear();
    index = SubscriptionIndex();
    timers.clear();
  }
  progress_cv.notify_all();
  call_wakes(wakes);
}

Result<std::shared_ptr<SubscriptionState>> EngineCore::prepare(std::string_view ns, std::string_view query_text,
                                                               const site::TokenRecord& caller,
                                                               std::optional<std::uint64_t> since) {
  if (stopped) return make_error(WbemCode::kShuttingDown, "the event engine is stopping");
  PKG_ASSIGN_OR_RETURN(const std::string namespace_path, provider.resolve_namespace(ns));
  PKG_ASSIGN_OR_RETURN(wql::BoundQuery bound, wql::compile(query_text, store.registry()));
  PKG_TRY(provider.check_classes(namespace_path, bound));
  if (!bound.is_event()) {
    return make_error(WbemCode::kInvalidQueryType, "a subscription needs an event query (SELECT * FROM "
                                                   "__InstanceModificationEvent ...); " +
                                                       bound.from_class().name() +
                                                       " is not an event class: query it (`pkgcast query`, POST "
                                                       "/api/v1/query)");
  }
  // PKG_Token is the tokens' audit trail: as for queries (Provider::plan_query), only an unrestricted full-admin
  // token may subscribe to it. (Its one superclass, SMS_BaseClass, cannot be watched: see the binder.)
  const bool sees_tokens = caller.role == site::Role::kFullAdmin && caller.sites.empty();
  const cim::ClassDef* token_cls = store.registry().find("PKG_Token");
  if (!sees_tokens && token_cls != nullptr && bound.target_class() != nullptr &&
      bound.target_class()->is_a(*token_cls)) {
    return make_error(WbemCode::kAccessDenied, "class " + bound.target_class()->name() +
                                                   " is visible to full-admin tokens without a site limit only");
  }
  auto sub = std::make_shared<SubscriptionState>();
  sub->query = std::make_shared<const wql::BoundQuery>(std::move(bound));
  sub->sites = caller.sites;
  const std::array<const cim::ClassDef*, 3> kinds{classes.creation, classes.modification, classes.deletion};
  sub->slots = index_slots(*sub->query, store.registry(), kinds);

  if (sub->slots.empty()) {
    return make_error(WbemCode::kInvalidClass, "no instance of '" + sub->query->target_class()->name() +
                                                   "' is ever stored, so no event can match the query");
  }
  if (since) {
    // The store knows whether an exact resume is possible: refuse now rather than end the stream at once.
    Status probe = store.read_journal(*since, 1, [](store::JournalEntry&&) { return false; });
    if (!probe.ok()) {
      Error e = std::move(probe).error();
      return make_error(e.code, "cannot resume after revision " + std::to_string(*since) + ": " + e.message);
    }
  }
  return sub;
}

std::uint64_t EngineCore::last_known() {
  std::uint64_t last = 0;
  {
    MutexLock inbox_lock(inbox_mu);
    last = received;
  }
  if (auto committed = store.last_revision(); committed.ok()) last = std::max(last, *committed);
  return last;
}

Status EngineCore::check(std::string_view ns, std::string_view query_text, const site::TokenRecord& caller,
                         std::optional<std::uint64_t> since) {
  PKG_TRY(prepare(ns, query_text, caller, since));
  if (!since) return ok_status();
  const std::uint64_t last = last_known();
  if (*since > last) {
    return make_error(WbemCode::kInvalidParameter, "cannot resume after revision " + std::to_string(*since) +
                                                       ": the last revision is " + std::to_string(last));
  }
  return ok_status();
}

Result<std::unique_ptr<Subscription>> EngineCore::subscribe(std::string_view ns, std::string_view query_text,
                                                            const site::TokenRecord& caller,
                                                            std::optional<std::uint64_t> since, WakeFn wake) {
  PKG_ASSIGN_OR_RETURN(std::shared_ptr<SubscriptionState> sub, prepare(ns, query_text, caller, since));
  sub->wake = std::move(wake);
  const std::array<const cim::ClassDef*, 3> kinds{classes.creation, classes.modification, classes.deletion};

  MutexLock lock(mu);
  if (stopped) return make_error(WbemCode::kShuttingDown, "the event engine is stopping");
  if (subs.size() >= options.max_subscriptions) {
    return make_error(WbemCode::kServerTooBusy, std::to_string(subs.size()) +
                                                    " event subscriptions are open, the most this server allows "
                                                    "(events max_subscriptions)");
  }
  if (!sub->query->select_all()) {
    std::vector<bool> selected(classes.modification->properties().size(), false);
    for (const wql::PropertyRef& ref : sub->query->selected()) {
      if (ref.source == wql::Source::kSelf && ref.system == wql::SystemProperty::kNone && ref.index < selected.size()) {
        selected[ref.index] = true;
      }
    }
    // Every event object carries TIME_CREATED (design.md 5), as it carries __CLASS and __REVISION.
    if (auto time = classes.modification->find_property("TIME_CREATED"); time && *time < selected.size()) {
      selected[*time] = true;
    }
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      std::vector<std::size_t> omitted;
      for (std::size_t i = 0; i < kinds[k]->properties().size(); ++i) {
        if (i >= selected.size() || !selected[i]) omitted.push_back(i);
      }
      if (!omitted.empty()) sub->omitted[k] = &*projections.insert(std::move(omitted)).first;
    }
  }
  const std::uint64_t last = last_known();
  {
    MutexLock sub_lock(sub->mu);
    if (since && *since > last) {
      return make_error(WbemCode::kInvalidParameter, "cannot resume after revision " + std::to_string(*since) +
                                                         ": the last revision is " + std::to_string(last));
    }
    sub->position = since.value_or(last);
    sub->delivered = sub->position;
    // At or past the dispatcher: the live path brings every later entry. Behind it: catch up first.
    sub->synced = sub->position >= dispatched;
    if (sub->query->group()) {
      sub->grouper = std::make_unique<Grouper>(sub->query, classes, options.max_groups, options.max_group_bytes);
    }
  }
  sub->id = ++next_id;
  subs.emplace(sub->id, sub);
  index.add(sub.get(), sub->slots);
  return std::unique_ptr<Subscription>(new Subscription(shared_from_this(), std::move(sub)));
}

void EngineCore::unsubscribe(const std::shared_ptr<SubscriptionState>& sub) {
  {
    MutexLock lock(sub->wake_mu);
    sub->closed = true;
  }
  {
    MutexLock lock(mu);
    if (subs.erase(sub->id) > 0) index.remove(sub.get(), sub->slots);
  }
  MutexLock lock(sub->mu);
  sub->queue.clear();
  sub->queue_bytes = 0;
  sub->grouper.reset();
}

// ---- the public classes

Subscription::Subscription(std::shared_ptr<EngineCore> core, std::shared_ptr<SubscriptionState> state)
    : core_(std::move(core)), state_(std::move(state)) {}

Subscription::~Subscription() { core_->unsubscribe(state_); }

PollResult Subscription::poll(std::size_t max) { return core_->poll(*state_, max); }

std::uint64_t Subscription::id() const { return state_->id; }

const wql::BoundQuery& Subscription::query() const { return *state_->query; }

std::uint64_t Subscription::delivered() const {
  MutexLock lock(state_->mu);
  return state_->delivered;
}

EventEngine::EventEngine(std::shared_ptr<EngineCore> core) : core_(std::move(core)) {}

EventEngine::~EventEngine() { core_->stop(); }

Result<std::unique_ptr<EventEngine>> EventEngine::create(store::Store& store, const Provider& provider,
                                                         EventOptions options) {
  if (options.max_subscriptions == 0 || options.max_queue_events == 0 || options.max_queue_bytes == 0 ||
      options.catch_up_page == 0 || options.max_inbox_entries == 0 || options.max_groups == 0 ||
      options.max_group_bytes == 0 || options.clock == nullptr) {
    return make_error(WbemCode::kInvalidParameter, "every event engine bound must be at least 1, and a clock given");
  }
  PKG_ASSIGN_OR_RETURN(EventClasses classes, EventClasses::from(store.registry()));
  auto core = std::make_shared<EngineCore>(store, provider, options, classes);
  // The store keeps its listeners for its lifetime; the listener keeps the core (not the engine) alive and does
  // nothing once the engine has stopped.
  store.add_commit_listener([core](const std::vector<store::JournalEntry>& entries) { core->on_commit(entries); });
  auto last = store.last_revision();
  if (!last.ok()) {
    core->stop();
    return std::move(last).error();
  }
  {
    MutexLock lock(core->mu);
    MutexLock inbox_lock(core->inbox_mu);
    // Entries committed before the engine existed are history: a subscriber reaches them with `since`.
    core->received = std::max(core->received, *last);
    core->dispatched = core->received;
  }
  core->thread = std::thread([c = core.get()] {
    // Nothing in the loop is expected to throw; should an allocation fail, the subscribers are told and the
    // exception stays on this thread.
    try {
      c->dispatcher_loop();
    } catch (const std::exception& e) {
      c->fail(std::string("the event dispatcher failed: ") + e.what());
    } catch (...) {
      c->fail("the event dispatcher failed");
    }
  });
  return std::unique_ptr<EventEngine>(new EventEngine(std::move(core)));
}

Result<std::unique_ptr<Subscription>> EventEngine::subscribe(std::string_view ns, std::string_view query,
                                                             const site::TokenRecord& caller,
                                                             std::optional<std::uint64_t> since, WakeFn wake) {
  return core_->subscribe(ns, query, caller, since, std::move(wake));
}

Status EventEngine::check(std::string_view ns, std::string_view query, const site::TokenRecord& caller,
                          std::optional<std::uint64_t> since) const {
  return core_->check(ns, query, caller, since);
}

const EventOptions& EventEngine::options() const { return core_->options; }

EventStats EventEngine::stats() const {
  EventStats s;
  MutexLock lock(core_->mu);
  s.subscriptions = core_->subs.size();
  s.index_slots = core_->index.slot_count();
  for (const auto& [id, sub] : core_->subs) {
    MutexLock sub_lock(sub->mu);
    s.queued_events += sub->queue.size();
  }
  s.entries_dispatched = core_->entries_dispatched;
  s.evaluations = core_->evaluations;
  s.events_serialized = core_->events_serialized;
  s.events_queued = core_->events_queued;
  s.overflows = core_->overflows;
  s.inbox_overflows = core_->inbox_overflows;
  s.catch_up_pages = core_->catch_up_pages;
  s.dispatched_revision = core_->dispatched;
  return s;
}

void EventEngine::wait_dispatched_for_test() {
  std::uint64_t target = 0;
  {
    MutexLock lock(core_->inbox_mu);
    target = core_->received;
  }
  MutexLock lock(core_->mu);
  while (core_->dispatched < target && !core_->stopped) core_->progress_cv.wait(core_->mu);
}

void EventEngine::run_timers_for_test() {
  std::uint64_t ticket = 0;
  {
    MutexLock lock(core_->inbox_mu);
    ticket = ++core_->timer_requested;
  }
  core_->inbox_cv.notify_one();
  MutexLock lock(core_->mu);
  while (core_->timer_served < ticket && !core_->stopped) core_->progress_cv.wait(core_->mu);
}

}  // namespace pkgcast::provider
