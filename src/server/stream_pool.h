// The BodyWriter of a streamed response: the bridge between a producer thread and a connection's strand.
//
// The producer appends to a pending buffer; when no write is in flight it asks the connection (`kick`) to send.
// The connection takes everything pending at once and writes it as one chunk, so a fast producer's many small
// writes coalesce into large chunks (throughput) while a lone event leaves at once (latency). The producer blocks
// once `buffer_limit` bytes are pending (back-pressure), and every write fails after fail() (client gone, server
// stopping). Memory per stream is therefore bounded by about twice `buffer_limit`.
//
// Thread safety: write() and finish() from the producer thread; take() and written() from the connection's strand;
// fail() from anywhere.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/thread_annotations.h"
#include "server/router.h"

namespace pkgcast::server {

class ChunkWriter final : public BodyWriter {
 public:
  ChunkWriter(std::size_t buffer_limit, std::function<void()> kick);

  // Producer side.
  Status write(std::string_view chunk) override PKG_EXCLUDES(mu_);
  // The producer is done; `result` is its status (an error truncates the response).
  void finish(Status result) PKG_EXCLUDES(mu_);

  // Connection side. What the connection should do next.
  enum class Next { kWrite, kFinish, kIdle };
  // kWrite: `out` holds the bytes to send as one chunk (its old contents are discarded; its capacity is reused).
  // kFinish: the producer finished and everything was sent; `result` is its status.
  // kIdle: nothing to send now; the next write() kicks again.
  Next take(std::string& out, Status& result) PKG_EXCLUDES(mu_);

  // Every later write() returns `error`, and a producer blocked on back-pressure wakes with it.
  void fail(Error error) PKG_EXCLUDES(mu_);
  bool failed() const PKG_EXCLUDES(mu_);

 private:
  const std::size_t buffer_limit_;
  const std::function<void()> kick_;
  mutable std::mutex mu_;
  std::condition_variable space_;
  std::string pending_ PKG_GUARDED_BY(mu_);
  bool in_flight_ PKG_GUARDED_BY(mu_) = false;  // the connection owns the next step
  bool finished_ PKG_GUARDED_BY(mu_) = false;
  Status result_ PKG_GUARDED_BY(mu_);
  std::optional<Error> failure_ PKG_GUARDED_BY(mu_);
};

}  // namespace pkgcast::server
