// GET /api/v1/events: an event query as a Server-Sent Events stream (docs/events.md has the wire format).
// Everything that can be wrong with the request (namespace, query text, a data query, a `since` the journal no
// longer holds, the subscription bound) is found by EventEngine::subscribe before the first byte, so it gets a
// normal error status. Then the subscription is a pull source for the server's stream producers (router.h): each
// next() hands out what the engine has queued and returns; an idle stream holds no thread, is woken by the engine
// when an event matches, and by the heartbeat ticker so that proxies and browsers see it alive.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "core/mutex.h"
#include "server/routes/internal.h"

namespace pkgcast::server::routes {

// ---- heartbeats -----------------------------------------------------------------------------------------------

// Where a subscription's wake-ups go. The engine may wake a subscription before the server has started its stream
// (the subscription is made in the handler); such a wake is remembered and passed on by start().
struct WakeTarget {
  Mutex mu;
  StreamSource::Waker waker PKG_GUARDED_BY(mu);
  bool woken_early PKG_GUARDED_BY(mu) = false;

  void wake() PKG_EXCLUDES(mu) {
    StreamSource::Waker w;
    {
      MutexLock lock(mu);
      if (!waker) {
        woken_early = true;
        return;
      }
      w = waker;
    }
    w();
  }
};

// The ticker wakes the idle streams ten times a heartbeat, and a stream sends one when it has been silent a whole
// heartbeat: its silences last at most 1.1 heartbeats, wherever it started between two ticks (ticking once a
// heartbeat, a stream opened just after a tick would wait almost two).
HeartbeatTicker::HeartbeatTicker(std::chrono::milliseconds heartbeat)
    : period_(std::max(heartbeat / 10, std::chrono::milliseconds(1))) {
  thread_ = std::thread([this] { run(); });
}

HeartbeatTicker::~HeartbeatTicker() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void HeartbeatTicker::add(std::weak_ptr<WakeTarget> target) {
  MutexLock lock(mu_);
  targets_.push_back(std::move(target));
}

std::size_t HeartbeatTicker::size() const {
  MutexLock lock(mu_);
  return targets_.size();
}

void HeartbeatTicker::run() {
  std::vector<std::shared_ptr<WakeTarget>> due;
  MutexLock lock(mu_);
  while (!stop_) {
    cv_.wait_for(mu_, period_);
    if (stop_) break;
    // Ended streams drop out here; the rest are woken outside the lock (a wake takes the stream's own lock).
    std::erase_if(targets_, [&](const std::weak_ptr<WakeTarget>& w) {
      auto t = w.lock();
      if (!t) return true;
      due.push_back(std::move(t));
      return false;
    });
    mu_.unlock();
    for (auto& t : due) t->wake();
    due.clear();
    mu_.lock();
  }
}

namespace {

// Events handed out per next(), at most: bounds the work of one call whatever the backlog.
constexpr std::size_t kMaxEventsPerStep = 256;
// Below this much room a step takes one event (an event is indivisible; the server allows one to exceed room).
constexpr std::size_t kTypicalEventBytes = 1024;
// How long a catch-up may go on without writing a byte (EventStream::next).
constexpr std::chrono::milliseconds kCatchUpNoticeEvery{500};

std::string sse_error(const Error& e) { return "event: error\ndata: " + error_json(e) + "\n\n"; }

class EventStream final : public StreamSource {
 public:
  EventStream(std::unique_ptr<provider::Subscription> subscription, std::shared_ptr<WakeTarget> target,
              std::shared_ptr<HeartbeatTicker> ticker, std::uint64_t revision, std::chrono::milliseconds heartbeat,
              const Clock& clock, Micros token_expires)
      : subscription_(std::move(subscription)),
        target_(std::move(target)),
        ticker_(std::move(ticker)),
        revision_(revision),
        heartbeat_(heartbeat),
        clock_(clock),
        token_expires_(token_expires) {}

  void start(Waker wake) override {
    bool pending = false;
    {
      MutexLock lock(target_->mu);
      target_->waker = wake;
      pending = std::exchange(target_->woken_early, false);
    }
    ticker_->add(target_);
    if (pending) wake();
  }

  Step next(std::string& out, std::size_t room) override {
    const auto now = std::chrono::steady_clock::now();
    if (!opened_) {
      // The reconnection delay a browser uses, and the revision the subscription starts after: a client that has
      // just queried can tell which changes the stream will bring. As an `id:` too, in a block without data (so no
      // event is dispatched): an EventSource that reconnects before any event came then still sends it as
      // Last-Event-ID and resumes where it started, instead of after whatever was committed while it was away.
      out += "retry: 2000\nid: " + std::to_string(revision_) + "\n: pkgcast revision " + std::to_string(revision_) +
             "\n\n";
      opened_ = true;
    }
    if (!subscription_) return Step::done();
    // A token that expires ends the streams it opened, as a revoked one does (the ticker wakes every stream ten
    // times a heartbeat, so within a tenth of one): the error event, then the end of the body. A browser's
    // EventSource reconnects, is refused with 401, and stops.
    if (token_expires_ != 0 && clock_.now_micros() >= token_expires_) {
      out += sse_error(make_error(WbemCode::kAccessDenied, "the token of this stream expired; the stream ended"));
      subscription_.reset();
      return Step::done();
    }
    const std::size_t max = std::clamp<std::size_t>(room / kTypicalEventBytes, 1, kMaxEventsPerStep);
    provider::PollResult polled = subscription_->poll(max);
    for (const provider::Event& e : polled.events) {
      out += "id: ";
      out += std::to_string(e.revision);
      out += "\ndata: ";
      out += *e.json;
      out += "\n\n";
    }
    switch (polled.state) {
      case provider::PollState::kReady:
        // Catching up through journal entries that match nothing writes nothing, and a client that hung up
        // (its FIN reads as a half-close, which lets a stream finish) is noticed only by a write failing: a
        // comment every kCatchUpNoticeEvery keeps such a catch-up from working on for nobody.
        if (out.empty() && now - last_output_ >= kCatchUpNoticeEvery) out += ": catching up\n\n";
        if (!out.empty()) last_output_ = now;
        return Step::more();
      case provider::PollState::kEnded:
        out += sse_error(polled.error.ok() ? make_error(WbemCode::kFailed, "the subscription ended")
                                           : polled.error.error());
        subscription_.reset();
        return Step::done();
      case provider::PollState::kIdle:
        break;
    }
    if (out.empty() && now - last_output_ >= heartbeat_) out += ": heartbeat\n\n";
    if (!out.empty()) last_output_ = now;
    return Step::wait();
  }

  void cancel(const Error&) override { subscription_.reset(); }

  // The server is stopping: the error event, then the body ends (docs/events.md); the client resumes elsewhere
  // or later with the id of the last event it processed.
  bool end_early(const Error& why, std::string& out) override {
    out += sse_error(why);
    subscription_.reset();
    return true;
  }

 private:
  std::unique_ptr<provider::Subscription> subscription_;
  std::shared_ptr<WakeTarget> target_;
  std::shared_ptr<HeartbeatTicker> ticker_;
  const std::uint64_t revision_;
  const std::chrono::milliseconds heartbeat_;
  const Clock& clock_;
  const Micros token_expires_;  // 0: the token never expires
  bool opened_ = false;
  std::chrono::steady_clock::time_point last_output_ = std::chrono::steady_clock::now();
};

// The answer to HEAD: the GET's headers. The server never pulls a HEAD answer's stream (router.h); this one marks
// the answer as streamed, so that it names no Content-Length, as the GET's chunked body does not.
class HeadOnly final : public StreamSource {
 public:
  Step next(std::string&, std::size_t) override { return Step::done(); }
};

// 200, text/event-stream, not to be cached nor buffered by proxies; `stream` is the body.
Response event_stream_response(std::shared_ptr<StreamSource> stream) {
  Response resp;
  resp.status = 200;
  resp.content_type = "text/event-stream";
  // no-transform: a compressing proxy would otherwise hold events back to fill its blocks.
  resp.headers.emplace_back("Cache-Control", "no-cache, no-transform");
  resp.headers.emplace_back("X-Accel-Buffering", "no");  // proxies that buffer would hold events back
  resp.stream = std::move(stream);
  return resp;
}

// A refused subscription's answer.
Response refused(const Error& error, bool resuming) {
  Response r = error_response(error);
  // A resume the journal can no longer serve: the client re-queries the state and subscribes afresh.
  if (resuming && error.code == WbemCode::kNotFound) r.status = 410;
  return r;
}

// "42" -> 42; anything but a plain decimal revision is refused.
Result<std::uint64_t> parse_revision(std::string_view text, std::string_view what) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return make_error(WbemCode::kInvalidParameter,
                      std::string(what) + " must be a journal revision (a decimal number), not '" +
                          std::string(text) + "'");
  }
  return value;
}

Result<Response> get_events(ApiContext& ctx, Request& req) {
  // A misspelled `since` (`Since`, `lastEventId`) would start the stream at the current revision and skip what the
  // client asked to resume from, silently: refused instead, as on the lists. (access_token never reaches here.)
  PKG_TRY(only_query_parameters(req, {"query", "namespace", "since"}));
  const auto q = req.query.find("query");
  if (q == req.query.end() || q->second.empty()) {
    return make_error(WbemCode::kInvalidParameter, "the 'query' parameter is required");
  }
  const auto ns = req.query.find("namespace");
  return open_event_stream(ctx, req, ns == req.query.end() ? std::string_view() : std::string_view(ns->second),
                           q->second, caller_of(req));
}

}  // namespace

Result<Response> open_event_stream(ApiContext& ctx, const Request& req, std::string_view ns, std::string_view query,
                                   const site::TokenRecord& caller) {
  if (!ctx.events) return make_error(WbemCode::kNotSupported, "event subscriptions are not enabled");
  // Both given: the later one. A browser's EventSource keeps the URL it was opened with (since= included) and adds
  // Last-Event-ID when it reconnects; resuming from the URL's revision would deliver again what it already has.
  std::optional<std::uint64_t> since;
  if (auto s = req.query.find("since"); s != req.query.end()) {
    PKG_ASSIGN_OR_RETURN(since, parse_revision(s->second, "since"));
  }
  if (std::string_view last = req.header("last-event-id"); !last.empty()) {
    PKG_ASSIGN_OR_RETURN(const std::uint64_t last_id, parse_revision(last, "Last-Event-ID"));
    since = std::max(since.value_or(0), last_id);
  }
  if (req.method == "HEAD") {
    // The GET's answer without its subscription: the same checks, no subscription opened, no stream slot taken.
    if (Status checked = ctx.events->check(ns, query, caller, since); !checked.ok()) {
      return refused(checked.error(), since.has_value());
    }
    return event_stream_response(std::make_shared<HeadOnly>());
  }
  PKG_ASSIGN_OR_RETURN(std::uint64_t revision, ctx.store.last_revision());
  if (since) revision = *since;

  auto target = std::make_shared<WakeTarget>();
  auto subscribed = ctx.events->subscribe(ns, query, caller, since, [weak = std::weak_ptr<WakeTarget>(target)] {
    if (auto t = weak.lock()) t->wake();
  });
  if (!subscribed.ok()) return refused(subscribed.error(), since.has_value());
  if (!since) revision = (*subscribed)->delivered();

  return event_stream_response(std::make_shared<EventStream>(std::move(*subscribed), std::move(target),
                                                             ctx.heartbeats, revision, ctx.options.event_heartbeat,
                                                             *ctx.options.clock, caller.expires));
}

void register_events(Router& router, ApiContext& ctx) {
  // A browser's EventSource cannot send an Authorization header: the token may come as ?access_token= here.
  router.add("GET", path("/events"), Access::kRead, handler([&ctx](Request& req) { return get_events(ctx, req); }),
             QueryToken::kAccepted);
}

}  // namespace pkgcast::server::routes
