// Internal to the event engine: which subscriptions a committed change can match.
//
// A subscription is filed under slots (concrete class, change kind[, key property, value]): every concrete class
// its target class covers (the class and its subclasses, or the class alone for `TargetInstance.__CLASS = 'C'`),
// every change kind its event class covers (__InstanceOperationEvent: all three), and, when a top-level conjunct
// of WHERE is an equality (or an OR of equalities) between a key property of TargetInstance / PreviousInstance
// and a literal, the values it names. A change then meets only the subscriptions filed under its class and kind
// without a key, plus those filed under the values its own key properties have.
//
// Thread safety: none; the engine guards it with its mutex.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cim/cim.h"
#include "store/store.h"
#include "wql/wql.h"

namespace pkgcast::provider {

struct SubscriptionState;

struct IndexSlot {
  const cim::ClassDef* cls = nullptr;
  store::ChangeKind kind = store::ChangeKind::kCreated;
  std::optional<std::size_t> property;  // a key property whose value selects the subscription
  std::string value;                    // index_value() of that property's value

  // True when a change of `inst` (of class cls, kind kind) falls in this slot.
  bool admits(const cim::Instance& inst, store::ChangeKind change) const;
};

// The normalized form of a key value: strings and references ASCII upper-case (WQL's string equality), integers
// in decimal. nullopt for NULL and for values an equality is not indexed on.
std::optional<std::string> index_value(const cim::Value& v);

// The slots of an event query bound against `registry`. Empty when no concrete class can ever change under it.
std::vector<IndexSlot> index_slots(const wql::BoundQuery& q, const cim::ClassRegistry& registry,
                                   const std::array<const cim::ClassDef*, 3>& kind_classes);

class SubscriptionIndex {
 public:
  void add(SubscriptionState* sub, const std::vector<IndexSlot>& slots);
  // Removes what add() filed; slots must be the same list.
  void remove(SubscriptionState* sub, const std::vector<IndexSlot>& slots);
  // Appends to `out` the subscriptions filed where a change of kind `kind` to `inst` falls. Each appears once.
  void candidates(const cim::Instance& inst, store::ChangeKind kind, std::vector<SubscriptionState*>& out) const;
  // Non-empty slots (lists of subscriptions) held now.
  std::size_t slot_count() const { return slots_; }

 private:
  using List = std::vector<SubscriptionState*>;
  struct Bucket {  // one class, one kind
    List any;
    std::map<std::size_t, std::unordered_map<std::string, List>> keyed;  // property -> value -> subscriptions
  };
  std::unordered_map<const cim::ClassDef*, std::array<Bucket, 3>> classes_;
  std::size_t slots_ = 0;
};

}  // namespace pkgcast::provider
