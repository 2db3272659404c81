#include "client/event_stream.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <random>

#include "client/reconnect.h"
#include "client/sse_parser.h"
#include "client/url.h"

namespace pkgcast::client_detail {
namespace {

// An error answer's body is read up to this size (the server's JSON errors are far smaller).
constexpr std::size_t kMaxErrorBody = 64 * 1024;

std::optional<std::uint64_t> parse_revision(std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// `event: error` data: {"error": "WBEM_E_...", "hresult": "0x...", "message": "..."}.
Error error_from_event(std::string_view data) {
  client::HttpResponse r;
  r.status = 200;
  r.body = std::string(data);
  Error e = client::error_from_response(r);
  return e;
}

double unit_random() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

}  // namespace

SubscriptionState::SubscriptionState(std::shared_ptr<const ScopeImpl> scope, std::string wql,
                                     std::optional<std::uint64_t> since, std::unique_ptr<Delivery> delivery)
    : scope_(std::move(scope)), wql_(std::move(wql)), delivery_(std::move(delivery)), last_revision_(since) {}

Result<std::shared_ptr<SubscriptionState>> SubscriptionState::start(std::shared_ptr<const ScopeImpl> scope,
                                                                    std::string wql,
                                                                    std::optional<std::uint64_t> since,
                                                                    std::unique_ptr<Delivery> delivery) {
  PKG_ASSIGN_OR_RETURN(auto http, scope->stream_client());
  auto state = std::make_shared<SubscriptionState>(std::move(scope), std::move(wql), since, std::move(delivery));
  state->http_ = std::move(http);
  // The thread holds the state: it lives until the thread ends, whoever drops the last handle.
  state->thread_ = std::thread([state] { state->run(); });
  Status handshake;
  {
    MutexLock lock(state->mu_);
    while (!state->handshake_.has_value()) state->cv_.wait(state->mu_);
    handshake = *state->handshake_;
  }
  if (!handshake.ok()) {
    MutexLock join_lock(state->join_mu_);
    if (state->thread_.joinable()) state->thread_.join();
    return handshake.error();
  }
  return state;
}

SubscriptionState::~SubscriptionState() {
  // The last reference may be dropped by the reader thread itself (its closure), after run() returned.
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
}

void SubscriptionState::cancel() {
  cancelled_.store(true);
  http_->cancel();
  {
    MutexLock lock(mu_);
    cv_.notify_all();
  }
  MutexLock join_lock(join_mu_);
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::optional<std::uint64_t> SubscriptionState::last_revision() const {
  MutexLock lock(mu_);
  return last_revision_;
}

void SubscriptionState::signal_handshake(Status status) {
  MutexLock lock(mu_);
  if (handshake_.has_value()) return;
  established_ = status.ok();
  handshake_ = std::move(status);
  cv_.notify_all();
}

template <typename F>
bool SubscriptionState::guarded(F&& f) {
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    sink_failure_ = make_error(WbemCode::kFailed, std::string("the event sink threw: ") + e.what());
  } catch (...) {
    sink_failure_ = make_error(WbemCode::kFailed, "the event sink threw");
  }
  return false;
}

void SubscriptionState::finish(const Status& status) {
  ended_.store(true);
  try {
    delivery_->completed(status);
  } catch (...) {  // nothing is called after on_completed, so there is nothing to report to
  }
}

bool SubscriptionState::wait_before_retry(std::chrono::milliseconds delay) {
  MutexLock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + delay;
  while (!cancelled_.load() && cv_.wait_until(mu_, deadline)) {
  }
  return !cancelled_.load();
}

void SubscriptionState::run() {
  const ConnectionOptions& options = scope_->options();
  unsigned failures = 0;
  while (true) {
    Attempt a = cancelled_.load() ? Attempt{Outcome::kCancelled, {}, false} : read_once();
    bool first;
    {
      MutexLock lock(mu_);
      first = !handshake_.has_value();
    }
    if (first) {
      // The subscribing call learns the answer to its first request; a refused one leaves nothing behind.
      if (!a.got_stream) {
        signal_handshake(a.outcome == Outcome::kCancelled
                             ? Status(make_error(WbemCode::kCallCancelled, "subscription cancelled"))
                             : Status(a.error));
        ended_.store(true);
        return;
      }
    }
    if (sink_failure_) return finish(*sink_failure_);
    if (a.got_stream) failures = 0;
    switch (a.outcome) {
      case Outcome::kCancelled:
        return finish(make_error(WbemCode::kCallCancelled, "subscription cancelled"));
      case Outcome::kFinal:
        return finish(a.error);
      case Outcome::kGap: {
        if (!options.resync_on_gap) return finish(a.error);
        // The server's recipe (docs/events.md): note the last revision, let the sink re-read its state, then
        // subscribe from the noted revision, so that nothing committed during the re-read is missed (a change
        // the re-read already shows may arrive as an event too). Without the health answer, subscribe from now.
        const std::optional<std::uint64_t> noted = current_revision();
        {
          MutexLock lock(mu_);
          last_revision_ = noted;
        }
        if (!guarded([&] { delivery_->resync(a.error); })) return finish(*sink_failure_);
        if (cancelled_.load()) return finish(make_error(WbemCode::kCallCancelled, "subscription cancelled"));
        continue;
      }
      case Outcome::kTransient:
        break;
    }
    ++failures;
    if (options.reconnect_max_attempts != 0 && failures > options.reconnect_max_attempts) {
      return finish(make_error(a.error.code == WbemCode::kFailed ? WbemCode::kTransportFailure : a.error.code,
                               "gave up after " + std::to_string(options.reconnect_max_attempts) +
                                   " reconnections: " + a.error.message));
    }
    const auto delay =
        reconnect_delay(failures, options.reconnect_initial_delay, options.reconnect_max_delay, unit_random());
    if (!wait_before_retry(delay)) return finish(make_error(WbemCode::kCallCancelled, "subscription cancelled"));
  }
}

std::optional<std::uint64_t> SubscriptionState::current_revision() {
  auto r = http_->request("GET", "/api/v1/health");
  if (!r.ok() || r->status != 200) return std::nullopt;
  auto j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("revision") || !j["revision"].is_number_unsigned()) return std::nullopt;
  return j["revision"].get<std::uint64_t>();
}

SubscriptionState::Attempt SubscriptionState::read_once() {
  std::optional<std::uint64_t> since = last_revision();
  std::string target = "/api/v1/events?query=" + client::url_encode(wql_);
  if (!scope_->namespace_path().empty()) target += "&namespace=" + client::url_encode(scope_->namespace_path());
  if (since) target += "&since=" + std::to_string(*since);

  Attempt a;
  unsigned status = 0;
  std::string error_body;
  client::SseParser parser;
  bool stop_reason_set = false;
  bool any_event = false;

  client::SseCallbacks callbacks;
  callbacks.on_comment = [&](std::string_view text) {
    // ": pkgcast revision N": where a subscription without since starts; resuming from it loses nothing that
    // was committed while the connection was down, even before the first event.
    constexpr std::string_view kPrefix = "pkgcast revision ";
    if (since || any_event || text.substr(0, kPrefix.size()) != kPrefix) return;
    if (auto rev = parse_revision(text.substr(kPrefix.size()))) {
      MutexLock lock(mu_);
      if (!last_revision_) last_revision_ = rev;
    }
  };
  callbacks.on_event = [&](const client::SseEvent& ev) {
    if (ev.type == "error") {
      a.error = error_from_event(ev.data);
      switch (a.error.code) {
        // WBEM_E_FAILED: the server could not read what it had to send (its database restarting, failing over):
        // a resume from the last revision loses nothing, so it is tried again, as a broken connection is.
        case WbemCode::kFailed:
        case WbemCode::kShuttingDown: a.outcome = Outcome::kTransient; break;
        case WbemCode::kNotFound: a.outcome = Outcome::kGap; break;
        default: a.outcome = Outcome::kFinal; break;
      }
      stop_reason_set = true;
      return false;
    }
    if (ev.type != "message") return true;  // event types this client does not know
    auto inst = Instance::from_json(ev.data);
    if (!inst.ok()) {
      a.outcome = Outcome::kFinal;
      a.error = make_error(WbemCode::kInvalidObject, "the server sent an event that is not an object: " +
                                                         inst.error().message);
      stop_reason_set = true;
      return false;
    }
    std::optional<std::uint64_t> rev = parse_revision(ev.last_event_id);
    if (!rev) rev = inst->revision();
    {
      MutexLock lock(mu_);
      // An __AggregateEvent carries the revision of its window's last event, and windows close in time order,
      // not in the order of their last events (docs/events.md, GROUP WITHIN): a later aggregate may carry a
      // lower revision. It is a window, not a journal entry, so it is never taken for one delivered already;
      // the resume point stays the highest revision seen.
      const bool aggregate = inst->class_name() == "__AggregateEvent";
      // Exactly once: a revision at or below the last delivered one was delivered already.
      if (!aggregate && rev && last_revision_ && *rev <= *last_revision_) return true;
      // Recorded before the sink runs, so that last_revision() inside the callback is this event's. A resume
      // happens only after the callback returned (same thread), so this loses nothing.
      if (rev && (!last_revision_ || *rev > *last_revision_)) last_revision_ = rev;
    }
    any_event = true;
    if (!guarded([&] { delivery_->event(*inst); })) {
      stop_reason_set = true;
      return false;
    }
    return !cancelled_.load();
  };

  client::StreamRequest req;
  req.method = "GET";
  req.target = target;
  req.accept = "text/event-stream";
  req.on_head = [&](const client::HttpResponse& head) {
    status = head.status;
    if (status == 200) {
      a.got_stream = true;
      signal_handshake(ok_status());
    }
    return true;
  };
  req.on_data = [&](std::string_view piece) {
    if (status != 200) {
      error_body.append(piece.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
      return error_body.size() < kMaxErrorBody;
    }
    auto r = parser.feed(piece, callbacks);
    if (!r.ok()) {
      a.outcome = Outcome::kFinal;
      a.error = r.error();
      stop_reason_set = true;
      return false;
    }
    return *r;
  };

  auto result = http_->stream(req);
  if (cancelled_.load()) return Attempt{Outcome::kCancelled, make_error(WbemCode::kCallCancelled, "cancelled"),
                                        a.got_stream};
  if (stop_reason_set) return a;
  if (!result.ok()) {
    a.outcome = Outcome::kTransient;
    a.error = std::move(result).error();
    return a;
  }
  if (status != 200) {
    client::HttpResponse r;
    r.status = status;
    r.body = std::move(error_body);
    a.error = client::error_from_response(r);
    if (status == 410) {
      a.outcome = Outcome::kGap;
    } else if (status == 500 || status == 502 || status == 503 || status == 504) {
      a.outcome = Outcome::kTransient;
    } else {
      a.outcome = Outcome::kFinal;
    }
    return a;
  }
  a.outcome = Outcome::kTransient;
  a.error = make_error(WbemCode::kTransportFailure, "the server " + scope_->url().to_string() +
                                                        " ended the event stream");
  return a;
}

}  // namespace pkgcast::client_detail
