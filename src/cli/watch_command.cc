// `pkgcast watch "EVENT QUERY"`: events as they arrive, through the client library's subscription (which
// reconnects with resume on its own). A readable line per event, or with --json one JSON object per line.
#include <chrono>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cim/class_def.h"
#include "cim/json.h"
#include "cli/output.h"
#include "pkgcast/pkgcast.h"

namespace pkgcast::cli {
namespace {

// A timeout before --count events arrived: the caller waited for something that did not happen.
constexpr int kExitTimedOut = 3;

struct WatchOptions {
  std::string query;
  std::optional<std::uint64_t> count;
  std::optional<double> timeout_seconds;
  std::optional<std::uint64_t> since;
};

std::string scalar_text(const cim::Json& v) {
  if (v.is_string()) return v.get<std::string>().empty() ? "''" : v.get<std::string>();  // visible when empty
  return v.dump();
}

// "SMS_Package.PackageID=\"ABC00001\"": the object's relative path, built from its class's keys (an event's
// embedded object carries no __RELPATH), else its class when a key is missing (a projection without it).
std::string object_name(const cim::Json& obj) {
  if (!obj.is_object()) return "?";
  if (auto it = obj.find("__RELPATH"); it != obj.end() && it->is_string()) return it->get<std::string>();
  const auto cls = obj.find("__CLASS");
  if (cls == obj.end() || !cls->is_string()) return "?";
  auto inst = cim::instance_from_json(obj, cim::ClassRegistry::builtin());
  if (!inst.ok() || inst->class_def().key_indices().empty()) return cls->get<std::string>();
  for (std::size_t k : inst->class_def().key_indices()) {
    if (inst->get(k).is_null()) return cls->get<std::string>();
  }
  return inst->relpath();
}

// One line: revision, event class, the instance, and for a modification what changed.
std::string event_line(const cim::Json& e) {
  std::string line;
  if (auto r = e.find("__REVISION"); r != e.end()) line += "#" + scalar_text(*r) + "  ";
  const std::string cls = e.value("__CLASS", std::string("?"));
  line += cls;
  if (cls == "__AggregateEvent") {
    line += "  NumberOfEvents=" + (e.contains("NumberOfEvents") ? scalar_text(e["NumberOfEvents"]) : "?");
    if (auto rep = e.find("Representative"); rep != e.end() && rep->is_object()) {
      if (auto t = rep->find("TargetInstance"); t != rep->end()) line += "  " + object_name(*t);
    }
    return line;
  }
  const auto target = e.find("TargetInstance");
  if (target == e.end()) return line;
  line += "  " + object_name(*target);
  const auto previous = e.find("PreviousInstance");
  if (previous == e.end() || !previous->is_object() || !target->is_object()) return line;
  std::string changes;
  for (const auto& [name, value] : target->items()) {
    if (name.rfind("__", 0) == 0) continue;
    const auto before = previous->find(name);
    if (before != previous->end() && *before == value) continue;
    if (!changes.empty()) changes += ", ";
    changes += name + " " + (before == previous->end() ? std::string("(none)") : scalar_text(*before)) + " -> " +
               scalar_text(value);
  }
  if (!changes.empty()) line += "  " + changes;
  return line;
}

int run_watch(CliContext& ctx, const WatchOptions& w) {
  // A gap (the journal was compacted past the events not yet printed, while the stream was down) ends the watch
  // with WBEM_E_NOT_FOUND, as a compacted --since does: events were lost, and the script that reads them must know
  // it (re-list, then watch again). Resubscribing silently would hide the loss.
  using Clock = std::chrono::steady_clock;
  const std::optional<Clock::time_point> deadline =
      w.timeout_seconds ? std::optional(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                           std::chrono::duration<double>(*w.timeout_seconds)))
                        : std::nullopt;
  std::optional<std::chrono::milliseconds> within;
  if (deadline) within = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
  auto scope = ctx.scope(/*resync_on_gap=*/false, within);
  if (!scope.ok()) return ctx.fail(scope.error());
  auto events = scope->try_exec_notification_query(w.query, w.since);
  if (!events.ok()) {
    // A server that did not answer within the timeout: the timeout's exit, as if it had answered with nothing.
    if (deadline && Clock::now() >= *deadline && events.error().code == WbemCode::kTransportFailure) {
      return w.count ? kExitTimedOut : kExitOk;
    }
    return ctx.fail(events.error());
  }
  std::uint64_t seen = 0;
  while (!w.count || seen < *w.count) {
    // Wake at least once a second so that the deadline is kept whatever arrives.
    auto wait = std::chrono::milliseconds(1000);
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) return w.count ? kExitTimedOut : kExitOk;
      wait = std::min(wait, left);
    }
    auto next = events->try_next_event(wait);
    if (!next.ok()) return ctx.fail(next.error());
    if (!*next) continue;
    const std::string text = (*next)->to_json();
    if (ctx.options.json) {
      std::cout << text << std::endl;  // one event per line, flushed: a pipe sees each at once
    } else {
      auto j = cim::Json::parse(text, nullptr, /*allow_exceptions=*/false);
      std::cout << (j.is_discarded() ? text : event_line(j)) << std::endl;
    }
    ++seen;
  }
  return kExitOk;
}

}  // namespace

void add_watch_command(CLI::App& app, CliContext& ctx) {
  auto w = std::make_shared<WatchOptions>();
  auto* watch = app.add_subcommand("watch", "Print the events of a WQL event query as they happen");
  watch->add_option("wql", w->query,
                    "the event query, e.g. \"SELECT * FROM __InstanceModificationEvent WITHIN 120 WHERE "
                    "TargetInstance ISA 'SMS_PackageStatusRootSummarizer'\"")
      ->required();
  watch->add_option("--count", w->count, "stop after this many events (exit 0)")->check(kPositiveNumber);
  watch
      ->add_option("--timeout", w->timeout_seconds,
                   "stop after this many seconds: exit 0, or 3 when --count events had not arrived by then")
      ->check(kPositiveNumber);
  watch->add_option("--since", w->since, "resume after this revision: every later matching event, in order")
      ->check(kNonNegativeNumber);
  watch->callback([&ctx, w] { ctx.action = [&ctx, w] { return run_watch(ctx, *w); }; });
}

}  // namespace pkgcast::cli
