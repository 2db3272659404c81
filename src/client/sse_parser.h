// An incremental parser of text/event-stream (the WHATWG "server-sent events" format), fed the body as it arrives
// in pieces of any size: lines end with LF, CRLF or CR (a CR at the end of one piece and an LF at the start of the
// next are one line ending), a leading BOM is skipped, "data" lines accumulate, a blank line dispatches.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace pkgcast::client {

struct SseEvent {
  std::string type = "message";  // the "event" field; "message" when absent
  std::string data;              // the "data" lines joined with LF
  std::string last_event_id;     // the last "id" seen on the stream so far (persists across events, per the spec)
};

struct SseCallbacks {
  // A dispatched event; false stops feeding (feed returns at once).
  std::function<bool(const SseEvent&)> on_event;
  // A comment line, without the ':' and one following space.
  std::function<void(std::string_view)> on_comment;
  // A "retry" field with a valid number of milliseconds.
  std::function<void(std::uint64_t)> on_retry;
};

// Not thread-safe; one parser per stream.
class SseParser {
 public:
  // A line (or the data of one event) longer than this is refused: a stream that never ends a line cannot make
  // the client buffer without bound.
  static constexpr std::size_t kMaxLineBytes = 16u << 20;
  static constexpr std::size_t kMaxEventBytes = 16u << 20;

  // Parses `bytes`; returns false when a callback asked to stop. WBEM_E_QUOTA_VIOLATION beyond the limits (the
  // parser is then unusable).
  Result<bool> feed(std::string_view bytes, const SseCallbacks& callbacks);

 private:
  // Returns false when a callback asked to stop.
  Result<bool> line(std::string_view text, const SseCallbacks& callbacks);

  std::string line_;
  std::string data_;
  std::string type_;
  std::string last_event_id_;
  bool data_seen_ = false;
  bool after_cr_ = false;
  bool at_start_ = true;
  std::size_t bom_matched_ = 0;
};

}  // namespace pkgcast::client
