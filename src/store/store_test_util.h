// The conformance suite's fixture: every TEST_P runs once per backend ("sqlite", "postgresql") on a fresh, empty
// database. PostgreSQL cases need PKGCAST_TEST_PG_URL (a maintenance URL: the fixture creates and drops its own
// database pkgcast_test_<random> through it) and are skipped, saying so, when it is unset.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/sql.h"
#include "store/sql_store.h"
#include "store/store.h"

namespace pkgcast::store::testing {

inline constexpr Micros kStartTime = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z

// A fresh database: an SQLite file in a mkdtemp directory, or a new PostgreSQL database. Removed on destruction.
class TestDatabase {
 public:
  // nullopt with `skip_reason` set when the backend is not available here.
  static std::unique_ptr<TestDatabase> create(const std::string& backend, std::string& skip_reason,
                                              std::string& error);
  ~TestDatabase();
  const std::string& url() const { return url_; }
  const std::string& backend() const { return backend_; }
  // Runs SQL on the database outside any store (to tamper with it as an older or newer pkgcast would).
  Status raw_exec(const std::string& sql) const;
  Result<std::string> raw_query_text(const std::string& sql) const;

 private:
  std::string backend_;
  std::string url_;
  std::string dir_;            // sqlite
  std::string maintenance_;    // postgresql
  std::string database_;       // postgresql
};

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // (Re)opens store_ on the test database with options_ (url filled in).
  void reopen();
  Result<std::unique_ptr<Store>> open_with(OpenOptions options);
  SqlStore& sql_store() { return static_cast<SqlStore&>(*store_); }
  bool is_pg() const { return GetParam() == "postgresql"; }

  const cim::ClassDef& cls(std::string_view name) const;
  std::size_t prop(std::string_view cls_name, std::string_view prop_name) const;
  // An SMS_Package with PackageID and Name set.
  cim::Instance package(const std::string& id, const std::string& name = "pkg") const;

  Status put(const cim::Instance& inst);
  Status insert(const cim::Instance& inst);
  Status remove(const cim::ClassDef& c, std::vector<cim::Value> key);
  std::optional<cim::Instance> get(const cim::ClassDef& c, std::vector<cim::Value> key);
  // Every instance a scan returns, in order; fails the test on error.
  std::vector<cim::Instance> scan_all(const cim::ClassDef& c, const Predicate& p = Predicate::always(),
                                      ScanOptions o = {});
  std::vector<JournalEntry> journal_after(std::uint64_t after, std::size_t limit = 1'000'000);
  std::uint64_t last_rev();
  // Runs `commands` in one writer batch, in order (the writer is held busy while they queue), and returns each
  // command's outcome.
  std::vector<Result<CommitInfo>> run_in_one_batch(std::vector<WriteCommand> commands);

  ManualClock clock_{kStartTime};
  OpenOptions options_;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Store> store_;
};

// The values of one property over instances, as display text (for compact assertions).
std::vector<std::string> column(const std::vector<cim::Instance>& rows, std::size_t property);

#define PKGCAST_STORE_BACKENDS(Suite)                                                  \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite, ::testing::Values("sqlite", "postgresql"), \
                           [](const ::testing::TestParamInfo<std::string>& i) { return i.param; })

}  // namespace pkgcast::store::testing
