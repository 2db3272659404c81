// The machinery of asynchronous streams (router.h's StreamSource; design.md section 9): a StreamChannel per
// streamed response, between its source and its connection, and the StreamPool, the few threads that pull from
// the sources.
//
// A channel holds the bytes the source produced and the connection has not yet sent: `pending` (taken by the
// connection as one chunk) and `in_flight` (the chunk being written). The source is asked for more only while
// pending + in_flight < buffer_limit, so a stream holds at most buffer_limit bytes (plus one indivisible item)
// whatever the client's speed, and a stalled client costs its buffer and nothing else: no thread, no database
// connection. Many small pieces coalesce into large chunks (throughput) while a lone event leaves at once.
//
// The producer side of a channel is in one of four states:
//   idle     the source wants to run but there is no room; the connection's written() reschedules it;
//   queued   in the pool's queue or running on a pool thread (one thread at a time per channel);
//   waiting  the source said wait(); its waker reschedules it;
//   done     the source finished or was cancelled, and has been dropped.
// fail() ends a channel early from anywhere (client gone, write error or timeout, revocation, the end of a stop's
// grace): the connection is kicked to close, and the source is cancelled by the pool (never during its next()).
// end() ends it early and well (a stop): the source's last words (StreamSource::end_early) are produced in its
// turn, on the pool, and the body ends complete after them; a source without any is failed instead.
//
// Thread safety: every member may be called from any thread; take()/written() belong to the connection's strand.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "server/router.h"

namespace pkgcast::server {

class StreamPool;

class StreamChannel final : public std::enable_shared_from_this<StreamChannel> {
 public:
  // `kick` asks the connection to call take(); it must not block (it posts to the connection's strand).
  // `owner` (a token id, "" when anonymous) and `address` (the client's IP) are for the quotas and
  // HttpServer::end_streams_of.
  StreamChannel(std::shared_ptr<StreamSource> source, std::shared_ptr<StreamPool> pool, std::size_t buffer_limit,
                std::string owner, std::string address, std::function<void()> kick);

  const std::string& owner() const { return owner_; }
  const std::string& address() const { return address_; }

  // Starts producing (after the response header is out).
  void begin() PKG_EXCLUDES(mu_);

  // Connection side. What the connection should do next.
  enum class Next { kWrite, kFinish, kIdle };
  // kWrite: `out` holds the bytes to send as one piece (its old contents are discarded, its capacity reused); call
  //         written() once they are on the wire.
  // kFinish: the source finished and everything was sent, or the channel failed; `result` tells which.
  // kIdle: nothing to send now; the channel kicks again when there is.
  Next take(std::string& out, Status& result) PKG_EXCLUDES(mu_);
  void written() PKG_EXCLUDES(mu_);

  // Ends the stream early: the source is cancelled with `error`, nothing more is sent, and the connection is
  // kicked so that it sees kFinish with `error`. The first failure wins; later calls do nothing.
  void fail(Error error) PKG_EXCLUDES(mu_);
  bool failed() const PKG_EXCLUDES(mu_);
  // Ends the stream early but complete when its source can say why (StreamSource::end_early): in the producer's
  // next turn, whatever room is left (the last words are one small item, allowed past the buffer limit), the
  // source is asked instead of next(), and the channel then finishes well after what it holds; when the source
  // has nothing to say, the channel fails with `why`. Does nothing once the channel has finished, failed or is
  // ending; a later fail() still wins over it.
  void end(Error why) PKG_EXCLUDES(mu_);

  // Bytes held now (pending + in flight), for tests and the documentation's bound.
  std::size_t held_bytes() const PKG_EXCLUDES(mu_);

 private:
  friend class StreamPool;
  enum class Producer : std::uint8_t { kIdle, kQueued, kWaiting, kDone };

  // One producer step, on a pool thread (or inline once the pool has stopped): cancel, or start + next.
  void drive() PKG_EXCLUDES(mu_);
  // The last turn of an ending channel: the source's last words, then the channel finishes (or fails).
  void drive_end(std::shared_ptr<StreamSource> source, const Error& why) PKG_EXCLUDES(mu_);
  void wake() PKG_EXCLUDES(mu_);
  // True when the caller must schedule the channel (producer idle, room, not ended): the state is then kQueued.
  bool claim_schedule() PKG_REQUIRES(mu_);
  // True when the caller must kick the connection.
  bool claim_kick() PKG_REQUIRES(mu_);
  void schedule();
  std::size_t room() const PKG_REQUIRES(mu_);

  const std::size_t buffer_limit_;
  const std::string owner_;
  const std::string address_;
  const std::function<void()> kick_;
  const std::shared_ptr<StreamPool> pool_;
  mutable Mutex mu_;
  std::shared_ptr<StreamSource> source_ PKG_GUARDED_BY(mu_);  // dropped once done or cancelled
  std::string pending_ PKG_GUARDED_BY(mu_);
  std::size_t in_flight_ PKG_GUARDED_BY(mu_) = 0;
  bool begun_ PKG_GUARDED_BY(mu_) = false;
  bool started_ PKG_GUARDED_BY(mu_) = false;   // source->start() was called
  bool woken_ PKG_GUARDED_BY(mu_) = false;     // wake() came while queued or running
  bool conn_active_ PKG_GUARDED_BY(mu_) = false;  // a kick is posted or the connection is writing
  Producer producer_ PKG_GUARDED_BY(mu_) = Producer::kIdle;
  bool finished_ PKG_GUARDED_BY(mu_) = false;
  Status result_ PKG_GUARDED_BY(mu_);
  std::optional<Error> failure_ PKG_GUARDED_BY(mu_);
  std::optional<Error> ending_ PKG_GUARDED_BY(mu_);  // end() was called: the source's next turn is its last
};

// A fixed number of threads that drive ready channels in FIFO order, one bounded next() per turn, so a
// thousand busy streams share the threads fairly and a waiting stream costs nothing.
class StreamPool {
 public:
  explicit StreamPool(std::size_t threads);
  ~StreamPool();
  StreamPool(const StreamPool&) = delete;
  StreamPool& operator=(const StreamPool&) = delete;

  // False once stopped (the caller then drives the channel itself).
  bool enqueue(std::shared_ptr<StreamChannel> channel) PKG_EXCLUDES(mu_);
  // Joins the threads after their current step, then drives what was still queued on the calling thread (by then
  // every channel has failed, so that only cancels sources). Idempotent; not from a pool thread.
  void stop() PKG_EXCLUDES(mu_);

 private:
  void run() PKG_EXCLUDES(mu_);

  Mutex mu_;
  CondVar ready_;
  std::deque<std::shared_ptr<StreamChannel>> queue_ PKG_GUARDED_BY(mu_);
  bool stopped_ PKG_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace pkgcast::server
