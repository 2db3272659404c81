// Conformance: the writer's row cache and write-behind (row_cache.h, writer.cc) change no outcome. A failed
// command leaves the cache as it was (with or without a savepoint), a batch that does not commit leaves nothing
// cached, puts over rows the writer has not seen journal exactly what changed, and revisions stay gap-free.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <future>

#include "store/store_test_util.h"

namespace pkgcast::store::testing {
namespace {

using cim::Value;

class StoreCacheTest : public StoreTest {
 protected:
  std::string name_of(const cim::Instance& i) const { return i.find("Name")->as_string(); }

  // The Name a command sees for `id` ("" when absent), and a Store read of it after commit.
  std::string name_in_txn(const std::string& id) {
    std::string seen;
    auto r = store_->execute([&](WriteTxn& t) -> Status {
      PKG_ASSIGN_OR_RETURN(auto row, t.get(cls("SMS_Package"), {Value::string(id)}));
      seen = row ? name_of(*row) : "";
      return ok_status();
    });
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return seen;
  }
  std::string name_committed(const std::string& id) {
    auto row = get(cls("SMS_Package"), {Value::string(id)});
    return row ? name_of(*row) : "";
  }
  // The stored row of `want`'s key holds every one of `want`'s values.
  void expect_stored(const cim::Instance& want) {
    auto row = get(want.class_def(), want_key(want));
    ASSERT_TRUE(row.has_value()) << want.relpath();
    for (std::size_t p = 0; p < want.class_def().properties().size(); ++p) {
      EXPECT_TRUE(row->get(p) == want.get(p)) << want.relpath() << " " << want.class_def().property(p).name << ": "
                                             << row->get(p).to_display() << " != " << want.get(p).to_display();
    }
  }
  static std::vector<Value> want_key(const cim::Instance& inst) {
    std::vector<Value> key;
    for (std::size_t k : inst.class_def().key_indices()) key.push_back(inst.get(k));
    return key;
  }
  std::vector<std::string> journal_text(std::uint64_t after) {
    std::vector<std::string> out;
    for (const auto& e : journal_after(after)) {
      std::string line = std::to_string(e.revision) + " " + std::string(change_kind_name(e.kind)) + " " +
                         e.instance->find("PackageID")->as_string() + " " + name_of(*e.instance);
      if (e.previous) line += " was " + name_of(*e.previous);
      out.push_back(line);
    }
    return out;
  }
};

TEST_P(StoreCacheTest, AFailedCommandLeavesTheCacheAsItWas) {
  ASSERT_TRUE(put(package("ABC00001", "v1")).ok());
  std::string third_saw_a, third_saw_b;
  auto results = run_in_one_batch({
      [&](WriteTxn& t) { return t.put(package("ABC00001", "v2")); },
      [&](WriteTxn& t) -> Status {  // fails after writing: nothing of it may show, to the batch or later
        PKG_TRY(t.put(package("ABC00001", "v3")));
        PKG_TRY(t.put(package("ABC00002", "b-failed")));
        PKG_TRY(t.put_meta("k", "failed"));
        return make_error(WbemCode::kInvalidOperation, "changes its mind");
      },
      [&](WriteTxn& t) -> Status {
        PKG_ASSIGN_OR_RETURN(auto a, t.get(cls("SMS_Package"), {Value::string("abc00001")}));
        PKG_ASSIGN_OR_RETURN(auto b, t.get(cls("SMS_Package"), {Value::string("ABC00002")}));
        PKG_ASSIGN_OR_RETURN(auto k, t.get_meta("k"));
        third_saw_a = a ? name_of(*a) : "";
        third_saw_b = b ? name_of(*b) : "";
        if (k) return make_error(WbemCode::kFailed, "meta of a failed command is visible");
        return t.put(package("ABC00002", "b"));
      },
  });
  ASSERT_EQ(results.size(), 3U);
  ASSERT_TRUE(results[0].ok() && results[2].ok()) << (results[2].ok() ? "" : results[2].error().to_string());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[0]->revision, 2U);
  EXPECT_EQ(results[2]->revision, 3U);
  EXPECT_EQ(third_saw_a, "v2");
  EXPECT_EQ(third_saw_b, "");
  EXPECT_EQ(name_committed("ABC00001"), "v2");
  EXPECT_EQ(name_in_txn("ABC00001"), "v2");
  EXPECT_EQ(name_in_txn("ABC00002"), "b");
  EXPECT_EQ(journal_text(0), (std::vector<std::string>{"1 created ABC00001 v1", "2 modified ABC00001 v2 was v1",
                                                       "3 created ABC00002 b"}));
  // The same values again change nothing and journal nothing.
  ASSERT_TRUE(put(package("ABC00001", "v2")).ok());
  EXPECT_EQ(last_rev(), 3U);
}

TEST_P(StoreCacheTest, AFailedCommandThatScannedIsUndoneByItsSavepoint) {
  ASSERT_TRUE(put(package("ABC00001", "a")).ok());
  ASSERT_TRUE(put(package("ABC00002", "b")).ok());
  std::size_t scanned = 0;
  auto results = run_in_one_batch({
      [&](WriteTxn& t) -> Status {
        PKG_TRY(t.put(package("ABC00001", "a-failed")));
        // A scan must see the command's own write, so it reaches the database under the savepoint.
        PKG_TRY(t.scan(cls("SMS_Package"), Predicate::always(), [&](cim::Instance&& i) {
          if (name_of(i) == "a-failed") ++scanned;
          return true;
        }));
        PKG_TRY(t.remove(cls("SMS_Package"), {Value::string("ABC00002")}));
        PKG_TRY(t.put(package("ABC00003", "c-failed")));
        return make_error(WbemCode::kInvalidOperation, "changes its mind");
      },
      [&](WriteTxn& t) -> Status {
        PKG_ASSIGN_OR_RETURN(auto a, t.get(cls("SMS_Package"), {Value::string("ABC00001")}));
        PKG_ASSIGN_OR_RETURN(auto b, t.get(cls("SMS_Package"), {Value::string("ABC00002")}));
        PKG_ASSIGN_OR_RETURN(auto c, t.get(cls("SMS_Package"), {Value::string("ABC00003")}));
        if (!a || name_of(*a) != "a" || !b || c) return make_error(WbemCode::kFailed, "saw the failed command");
        return t.put(package("ABC00002", "b2"));
      },
  });
  ASSERT_FALSE(results[0].ok());
  ASSERT_TRUE(results[1].ok()) << results[1].error().to_string();
  EXPECT_EQ(scanned, 1U);
  EXPECT_EQ(name_committed("ABC00001"), "a");
  EXPECT_EQ(name_committed("ABC00003"), "");
  EXPECT_EQ(name_in_txn("ABC00001"), "a");
  EXPECT_EQ(name_in_txn("ABC00002"), "b2");
  EXPECT_EQ(name_in_txn("ABC00003"), "");
  EXPECT_EQ(journal_text(2), (std::vector<std::string>{"3 modified ABC00002 b2 was b"}));
}

TEST_P(StoreCacheTest, ABatchThatDoesNotCommitLeavesNothingCached) {
  ASSERT_TRUE(put(package("ABC00001", "v1")).ok());
  sql_store().fail_next_commit_for_test(make_error(WbemCode::kOutOfDiskSpace, "disk full (injected)"));
  auto failed = store_->execute([&](WriteTxn& t) -> Status {
    PKG_TRY(t.put(package("ABC00001", "v2")));
    PKG_TRY(t.put(package("ABC00002", "new")));
    return t.put_meta("k", "v");
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(name_in_txn("ABC00001"), "v1");
  EXPECT_EQ(name_in_txn("ABC00002"), "");
  auto meta = store_->execute([](WriteTxn& t) -> Status {
    PKG_ASSIGN_OR_RETURN(auto k, t.get_meta("k"));
    return k ? Status(make_error(WbemCode::kFailed, "meta of a failed batch is visible")) : ok_status();
  });
  EXPECT_TRUE(meta.ok()) << meta.error().to_string();
  ASSERT_TRUE(put(package("ABC00001", "v2")).ok());
  EXPECT_EQ(journal_text(1), (std::vector<std::string>{"2 modified ABC00001 v2 was v1"}));
}

// Nothing cached between batches: every put below is over a row the writer has not seen (on PostgreSQL, a
// deferred upsert whose journal entry is settled by its answer).
TEST_P(StoreCacheTest, PutsOverUnseenRowsJournalExactlyWhatChanged) {
  options_.writer_cache_rows = 0;
  reopen();
  ASSERT_TRUE(put(package("ABC00001", "a")).ok());
  ASSERT_TRUE(put(package("ABC00002", "b")).ok());
  auto results = run_in_one_batch({
      [&](WriteTxn& t) { return t.put(package("ABC00001", "a")); },  // unchanged
      [&](WriteTxn& t) { return t.put(package("ABC00002", "b2")); },
      [&](WriteTxn& t) { return t.put(package("ABC00003", "c")); },
      [&](WriteTxn& t) -> Status {
        PKG_TRY(t.put(package("ABC00001", "a2")));
        return t.put(package("ABC00001", "a3"));
      },
      [&](WriteTxn& t) { return t.put(package("ABC00004", "d")); },
  });
  ASSERT_EQ(results.size(), 5U);
  std::vector<std::uint64_t> revisions;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    revisions.push_back(r->revision);
  }
  // The command that wrote ABC00001 twice journals what it did: one modification, from the row as it found it.
  EXPECT_EQ(revisions, (std::vector<std::uint64_t>{2, 3, 4, 5, 6}));
  EXPECT_EQ(journal_text(2), (std::vector<std::string>{"3 modified ABC00002 b2 was b", "4 created ABC00003 c",
                                                       "5 modified ABC00001 a3 was a", "6 created ABC00004 d"}));
  EXPECT_EQ(last_rev(), 6U);
  EXPECT_EQ(name_committed("ABC00001"), "a3");
}

// A command that writes a row several times journals one entry for it: what the command did, from the row as the
// command found it. The listeners see the same entries as the journal. With the cache off, PostgreSQL's first put
// of each row is an upsert whose previous row is known only at the end of the batch.
TEST_P(StoreCacheTest, ACommandJournalsEachRowItWroteOnce) {
  for (std::size_t cache_rows : {std::size_t{0}, std::size_t{1000}}) {
    const std::string p = cache_rows == 0 ? "ABC" : "ABD";  // rows of their own for each round
    SCOPED_TRACE("writer_cache_rows " + std::to_string(cache_rows));
    options_.writer_cache_rows = cache_rows;
    reopen();
    const std::uint64_t start = last_rev();
    ASSERT_TRUE(put(package(p + "00001", "a")).ok());
    ASSERT_TRUE(put(package(p + "00002", "b")).ok());
    ASSERT_TRUE(put(package(p + "00003", "c")).ok());
    ASSERT_TRUE(put(package(p + "00004", "d")).ok());
    reopen();  // nothing cached: the command's first write of each row finds it in the database
    std::vector<std::string> heard;
    store_->add_commit_listener([&heard](const std::vector<JournalEntry>& entries) {
      for (const auto& e : entries) heard.push_back(std::to_string(e.revision));
    });
    const std::uint64_t before = last_rev();
    ASSERT_EQ(before, start + 4);
    auto results = run_in_one_batch({
        [&](WriteTxn& t) -> Status {
          PKG_TRY(t.put(package(p + "00001", "a2")));  // modified, modified: one modification from "a"
          PKG_TRY(t.put(package(p + "00001", "a3")));
          PKG_TRY(t.put(package(p + "00002", "b2")));  // modified, then back: nothing
          PKG_TRY(t.put(package(p + "00002", "b")));
          PKG_TRY(t.put(package(p + "00005", "e")));  // created, modified: created as last written
          PKG_TRY(t.put(package(p + "00005", "e2")));
          PKG_TRY(t.put(package(p + "00006", "f")));  // created, deleted: nothing
          PKG_TRY(t.remove(cls("SMS_Package"), {Value::string(p + "00006")}));
          PKG_TRY(t.put(
              package(to_lower(p) + "00003", "c2")));  // modified (another case of the key), deleted: deleted as found
          return t.remove(cls("SMS_Package"), {Value::string(p + "00003")});
        },
        [&](WriteTxn& t) { return t.put(package(p + "00001", "a4")); },  // another command: its own entry
    });
    ASSERT_EQ(results.size(), 2U);
    ASSERT_TRUE(results[0].ok()) << results[0].error().to_string();
    ASSERT_TRUE(results[1].ok()) << results[1].error().to_string();
    const auto b = [&](int n) { return std::to_string(before + n); };
    const std::vector<std::string> want = {
        b(1) + " modified " + p + "00001 a3 was a", b(2) + " created " + p + "00005 e2",
        b(3) + " deleted " + p + "00003 c was c", b(4) + " modified " + p + "00001 a4 was a3"};
    EXPECT_EQ(journal_text(before), want);
    EXPECT_EQ(results[1]->revision, before + want.size());
    EXPECT_EQ(results[0]->revision, before + want.size() - 1);
    EXPECT_EQ(last_rev(), before + want.size());
    std::vector<std::string> want_heard;
    for (std::size_t i = 1; i <= want.size(); ++i) want_heard.push_back(b(static_cast<int>(i)));
    EXPECT_EQ(heard, want_heard);
    EXPECT_EQ(name_committed(p + "00001"), "a4");
    EXPECT_EQ(name_committed(p + "00002"), "b");
    EXPECT_EQ(name_committed(p + "00003"), "");
    EXPECT_EQ(name_committed(p + "00005"), "e2");
    EXPECT_EQ(name_committed(p + "00006"), "");
  }
}

// Many puts over unseen rows in one batch (on PostgreSQL one multi-row upsert, its values in array literals): every
// value comes back exactly, whatever quoting, NULL, or type it needs, and each previous row settles its own entry.
TEST_P(StoreCacheTest, ManyPutsOverUnseenRowsKeepEveryValue) {
  options_.writer_cache_rows = 0;
  reopen();
  const std::vector<std::string> names = {"plain", "", "NULL", "quote \" inside", "back\\slash\\", "{a,b}",
                                          "comma, space", "ünïcödé", "tab\tand\nnewline", "\"\\\"", " lead"};
  auto make = [&](std::size_t i, bool second) {
    cim::Instance p = package("ABC" + std::to_string(10000 + i), names[i % names.size()] + (second ? "!" : ""));
    EXPECT_TRUE(p.set("ForcedDisconnectEnabled", i % 3 == 0 ? Value() : Value::boolean(i % 2 == 0)).ok());
    EXPECT_TRUE(p.set("Priority", Value::uint32(static_cast<std::uint32_t>(i))).ok());
    EXPECT_TRUE(p.set("ISVData", i % 2 == 0 ? Value() : Value::array(cim::CimType::kUint8, {Value::uint(cim::CimType::kUint8, 0),
                                                                       Value::uint(cim::CimType::kUint8, 254),
                                                                       Value::uint(cim::CimType::kUint8, i)})).ok());
    EXPECT_TRUE(p.set("Description", i % 4 == 0 ? Value() : Value::string("d\"" + std::to_string(i))).ok());
    return p;
  };
  constexpr std::size_t kRows = 40;
  for (std::size_t i = 0; i < kRows; i += 2) ASSERT_TRUE(put(make(i, false)).ok());  // every other row exists
  std::vector<WriteCommand> commands;
  for (std::size_t i = 0; i < kRows; ++i) {
    // Rows 0, 4, 8, ... are put unchanged: no journal entry.
    commands.push_back([&, i](WriteTxn& t) { return t.put(make(i, i % 4 != 0)); });
  }
  for (const auto& r : run_in_one_batch(commands)) ASSERT_TRUE(r.ok()) << r.error().to_string();
  std::vector<std::string> expected;
  std::uint64_t revision = kRows / 2;
  for (std::size_t i = 0; i < kRows; ++i) {
    if (i % 4 == 0) continue;
    const std::string now = names[i % names.size()] + "!";
    const std::string id = "ABC" + std::to_string(10000 + i);
    expected.push_back(std::to_string(++revision) + (i % 2 == 0 ? " modified " : " created ") + id + " " + now +
                       (i % 2 == 0 ? " was " + names[i % names.size()] : ""));
  }
  EXPECT_EQ(journal_text(kRows / 2), expected);
  for (std::size_t i = 0; i < kRows; ++i) expect_stored(make(i, i % 4 != 0));
}

// Inserts of new rows, then updates of the cached rows, many to a batch (on PostgreSQL one statement of many rows
// each): every value comes back exactly.
TEST_P(StoreCacheTest, ManyInsertsAndUpdatesInOneBatchKeepEveryValue) {
  const std::vector<std::string> names = {"plain", "", "NULL", "quote \" in", "back\\slash\\", "{a,b}", "ünï"};
  auto make = [&](std::size_t i, const std::string& suffix) {
    cim::Instance p = package("ABD" + std::to_string(10000 + i), names[i % names.size()] + suffix);
    EXPECT_TRUE(p.set("ForcedDisconnectEnabled", i % 3 == 0 ? Value() : Value::boolean(i % 2 == 0)).ok());
    EXPECT_TRUE(p.set("Description", i % 4 == 0 ? Value() : Value::string(suffix + "\\" + std::to_string(i))).ok());
    return p;
  };
  constexpr std::size_t kRows = 30;
  std::vector<WriteCommand> inserts;
  for (std::size_t i = 0; i < kRows; ++i) inserts.push_back([&, i](WriteTxn& t) { return t.insert(make(i, "")); });
  for (const auto& r : run_in_one_batch(inserts)) ASSERT_TRUE(r.ok()) << r.error().to_string();
  for (std::size_t i = 0; i < kRows; ++i) expect_stored(make(i, ""));
  std::vector<WriteCommand> updates;
  for (std::size_t i = 0; i < kRows; ++i) {
    updates.push_back([&, i](WriteTxn& t) { return t.put(make(i, i % 2 == 0 ? "\"2" : "")); });
  }
  for (const auto& r : run_in_one_batch(updates)) ASSERT_TRUE(r.ok()) << r.error().to_string();
  for (std::size_t i = 0; i < kRows; ++i) expect_stored(make(i, i % 2 == 0 ? "\"2" : ""));
  EXPECT_EQ(journal_after(0).size(), kRows + kRows / 2);
}

TEST_P(StoreCacheTest, KeysOutsideAsciiBypassTheCache) {
  const std::string id = "ÄBC00001";
  ASSERT_TRUE(put(package("ABC00001", "ascii")).ok());
  auto results = run_in_one_batch({
      [&](WriteTxn& t) -> Status {
        PKG_TRY(t.put(package(id, "x1")));
        return t.put(package("ABC00001", "ascii2"));
      },
      [&](WriteTxn& t) -> Status {
        PKG_ASSIGN_OR_RETURN(auto row, t.get(cls("SMS_Package"), {Value::string(id)}));
        if (!row || name_of(*row) != "x1") return make_error(WbemCode::kFailed, "lost the non-ASCII row");
        PKG_TRY(t.put(package(id, "x2")));
        PKG_ASSIGN_OR_RETURN(auto ascii, t.get(cls("SMS_Package"), {Value::string("ABC00001")}));
        if (!ascii || name_of(*ascii) != "ascii2") return make_error(WbemCode::kFailed, "lost the ASCII row");
        return ok_status();
      },
      [&](WriteTxn& t) { return t.remove(cls("SMS_Package"), {Value::string(id)}); },
  });
  for (const auto& r : results) ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(journal_text(1),
            (std::vector<std::string>{"2 created " + id + " x1", "3 modified ABC00001 ascii2 was ascii",
                                      "4 modified " + id + " x2 was x1", "5 deleted " + id + " x2 was x2"}));
  EXPECT_EQ(name_committed(id), "");
}

// Rows changed behind the store's back (another program, a restore): a write the cache decided from a row that
// is gone, or an insert over one that appeared, fails its batch instead of being journaled and lost; the failed
// batch drops the cache, so the same write then goes through.
TEST_P(StoreCacheTest, ARowChangedOutsideTheStoreFailsTheBatchInsteadOfLosingAWrite) {
  ASSERT_TRUE(put(package("ABC00001", "a")).ok());
  ASSERT_TRUE(put(package("ABC00002", "b")).ok());  // both cached now
  ASSERT_TRUE(db_->raw_exec("DELETE FROM \"SMS_Package\"").ok());
  auto update = put(package("ABC00001", "a2"));  // an UPDATE of a row that is gone
  ASSERT_FALSE(update.ok());
  EXPECT_NE(update.error().message.find("outside pkgcast"), std::string::npos) << update.error().message;
  auto remove_gone = remove(cls("SMS_Package"), {Value::string("ABC00002")});  // the cache was dropped: not found
  EXPECT_EQ(remove_gone.error().code, WbemCode::kNotFound) << remove_gone.error().to_string();
  ASSERT_TRUE(put(package("ABC00001", "a2")).ok());
  EXPECT_EQ(name_committed("ABC00001"), "a2");
  EXPECT_EQ(journal_text(2), (std::vector<std::string>{"3 created ABC00001 a2"}));
}

// One command per batch, and three batches queued behind a command that holds the writer: on PostgreSQL each
// batch runs its commands while the one before it commits (Connection::start_commit).
class QueuedBatches {
 public:
  // `while_held` runs in the holding command, on the writer thread, before the queued batches start.
  QueuedBatches(Store& store, std::vector<WriteCommand> commands, std::function<void()> while_held = {}) {
    auto released = gate_.get_future().share();
    futures_.push_back(store.submit([released, while_held](WriteTxn&) -> Status {
      released.wait();
      if (while_held) while_held();
      return ok_status();
    }));
    for (auto& c : commands) futures_.push_back(store.submit(std::move(c)));
    gate_.set_value();
  }
  std::vector<Result<CommitInfo>> results() {
    std::vector<Result<CommitInfo>> out;
    for (auto& f : futures_) out.push_back(f.get());
    out.erase(out.begin());
    return out;
  }

 private:
  std::promise<void> gate_;
  std::vector<std::future<Result<CommitInfo>>> futures_;
};

TEST_P(StoreCacheTest, ABatchRunWhileTheOneBeforeCommitsSeesItsWritesAndCommitsAfterIt) {
  options_.max_batch = 1;
  reopen();
  ASSERT_TRUE(put(package("ABC00001", "a")).ok());
  QueuedBatches queued(*store_, {
      [&](WriteTxn& t) { return t.put(package("ABC00001", "a2")); },
      [&](WriteTxn& t) -> Status {
        PKG_ASSIGN_OR_RETURN(auto a, t.get(cls("SMS_Package"), {Value::string("ABC00001")}));
        if (!a || name_of(*a) != "a2") return make_error(WbemCode::kFailed, "did not see the batch before");
        return t.put(package("ABC00002", "after " + name_of(*a)));
      },
      [&](WriteTxn& t) { return t.remove(cls("SMS_Package"), {Value::string("ABC00001")}); },
  });
  std::vector<std::uint64_t> revisions;
  for (const auto& r : queued.results()) {
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    revisions.push_back(r->revision);
  }
  EXPECT_EQ(revisions, (std::vector<std::uint64_t>{2, 3, 4}));
  EXPECT_EQ(journal_text(1), (std::vector<std::string>{"2 modified ABC00001 a2 was a", "3 created ABC00002 after a2",
                                                       "4 deleted ABC00001 a2 was a2"}));
  EXPECT_EQ(name_committed("ABC00002"), "after a2");
}

TEST_P(StoreCacheTest, TheCacheStaysWithinItsCapacityWhileBatchesFollowEachOtherWithoutPause) {
  options_.max_batch = 1;
  options_.writer_cache_rows = 8;
  reopen();
  std::vector<std::size_t> seen;  // written by the commands, on the writer thread, read after they are answered
  std::vector<WriteCommand> commands;
  for (int i = 1; i <= 40; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "ABC%05d", i);
    commands.push_back([&seen, this, id = std::string(id)](WriteTxn& t) {
      seen.push_back(sql_store().cached_rows_for_test());
      return t.put(package(id, "p"));
    });
  }
  QueuedBatches queued(*store_, std::move(commands));
  for (const auto& r : queued.results()) ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(seen.size(), 40U);
  EXPECT_LE(*std::max_element(seen.begin(), seen.end()), 8U);
}

TEST_P(StoreCacheTest, ABatchRunWhileTheOneBeforeCommitsIsUndoneWhenThatOneFailsAtCommit) {
  options_.max_batch = 1;
  reopen();
  if (GetParam() != "postgresql") GTEST_SKIP() << "SQLite commits before it runs the next batch";
  ASSERT_TRUE(put(package("ABC00001", "a")).ok());
  QueuedBatches queued(*store_, {
      [&](WriteTxn& t) { return t.put(package("ABC00002", "refused at commit")); },
      [&](WriteTxn& t) -> Status {
        PKG_ASSIGN_OR_RETURN(auto b, t.get(cls("SMS_Package"), {Value::string("ABC00002")}));
        if (!b) return make_error(WbemCode::kFailed, "did not see the batch before");
        return t.put(package("ABC00003", "built on it"));
      },
      [&](WriteTxn& t) { return t.put(package("ABC00004", "after")); },
  }, [&] { EXPECT_TRUE(sql_store().fail_next_commit_at_server_for_test()); });
  auto results = queued.results();
  ASSERT_EQ(results.size(), 3U);
  EXPECT_FALSE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_NE(results[1].error().message.find("before it failed"), std::string::npos) << results[1].error().message;
  ASSERT_TRUE(results[2].ok()) << results[2].error().to_string();
  EXPECT_EQ(results[2]->revision, 2U);  // gap-free: the failed batches' revisions are given again
  EXPECT_EQ(name_committed("ABC00002"), "");
  EXPECT_EQ(name_committed("ABC00003"), "");
  EXPECT_EQ(name_in_txn("ABC00002"), "");
  EXPECT_EQ(name_in_txn("ABC00003"), "");
  EXPECT_EQ(journal_text(1), (std::vector<std::string>{"2 created ABC00004 after"}));
}

PKGCAST_STORE_BACKENDS(StoreCacheTest);

}  // namespace
}  // namespace pkgcast::store::testing
