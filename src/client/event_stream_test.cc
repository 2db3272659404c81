// Event subscriptions against a scripted server: resume, gaps, errors, cancellation and independence of sinks.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <vector>

#include "client/fake_event_server.h"
#include "pkgcast/pkgcast.h"

namespace pkgcast {
namespace {

using namespace std::chrono_literals;
using client::testing::FakeConnection;
using client::testing::FakeEventServer;

constexpr std::string_view kQuery =
    "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_PackageStatusRootSummarizer'";

// A sink that records everything, with bounded waits.
class RecordingSink : public EventSink {
 public:
  void on_object_ready(const Instance& e) override {
    std::lock_guard lock(mu_);
    revisions_.push_back(e.revision().value_or(0));
    cv_.notify_all();
  }
  void on_completed(const Status& status) override {
    std::lock_guard lock(mu_);
    completed_.push_back(status.ok() ? WbemCode::kOk : status.error().code);
    cv_.notify_all();
  }
  void on_resync(const Error& gap) override {
    std::lock_guard lock(mu_);
    resyncs_.push_back(gap.code);
  }
  bool wait_for_events(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 20s, [&] { return revisions_.size() >= n; });
  }
  bool wait_for_completion() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 20s, [&] { return !completed_.empty(); });
  }
  std::vector<std::uint64_t> revisions() {
    std::lock_guard lock(mu_);
    return revisions_;
  }
  std::vector<WbemCode> completed() {
    std::lock_guard lock(mu_);
    return completed_;
  }
  std::vector<WbemCode> resyncs() {
    std::lock_guard lock(mu_);
    return resyncs_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::uint64_t> revisions_;
  std::vector<WbemCode> completed_;
  std::vector<WbemCode> resyncs_;
};

ConnectionOptions fast_options() {
  ConnectionOptions o;
  o.token = "t";
  o.reconnect_initial_delay = 1ms;
  o.reconnect_max_delay = 10ms;
  return o;
}

bool has_since(const std::string& target, std::string_view rev) {
  return target.find("&since=" + std::string(rev)) != std::string::npos;
}

TEST(EventStreamTest, ResumesAfterABrokenStreamWithoutLossOrDuplicate) {
  FakeEventServer server([](FakeConnection& c, const std::string&, int index) {
    c.sse_head();
    if (index == 0) {
      c.chunk("retry: 2000\n: pkgcast revision 10\n\n");
      c.event(11);
      c.event(12);
      c.close();  // cut mid-stream: no terminating chunk
      return;
    }
    c.event(12);  // already delivered: must not reach the sink again
    c.event(13);
    c.wait_for_client_close();
  });
  ManagementScope scope(server.url(), R"(root\sms\site_ABC)", fast_options());
  RecordingSink sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  ASSERT_TRUE(sink.wait_for_events(3));
  EXPECT_EQ(sink.revisions(), (std::vector<std::uint64_t>{11, 12, 13}));
  EXPECT_EQ(sub.last_revision(), 13u);
  const auto targets = server.targets();
  ASSERT_GE(targets.size(), 2u);
  EXPECT_EQ(targets[0].find("since="), std::string::npos);
  EXPECT_NE(targets[0].find("query=SELECT%20%2A%20FROM%20__InstanceModificationEvent"), std::string::npos)
      << targets[0];
  EXPECT_NE(targets[0].find("namespace=root%5Csms%5Csite_ABC"), std::string::npos) << targets[0];
  EXPECT_TRUE(has_since(targets[1], "12")) << targets[1];
  sub.cancel();
  EXPECT_EQ(sink.completed(), std::vector<WbemCode>{WbemCode::kCallCancelled});
}

TEST(EventStreamTest, BeforeTheFirstEventItResumesFromTheSubscriptionsRevision) {
  FakeEventServer server([](FakeConnection& c, const std::string&, int index) {
    c.sse_head();
    if (index == 0) {
      c.chunk(": pkgcast revision 10\n\n");
      c.end_chunks();  // the server ended the stream cleanly: reconnect all the same
      return;
    }
    c.event(11);
    c.wait_for_client_close();
  });
  ManagementScope scope(server.url(), "", fast_options());
  RecordingSink sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  ASSERT_TRUE(sink.wait_for_events(1));
  const auto targets = server.targets();
  ASSERT_GE(targets.size(), 2u);
  EXPECT_TRUE(has_since(targets[1], "10")) << targets[1];
  EXPECT_EQ(targets[0].find("namespace="), std::string::npos) << "no namespace: the server's own site";
}

TEST(EventStreamTest, ShuttingDownReconnectsWithSince) {
  FakeEventServer server([](FakeConnection& c, const std::string&, int index) {
    c.sse_head();
    if (index == 0) {
      c.event(5);
      c.error_event_and_end("WBEM_E_SHUTTING_DOWN", "stopping");
      return;
    }
    c.event(6);
    c.wait_for_client_close();
  });
  ManagementScope scope(server.url(), "", fast_options());
  RecordingSink sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  ASSERT_TRUE(sink.wait_for_events(2));
  EXPECT_EQ(sink.revisions(), (std::vector<std::uint64_t>{5, 6}));
  EXPECT_TRUE(has_since(server.targets()[1], "5"));
}

// The server could not read its journal (its database restarting): an `event: error` WBEM_E_FAILED, or a 500 on the
// reconnection, is tried again from the last revision, as a broken connection is.
TEST(EventStreamTest, AServerSideFailureReconnectsWithSince) {
  FakeEventServer server([](FakeConnection& c, const std::string&, int index) {
    if (index == 1) {
      c.json_error(500, "Internal Server Error", "WBEM_E_FAILED", "postgresql: server closed the connection");
      return;
    }
    c.sse_head();
    if (index == 0) {
      c.event(5);
      c.error_event_and_end("WBEM_E_FAILED", "postgresql: terminating");
      return;
    }
    c.event(6);
    c.wait_for_client_close();
  });
  ManagementScope scope(server.url(), "", fast_options());
  RecordingSink sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  ASSERT_TRUE(sink.wait_for_events(2));
  EXPECT_EQ(sink.revisions(), (std::vector<std::uint64_t>{5, 6}));
  const auto targets = server.targets();
  ASSERT_GE(targets.size(), 3u);
  EXPECT_TRUE(has_since(targets[1], "5"));
  EXPECT_TRUE(has_since(targets[2], "5"));
}

TEST(EventStreamTest, ACompactedRevisionResubscribesFromTheNotedRevisionAndReportsTheGap) {
  std::promise<void> go;
  std::shared_future<void> go_future = go.get_future().share();
  FakeEventServer server([&](FakeConnection& c, const std::string& target, int) {
    if (target == "/api/v1/health") {
      const std::string body = R"({"status":"ok","site":"ABC","version":"0.1.0","revision":50})";
      c.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body);
    } else if (target.find("since=") == std::string::npos) {
      c.sse_head();
      // Only once the test holds the handle the sink reads.
      if (go_future.wait_for(20s) != std::future_status::ready) return;
      c.event(11);
      c.close();
    } else if (target.find("since=11") != std::string::npos) {
      c.json_error(410, "Gone", "WBEM_E_NOT_FOUND", "cannot resume after revision 11: revision 12 was compacted");
    } else {
      c.sse_head();
      c.chunk(": pkgcast revision 50\n\n");
      c.event(51);
      c.wait_for_client_close();
    }
  });
  ManagementScope scope(server.url(), "", fast_options());
  struct ResyncingSink : RecordingSink {
    std::optional<std::uint64_t> noted;
    Subscription* sub = nullptr;
    void on_resync(const Error& gap) override {
      RecordingSink::on_resync(gap);
      noted = sub->last_revision();  // what the subscription goes on from, noted before the re-read
    }
  } sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  sink.sub = &sub;
  go.set_value();
  ASSERT_TRUE(sink.wait_for_events(2));
  EXPECT_EQ(sink.revisions(), (std::vector<std::uint64_t>{11, 51}));
  EXPECT_EQ(sink.resyncs(), std::vector<WbemCode>{WbemCode::kNotFound});
  EXPECT_EQ(sink.noted, 50u);
  const auto targets = server.targets();
  ASSERT_EQ(targets.size(), 4u);
  EXPECT_TRUE(has_since(targets[1], "11"));
  EXPECT_EQ(targets[2], "/api/v1/health");
  EXPECT_TRUE(has_since(targets[3], "50")) << targets[3];
  EXPECT_TRUE(sink.completed().empty());
}

TEST(EventStreamTest, WithoutResyncAGapEndsTheSubscription) {
  FakeEventServer server([](FakeConnection& c, const std::string&, int index) {
    c.sse_head();
    c.event(11);
    if (index == 0) {
      c.error_event_and_end("WBEM_E_NOT_FOUND", "revision 11 was compacted");
      return;
    }
    c.wait_for_client_close();
  });
  ConnectionOptions o = fast_options();
  o.resync_on_gap = false;
  ManagementScope scope(server.url(), "", o);
  RecordingSink sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  ASSERT_TRUE(sink.wait_for_completion());
  EXPECT_EQ(sink.completed(), std::vector<WbemCode>{WbemCode::kNotFound});
  EXPECT_TRUE(sink.resyncs().empty());
  EXPECT_EQ(server.targets().size(), 1u);
}

TEST(EventStreamTest, ARevokedTokenEndsTheSubscriptionOnce) {
  FakeEventServer server([](FakeConnection& c, const std::string&, int) {
    c.sse_head();
    c.event(3);
    c.error_event_and_end("WBEM_E_ACCESS_DENIED", "token revoked");
  });
  ManagementScope scope(server.url(), "", fast_options());
  RecordingSink sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  ASSERT_TRUE(sink.wait_for_completion());
  EXPECT_EQ(sink.revisions(), std::vector<std::uint64_t>{3});
  EXPECT_EQ(sink.completed(), std::vector<WbemCode>{WbemCode::kAccessDenied});
  EXPECT_FALSE(sub.active());
  sub.cancel();  // after the end: nothing more
  EXPECT_EQ(sink.completed().size(), 1u);
  EXPECT_EQ(server.targets().size(), 1u);
}

TEST(EventStreamTest, ARefusedQueryIsTheCallsError) {
  FakeEventServer server([](FakeConnection& c, const std::string&, int) {
    c.json_error(400, "Bad Request", "WBEM_E_INVALID_QUERY", "expected FROM at 1:10");
  });
  ManagementScope scope(server.url(), "", fast_options());
  RecordingSink sink;
  auto sub = scope.try_exec_notification_query_async(sink, "SELECT * __InstanceCreationEvent");
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.error(), make_error(WbemCode::kInvalidQuery, "expected FROM at 1:10"));
  EXPECT_TRUE(sink.completed().empty()) << "no on_completed for a subscription never made";
  try {
    (void)scope.exec_notification_query("SELECT * __InstanceCreationEvent");
    FAIL();
  } catch (const ManagementError& e) {
    EXPECT_EQ(e.code(), WbemCode::kInvalidQuery);
  }
}

TEST(EventStreamTest, AnUnreachableServerIsTheCallsError) {
  ManagementScope scope("http://127.0.0.1:1", "", fast_options());
  RecordingSink sink;
  auto sub = scope.try_exec_notification_query_async(sink, kQuery);
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.error().code, WbemCode::kTransportFailure);
}

TEST(EventStreamTest, GivesUpAfterTheConfiguredAttempts) {
  FakeEventServer server([](FakeConnection& c, const std::string&, int index) {
    if (index == 0) {
      c.sse_head();
      c.close();
      return;
    }
    c.json_error(503, "Service Unavailable", "WBEM_E_SERVER_TOO_BUSY", "too many subscriptions");
  });
  ConnectionOptions o = fast_options();
  o.reconnect_max_attempts = 3;
  ManagementScope scope(server.url(), "", o);
  RecordingSink sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  ASSERT_TRUE(sink.wait_for_completion());
  EXPECT_EQ(sink.completed(), std::vector<WbemCode>{WbemCode::kServerTooBusy});
  EXPECT_EQ(server.targets().size(), 4u) << "the subscription and three reconnections";
}

TEST(EventStreamTest, AnIdleStreamIsTakenAsBroken) {
  FakeEventServer server([&](FakeConnection& c, const std::string&, int index) {
    c.sse_head();
    if (index == 0) {
      c.chunk(": pkgcast revision 7\n\n");
      c.wait_for_client_close();  // no heartbeat: the client's idle timeout fires
      return;
    }
    c.event(8);
    c.wait_for_client_close();
  });
  ConnectionOptions o = fast_options();
  o.event_idle_timeout = 300ms;
  ManagementScope scope(server.url(), "", o);
  RecordingSink sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  ASSERT_TRUE(sink.wait_for_events(1));
  EXPECT_TRUE(has_since(server.targets()[1], "7"));
}

TEST(EventStreamTest, CancelEndsAnIdleSubscriptionAtOnce) {
  FakeEventServer server([](FakeConnection& c, const std::string&, int) {
    c.sse_head();
    c.wait_for_client_close();
  });
  ConnectionOptions o = fast_options();
  o.event_idle_timeout = 0ms;
  ManagementScope scope(server.url(), "", o);
  RecordingSink sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  EXPECT_TRUE(sub.active());
  sub.cancel();
  EXPECT_FALSE(sub.active());
  EXPECT_EQ(sink.completed(), std::vector<WbemCode>{WbemCode::kCallCancelled});
  EXPECT_EQ(server.targets().size(), 1u);
}

// A sink that blocks in on_object_ready until released.
class BlockingSink : public RecordingSink {
 public:
  void on_object_ready(const Instance& e) override {
    RecordingSink::on_object_ready(e);
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return released_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

TEST(EventStreamTest, ABlockingSinkDoesNotStallAnotherSubscription) {
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    c.sse_head();
    for (std::uint64_t r = 1; r <= 20; ++r) c.event(r);
    c.wait_for_client_close();
  });
  ManagementScope scope(server.url(), "", fast_options());
  BlockingSink slow;
  RecordingSink fast;
  Subscription slow_sub = scope.exec_notification_query_async(slow, kQuery);
  ASSERT_TRUE(slow.wait_for_events(1));  // now blocked inside its first event
  Subscription fast_sub = scope.exec_notification_query_async(fast, kQuery);
  ASSERT_TRUE(fast.wait_for_events(20));
  EXPECT_EQ(slow.revisions().size(), 1u);
  slow.release();
  ASSERT_TRUE(slow.wait_for_events(20));
  EXPECT_EQ(slow.revisions(), fast.revisions());
}

TEST(EventStreamTest, CancelFromInsideTheSinkStopsDelivery) {
  std::promise<void> go;
  std::shared_future<void> go_future = go.get_future().share();
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    c.sse_head();
    // Events only once the test holds the handle the sink cancels through.
    if (go_future.wait_for(20s) != std::future_status::ready) return;
    for (std::uint64_t r = 1; r <= 5; ++r) c.event(r);
    c.wait_for_client_close();
  });
  ManagementScope scope(server.url(), "", fast_options());
  struct CancellingSink : RecordingSink {
    Subscription* sub = nullptr;
    void on_object_ready(const Instance& e) override {
      RecordingSink::on_object_ready(e);
      sub->cancel();
    }
  } sink;
  Subscription sub = scope.exec_notification_query_async(sink, kQuery);
  sink.sub = &sub;
  go.set_value();
  ASSERT_TRUE(sink.wait_for_completion());
  EXPECT_EQ(sink.revisions().size(), 1u);
  EXPECT_EQ(sink.completed(), std::vector<WbemCode>{WbemCode::kCallCancelled});
}

TEST(EventStreamTest, TheSemiSynchronousFormWaitsTimesOutAndReportsTheEnd) {
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    c.sse_head();
    c.event(1);
    c.event(2);
    c.error_event_and_end("WBEM_E_ACCESS_DENIED", "token revoked");
  });
  ManagementScope scope(server.url(), "", fast_options());
  EventEnumerator events = scope.exec_notification_query(kQuery);
  auto first = events.next_event(20s);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->revision(), 1u);
  EXPECT_EQ((*first)["TargetInstance"]["Installed"].as_uint32(), 1u);
  auto second = events.next_event(20s);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->revision(), 2u);
  auto end = events.try_next_event(20s);
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.error().code, WbemCode::kAccessDenied);
  EXPECT_THROW(events.next_event(1ms), ManagementError);
}

TEST(EventStreamTest, NextEventReturnsNothingOnATimeout) {
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    c.sse_head();
    c.wait_for_client_close();
  });
  ManagementScope scope(server.url(), "", fast_options());
  EventEnumerator events = scope.exec_notification_query(kQuery);
  EXPECT_EQ(events.next_event(50ms), std::nullopt);
  EventWatcher watcher(scope, WqlEventQuery{.event_class_name = "__InstanceCreationEvent",
                                            .condition = "TargetInstance ISA 'SMS_Package'"});
  try {
    (void)watcher.wait_for_next_event(50ms);
    FAIL();
  } catch (const ManagementError& e) {
    EXPECT_EQ(e.code(), WbemCode::kTimedOut);
  }
  watcher.stop();
}

TEST(EventStreamTest, AFullQueueHoldsTheStreamAndLosesNothing) {
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    c.sse_head();
    for (std::uint64_t r = 1; r <= 50; ++r) c.event(r);
    c.wait_for_client_close();
  });
  ConnectionOptions o = fast_options();
  o.event_queue_limit = 4;
  ManagementScope scope(server.url(), "", o);
  EventEnumerator events = scope.exec_notification_query(kQuery);
  for (std::uint64_t r = 1; r <= 50; ++r) {
    auto e = events.next_event(20s);
    ASSERT_TRUE(e.has_value()) << r;
    EXPECT_EQ(e->revision(), r);
  }
}

// GROUP WITHIN: an aggregate carries the revision of its window's last event, and windows close in the order they
// opened, so the server sends `id: 49` (window GA: 41 and 49) before `id: 45` (window GB: 45 only). Both are
// delivered; the resume point stays 49.
TEST(EventStreamTest, AggregatesWithDescendingRevisionsAreAllDelivered) {
  auto aggregate = [](std::uint64_t revision, int count) {
    return R"({"__CLASS":"__AggregateEvent","__REVISION":)" + std::to_string(revision) + R"(,"NumberOfEvents":)" +
           std::to_string(count) + R"(,"Representative":)" + client::testing::event_json(revision) + "}";
  };
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    c.sse_head();
    c.chunk(": pkgcast revision 40\n\n");
    c.event(49, aggregate(49, 2));
    c.event(45, aggregate(45, 1));
    c.event(52, aggregate(52, 1));
    c.wait_for_client_close();
  });
  ManagementScope scope(server.url(), "", fast_options());
  RecordingSink sink;
  Subscription sub =
      scope.exec_notification_query_async(sink, std::string(kQuery) + " GROUP WITHIN 3 BY TargetInstance.Name");
  ASSERT_TRUE(sink.wait_for_events(3));
  EXPECT_EQ(sink.revisions(), (std::vector<std::uint64_t>{49, 45, 52}));
  EXPECT_EQ(sub.last_revision(), 52u);
  sub.cancel();
}

TEST(EventStreamTest, TheWatcherDeliversToItsHandlersAndStops) {
  FakeEventServer server([&](FakeConnection& c, const std::string&, int) {
    c.sse_head();
    c.event(9);
    c.wait_for_client_close();
  });
  ManagementScope scope(server.url(), "", fast_options());
  EventWatcher watcher(scope, WqlEventQuery{.event_class_name = "__InstanceModificationEvent",
                                            .within = 120s,
                                            .condition = "TargetInstance ISA 'SMS_PackageStatusRootSummarizer'"});
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::uint32_t> installed;
  std::vector<WbemCode> stopped;
  watcher.on_event_arrived([&](const Instance& e) {
    std::lock_guard lock(mu);
    installed.push_back(e["TargetInstance"]["Installed"].as_uint32());
    cv.notify_all();
  });
  watcher.on_stopped([&](const Status& s) {
    std::lock_guard lock(mu);
    stopped.push_back(s.ok() ? WbemCode::kOk : s.error().code);
  });
  watcher.start();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return !installed.empty(); }));
  }
  watcher.stop();
  std::lock_guard lock(mu);
  EXPECT_EQ(installed, std::vector<std::uint32_t>{9});
  EXPECT_EQ(stopped, std::vector<WbemCode>{WbemCode::kCallCancelled});
  EXPECT_NE(server.targets()[0].find("within%20120"), std::string::npos) << server.targets()[0];
}

}  // namespace
}  // namespace pkgcast
