// JournalCompactor against a real SQLite store: passes at start and per interval, totals, a failing store, stop.
#include "server/journal_compactor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "cim/cim.h"
#include "store/store.h"

namespace pkgcast::server {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class JournalCompactorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pkgcast-compactor-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store::OpenOptions open;
    open.url = (dir_ / "pkgcast.db").string();
    open.retention.max_entries = 2;
    open.retention.max_age_seconds = 0;
    auto s = store::Store::open(open);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  void put_packages(int from, int to) {
    const cim::ClassDef* package = store_->registry().find("SMS_Package");
    ASSERT_NE(package, nullptr);
    for (int i = from; i <= to; ++i) {
      cim::Instance p(*package);
      ASSERT_TRUE(p.set("PackageID", cim::Value::string("P01" + std::to_string(10000 + i))).ok());
      auto done = store_->execute([&](store::WriteTxn& txn) { return txn.put(p); });
      ASSERT_TRUE(done.ok()) << done.error().to_string();
    }
  }

  // Waits (bounded) until the compactor has finished at least `n` passes.
  static bool passes_reach(const JournalCompactor& c, std::uint64_t n) {
    for (int i = 0; i < 500 && c.passes() < n; ++i) std::this_thread::sleep_for(10ms);
    return c.passes() >= n;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(JournalCompactorTest, CompactsAtStartAndEveryInterval) {
  put_packages(1, 5);
  JournalCompactor compactor(*store_, 50ms);
  ASSERT_TRUE(passes_reach(compactor, 1));
  EXPECT_EQ(compactor.dropped(), 3u);
  EXPECT_EQ(*store_->first_revision(), 4u);
  const std::uint64_t passes = compactor.passes();
  put_packages(6, 9);
  ASSERT_TRUE(passes_reach(compactor, passes + 2));  // a whole pass after the puts
  EXPECT_EQ(compactor.dropped(), 7u);
  EXPECT_EQ(*store_->first_revision(), 8u);
  EXPECT_EQ(*store_->last_revision(), 9u);
}

TEST_F(JournalCompactorTest, StopWakesALongSleepAndIsIdempotent) {
  JournalCompactor compactor(*store_, 24h);
  ASSERT_TRUE(passes_reach(compactor, 1));
  const auto t0 = std::chrono::steady_clock::now();
  compactor.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  compactor.stop();
  EXPECT_EQ(compactor.passes(), 1u);
}

TEST_F(JournalCompactorTest, AFailingStoreIsRetriedAndChangesNothing) {
  put_packages(1, 5);
  store_->close();
  auto refused = store_->compact_journal();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, WbemCode::kShuttingDown);
  JournalCompactor compactor(*store_, 20ms);
  ASSERT_TRUE(passes_reach(compactor, 3));  // it keeps trying, logging a warning each time
  compactor.stop();
  EXPECT_EQ(compactor.dropped(), 0u);
  store::OpenOptions open;
  open.url = (dir_ / "pkgcast.db").string();
  open.retention.max_entries = 0;  // reopening must not compact either
  auto reopened = store::Store::open(open);
  ASSERT_TRUE(reopened.ok()) << reopened.error().to_string();
  store_ = std::move(*reopened);
  EXPECT_EQ(*store_->first_revision(), 1u);
  EXPECT_EQ(*store_->last_revision(), 5u);
}

}  // namespace
}  // namespace pkgcast::server
