#include "server/chunk_writer.h"

#include <utility>

namespace pkgcast::server {

ChunkWriter::ChunkWriter(std::size_t buffer_limit, std::function<void()> kick)
    : buffer_limit_(buffer_limit), kick_(std::move(kick)) {}

Status ChunkWriter::write(std::string_view chunk) {
  // An empty chunk is the end-of-body marker in chunked encoding; writing nothing is simply a no-op here.
  std::unique_lock lock(mu_);
  if (chunk.empty()) return failure_ ? Status(*failure_) : ok_status();
  space_.wait(lock, [&] { return failure_.has_value() || pending_.size() < buffer_limit_; });
  if (failure_) return *failure_;
  pending_.append(chunk);
  if (in_flight_) return ok_status();
  in_flight_ = true;
  lock.unlock();
  kick_();
  return ok_status();
}

void ChunkWriter::finish(Status result) {
  std::unique_lock lock(mu_);
  finished_ = true;
  result_ = std::move(result);
  if (in_flight_) return;
  in_flight_ = true;
  lock.unlock();
  kick_();
}

ChunkWriter::Next ChunkWriter::take(std::string& out, Status& result) {
  std::lock_guard lock(mu_);
  if (!pending_.empty() && !failure_) {
    out.swap(pending_);
    pending_.clear();
    space_.notify_all();
    return Next::kWrite;
  }
  if (finished_) {
    result = failure_ ? Status(*failure_) : result_;
    return Next::kFinish;
  }
  in_flight_ = false;
  return Next::kIdle;
}

void ChunkWriter::fail(Error error) {
  std::lock_guard lock(mu_);
  if (!failure_) failure_ = std::move(error);
  pending_.clear();
  space_.notify_all();
}

bool ChunkWriter::failed() const {
  std::lock_guard lock(mu_);
  return failure_.has_value();
}

}  // namespace pkgcast::server
