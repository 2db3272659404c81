#include "provider/event_group.h"

#include <algorithm>
#include <cmath>

#include "core/strings.h"
#include "provider/event_index.h"

namespace pkgcast::provider {

Grouper::Grouper(std::shared_ptr<const wql::BoundQuery> query, const EventClasses& classes, std::size_t max_groups,
                 std::size_t max_bytes)
    : query_(std::move(query)),
      classes_(classes),
      max_groups_(max_groups),
      max_bytes_(max_bytes),
      // The binder guarantees 0 < within; a window is at least a microsecond, and at most kMaxWindow (a longer
      // interval would overflow the window's end): GROUP WITHIN 1e300 is a window that stays open.
      length_(query_->group()->within * 1e6 >= static_cast<double>(kMaxWindow)
                  ? kMaxWindow
                  : std::max<Micros>(1, static_cast<Micros>(std::llround(query_->group()->within * 1e6)))) {}

std::string Grouper::group_key(const cim::Instance& event) const {
  std::string key;
  for (const wql::PropertyRef& ref : query_->group()->by) {
    const cim::Instance* object = &event;
    if (ref.source != wql::Source::kSelf) {
      const std::size_t slot = ref.source == wql::Source::kTargetInstance ? classes_.target : classes_.previous;
      object = nullptr;
      if (slot < event.class_def().properties().size()) {
        const cim::Value& v = event.get(slot);
        if (!v.is_null() && !v.is_array() && v.type().base == cim::CimType::kObject) object = &v.as_object();
      }
    }
    cim::Value value;
    if (object != nullptr) {
      if (ref.system != wql::SystemProperty::kNone) {
        auto r = object->property(wql::system_property_name(ref.system));
        if (r.ok()) value = std::move(*r);
      } else if (ref.index < object->class_def().properties().size()) {
        value = object->get(ref.index);
      }
    }
    // Strings group without regard to ASCII case, as they compare in WQL; NULL is a group of its own.
    auto normalized = index_value(value);
    key += normalized ? "v" + *normalized : (value.is_null() ? std::string("n") : "d" + value.to_display());
    key += '\x1f';
  }
  return key;
}

void Grouper::emit(const Window& w, Output& out) const {
  cim::Instance aggregate(*classes_.aggregate);
  aggregate.set(classes_.time_created, cim::Value::uint64(wmi_time(w.end)));
  aggregate.set(classes_.number_of_events, cim::Value::uint32(w.count));
  aggregate.set(classes_.representative, cim::Value::object(w.representative));
  aggregate.set_revision(w.last_revision);
  if (wql::matches_aggregate(*query_, aggregate)) out.aggregates.push_back(std::move(aggregate));
}

Result<Grouper::Output> Grouper::add(const std::shared_ptr<const cim::Instance>& event, std::uint64_t revision,
                                     Micros time) {
  Output out;
  std::string key = group_key(*event);
  auto it = open_.find(key);
  if (it != open_.end() && time >= it->second.end) {
    emit(it->second, out);
    held_bytes_ -= it->second.bytes;
    open_.erase(it);
    it = open_.end();
  }
  if (it == open_.end()) {
    if (open_.size() >= max_groups_) {
      return make_error(WbemCode::kQuotaViolation, "GROUP WITHIN ... BY would hold more than " +
                                                       std::to_string(max_groups_) +
                                                       " groups at once; group by fewer distinct values");
    }
    Window w;
    w.bytes = 2 * key.size() + cim::estimated_bytes(*event);
    if (held_bytes_ + w.bytes > max_bytes_) {
      return make_error(WbemCode::kQuotaViolation, "GROUP WITHIN ... BY would hold more than " +
                                                       std::to_string(max_bytes_ >> 10) +
                                                       " KiB of groups at once; group by fewer or shorter values");
    }
    w.end = time + length_;
    w.representative = event;
    out.opened = w.end;
    held_bytes_ += w.bytes;
    it = open_.emplace(std::move(key), std::move(w)).first;
  }
  ++it->second.count;
  it->second.last_revision = revision;
  return out;
}

Grouper::Output Grouper::close_due(Micros now) {
  Output out;
  std::vector<Window> due;
  for (auto it = open_.begin(); it != open_.end();) {
    if (it->second.end <= now) {
      held_bytes_ -= it->second.bytes;
      due.push_back(std::move(it->second));
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(due.begin(), due.end(), [](const Window& a, const Window& b) { return a.last_revision < b.last_revision; });
  for (const Window& w : due) emit(w, out);
  return out;
}

}  // namespace pkgcast::provider
