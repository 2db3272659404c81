// Internal to the event engine: journal entries as event objects, built once and serialized once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cim/cim.h"
#include "core/clock.h"
#include "core/result.h"
#include "store/store.h"

namespace pkgcast::provider {

// The registry's intrinsic event classes and the property indices the engine fills.
struct EventClasses {
  const cim::ClassDef* creation = nullptr;
  const cim::ClassDef* modification = nullptr;
  const cim::ClassDef* deletion = nullptr;
  const cim::ClassDef* aggregate = nullptr;
  std::size_t time_created = 0;      // __Event.TIME_CREATED, valid in every event class
  std::size_t target = 0;            // __InstanceOperationEvent.TargetInstance
  std::size_t previous = 0;          // __InstanceModificationEvent.PreviousInstance
  std::size_t number_of_events = 0;  // __AggregateEvent
  std::size_t representative = 0;    // __AggregateEvent

  // WBEM_E_INVALID_CLASS when the registry lacks one of them.
  static Result<EventClasses> from(const cim::ClassRegistry& registry);
  const cim::ClassDef& for_kind(store::ChangeKind kind) const;
};

// 0, 1, 2 for kCreated, kModified, kDeleted: the engine's per-kind arrays.
inline std::size_t kind_slot(store::ChangeKind kind) { return static_cast<std::size_t>(kind) - 1; }

// WMI's TIME_CREATED: 100-ns intervals since 1601-01-01 UTC.
std::uint64_t wmi_time(Micros unix_micros);

// One journal entry seen as an event. The event object, its JSON (per projection) and its site placement are
// computed on first use and reused for every subscriber. Not thread-safe; lives for one dispatch step.
class EventEntry {
 public:
  EventEntry(const store::JournalEntry& entry, const EventClasses& classes, const std::string& server,
             const std::string& namespace_path);

  const store::JournalEntry& entry() const { return entry_; }
  // The __Instance{Creation,Modification,Deletion}Event object, located at the provider's server and namespace.
  const std::shared_ptr<const cim::Instance>& event();
  // The event's JSON leaving out the properties `omitted` lists (nullptr: none). Projections are interned by the
  // engine, so the pointer identifies one.
  std::shared_ptr<const std::string> json(const std::vector<std::size_t>* omitted);
  // Whether a caller limited to `sites` (non-empty) may read every instance the event carries (site_scope.h;
  // from the event's own instances, never from the store).
  bool visible_to(const std::vector<std::string>& sites);
  // JSON objects built so far (for the engine's counters).
  std::size_t serializations() const { return json_.size(); }

 private:
  const store::JournalEntry& entry_;
  const EventClasses& classes_;
  const std::string& server_;
  const std::string& namespace_;
  std::shared_ptr<const cim::Instance> event_;
  std::vector<std::pair<const std::vector<std::size_t>*, std::shared_ptr<const std::string>>> json_;
  bool placed_ = false;
  // Per embedded instance, the value placing it on a site; nullopt when it is visible to every caller.
  std::vector<std::optional<cim::Value>> placement_;
};

// Serializes any event object (also __AggregateEvent).
std::shared_ptr<const std::string> event_json(const cim::Instance& event, const std::vector<std::size_t>* omitted);

}  // namespace pkgcast::provider
