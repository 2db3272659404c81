// Conformance: the reader pool's bound (max_readers, plus the same again for reads nested in a read), the
// WBEM_E_SERVER_TOO_BUSY answer after reader_wait, and connections coming back on every path a read can end by.
#include <latch>
#include <thread>

#include "store/store_test_util.h"

namespace pkgcast::store::testing {
namespace {

using cim::Value;

class StorePoolTest : public StoreTest {
 protected:
  void SetUp() override {
    options_.max_readers = 2;
    options_.reader_wait = std::chrono::milliseconds(200);
    StoreTest::SetUp();
  }
};

TEST_P(StorePoolTest, AtMostMaxReadersAtOnceThenServerTooBusy) {
  ASSERT_TRUE(put(package("ABC00001")).ok());
  EXPECT_EQ(sql_store().max_readers(), 2U);
  std::latch inside(2);
  std::latch release(1);
  std::vector<Status> nested(2);
  std::vector<Status> scans(2);
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) {
    readers.emplace_back([&, i] {
      scans[i] = store_->scan(cls("SMS_Package"), Predicate::always(), [&](cim::Instance&&) {
        // A lookup from a scan's callback takes a nested connection, which the bound does not starve.
        auto got = store_->get(cls("SMS_Package"), {Value::string("ABC00001")});
        nested[i] = got.ok() ? ok_status() : Status(got.error());
        inside.count_down();
        release.wait();
        return true;
      });
    });
  }
  inside.wait();
  auto busy = store_->get(cls("SMS_Package"), {Value::string("ABC00001")});
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code, WbemCode::kServerTooBusy);
  EXPECT_NE(busy.error().message.find("db_max_readers"), std::string::npos) << busy.error().message;
  Status busy_scan = store_->scan(cls("SMS_Package"), Predicate::always(), [](cim::Instance&&) { return true; });
  EXPECT_EQ(busy_scan.error().code, WbemCode::kServerTooBusy);
  EXPECT_LE(sql_store().reader_connections_for_test(), 4U);  // 2 reads + 2 nested lookups, never more
  release.count_down();
  for (auto& t : readers) t.join();
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(scans[i].ok()) << scans[i].error().to_string();
    EXPECT_TRUE(nested[i].ok()) << nested[i].error().to_string();
  }
  // Freed: reads work again, and only max_readers connections stay open idle.
  EXPECT_TRUE(get(cls("SMS_Package"), {Value::string("ABC00001")}).has_value());
  EXPECT_LE(sql_store().reader_connections_for_test(), 2U);
}

TEST_P(StorePoolTest, AReadWaitsForAConnectionToComeBack) {
  ASSERT_TRUE(put(package("ABC00001")).ok());
  options_.max_readers = 1;
  options_.reader_wait = std::chrono::seconds(30);
  reopen();
  std::latch inside(1);
  std::latch release(1);
  std::thread holder([&] {
    (void)store_->scan(cls("SMS_Package"), Predicate::always(), [&](cim::Instance&&) {
      inside.count_down();
      release.wait();
      return true;
    });
  });
  inside.wait();
  std::thread waiter([&] { EXPECT_TRUE(get(cls("SMS_Package"), {Value::string("ABC00001")}).has_value()); });
  release.count_down();  // the waiter gets the connection when the scan gives it back, well inside reader_wait
  holder.join();
  waiter.join();
  EXPECT_EQ(sql_store().reader_connections_for_test(), 1U);
}

// With one reader connection and a short wait, any path that kept its connection would make the next read fail.
TEST_P(StorePoolTest, EveryReadPathGivesItsConnectionBack) {
  for (int i = 1; i <= 6; ++i) ASSERT_TRUE(put(package("ABC0000" + std::to_string(i))).ok());
  options_.max_readers = 1;
  options_.retention.max_entries = 2;
  options_.retention.max_age_seconds = 0;
  reopen();
  ASSERT_TRUE(store_->compact_journal().ok());
  const cim::ClassDef& pkg = cls("SMS_Package");
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    // A scan whose sink stops early.
    int rows = 0;
    EXPECT_TRUE(store_->scan(pkg, Predicate::always(), [&](cim::Instance&&) { return ++rows < 2; }).ok());
    EXPECT_EQ(rows, 2);
    // A scan that fails after taking its connection (a predicate the table cannot evaluate).
    Status bad_scan = store_->scan(pkg, Predicate::is_null(10'000), [](cim::Instance&&) { return true; });
    EXPECT_EQ(bad_scan.error().code, WbemCode::kInvalidProperty);
    // A scan with a limit, read to the end.
    ScanOptions limit;
    limit.limit = 3;
    EXPECT_EQ(scan_all(pkg, Predicate::always(), limit).size(), 3U);
    // A get whose key does not fit the class, one that finds nothing, one that finds.
    EXPECT_FALSE(store_->get(pkg, {Value::string("a"), Value::string("b")}).ok());
    EXPECT_FALSE(get(pkg, {Value::string("NOPE0001")}).has_value());
    EXPECT_TRUE(get(pkg, {Value::string("ABC00001")}).has_value());
    // Journal reads: refused as compacted (inside a read transaction), stopped early, read through.
    Status compacted = store_->read_journal(0, 10, [](JournalEntry&&) { return true; });
    EXPECT_EQ(compacted.error().code, WbemCode::kNotFound);
    EXPECT_TRUE(store_->read_journal(4, 10, [](JournalEntry&&) { return false; }).ok());
    EXPECT_EQ(journal_after(4).size(), 2U);
    EXPECT_TRUE(store_->first_revision().ok());
    EXPECT_TRUE(store_->get_meta("nothing").ok());
    EXPECT_TRUE(store_->list_meta("").ok());
    EXPECT_FALSE(store_->list_meta(std::string("a\0b", 3)).ok());
  }
  EXPECT_EQ(sql_store().reader_connections_for_test(), 1U);
}

// The database ends the pool's idle connections (a restart, a failover, pg_terminate_backend, an idle reaper): the
// next read on each path still answers, on a new connection, and the journal read says nothing twice.
TEST_P(StorePoolTest, AReadSurvivesItsPooledConnectionBeingLost) {
  if (!is_pg()) GTEST_SKIP() << "SQLite has no session to kill";
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(put(package("ABC0000" + std::to_string(i))).ok());
  const cim::ClassDef& pkg = cls("SMS_Package");
  // Every session of this database but the writer's (which holds the advisory lock) and the one asking.
  const std::string kill_readers =
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND "
      "pid <> pg_backend_pid() AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')";
  auto lose_the_pool = [&] {
    ASSERT_TRUE(store_->get_meta("warm").ok());  // a reader connection idles in the pool
    auto killed = db_->raw_query_text(kill_readers);
    ASSERT_TRUE(killed.ok()) << killed.error().to_string();
    ASSERT_NE(*killed, "0\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the backends are gone
  };
  lose_the_pool();
  EXPECT_EQ(scan_all(pkg).size(), 3U);
  lose_the_pool();
  auto got = store_->get(pkg, {Value::string("ABC00002")});
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_TRUE(got->has_value());
  lose_the_pool();
  auto counted = store_->count(pkg, Predicate::always());
  ASSERT_TRUE(counted.ok()) << counted.error().to_string();
  EXPECT_EQ(*counted, 3U);
  lose_the_pool();
  std::vector<std::uint64_t> revisions;
  ASSERT_TRUE(store_->read_journal(0, 10, [&](JournalEntry&& e) {
    revisions.push_back(e.revision);
    return true;
  }).ok());
  EXPECT_EQ(revisions, (std::vector<std::uint64_t>{1, 2, 3}));
  lose_the_pool();
  EXPECT_TRUE(store_->first_revision().ok());
  lose_the_pool();
  EXPECT_TRUE(store_->list_meta("").ok());
  // And writes go on.
  EXPECT_TRUE(put(package("ABC00004")).ok());
}

TEST_P(StorePoolTest, BackendDefaultsAndBadOptions) {
  options_.max_readers = 0;
  reopen();
  EXPECT_EQ(sql_store().max_readers(), is_pg() ? kDefaultPostgresReaders : kDefaultSqliteReaders);
  OpenOptions bad = options_;
  bad.reader_wait = std::chrono::milliseconds(-1);
  auto r = open_with(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kInvalidParameter);
}

PKGCAST_STORE_BACKENDS(StorePoolTest);

}  // namespace
}  // namespace pkgcast::store::testing
