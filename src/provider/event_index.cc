#include "provider/event_index.h"

#include <algorithm>

#include "core/strings.h"
#include "provider/event_build.h"

namespace pkgcast::provider {
namespace {

bool has_rows(const cim::ClassDef& cls) {
  return !cls.abstract() && !cls.is_event_class() && !starts_with_icase(cls.name(), "__");
}

struct KeyValues {
  std::size_t property = 0;
  std::vector<std::string> values;
};

// `TargetInstance.Key = literal`, or an OR of those on one key property. Only where the comparison's equality is
// exactly index_value()'s: strings against strings, integers against integers.
std::optional<KeyValues> key_values(const wql::Condition& c) {
  if (c.kind == wql::ConditionKind::kCompare) {
    const wql::PropertyRef& lhs = c.lhs;
    if (c.op != wql::ast::CompareOp::kEq || c.rhs.kind != wql::Operand::Kind::kLiteral) return std::nullopt;
    if (lhs.source == wql::Source::kSelf || lhs.system != wql::SystemProperty::kNone || lhs.def == nullptr ||
        !lhs.def->key || lhs.type.array) {
      return std::nullopt;
    }
    const cim::Value& lit = c.rhs.literal;
    if (lit.is_null() || lit.is_array()) return std::nullopt;
    const bool strings = c.domain == wql::Domain::kString && lit.type().base == cim::CimType::kString &&
                         (lhs.type.base == cim::CimType::kString || lhs.type.base == cim::CimType::kReference);
    const bool integers = c.domain == wql::Domain::kNumber && cim::is_integer(lit.type().base) &&
                          cim::is_integer(lhs.type.base);
    if (!strings && !integers) return std::nullopt;
    auto v = index_value(lit);
    if (!v) return std::nullopt;
    return KeyValues{lhs.index, {std::move(*v)}};
  }
  if (c.kind == wql::ConditionKind::kOr) {
    KeyValues all;
    for (std::size_t i = 0; i < c.children.size(); ++i) {
      auto kv = key_values(c.children[i]);
      if (!kv || (i > 0 && kv->property != all.property)) return std::nullopt;
      all.property = kv->property;
      for (auto& v : kv->values) {
        if (std::find(all.values.begin(), all.values.end(), v) == all.values.end()) all.values.push_back(std::move(v));
      }
    }
    if (all.values.empty()) return std::nullopt;
    return all;
  }
  return std::nullopt;
}

std::optional<KeyValues> find_key_values(const wql::Condition* where) {
  if (where == nullptr) return std::nullopt;
  if (where->kind == wql::ConditionKind::kAnd) {
    for (const auto& child : where->children) {
      if (auto kv = find_key_values(&child)) return kv;
    }
    return std::nullopt;
  }
  return key_values(*where);
}

}  // namespace

std::optional<std::string> index_value(const cim::Value& v) {
  if (v.is_null() || v.is_array()) return std::nullopt;
  switch (v.type().base) {
    case cim::CimType::kString:
    case cim::CimType::kReference: return to_upper(v.as_string());
    case cim::CimType::kSint8:
    case cim::CimType::kSint16:
    case cim::CimType::kSint32:
    case cim::CimType::kSint64: return std::to_string(v.as_sint());
    case cim::CimType::kUint8:
    case cim::CimType::kUint16:
    case cim::CimType::kUint32:
    case cim::CimType::kUint64: return std::to_string(v.as_uint());
    default: return std::nullopt;
  }
}

bool IndexSlot::admits(const cim::Instance& inst, store::ChangeKind change) const {
  if (&inst.class_def() != cls || change != kind) return false;
  if (!property) return true;
  if (*property >= inst.class_def().properties().size()) return false;
  auto v = index_value(inst.get(*property));
  return v && *v == value;
}

std::vector<IndexSlot> index_slots(const wql::BoundQuery& q, const cim::ClassRegistry& registry,
                                   const std::array<const cim::ClassDef*, 3>& kind_classes) {
  std::vector<IndexSlot> slots;
  if (!q.is_event() || q.target_class() == nullptr) return slots;
  std::vector<const cim::ClassDef*> classes;
  if (q.target_exact()) {
    if (has_rows(*q.target_class())) classes.push_back(q.target_class());
  } else {
    for (const cim::ClassDef* cls : registry.subclasses_of(*q.target_class())) {
      if (has_rows(*cls)) classes.push_back(cls);
    }
  }
  const std::optional<KeyValues> keys = find_key_values(q.where());
  for (const cim::ClassDef* cls : classes) {
    for (std::size_t k = 0; k < kind_classes.size(); ++k) {
      if (!kind_classes[k]->is_a(q.from_class())) continue;
      const auto kind = static_cast<store::ChangeKind>(k + 1);
      if (!keys) {
        slots.push_back({cls, kind, std::nullopt, {}});
        continue;
      }
      for (const auto& v : keys->values) slots.push_back({cls, kind, keys->property, v});
    }
  }
  return slots;
}

void SubscriptionIndex::add(SubscriptionState* sub, const std::vector<IndexSlot>& slots) {
  for (const IndexSlot& s : slots) {
    Bucket& b = classes_[s.cls][kind_slot(s.kind)];
    List& list = s.property ? b.keyed[*s.property][s.value] : b.any;
    if (list.empty()) ++slots_;
    list.push_back(sub);
  }
}

void SubscriptionIndex::remove(SubscriptionState* sub, const std::vector<IndexSlot>& slots) {
  for (const IndexSlot& s : slots) {
    auto c = classes_.find(s.cls);
    if (c == classes_.end()) continue;
    Bucket& b = c->second[kind_slot(s.kind)];
    auto drop = [&](List& list) {
      auto it = std::find(list.begin(), list.end(), sub);
      if (it == list.end()) return false;
      *it = list.back();
      list.pop_back();
      if (list.empty()) --slots_;
      return list.empty();
    };
    if (!s.property) {
      drop(b.any);
    } else if (auto p = b.keyed.find(*s.property); p != b.keyed.end()) {
      if (auto v = p->second.find(s.value); v != p->second.end() && drop(v->second)) {
        p->second.erase(v);
        if (p->second.empty()) b.keyed.erase(p);
      }
    }
    const auto& buckets = c->second;
    if (std::all_of(buckets.begin(), buckets.end(), [](const Bucket& x) { return x.any.empty() && x.keyed.empty(); })) {
      classes_.erase(c);
    }
  }
}

void SubscriptionIndex::candidates(const cim::Instance& inst, store::ChangeKind kind,
                                   std::vector<SubscriptionState*>& out) const {
  auto c = classes_.find(&inst.class_def());
  if (c == classes_.end()) return;
  const Bucket& b = c->second[kind_slot(kind)];
  out.insert(out.end(), b.any.begin(), b.any.end());
  for (const auto& [property, by_value] : b.keyed) {
    if (property >= inst.class_def().properties().size()) continue;
    auto v = index_value(inst.get(property));
    if (!v) continue;
    if (auto it = by_value.find(*v); it != by_value.end()) out.insert(out.end(), it->second.begin(), it->second.end());
  }
}

}  // namespace pkgcast::provider
