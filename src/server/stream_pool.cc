#include "server/stream_pool.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace pkgcast::server {
namespace {

// What a source is handed to fill, per pool thread: reused, so a stream owns no scratch buffer of its own.
thread_local std::string t_piece;

StreamSource::Step guarded_next(StreamSource& source, std::string& out, std::size_t room) {
  try {
    return source.next(out, room);
  } catch (const std::exception& e) {
    spdlog::error("stream source threw: {}", e.what());
    return StreamSource::Step::done(make_error(WbemCode::kFailed, std::string("internal error: ") + e.what()));
  } catch (...) {
    spdlog::error("stream source threw a non-standard exception");
    return StreamSource::Step::done(make_error(WbemCode::kFailed, "internal error"));
  }
}

bool guarded_end_early(StreamSource& source, const Error& why, std::string& out) {
  try {
    return source.end_early(why, out);
  } catch (const std::exception& e) {
    spdlog::error("stream source end_early threw: {}", e.what());
  } catch (...) {
    spdlog::error("stream source end_early threw a non-standard exception");
  }
  out.clear();
  return false;
}

template <class F>
void guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    spdlog::error("stream source {} threw: {}", what, e.what());
  } catch (...) {
    spdlog::error("stream source {} threw a non-standard exception", what);
  }
}

}  // namespace

StreamChannel::StreamChannel(std::shared_ptr<StreamSource> source, std::shared_ptr<StreamPool> pool,
                             std::size_t buffer_limit, std::string owner, std::string address,
                             std::function<void()> kick)
    : buffer_limit_(std::max<std::size_t>(1, buffer_limit)),
      owner_(std::move(owner)),
      address_(std::move(address)),
      kick_(std::move(kick)),
      pool_(std::move(pool)),
      source_(std::move(source)) {}

std::size_t StreamChannel::room() const {
  const std::size_t held = pending_.size() + in_flight_;
  return held >= buffer_limit_ ? 0 : buffer_limit_ - held;
}

bool StreamChannel::claim_schedule() {
  if (producer_ != Producer::kIdle) return false;
  if (failure_) {
    // A failed channel is scheduled once more, to cancel its source.
    if (!source_) return false;
  } else if (ending_ && source_ && !finished_) {
    // Ending: once more for the source's last words, whatever the room (the header must be out first).
    if (!begun_) return false;
  } else if (!begun_ || finished_ || room() == 0) {
    return false;
  }
  producer_ = Producer::kQueued;
  return true;
}

bool StreamChannel::claim_kick() {
  if (conn_active_ || (pending_.empty() && !finished_ && !failure_)) return false;
  conn_active_ = true;
  return true;
}

void StreamChannel::schedule() {
  if (!pool_->enqueue(shared_from_this())) drive();
}

void StreamChannel::begin() {
  bool go = false;
  {
    MutexLock lock(mu_);
    begun_ = true;
    go = claim_schedule();
  }
  if (go) schedule();
}

void StreamChannel::drive() {
  std::shared_ptr<StreamSource> source;
  bool first = false;
  std::size_t room_now = 0;
  bool ended = false;
  std::optional<Error> ended_why;
  std::optional<Error> ending;
  {
    MutexLock lock(mu_);
    if (producer_ != Producer::kQueued) return;
    if (failure_ || finished_ || !source_) {
      // Ended early: the source is cancelled once, outside the lock.
      source = std::move(source_);
      producer_ = Producer::kDone;
      ended_why = failure_;
      ended = true;
    } else if (ending_) {
      // The source's last turn; it is no longer the channel's, so nothing else calls it.
      source = std::move(source_);
      ending = ending_;
    } else {
      source = source_;
      first = !started_;
      started_ = true;
      woken_ = false;
      room_now = room();
    }
  }
  if (ended) {
    if (source && ended_why) guarded("cancel", [&] { source->cancel(*ended_why); });
    return;
  }
  if (ending) return drive_end(std::move(source), *ending);
  if (first) {
    guarded("start", [&] {
      source->start([weak = weak_from_this()] {
        if (auto self = weak.lock()) self->wake();
      });
    });
  }
  std::string& piece = t_piece;
  piece.clear();
  StreamSource::Step step = guarded_next(*source, piece, std::max<std::size_t>(1, room_now));
  bool requeue = false;
  bool kick = false;
  bool cancel = false;
  Error why;
  {
    MutexLock lock(mu_);
    if (failure_) {
      // Failed while next() ran: nothing of it is sent; cancel now that next() has returned.
      source_.reset();
      producer_ = Producer::kDone;
      cancel = true;
      why = *failure_;
    } else {
      pending_.append(piece);
      switch (step.kind()) {
        case StreamSource::Step::Kind::kMore:
          producer_ = Producer::kIdle;
          break;
        case StreamSource::Step::Kind::kWait:
          producer_ = woken_ || ending_ ? Producer::kIdle : Producer::kWaiting;
          break;
        case StreamSource::Step::Kind::kDone:
          finished_ = true;
          result_ = step.status();
          producer_ = Producer::kDone;
          source_.reset();
          break;
      }
      requeue = claim_schedule();
      kick = claim_kick();
    }
  }
  // A large piece's memory is not kept by the thread for the next stream.
  if (piece.capacity() > 2 * buffer_limit_) std::string().swap(piece);
  if (cancel) guarded("cancel", [&] { source->cancel(why); });
  source.reset();
  if (kick) kick_();
  if (requeue) schedule();
}

void StreamChannel::drive_end(std::shared_ptr<StreamSource> source, const Error& why) {
  std::string& piece = t_piece;
  piece.clear();
  const bool said = guarded_end_early(*source, why, piece);
  bool kick = false;
  bool cancel = false;
  Error cancel_why = why;
  {
    MutexLock lock(mu_);
    producer_ = Producer::kDone;
    if (failure_) {
      // Failed meanwhile (the grace ran out, the client left): the last words are not sent.
      cancel = !said;
      cancel_why = *failure_;
    } else if (said) {
      pending_.append(piece);
      finished_ = true;
      result_ = ok_status();
    } else {
      failure_ = why;
      std::string().swap(pending_);
      cancel = true;
    }
    kick = claim_kick();
  }
  if (piece.capacity() > 2 * buffer_limit_) std::string().swap(piece);
  if (cancel) guarded("cancel", [&] { source->cancel(cancel_why); });
  source.reset();
  if (kick) kick_();
}

void StreamChannel::end(Error why) {
  bool go = false;
  {
    MutexLock lock(mu_);
    if (failure_ || finished_ || ending_) return;
    ending_ = std::move(why);
    if (producer_ == Producer::kWaiting) producer_ = Producer::kIdle;
    go = claim_schedule();
  }
  if (go) schedule();
}

void StreamChannel::wake() {
  bool go = false;
  {
    MutexLock lock(mu_);
    if (producer_ == Producer::kWaiting) {
      producer_ = Producer::kIdle;
      go = claim_schedule();
    } else if (producer_ == Producer::kQueued) {
      woken_ = true;
    }
  }
  if (go) schedule();
}

StreamChannel::Next StreamChannel::take(std::string& out, Status& result) {
  MutexLock lock(mu_);
  if (failure_) {
    result = *failure_;
    return Next::kFinish;
  }
  if (!pending_.empty()) {
    out.swap(pending_);
    pending_.clear();
    in_flight_ = out.size();
    return Next::kWrite;
  }
  if (finished_) {
    result = result_;
    return Next::kFinish;
  }
  conn_active_ = false;
  return Next::kIdle;
}

void StreamChannel::written() {
  bool go = false;
  {
    MutexLock lock(mu_);
    in_flight_ = 0;
    go = claim_schedule();
  }
  if (go) schedule();
}

void StreamChannel::fail(Error error) {
  bool go = false;
  bool kick = false;
  {
    MutexLock lock(mu_);
    if (failure_) return;
    failure_ = std::move(error);
    std::string().swap(pending_);  // release the memory now, not when the connection is gone
    if (producer_ == Producer::kWaiting) producer_ = Producer::kIdle;
    go = claim_schedule();
    kick = claim_kick();
  }
  if (kick) kick_();
  if (go) schedule();
}

bool StreamChannel::failed() const {
  MutexLock lock(mu_);
  return failure_.has_value();
}

std::size_t StreamChannel::held_bytes() const {
  MutexLock lock(mu_);
  return pending_.size() + in_flight_;
}

StreamPool::StreamPool(std::size_t threads) {
  const std::size_t n = std::max<std::size_t>(1, threads);
  threads_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
}

StreamPool::~StreamPool() { stop(); }

bool StreamPool::enqueue(std::shared_ptr<StreamChannel> channel) {
  {
    MutexLock lock(mu_);
    if (stopped_) return false;
    queue_.push_back(std::move(channel));
  }
  ready_.notify_one();
  return true;
}

void StreamPool::run() {
  while (true) {
    std::shared_ptr<StreamChannel> channel;
    {
      MutexLock lock(mu_);
      while (!stopped_ && queue_.empty()) ready_.wait(mu_);
      if (stopped_) return;
      channel = std::move(queue_.front());
      queue_.pop_front();
    }
    channel->drive();
  }
}

void StreamPool::stop() {
  std::deque<std::shared_ptr<StreamChannel>> left;
  {
    MutexLock lock(mu_);
    if (stopped_ && threads_.empty()) return;
    stopped_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  {
    MutexLock lock(mu_);
    left.swap(queue_);
  }
  for (auto& channel : left) channel->drive();
}

}  // namespace pkgcast::server
