// How a ManagementScope talks to a pkgcast server: credentials, TLS trust, timeouts, and how event subscriptions
// reconnect. The fields mirror .NET's ConnectionOptions where one exists.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace pkgcast {

struct ConnectionOptions {
  // The bearer token. When empty, token_file is read (its first line) when the scope is made.
  std::string token{};
  std::string token_file{};

  // https: trust the certificates of this PEM file instead of the system store; or check nothing (lab set-ups).
  std::string ca_file{};
  bool insecure = false;

  // Each step of a query (connect, send, every read while the answer streams); 0 = none.
  std::chrono::milliseconds timeout{30'000};

  // An event stream that delivers no byte for this long is taken as broken and reconnected (with resume). The
  // server sends a heartbeat every event_heartbeat_seconds (15 s by default), so the default allows three to go
  // missing. 0 = never.
  std::chrono::milliseconds event_idle_timeout{45'000};

  // Reconnecting an event subscription after a transport failure, a server that is stopping or too busy:
  // waits reconnect_initial_delay, then twice as long each time, at most reconnect_max_delay. A reconnect that
  // gets the stream again resets the delay. After reconnect_max_attempts failures in a row the subscription ends
  // with the last error (on_completed); 0 = keep trying until cancelled.
  std::chrono::milliseconds reconnect_initial_delay{250};
  std::chrono::milliseconds reconnect_max_delay{30'000};
  unsigned reconnect_max_attempts = 0;

  // When the server can no longer replay what a subscription missed (its revision was compacted, WBEM_E_NOT_FOUND):
  // true = subscribe again from now on and tell the sink (EventSink::on_resync) so that it re-reads the state it
  // mirrors; false = end the subscription with that error (on_completed).
  bool resync_on_gap = true;

  // exec_notification_query: events received and not yet taken by next_event. When full, the stream is not read
  // until next_event makes room (the server then catches the subscription up from its journal; nothing is lost).
  std::size_t event_queue_limit = 1024;
};

}  // namespace pkgcast
