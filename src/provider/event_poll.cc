// The subscriber's side of the event engine: poll() and the catch-up from the journal.
#include <algorithm>

#include "provider/event_state.h"

namespace pkgcast::provider {

PollResult EngineCore::poll(SubscriptionState& sub, std::size_t max) {
  max = std::max<std::size_t>(max, 1);
  {
    MutexLock lock(sub.mu);
    if (!sub.queue.empty() || sub.ended || sub.synced) return take(sub, max);
  }
  return catch_up(sub, max);
}

PollResult EngineCore::take(SubscriptionState& sub, std::size_t max) {
  PollResult r;
  while (!sub.queue.empty() && r.events.size() < max) {
    Event& e = sub.queue.front();
    sub.queue_bytes -= e.json->size();
    sub.delivered = e.revision;
    r.events.push_back(std::move(e));
    sub.queue.pop_front();
  }
  if (!sub.queue.empty() || (!sub.synced && !sub.ended)) {
    r.state = PollState::kReady;
  } else if (sub.ended) {
    // Queued events go out before the reason.
    r.state = r.events.empty() ? PollState::kEnded : PollState::kReady;
    if (r.events.empty()) r.error = sub.end_reason;
  } else {
    sub.waiting = true;
    r.state = PollState::kIdle;
  }
  return r;
}

PollResult EngineCore::catch_up(SubscriptionState& sub, std::size_t max) {
  std::uint64_t from = 0;
  {
    MutexLock lock(mu);
    MutexLock sub_lock(sub.mu);
    if (sub.ended || !sub.queue.empty()) return take(sub, max);
    if (sub.position >= dispatched) {  // nothing left to read: rejoin the live path
      sub.synced = true;
      return take(sub, max);
    }
    from = sub.position;
  }

  // One page, read without any engine lock: the dispatcher skips this subscription while it is unsynced.
  struct Found {
    std::uint64_t revision = 0;
    Micros time = 0;
    std::shared_ptr<const cim::Instance> event;
    std::shared_ptr<const std::string> json;  // not for GROUP subscriptions, whose output is aggregates
  };
  std::vector<Found> found;
  std::uint64_t scanned = from;
  const bool grouped = sub.query->group().has_value();
  Status read = store.read_journal(from, options.catch_up_page, [&](store::JournalEntry&& e) {
    scanned = e.revision;
    if (!e.instance) return true;
    const bool candidate = std::any_of(sub.slots.begin(), sub.slots.end(),
                                       [&](const IndexSlot& s) { return s.admits(*e.instance, e.kind); });
    if (!candidate) return true;
    ++evaluations;
    EventEntry ev(e, classes, server, namespace_path);
    if (!wql::matches_event(*sub.query, *ev.event())) return true;
    if (!sub.sites.empty() && !ev.visible_to(sub.sites)) return true;
    Found f{e.revision, e.time, ev.event(), nullptr};
    if (!grouped) {
      f.json = ev.json(sub.omitted[kind_slot(e.kind)]);
      ++events_serialized;
    }
    found.push_back(std::move(f));
    return true;
  });
  ++catch_up_pages;

  MutexLock lock(mu);
  MutexLock sub_lock(sub.mu);
  if (sub.ended) return take(sub, max);
  if (!read.ok()) {
    Error e = std::move(read).error();
    // Compacted past this subscriber's position (WBEM_E_NOT_FOUND): an exact continuation is impossible; the
    // client re-lists. Anything else (the database down) loses nothing: the client resumes from `from` later.
    const std::string what = e.code == WbemCode::kNotFound ? " are gone: " : " cannot be read now: ";
    end_locked(sub, make_error(e.code, "events after revision " + std::to_string(from) + what + e.message), nullptr);
    return take(sub, max);
  }
  for (Found& f : found) {
    if (grouped) {
      if (!sub.grouper) break;
      auto out = sub.grouper->add(f.event, f.revision, f.time);
      if (!out.ok()) {
        end_locked(sub, std::move(out).error(), nullptr);
        return take(sub, max);
      }
      if (out->opened) add_timer(sub.id, *out->opened);
      push_aggregates(sub, std::move(*out), nullptr);
    } else {
      sub.queue_bytes += f.json->size();
      sub.queue.push_back(Event{f.revision, std::move(f.json)});
      ++events_queued;
    }
  }
  sub.position = std::max(sub.position, scanned);
  if (grouped && sub.grouper) push_aggregates(sub, sub.grouper->close_due(options.clock->now_micros()), nullptr);
  if (sub.position >= dispatched) sub.synced = true;
  return take(sub, max);
}

}  // namespace pkgcast::provider
