// The event engine driven by real store commits: every event form, the index, resume, slow subscribers, scoping,
// bounds.
#include <atomic>
#include <cstdio>
#include <thread>

#include "provider/events_test_fixture.h"

namespace pkgcast::provider::testing {
namespace {

std::string name_of(const cim::Json& j, const char* which) { return j[which]["Name"].get<std::string>(); }

TEST_F(EventsTest, EveryIntrinsicEventFromRealPutsAndRemoves) {
  auto created = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'");
  auto modified = subscribe("select * from __InstanceModificationEvent within 120.5 where TargetInstance isa "
                            "\"SMS_Package\"");
  auto deleted = subscribe("SELECT * FROM __InstanceDeletionEvent WITHIN 5 WHERE TargetInstance ISA 'SMS_Package'");
  auto any = subscribe("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Package'");

  const std::uint64_t r1 = put(package("ABC00001", "Office"));
  clock_.advance(std::chrono::seconds(1));
  const std::uint64_t r2 = put(package("ABC00001", "Office 2"));
  const std::uint64_t r3 = remove("SMS_Package", {cim::Value::string("ABC00001")});

  auto c = drain(*created);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["__CLASS"], "__InstanceCreationEvent");
  EXPECT_EQ(c[0]["__REVISION"], r1);
  EXPECT_EQ(c[0]["TIME_CREATED"], wmi_time(kStart));
  EXPECT_EQ(c[0]["TargetInstance"]["__CLASS"], "SMS_Package");
  EXPECT_EQ(name_of(c[0], "TargetInstance"), "Office");
  EXPECT_FALSE(c[0].contains("PreviousInstance"));

  auto m = drain(*modified);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0]["__CLASS"], "__InstanceModificationEvent");
  EXPECT_EQ(m[0]["__REVISION"], r2);
  EXPECT_EQ(m[0]["TIME_CREATED"], wmi_time(kStart + 1'000'000));
  EXPECT_EQ(name_of(m[0], "TargetInstance"), "Office 2");
  EXPECT_EQ(name_of(m[0], "PreviousInstance"), "Office");

  auto d = drain(*deleted);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["__CLASS"], "__InstanceDeletionEvent");
  EXPECT_EQ(d[0]["__REVISION"], r3);
  EXPECT_EQ(name_of(d[0], "TargetInstance"), "Office 2");

  auto all = drain(*any);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(revisions(all), (std::vector<std::uint64_t>{r1, r2, r3}));
  EXPECT_EQ(all[0]["__CLASS"], "__InstanceCreationEvent");
  EXPECT_EQ(all[1]["__CLASS"], "__InstanceModificationEvent");
  EXPECT_EQ(all[2]["__CLASS"], "__InstanceDeletionEvent");
}

TEST_F(EventsTest, ConditionsOverTargetAndPreviousInstance) {
  put(package("ABC00001", "Office", "ABC", 2));
  auto changed = subscribe(
      "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_Package' AND "
      "TargetInstance.Priority <> PreviousInstance.Priority");
  auto was_normal = subscribe(
      "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_Package' AND "
      "PreviousInstance.Priority = 2 AND TargetInstance.Name LIKE 'Off%'");
  put(package("ABC00001", "Office renamed", "ABC", 2));  // Priority unchanged
  const std::uint64_t r = put(package("ABC00001", "Office renamed", "ABC", 1));
  put(package("ABC00001", "Office renamed", "ABC", 3));  // previous is 1 now

  auto a = drain(*changed);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0]["__REVISION"], r);
  EXPECT_EQ(a[0]["TargetInstance"]["Priority"], 1);
  EXPECT_EQ(a[0]["PreviousInstance"]["Priority"], 2);
  auto b = drain(*was_normal);
  ASSERT_EQ(b.size(), 2u);  // the rename and the change to 1
  EXPECT_EQ(b[1]["__REVISION"], r);
}

// WMI reads `<> NULL` as IS NOT NULL and `= NULL` as IS NULL, in subscriptions as in queries.
TEST_F(EventsTest, ComparisonsWithNullAreIsNullAsInWmi) {
  auto named = subscribe(
      "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package' AND TargetInstance.Name <> NULL");
  auto unnamed = subscribe(
      "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package' AND TargetInstance.Manufacturer "
      "= NULL");
  put(package("ABC00001", "Office", "ABC", 2));
  const auto a = drain(*named);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0]["TargetInstance"]["PackageID"], "ABC00001");
  EXPECT_EQ(drain(*unnamed).size(), 1u);  // package() sets no Manufacturer
}

TEST_F(EventsTest, ExactClassWatchIgnoresOtherClasses) {
  auto pkgs = subscribe("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance.__CLASS = 'SMS_Package'");
  cim::Instance group(cls("SMS_DistributionPointGroup"));
  ASSERT_TRUE(group.set("GroupID", cim::Value::string("G1")).ok());
  put(group);
  const std::uint64_t r = put(package("ABC00001", "Office"));
  EXPECT_EQ(revisions(drain(*pkgs)), std::vector<std::uint64_t>{r});
}

TEST_F(EventsTest, KeyEqualityIndexEvaluatesOnlyCandidates) {
  std::vector<std::unique_ptr<Subscription>> subs;
  for (int i = 1; i <= 200; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "ABC%05X", i);
    subs.push_back(subscribe(std::string("SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA "
                                         "'SMS_Package' AND TargetInstance.PackageID = '") +
                             id + "'"));
  }
  // An OR of key equalities is indexed under each value; lower case matches as WQL's equality does.
  auto either = subscribe(
      "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_Package' AND "
      "(TargetInstance.PackageID = 'abc00007' OR TargetInstance.PackageID = 'ABC00009')");
  // Other kinds and classes are not candidates either.
  auto creations = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'");
  auto dps = subscribe("SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_DistributionPoint'");
  put(package("ABC00007", "Seven"));
  engine_->wait_dispatched_for_test();
  const EventStats before = engine_->stats();
  EXPECT_GT(before.index_slots, 200u);

  const std::uint64_t r = put(package("ABC00007", "Seven, modified"));
  engine_->wait_dispatched_for_test();
  const EventStats after = engine_->stats();
  EXPECT_EQ(after.evaluations - before.evaluations, 2u);  // subscription 7 and `either`
  EXPECT_EQ(after.events_serialized - before.events_serialized, 1u);
  EXPECT_EQ(revisions(drain(*subs[6])), std::vector<std::uint64_t>{r});
  EXPECT_EQ(revisions(drain(*either)), std::vector<std::uint64_t>{r});
  EXPECT_TRUE(drain(*subs[7]).empty());
  EXPECT_EQ(drain(*creations).size(), 1u);  // the creation of ABC00007
  EXPECT_TRUE(drain(*dps).empty());
}

TEST_F(EventsTest, AnEventIsSerializedOnceForEverySubscriber) {
  std::vector<std::unique_ptr<Subscription>> subs;
  for (int i = 0; i < 50; ++i) {
    subs.push_back(subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'"));
  }
  const EventStats before = engine_->stats();
  put(package("ABC00001", "Office"));
  engine_->wait_dispatched_for_test();
  EXPECT_EQ(engine_->stats().events_serialized - before.events_serialized, 1u);
  const std::string* bytes = nullptr;
  for (auto& sub : subs) {
    PollResult r = sub->poll(10);
    ASSERT_EQ(r.events.size(), 1u);
    if (bytes == nullptr) bytes = r.events[0].json.get();
    EXPECT_EQ(r.events[0].json.get(), bytes);  // the same bytes, shared
  }
}

TEST_F(EventsTest, ProjectionLeavesOutUnselectedProperties) {
  auto sub = subscribe("SELECT TargetInstance FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_Package'");
  put(package("ABC00001", "Office"));
  put(package("ABC00001", "Office 2"));
  auto events = drain(*sub);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].contains("TargetInstance"));
  EXPECT_TRUE(events[0].contains("__REVISION"));
  EXPECT_FALSE(events[0].contains("PreviousInstance"));
  EXPECT_TRUE(events[0].contains("TIME_CREATED"));  // every event object carries it (design.md 5)
}

TEST_F(EventsTest, WakeIsCalledOnceWhenAnIdleSubscriptionHasEvents) {
  WakeCounter wakes;
  auto sub = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'", std::nullopt,
                       nullptr, wakes.fn());
  EXPECT_EQ(sub->poll(10).state, PollState::kIdle);
  put(package("ABC00001", "a"));
  ASSERT_TRUE(wakes.wait_for(1));
  put(package("ABC00002", "b"));
  engine_->wait_dispatched_for_test();
  EXPECT_EQ(wakes.count(), 1);  // not polled since: no second wake
  PollResult r = sub->poll(10);
  EXPECT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.state, PollState::kIdle);
  put(package("ABC00003", "c"));
  ASSERT_TRUE(wakes.wait_for(2));
}

TEST_F(EventsTest, NoWakeAfterTheSubscriptionIsDestroyed) {
  WakeCounter wakes;
  auto sub = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'", std::nullopt,
                       nullptr, wakes.fn());
  EXPECT_EQ(sub->poll(10).state, PollState::kIdle);
  sub.reset();
  put(package("ABC00001", "a"));
  engine_->wait_dispatched_for_test();
  EXPECT_EQ(wakes.count(), 0);
  EXPECT_EQ(engine_->stats().subscriptions, 0u);
}

TEST_F(EventsTest, ResumeDeliversEveryLaterEventExactlyOnceWhileWritesContinue) {
  constexpr int kWrites = 400;
  std::atomic<bool> done{false};
  std::uint64_t last = 0;
  const std::uint64_t base = put(package("ABC00000", "start"));
  std::thread writer([&] {
    for (int i = 1; i <= kWrites; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "ABC%05X", i % 37);
      // Mixed with changes the subscription does not watch.
      cim::Instance group(cls("SMS_DistributionPointGroup"));
      EXPECT_TRUE(group.set("GroupID", cim::Value::string("G" + std::to_string(i))).ok());
      last = put({package(id, "v" + std::to_string(i)), group});
    }
    done = true;
  });
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{writer};
  // A first watcher reads some events, "dies", and a second resumes from its last revision.
  std::vector<std::uint64_t> seen;
  {
    WakeCounter wakes;
    auto first = subscribe("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Package'", base,
                           nullptr, wakes.fn());
    int idle = 0;
    while (seen.size() < 50) {
      PollResult r = first->poll(7);
      for (const Event& e : r.events) seen.push_back(e.revision);
      ASSERT_NE(r.state, PollState::kEnded);
      if (r.state == PollState::kIdle) {
        ASSERT_TRUE(wakes.wait_for(++idle));  // one wake per idle answer
      }
    }
  }
  ASSERT_FALSE(seen.empty());
  const std::uint64_t resume_at = seen.back();
  auto second = subscribe("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Package'", resume_at);
  writer.join();
  ASSERT_TRUE(done);
  for (std::uint64_t r : revisions(drain(*second, 5))) seen.push_back(r);

  // Expected: every package change after `base`, from the journal itself.
  std::vector<std::uint64_t> expected;
  ASSERT_TRUE(store_
                  ->read_journal(base, 1'000'000,
                                 [&](store::JournalEntry&& e) {
                                   if (e.class_name == "SMS_Package") expected.push_back(e.revision);
                                   return true;
                                 })
                  .ok());
  EXPECT_EQ(expected.size(), static_cast<std::size_t>(kWrites));
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(expected.back() + 1, last);  // the group row was journaled after the package in each batch
}

TEST_F(EventsTest, ResumeFromACompactedRevisionIsRefusedNamingTheOldest) {
  store::JournalRetention retention;
  retention.max_entries = 5;
  open({}, &cim::ClassRegistry::builtin(), retention);
  for (int i = 1; i <= 20; ++i) put(package("ABC00001", "v" + std::to_string(i)));
  auto dropped = store_->compact_journal();
  ASSERT_TRUE(dropped.ok());
  ASSERT_GT(*dropped, 0u);
  auto sub = engine_->subscribe("", "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_Package'",
                                admin_, 3, {});
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.error().code, WbemCode::kNotFound);
  EXPECT_NE(sub.error().message.find("cannot resume after revision 3"), std::string::npos) << sub.error().message;
  EXPECT_NE(sub.error().message.find("revision 15"), std::string::npos) << sub.error().message;
  // From the oldest kept position it works.
  auto ok = subscribe("SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_Package'", 15);
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(revisions(drain(*ok)), (std::vector<std::uint64_t>{16, 17, 18, 19, 20}));
  // Beyond the last revision.
  auto ahead = engine_->subscribe("", "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'",
                                  admin_, 999, {});
  ASSERT_FALSE(ahead.ok());
  EXPECT_EQ(ahead.error().code, WbemCode::kInvalidParameter);
}

TEST_F(EventsTest, SlowSubscriberCatchesUpFromTheJournalWithoutLossOrDuplicate) {
  EventOptions options;
  options.max_queue_events = 8;
  options.catch_up_page = 5;
  open(options);
  auto fast = subscribe("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Package'");
  auto slow = subscribe("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Package'");
  std::vector<std::uint64_t> expected;
  std::vector<std::uint64_t> fast_seen;
  for (int i = 0; i < 60; ++i) {
    expected.push_back(put(package("ABC00001", "v" + std::to_string(i))));
    if (i % 5 == 0) {
      for (auto r : revisions(drain(*fast))) fast_seen.push_back(r);
    }
  }
  for (auto r : revisions(drain(*fast))) fast_seen.push_back(r);
  EXPECT_EQ(fast_seen, expected);
  const EventStats mid = engine_->stats();
  EXPECT_GE(mid.overflows, 1u);
  EXPECT_LE(mid.queued_events, options.max_queue_events);  // the slow one holds at most its bound

  // Writes go on while the slow subscriber catches up page by page.
  std::vector<std::uint64_t> slow_seen;
  for (int i = 0; i < 40; ++i) {
    PollResult r = slow->poll(3);
    for (const Event& e : r.events) slow_seen.push_back(e.revision);
    if (i % 4 == 0) expected.push_back(put(package("ABC00002", "w" + std::to_string(i))));
  }
  for (auto r : revisions(drain(*slow, 3))) slow_seen.push_back(r);
  EXPECT_EQ(slow_seen, expected);
  EXPECT_GT(engine_->stats().catch_up_pages, 0u);
  // Back on the live path: the next change is queued by the dispatcher.
  const std::uint64_t pages = engine_->stats().catch_up_pages;
  const std::uint64_t r = put(package("ABC00003", "live"));
  EXPECT_EQ(revisions(drain(*slow)), std::vector<std::uint64_t>{r});
  EXPECT_EQ(engine_->stats().catch_up_pages, pages);
}

TEST_F(EventsTest, InboxOverflowTurnsEverySubscriberToCatchUp) {
  EventOptions options;
  options.max_inbox_entries = 4;
  open(options);
  auto sub = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'");
  std::vector<cim::Instance> many;
  for (int i = 1; i <= 10; ++i) many.push_back(package("ABC0000" + std::string(1, "0123456789A"[i]), "p"));
  const std::uint64_t last = put(many);
  auto events = drain(*sub);
  ASSERT_EQ(events.size(), 10u);
  EXPECT_EQ(events.back()["__REVISION"], last);
  EXPECT_EQ(engine_->stats().inbox_overflows, 1u);
}

TEST_F(EventsTest, CompactionWhileCatchingUpEndsTheSubscriptionWithTheReason) {
  store::JournalRetention retention;
  retention.max_entries = 3;
  open({}, &cim::ClassRegistry::builtin(), retention);
  const std::uint64_t base = put(package("ABC00001", "v0"));
  for (int i = 1; i <= 10; ++i) put(package("ABC00001", "v" + std::to_string(i)));
  auto sub = subscribe("SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_Package'", base);
  ASSERT_TRUE(store_->compact_journal().ok());
  PollResult r = sub->poll(10);
  EXPECT_TRUE(r.events.empty());
  ASSERT_EQ(r.state, PollState::kEnded);
  EXPECT_EQ(r.error.error().code, WbemCode::kNotFound);
}

// The tokens' audit trail reaches unrestricted full-admin subscribers only, as queries do: a subscription naming
// PKG_Token is refused to any other token.
TEST_F(EventsTest, TokenEventsReachOnlyAnUnrestrictedFullAdmin) {
  const std::string created = "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA ";
  site::TokenRecord reader;
  reader.role = site::Role::kReadOnly;
  site::TokenRecord packager;
  packager.role = site::Role::kPackageAdmin;
  site::TokenRecord branch_admin;
  branch_admin.role = site::Role::kFullAdmin;
  branch_admin.sites = {"ABC"};
  for (const site::TokenRecord* caller : {&reader, &packager, &branch_admin}) {
    for (const std::string& query : {created + "'PKG_Token'",
                                    std::string("SELECT * FROM __InstanceOperationEvent WHERE "
                                                "TargetInstance.__CLASS = 'PKG_Token'")}) {
      auto refused = engine_->subscribe("", query, *caller, std::nullopt, {});
      ASSERT_FALSE(refused.ok()) << query;
      EXPECT_EQ(refused.error().code, WbemCode::kAccessDenied);
    }
  }
  auto token = [&](const std::string& id) {
    cim::Instance t(cls("PKG_Token"));
    EXPECT_TRUE(t.set("TokenID", cim::Value::string(id)).ok());
    EXPECT_TRUE(t.set("Role", cim::Value::string("read-only")).ok());
    return t;
  };
  const std::uint64_t before = put(token("aaaaaaaaaaaa"));
  auto admin = subscribe(created + "'PKG_Token'", before - 1);
  put(token("bbbbbbbbbbbb"));
  EXPECT_EQ(drain(*admin).size(), 2u);
}

TEST_F(EventsTest, ScopedCallerSeesOnlyItsSitesEvents) {
  site::TokenRecord branch;
  branch.role = site::Role::kReadOnly;
  branch.sites = {"s01"};
  auto pkgs = subscribe("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Package'", std::nullopt,
                        &branch);
  const std::string programs_query = "SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Program'";
  auto programs = subscribe(programs_query, std::nullopt, &branch);
  auto contents = subscribe("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_DPGroupContentInfo'",
                            std::nullopt, &branch);
  put(package("ABC00001", "head office", "ABC"));
  const std::uint64_t mine = put(package("S0100001", "branch", "S01"));
  auto program = [&](const std::string& id) {
    cim::Instance p(cls("SMS_Program"));
    EXPECT_TRUE(p.set("PackageID", cim::Value::string(id)).ok());
    EXPECT_TRUE(p.set("ProgramName", cim::Value::string("Install")).ok());
    return p;
  };
  auto content = [&](const std::string& id) {
    cim::Instance c(cls("SMS_DPGroupContentInfo"));
    EXPECT_TRUE(c.set("GroupID", cim::Value::string("{G}")).ok());
    EXPECT_TRUE(c.set("PackageID", cim::Value::string(id)).ok());
    EXPECT_TRUE(c.set("Name", cim::Value::string("secret " + id)).ok());
    return c;
  };
  put(program("ABC00001"));
  const std::uint64_t my_program = put(program("S0100001"));
  // A group spans sites, but its content rows describe packages: each is placed by its package's site.
  put(content("ABC00001"));
  const std::uint64_t my_content = put(content("S0100001"));
  EXPECT_EQ(revisions(drain(*contents)), std::vector<std::uint64_t>{my_content});
  // The package goes, its program after it: the program's deletion is still placed at the package's site (by its
  // PackageID, not by a package that no longer exists), live and when replayed.
  remove("SMS_Package", {cim::Value::string("S0100001")});
  const std::uint64_t my_program_gone =
      remove("SMS_Program", {cim::Value::string("S0100001"), cim::Value::string("Install")});
  remove("SMS_Program", {cim::Value::string("ABC00001"), cim::Value::string("Install")});
  EXPECT_EQ(revisions(drain(*programs)), (std::vector<std::uint64_t>{my_program, my_program_gone}));
  auto replayed = subscribe(programs_query, 0, &branch);
  EXPECT_EQ(revisions(drain(*replayed)), (std::vector<std::uint64_t>{my_program, my_program_gone}));
  // A package moving from the caller's site to another is hidden: its new form is not the caller's to read.
  put(package("S0100002", "branch", "S01"));
  const std::uint64_t mine_too = put(package("S0100003", "branch", "S01"));
  put(package("S0100003", "branch", "ABC"));
  const auto seen = revisions(drain(*pkgs));
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen.front(), mine);
  EXPECT_EQ(seen.back(), mine_too);
  // Resuming applies the same rule to the journal.
  auto resumed = subscribe("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Package'", 0,
                           &branch);
  EXPECT_EQ(revisions(drain(*resumed)), seen);
}

// A client may read the store's last revision (as /health reports it) a moment before the engine's commit
// listener has been handed that commit: a resume from it is accepted then too, and delivers only what comes after.
TEST_F(EventsTest, AResumeFromTheCommittedRevisionIsAcceptedBeforeTheEngineHasIt) {
  // A listener registered before the engine's runs with the commit stored and not yet handed to the engine.
  std::atomic<EventEngine*> engine{nullptr};
  std::atomic<int> checked{0};
  Status in_window = ok_status();
  std::uint64_t committed = 0;
  open({}, &cim::ClassRegistry::builtin(), {}, [&](store::Store& store) {
    store.add_commit_listener([&](const std::vector<store::JournalEntry>&) {
      EventEngine* e = engine.load();
      if (e == nullptr || checked.load() != 0) return;
      committed = *store_->last_revision();
      in_window = e->check("", "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'", admin_,
                           committed);
      checked = 1;
    });
  });
  engine = engine_.get();
  const std::uint64_t first = put(package("ABC00001", "one"));
  ASSERT_EQ(checked.load(), 1);
  EXPECT_EQ(committed, first);
  EXPECT_TRUE(in_window.ok()) << in_window.error().to_string();
  auto sub = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'", first);
  const std::uint64_t second = put(package("ABC00002", "two"));
  EXPECT_EQ(revisions(drain(*sub)), std::vector<std::uint64_t>{second});
}

TEST_F(EventsTest, TenThousandSubscriptionsOpenedAndClosedLeaveNothingBehind) {
  for (int round = 0; round < 2; ++round) {
    std::vector<std::unique_ptr<Subscription>> subs;
    subs.reserve(10'000);
    for (int i = 0; i < 10'000; ++i) {
      std::string q = i % 10 == 0
                          ? "SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA "
                            "'SMS_PackageStatusDistPointsSummarizer'"
                          : "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA "
                            "'SMS_PackageStatusRootSummarizer' AND TargetInstance.PackageID = 'ABC" +
                                std::to_string(10'000 + i) + "'";
      auto sub = engine_->subscribe("", q, admin_, std::nullopt, {});
      ASSERT_TRUE(sub.ok()) << sub.error().to_string();
      subs.push_back(std::move(*sub));
    }
    put(package("ABC00001", "while open"));
    engine_->wait_dispatched_for_test();
    EXPECT_EQ(engine_->stats().subscriptions, 10'000u);
    EXPECT_GT(engine_->stats().index_slots, 9'000u);
    subs.clear();
    const EventStats s = engine_->stats();
    EXPECT_EQ(s.subscriptions, 0u);
    EXPECT_EQ(s.index_slots, 0u);
    EXPECT_EQ(s.queued_events, 0u);
  }
}

TEST_F(EventsTest, BoundsAndBadInput) {
  EventOptions options;
  options.max_subscriptions = 2;
  open(options);
  const char* q = "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'";
  auto a = subscribe(q);
  auto b = subscribe(q);
  auto c = engine_->subscribe("", q, admin_, std::nullopt, {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, WbemCode::kServerTooBusy);
  b.reset();
  EXPECT_TRUE(engine_->subscribe("", q, admin_, std::nullopt, {}).ok());

  struct Case {
    std::string ns;
    std::string query;
    WbemCode code;
  };
  const std::vector<Case> cases = {
      {"", "SELECT * FROM SMS_Package", WbemCode::kInvalidQueryType},
      {"", "SELECT * FROM __InstanceCreationEvent", WbemCode::kInvalidQuery},
      {"", "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_BaseClass'", WbemCode::kInvalidQuery},
      {"", "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Nope'", WbemCode::kInvalidClass},
      {"", "SELECT * FROM __ClassModificationEvent WITHIN 10 WHERE TargetClass ISA 'SMS_Package'",
       WbemCode::kNotSupported},
      {"", "SELECT * FROM __NamespaceDeletionEvent WITHIN 10", WbemCode::kNotSupported},
      {"", "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package' AND TargetInstance.Nope = 1",
       WbemCode::kInvalidProperty},
      {"", "SELECT * FROM __InstanceCreationEvent WHER", WbemCode::kInvalidQuery},
      {"root\\sms\\site_XYZ", "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'",
       WbemCode::kInvalidNamespace},
  };
  a.reset();
  for (const Case& k : cases) {
    auto r = engine_->subscribe(k.ns, k.query, admin_, std::nullopt, {});
    ASSERT_FALSE(r.ok()) << k.query;
    EXPECT_EQ(r.error().code, k.code) << k.query << ": " << r.error().to_string();
  }
  EventOptions zero;
  zero.max_queue_events = 0;
  EXPECT_FALSE(EventEngine::create(*store_, *provider_, zero).ok());
}

TEST_F(EventsTest, SubscriptionOutlivingTheEngineEnds) {
  auto sub = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'");
  engine_.reset();
  PollResult r = sub->poll(1);
  ASSERT_EQ(r.state, PollState::kEnded);
  EXPECT_EQ(r.error.error().code, WbemCode::kShuttingDown);
}

}  // namespace
}  // namespace pkgcast::provider::testing
