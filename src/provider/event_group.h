// Internal to the event engine: GROUP WITHIN n [BY p, ...] [HAVING NumberOfEvents > k] (design.md section 5).
//
// A window opens at the commit time of the first matching event of its group (its BY values) and lasts n seconds;
// events committed within it are counted. It closes when the engine's clock reaches its end, or when an event of
// its group committed at or after its end arrives (that event opens the next window). A closed window becomes one
// __AggregateEvent: NumberOfEvents, Representative (the window's first event), TIME_CREATED (the window's end) and
// __REVISION (the window's last event), unless HAVING rejects it.
//
// Thread safety: none; the engine guards each subscription's grouper with the subscription's mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cim/cim.h"
#include "core/clock.h"
#include "core/result.h"
#include "provider/event_build.h"
#include "wql/wql.h"

namespace pkgcast::provider {

class Grouper {
 public:
  // The longest window, 100 years: a longer GROUP WITHIN interval is taken as this (it stays open as long).
  static constexpr Micros kMaxWindow = 100LL * 36525 * 24 * 3600 * 10'000;

  // Precondition: query->group() has a value.
  Grouper(std::shared_ptr<const wql::BoundQuery> query, const EventClasses& classes, std::size_t max_groups,
          std::size_t max_bytes);

  struct Output {
    std::vector<cim::Instance> aggregates;  // windows closed, in the order of their last revision
    std::optional<Micros> opened;           // the end of a window this call opened (for the engine's timer)
  };

  // Counts a matching event committed at `time`. WBEM_E_QUOTA_VIOLATION when it would open more than max_groups
  // windows at once, or hold more than max_bytes in them (held_bytes()).
  Result<Output> add(const std::shared_ptr<const cim::Instance>& event, std::uint64_t revision, Micros time);
  // Closes the windows whose end is at or before `now`.
  Output close_due(Micros now);

  std::size_t open_windows() const { return open_.size(); }
  // What the open windows hold, estimated: their keys and representative events.
  std::size_t held_bytes() const { return held_bytes_; }

 private:
  struct Window {
    Micros end = 0;
    std::uint32_t count = 0;
    std::uint64_t last_revision = 0;
    std::shared_ptr<const cim::Instance> representative;
    std::size_t bytes = 0;  // its share of held_bytes_
  };
  std::string group_key(const cim::Instance& event) const;
  // Appends the window's aggregate to out.aggregates when HAVING admits it.
  void emit(const Window& w, Output& out) const;

  std::shared_ptr<const wql::BoundQuery> query_;
  const EventClasses& classes_;
  std::size_t max_groups_;
  std::size_t max_bytes_;
  Micros length_;
  std::size_t held_bytes_ = 0;
  std::unordered_map<std::string, Window> open_;
};

}  // namespace pkgcast::provider
