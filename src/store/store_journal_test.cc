// Conformance: the batching writer and the journal — revisions, batches, rollback of one command, commit
// failure, concurrency, listeners, compaction and the compacted-resume error, reopen.
#include <algorithm>
#include <latch>
#include <set>
#include <thread>

#include "store/store_test_util.h"

namespace pkgcast::store::testing {
namespace {

using cim::Value;

std::string pkg_id(int n) {
  char id[16];
  std::snprintf(id, sizeof id, "ABC%05X", n);
  return id;
}

class StoreJournalTest : public StoreTest {
 protected:
  // Blocks the writer until the returned latch is released, so that later submits queue up into one batch.
  std::future<Result<CommitInfo>> block_writer(std::latch& release, std::latch& started) {
    return store_->submit([&](WriteTxn&) {
      started.count_down();
      release.wait();
      return ok_status();
    });
  }
};

TEST_P(StoreJournalTest, RevisionsStartAtOneAndHaveNoGaps) {
  EXPECT_EQ(last_rev(), 0U);
  EXPECT_EQ(*store_->first_revision(), 1U);
  ASSERT_TRUE(put(package(pkg_id(1), "a")).ok());
  ASSERT_TRUE(put(package(pkg_id(2), "b")).ok());
  ASSERT_TRUE(put(package(pkg_id(1), "c")).ok());
  ASSERT_TRUE(remove(cls("SMS_Package"), {Value::string(pkg_id(2))}).ok());
  auto e = journal_after(0);
  ASSERT_EQ(e.size(), 4U);
  for (std::size_t i = 0; i < e.size(); ++i) {
    EXPECT_EQ(e[i].revision, i + 1);
    EXPECT_EQ(e[i].time, kStartTime);
  }
  EXPECT_EQ(e[2].kind, ChangeKind::kModified);
  EXPECT_EQ(e[3].kind, ChangeKind::kDeleted);
  EXPECT_EQ(*e[3].instance, *e[3].previous);  // a deletion carries the instance as it was
  EXPECT_EQ(e[3].instance->get(prop("SMS_Package", "Name")), Value::string("b"));
  EXPECT_EQ(last_rev(), 4U);
  EXPECT_EQ(*store_->first_revision(), 1U);
  // Limits and early stop.
  EXPECT_EQ(journal_after(1, 2).size(), 2U);
  EXPECT_EQ(journal_after(1, 2)[0].revision, 2U);
  EXPECT_TRUE(journal_after(4).empty());
  int seen = 0;
  ASSERT_TRUE(store_->read_journal(0, 100, [&](JournalEntry&&) { return ++seen < 2; }).ok());
  EXPECT_EQ(seen, 2);
  Status beyond = store_->read_journal(5, 10, [](JournalEntry&&) { return true; });
  EXPECT_EQ(beyond.error().code, WbemCode::kInvalidParameter);
}

TEST_P(StoreJournalTest, AFailingCommandRollsBackAloneInsideItsBatch) {
  std::vector<std::vector<JournalEntry>> committed;
  store_->add_commit_listener([&](const std::vector<JournalEntry>& e) { committed.push_back(e); });
  std::latch release(1), started(1);
  auto blocker = block_writer(release, started);
  started.wait();
  std::vector<Micros> seen_now;
  auto a = store_->submit([&](WriteTxn& t) {
    seen_now.push_back(t.now());
    return t.put(package(pkg_id(1), "a"));
  });
  auto b = store_->submit([&](WriteTxn& t) -> Status {
    seen_now.push_back(t.now());
    PKG_TRY(t.put(package(pkg_id(2), "b")));
    PKG_TRY(t.put_meta("from-b", "x"));
    return make_error(WbemCode::kInvalidOperation, "b changes its mind");
  });
  auto c = store_->submit([&](WriteTxn& t) -> Status {
    seen_now.push_back(t.now());
    PKG_TRY(t.put(package(pkg_id(3), "c")));
    return t.put(package(pkg_id(4), "d"));
  });
  auto d = store_->submit([](WriteTxn&) -> Status { throw std::runtime_error("boom"); });
  auto e = store_->submit([this](WriteTxn& t) { return t.put(package(pkg_id(5), "e")); });
  clock_.advance(std::chrono::seconds(5));
  release.count_down();
  ASSERT_TRUE(blocker.get().ok());
  auto ra = a.get();
  auto rb = b.get();
  auto rc = c.get();
  auto rd = d.get();
  auto re = e.get();
  ASSERT_TRUE(ra.ok() && rc.ok() && re.ok());
  EXPECT_EQ(rb.error().code, WbemCode::kInvalidOperation);
  EXPECT_EQ(rb.error().message, "b changes its mind");
  EXPECT_EQ(rd.error().code, WbemCode::kFailed);
  EXPECT_EQ(ra->revision, 1U);
  EXPECT_EQ(rc->revision, 3U);  // c journaled 2 and 3: b's revision was given back
  EXPECT_EQ(re->revision, 4U);
  EXPECT_FALSE(get(cls("SMS_Package"), {Value::string(pkg_id(2))}).has_value());
  EXPECT_FALSE(store_->get_meta("from-b")->has_value());
  auto entries = journal_after(0);
  ASSERT_EQ(entries.size(), 4U);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(entries[i].revision, i + 1);
  // One batch: one clock reading, one listener call with exactly the committed entries.
  ASSERT_EQ(seen_now.size(), 3U);
  EXPECT_EQ(seen_now[0], seen_now[1]);
  EXPECT_EQ(seen_now[1], seen_now[2]);
  EXPECT_EQ(entries[0].time, seen_now[0]);
  ASSERT_EQ(committed.size(), 1U);
  ASSERT_EQ(committed[0].size(), 4U);
  EXPECT_EQ(committed[0][1].key, "SMS_Package.PackageID=\"ABC00003\"");
}

TEST_P(StoreJournalTest, AFailedCommitFailsTheWholeBatchAndGivesBackItsRevisions) {
  ASSERT_TRUE(put(package(pkg_id(1))).ok());
  int listener_calls = 0;
  store_->add_commit_listener([&](const std::vector<JournalEntry>&) { ++listener_calls; });
  std::latch release(1), started(1);
  auto blocker = block_writer(release, started);
  started.wait();
  sql_store().fail_next_commit_for_test(make_error(WbemCode::kOutOfDiskSpace, "disk full (injected)"));
  auto a = store_->submit([this](WriteTxn& t) { return t.put(package(pkg_id(2))); });
  auto b = store_->submit([](WriteTxn&) { return Status(make_error(WbemCode::kNotFound, "own error")); });
  release.count_down();
  // The blocker's batch had started before the injection; the next batch to start (a, b) takes it.
  ASSERT_TRUE(blocker.get().ok());
  auto ra = a.get();
  ASSERT_FALSE(ra.ok());
  EXPECT_EQ(ra.error().code, WbemCode::kOutOfDiskSpace);
  EXPECT_EQ(b.get().error().code, WbemCode::kNotFound);  // its own error wins
  EXPECT_FALSE(get(cls("SMS_Package"), {Value::string(pkg_id(2))}).has_value());
  EXPECT_EQ(last_rev(), 1U);
  EXPECT_EQ(listener_calls, 0);
  auto next = store_->execute([this](WriteTxn& t) { return t.put(package(pkg_id(3))); });
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->revision, 2U);
  EXPECT_EQ(journal_after(0).size(), 2U);
}

// The connection dies after the server committed a batch and before its answer arrived: the batch's commands
// failed, yet their changes are in. The next batch, on a new connection, finds them in the journal: listeners
// are told, and revisions go on after them instead of being given twice.
TEST_P(StoreJournalTest, ACommitWhoseAnswerWasLostIsTakenUpFromTheJournal) {
  ASSERT_TRUE(put(package(pkg_id(1), "a")).ok());
  std::vector<std::uint64_t> told;
  store_->add_commit_listener([&](const std::vector<JournalEntry>& e) {
    for (const auto& x : e) told.push_back(x.revision);
  });
  sql_store().lose_next_commit_answer_for_test();
  auto lost = store_->execute([this](WriteTxn& t) { return t.put(package(pkg_id(2), "b")); });
  ASSERT_FALSE(lost.ok());
  EXPECT_NE(lost.error().message.find("lost"), std::string::npos) << lost.error().message;
  auto next = store_->execute([this](WriteTxn& t) { return t.put(package(pkg_id(3), "c")); });
  ASSERT_TRUE(next.ok()) << next.error().to_string();
  EXPECT_EQ(next->revision, 3U);
  EXPECT_EQ(told, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(last_rev(), 3U);
  auto e = journal_after(0);
  ASSERT_EQ(e.size(), 3U);
  EXPECT_EQ(e[1].instance->get(prop("SMS_Package", "Name")), Value::string("b"));
  EXPECT_TRUE(get(cls("SMS_Package"), {Value::string(pkg_id(2))}).has_value());
}

// The writer's PostgreSQL session is killed while a batch commits and the next one runs (the server's side of a
// restart). Whatever the killed batches' commands were told, the store goes on: the next command commits, the
// journal has no gap, every journaled revision reached the listeners exactly once, in order, and a row exists
// exactly when its revision does.
TEST_P(StoreJournalTest, KillingTheWritersSessionMidCommitLosesAndRepeatsNothing) {
  if (!is_pg()) GTEST_SKIP() << "SQLite has no session to kill";
  options_.max_batch = 1;
  reopen();
  ASSERT_TRUE(put(package(pkg_id(1), "a")).ok());
  std::vector<std::uint64_t> told;
  store_->add_commit_listener([&](const std::vector<JournalEntry>& e) {
    for (const auto& x : e) told.push_back(x.revision);
  });
  const std::string kill_writer =
      "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND "
      "database = (SELECT oid FROM pg_database WHERE datname = current_database())";
  std::latch release(1), started(1);
  auto blocker = block_writer(release, started);
  started.wait();
  auto b = store_->submit([this](WriteTxn& t) { return t.put(package(pkg_id(2), "b")); });
  auto c = store_->submit([&](WriteTxn& t) -> Status {
    // Runs while b's COMMIT may still be in flight.
    auto killed = db_->raw_query_text(kill_writer);
    if (!killed.ok()) return killed.error();
    return t.put(package(pkg_id(3), "c"));
  });
  release.count_down();
  ASSERT_TRUE(blocker.get().ok());
  (void)b.get();  // either outcome: its answer may or may not have arrived before the session died
  (void)c.get();
  Result<CommitInfo> after = make_error(WbemCode::kFailed, "not run");
  for (int attempt = 0; attempt < 3 && !after.ok(); ++attempt) {
    after = store_->execute([this](WriteTxn& t) { return t.put(package(pkg_id(4), "d")); });
  }
  ASSERT_TRUE(after.ok()) << after.error().to_string();
  const std::uint64_t last = last_rev();
  EXPECT_EQ(after->revision, last);
  auto entries = journal_after(0);
  ASSERT_EQ(entries.size(), last);
  std::vector<std::uint64_t> expected;
  for (const auto& e : entries) {
    expected.push_back(e.revision);
    EXPECT_EQ(e.revision, expected.size());
  }
  expected.erase(expected.begin());  // revision 1 came before the listener
  EXPECT_EQ(told, expected);
  for (int n = 2; n <= 3; ++n) {
    const bool journaled = std::any_of(entries.begin(), entries.end(), [&](const JournalEntry& e) {
      return e.key.find(pkg_id(n)) != std::string::npos;
    });
    EXPECT_EQ(get(cls("SMS_Package"), {Value::string(pkg_id(n))}).has_value(), journaled) << pkg_id(n);
  }
}

TEST_P(StoreJournalTest, ConcurrentSubmitsFromSeveralThreads) {
  constexpr int kThreads = 4;
  constexpr int kEach = 150;
  std::mutex mu;
  std::set<std::uint64_t> revisions;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<Result<CommitInfo>>> mine;
      for (int i = 0; i < kEach; ++i) {
        cim::Instance p = package(pkg_id(t * kEach + i + 1), "t" + std::to_string(t));
        mine.push_back(store_->submit([p](WriteTxn& txn) { return txn.put(p); }));
      }
      for (auto& f : mine) {
        auto r = f.get();
        std::lock_guard lock(mu);
        EXPECT_TRUE(r.ok());
        if (r.ok()) revisions.insert(r->revision);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(revisions.size(), static_cast<std::size_t>(kThreads * kEach));
  EXPECT_EQ(*revisions.begin(), 1U);
  EXPECT_EQ(*revisions.rbegin(), static_cast<std::uint64_t>(kThreads * kEach));
  auto entries = journal_after(0);
  ASSERT_EQ(entries.size(), static_cast<std::size_t>(kThreads * kEach));
  for (std::size_t i = 0; i < entries.size(); ++i) ASSERT_EQ(entries[i].revision, i + 1);
  EXPECT_EQ(scan_all(cls("SMS_Package")).size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST_P(StoreJournalTest, RevisionsContinueAfterReopen) {
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(put(package(pkg_id(i))).ok());
  reopen();
  EXPECT_EQ(last_rev(), 3U);
  auto r = store_->execute([this](WriteTxn& t) { return t.put(package(pkg_id(9))); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, 4U);
  auto nothing = store_->execute([](WriteTxn& t) { return t.put_meta("a", "b"); });
  EXPECT_EQ(nothing->revision, 4U);  // journaled nothing: the store's last revision
  EXPECT_EQ(journal_after(0).size(), 4U);
}

TEST_P(StoreJournalTest, CompactionByCountThenResumeFromCompactedIsAnError) {
  options_.retention.max_entries = 3;
  options_.retention.max_age_seconds = 0;
  reopen();
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(put(package(pkg_id(i))).ok());
  auto dropped = store_->compact_journal();
  ASSERT_TRUE(dropped.ok()) << dropped.error().to_string();
  EXPECT_EQ(*dropped, 7U);
  EXPECT_EQ(*store_->first_revision(), 8U);
  EXPECT_EQ(last_rev(), 10U);
  Status st = store_->read_journal(5, 100, [](JournalEntry&&) { return true; });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, WbemCode::kNotFound);
  EXPECT_NE(st.error().message.find("revision 6 was compacted"), std::string::npos) << st.error().message;
  auto rest = journal_after(7);
  ASSERT_EQ(rest.size(), 3U);
  EXPECT_EQ(rest[0].revision, 8U);
  EXPECT_EQ(*store_->compact_journal(), 0U);  // idempotent
  reopen();
  EXPECT_EQ(*store_->first_revision(), 8U);
  EXPECT_EQ(store_->read_journal(0, 1, [](JournalEntry&&) { return true; }).error().code, WbemCode::kNotFound);
}

TEST_P(StoreJournalTest, CompactionByAgeCanEmptyTheJournalWithoutLosingTheRevision) {
  options_.retention.max_entries = 0;
  options_.retention.max_age_seconds = 86'400;
  reopen();
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(put(package(pkg_id(i))).ok());
  clock_.advance(std::chrono::hours(36));
  for (int i = 5; i <= 6; ++i) ASSERT_TRUE(put(package(pkg_id(i))).ok());
  EXPECT_EQ(*store_->compact_journal(), 4U);
  EXPECT_EQ(*store_->first_revision(), 5U);
  clock_.advance(std::chrono::hours(36));
  EXPECT_EQ(*store_->compact_journal(), 2U);
  EXPECT_EQ(last_rev(), 6U);
  EXPECT_EQ(*store_->first_revision(), 7U);  // empty journal: last + 1
  EXPECT_TRUE(journal_after(6).empty());
  EXPECT_EQ(store_->read_journal(5, 10, [](JournalEntry&&) { return true; }).error().code, WbemCode::kNotFound);
  reopen();
  EXPECT_EQ(last_rev(), 6U);
  auto r = store_->execute([this](WriteTxn& t) { return t.put(package(pkg_id(7))); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, 7U);
}

TEST_P(StoreJournalTest, ListenersSeeEveryCommitInOrder) {
  std::vector<std::uint64_t> seen;
  store_->add_commit_listener([&](const std::vector<JournalEntry>& e) {
    for (const auto& x : e) seen.push_back(x.revision);
  });
  for (int i = 1; i <= 20; ++i) store_->submit([this, i](WriteTxn& t) { return t.put(package(pkg_id(i))); });
  ASSERT_TRUE(store_->execute([](WriteTxn&) { return ok_status(); }).ok());
  ASSERT_EQ(seen.size(), 20U);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

PKGCAST_STORE_BACKENDS(StoreJournalTest);

}  // namespace
}  // namespace pkgcast::store::testing
