#include "provider/event_build.h"

#include "core/strings.h"
#include "provider/json_writer.h"
#include "provider/site_scope.h"

namespace pkgcast::provider {
namespace {

Result<std::size_t> property_index(const cim::ClassDef& cls, std::string_view name) {
  auto index = cls.find_property(name);
  if (!index) {
    return make_error(WbemCode::kInvalidClass, "event class " + cls.name() + " has no property " + std::string(name));
  }
  return *index;
}

// 1601-01-01 to 1970-01-01 in microseconds.
constexpr std::int64_t kEpochOffsetMicros = 11'644'473'600'000'000;

}  // namespace

Result<EventClasses> EventClasses::from(const cim::ClassRegistry& registry) {
  EventClasses c;
  PKG_ASSIGN_OR_RETURN(c.creation, registry.get("__InstanceCreationEvent"));
  PKG_ASSIGN_OR_RETURN(c.modification, registry.get("__InstanceModificationEvent"));
  PKG_ASSIGN_OR_RETURN(c.deletion, registry.get("__InstanceDeletionEvent"));
  PKG_ASSIGN_OR_RETURN(c.aggregate, registry.get("__AggregateEvent"));
  PKG_ASSIGN_OR_RETURN(c.time_created, property_index(*c.modification, "TIME_CREATED"));
  PKG_ASSIGN_OR_RETURN(c.target, property_index(*c.modification, "TargetInstance"));
  PKG_ASSIGN_OR_RETURN(c.previous, property_index(*c.modification, "PreviousInstance"));
  PKG_ASSIGN_OR_RETURN(c.number_of_events, property_index(*c.aggregate, "NumberOfEvents"));
  PKG_ASSIGN_OR_RETURN(c.representative, property_index(*c.aggregate, "Representative"));
  // The creation and deletion classes share the indices of their common base with the modification class.
  if (c.creation->find_property("TargetInstance") != c.target ||
      c.deletion->find_property("TargetInstance") != c.target ||
      c.aggregate->find_property("TIME_CREATED") != c.time_created) {
    return make_error(WbemCode::kInvalidClass, "the intrinsic event classes do not share __Event's properties");
  }
  return c;
}

const cim::ClassDef& EventClasses::for_kind(store::ChangeKind kind) const {
  switch (kind) {
    case store::ChangeKind::kCreated: return *creation;
    case store::ChangeKind::kModified: return *modification;
    case store::ChangeKind::kDeleted: return *deletion;
  }
  return *modification;
}

std::uint64_t wmi_time(Micros unix_micros) {
  const std::int64_t since_1601 = unix_micros + kEpochOffsetMicros;
  return since_1601 <= 0 ? 0 : static_cast<std::uint64_t>(since_1601) * 10;
}

EventEntry::EventEntry(const store::JournalEntry& entry, const EventClasses& classes, const std::string& server,
                       const std::string& namespace_path)
    : entry_(entry), classes_(classes), server_(server), namespace_(namespace_path) {}

const std::shared_ptr<const cim::Instance>& EventEntry::event() {
  if (event_) return event_;
  auto located = [&](const std::shared_ptr<const cim::Instance>& inst) -> cim::Value {
    if (!inst) return cim::Value();
    auto copy = std::make_shared<cim::Instance>(*inst);
    copy->set_location(server_, namespace_);
    // An event carries its instances as a query answers them: without their lazy properties.
    const auto& props = copy->class_def().properties();
    for (std::size_t i = 0; i < props.size(); ++i) {
      if (props[i].lazy) copy->set(i, cim::Value());
    }
    return cim::Value::object(std::move(copy));
  };
  auto event = std::make_shared<cim::Instance>(classes_.for_kind(entry_.kind));
  event->set(classes_.time_created, cim::Value::uint64(wmi_time(entry_.time)));
  event->set(classes_.target, located(entry_.instance));
  if (entry_.kind == store::ChangeKind::kModified) event->set(classes_.previous, located(entry_.previous));
  event->set_revision(entry_.revision);
  event_ = std::move(event);
  return event_;
}

std::shared_ptr<const std::string> event_json(const cim::Instance& event, const std::vector<std::size_t>* omitted) {
  auto out = std::make_shared<std::string>();
  out->reserve(512);
  if (omitted == nullptr) {
    append_instance_json(*out, event);
  } else {
    append_instance_json(*out, event, *omitted);
  }
  return out;
}

std::shared_ptr<const std::string> EventEntry::json(const std::vector<std::size_t>* omitted) {
  for (const auto& [projection, bytes] : json_) {
    if (projection == omitted) return bytes;
  }
  auto bytes = event_json(*event(), omitted);
  json_.emplace_back(omitted, bytes);
  return bytes;
}

bool EventEntry::visible_to(const std::vector<std::string>& sites) {
  if (!placed_) {
    placed_ = true;
    for (const auto* inst : {entry_.instance.get(), entry_.previous.get()}) {
      if (inst == nullptr) continue;
      const SiteScope rule = site_scope_of(inst->class_def());
      switch (rule.kind) {
        case SiteScope::Kind::kNone: placement_.emplace_back(std::nullopt); break;
        case SiteScope::Kind::kProperty: placement_.emplace_back(inst->get(rule.property)); break;
        case SiteScope::Kind::kPackage: placement_.emplace_back(package_site_of(*inst)); break;
      }
    }
  }
  for (const auto& place : placement_) {
    if (place && !site_listed(sites, *place)) return false;
  }
  return true;
}

}  // namespace pkgcast::provider
