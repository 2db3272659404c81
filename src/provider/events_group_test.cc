// GROUP WITHIN .. BY .. HAVING: __AggregateEvent with simulated time.
#include "provider/events_test_fixture.h"

namespace pkgcast::provider::testing {
namespace {

using std::chrono::seconds;

class EventsGroupTest : public EventsTest {
 protected:
  void SetUp() override {
    EventsTest::SetUp();
    put({package("ABC00001", "one"), package("ABC00002", "two")});
  }
};

TEST_F(EventsGroupTest, WindowsCloseOnTheClockAndHavingFilters) {
  auto sub = subscribe(
      "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_Package' "
      "GROUP WITHIN 60 BY TargetInstance.PackageID HAVING NumberOfEvents > 1");
  const Micros t0 = clock_.now_micros();
  put(package("ABC00001", "one v1"));
  clock_.advance(seconds(5));
  put(package("ABC00002", "two v1"));
  clock_.advance(seconds(5));
  put(package("abc00001", "one v2"));  // the same group: strings group as they compare, ignoring case
  clock_.advance(seconds(10));
  const std::uint64_t last = put(package("ABC00001", "one v3"));

  clock_.set(t0 + 59'000'000);
  engine_->run_timers_for_test();
  EXPECT_TRUE(drain(*sub).empty());

  clock_.set(t0 + 61'000'000);
  engine_->run_timers_for_test();
  auto events = drain(*sub);
  ASSERT_EQ(events.size(), 1u);  // ABC00002's window had one event: HAVING drops it
  const cim::Json& agg = events[0];
  EXPECT_EQ(agg["__CLASS"], "__AggregateEvent");
  EXPECT_EQ(agg["NumberOfEvents"], 3);
  EXPECT_EQ(agg["__REVISION"], last);
  EXPECT_EQ(agg["TIME_CREATED"], wmi_time(t0 + 60'000'000));
  EXPECT_EQ(agg["Representative"]["__CLASS"], "__InstanceModificationEvent");
  EXPECT_EQ(agg["Representative"]["TargetInstance"]["Name"], "one v1");
  EXPECT_EQ(agg["Representative"]["PreviousInstance"]["Name"], "one");

  // Later events open new windows.
  put(package("ABC00001", "one v4"));
  put(package("ABC00001", "one v5"));
  clock_.advance(seconds(61));
  engine_->run_timers_for_test();
  events = drain(*sub);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["NumberOfEvents"], 2);
}

TEST_F(EventsGroupTest, WithoutByEveryMatchingEventCountsAndALateEventClosesTheWindow) {
  WakeCounter wakes;
  auto sub = subscribe(
      "SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Package' GROUP WITHIN 10", std::nullopt,
      nullptr, wakes.fn());
  EXPECT_EQ(sub->poll(10).state, PollState::kIdle);
  put(package("ABC00001", "a"));
  put(package("ABC00002", "b"));
  const std::uint64_t r = remove("SMS_Package", {cim::Value::string("ABC00002")});
  engine_->wait_dispatched_for_test();
  EXPECT_EQ(wakes.count(), 0);  // nothing to deliver before the window closes
  // No timer run: the next event, committed after the window's end, closes it.
  clock_.advance(seconds(11));
  put(package("ABC00001", "c"));
  ASSERT_TRUE(wakes.wait_for(1));
  auto events = drain(*sub);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["NumberOfEvents"], 3);
  EXPECT_EQ(events[0]["__REVISION"], r);
  clock_.advance(seconds(10));
  engine_->run_timers_for_test();
  events = drain(*sub);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["NumberOfEvents"], 1);
}

// An interval longer than any server runs (GROUP WITHIN 1e300, 1e13, 9e12) keeps its window open: it is not reduced to
// nothing by an overflow, and the window's end stays a valid TIME_CREATED.
TEST_F(EventsGroupTest, AHugeIntervalKeepsTheWindowOpen) {
  for (const char* interval : {"1e300", "1e13", "9e12"}) {
    SCOPED_TRACE(interval);
    auto sub = subscribe(std::string("SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA "
                                     "'SMS_Package' GROUP WITHIN ") +
                         interval);
    put(package("ABC00001", std::string("one ") + interval));
    clock_.advance(seconds(3600));
    put(package("ABC00001", std::string("one again ") + interval));
    clock_.advance(seconds(86400LL * 365 * 50));
    engine_->run_timers_for_test();
    EXPECT_TRUE(drain(*sub).empty());
  }
}

TEST_F(EventsGroupTest, ResumedGroupSubscriptionRegroupsTheJournal) {
  const std::uint64_t before = put(package("ABC00001", "x"));
  put(package("ABC00001", "y"));
  put(package("ABC00002", "z"));
  auto sub = subscribe(
      "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_Package' "
      "GROUP WITHIN 30 BY TargetInstance.PackageID",
      before);
  clock_.advance(seconds(31));
  engine_->run_timers_for_test();
  auto events = drain(*sub);  // catch-up feeds the windows; they are already due
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["Representative"]["TargetInstance"]["Name"], "y");
  EXPECT_EQ(events[1]["Representative"]["TargetInstance"]["Name"], "z");
}

TEST_F(EventsGroupTest, TooManyGroupsEndTheSubscription) {
  EventOptions options;
  options.max_groups = 2;
  open(options);
  auto sub = subscribe(
      "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package' "
      "GROUP WITHIN 60 BY TargetInstance.PackageID");
  put({package("ABC00001", "a"), package("ABC00002", "b"), package("ABC00003", "c")});
  engine_->wait_dispatched_for_test();
  PollResult r = sub->poll(10);
  ASSERT_EQ(r.state, PollState::kEnded);
  EXPECT_EQ(r.error.error().code, WbemCode::kQuotaViolation);
}

// The groups' bytes are bounded too: their keys (up to 256 BY values) and representative events. Two packages'
// groups fit in 6 KiB; long names take a group past it.
TEST_F(EventsGroupTest, GroupsHoldingTooManyBytesEndTheSubscription) {
  EventOptions options;
  options.max_group_bytes = 6 << 10;
  open(options);
  auto sub = subscribe(
      "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package' "
      "GROUP WITHIN 60 BY TargetInstance.PackageID, TargetInstance.Name, TargetInstance.Name");
  put({package("ABC00001", "a"), package("ABC00002", "b")});
  engine_->wait_dispatched_for_test();
  EXPECT_EQ(sub->poll(10).state, PollState::kIdle);
  put({package("ABC00003", std::string(2000, 'c'))});
  engine_->wait_dispatched_for_test();
  PollResult r = sub->poll(10);
  ASSERT_EQ(r.state, PollState::kEnded);
  EXPECT_EQ(r.error.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(r.error.error().message.find("6 KiB of groups"), std::string::npos) << r.error.error().message;
}

}  // namespace
}  // namespace pkgcast::provider::testing
