// The receiver of an asynchronous event subscription (ManagementScope::exec_notification_query_async), like WMI's
// IWbemObjectSink and .NET's ManagementOperationObserver.
#pragma once

#include "core/result.h"
#include "pkgcast/instance.h"

namespace pkgcast {

// Threads: every call for one subscription comes from that subscription's own reader thread, one at a time, in
// revision order. A call that blocks holds up only its own subscription (the server catches it up from its
// journal later; nothing is lost), never another one. The sink must outlive the Subscription handle.
class EventSink {
 public:
  virtual ~EventSink() = default;

  // One event, in revision order, each exactly once (across reconnects too).
  virtual void on_object_ready(const Instance& event) = 0;

  // The subscription has ended; called exactly once for a subscription that was established, and nothing is
  // called after it. The status is the reason:
  //   WBEM_E_CALL_CANCELLED      Subscription::cancel() or the handle was destroyed;
  //   WBEM_E_ACCESS_DENIED       the token was revoked (or lost its rights) while subscribed;
  //   WBEM_E_INVALID_QUERY, ...  the server refused the query when the library reconnected;
  //   WBEM_E_TRANSPORT_FAILURE   reconnect_max_attempts reconnections failed in a row;
  //   WBEM_E_NOT_FOUND           a gap the library was told not to resync over (ConnectionOptions::resync_on_gap).
  virtual void on_completed(const Status& status) = 0;

  // The server could not replay the events since the last one delivered (the journal no longer holds them), so
  // events were lost. The library has noted the server's current revision; after this call returns it subscribes
  // again from that revision. A sink that mirrors state re-reads it here (exec_query): nothing committed after the
  // noted revision is missed (a change the re-read shows may also arrive as an event). `gap` is the server's
  // WBEM_E_NOT_FOUND. Default: nothing.
  virtual void on_resync(const Error& gap) { (void)gap; }
};

}  // namespace pkgcast
