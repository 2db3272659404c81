// Conformance: what a command sees through its WriteTxn inside a batch (the batch's own earlier writes, meta
// listings included), that the Store's own reads are refused inside a command, and writes that share a batch.
#include "store/store_test_util.h"

namespace pkgcast::store::testing {
namespace {

using cim::Value;
using MetaList = std::vector<std::pair<std::string, std::string>>;

class StoreTxnTest : public StoreTest {};

TEST_P(StoreTxnTest, ListMetaSeesTheBatchsOwnEarlierWrites) {
  ASSERT_TRUE(store_->execute([](WriteTxn& t) { return t.put_meta("token/old", "0"); }).ok());
  MetaList seen_by_second;
  MetaList seen_by_fourth;
  auto results = run_in_one_batch({
      [](WriteTxn& t) -> Status {
        PKG_TRY(t.put_meta("token/a", "1"));
        return t.put_meta("token/b", "2");
      },
      // Added and removed in one batch: the listing must include what the first command wrote.
      [&](WriteTxn& t) -> Status {
        PKG_ASSIGN_OR_RETURN(seen_by_second, t.list_meta("token/"));
        for (const auto& [key, value] : seen_by_second) {
          if (value != "2") PKG_TRY(t.remove_meta(key));
        }
        return t.put_meta("tokens-not-in-prefix", "x");
      },
      [](WriteTxn& t) -> Status {  // fails: nothing of it may show
        PKG_TRY(t.put_meta("token/failed", "3"));
        return make_error(WbemCode::kInvalidOperation, "changes its mind");
      },
      [&](WriteTxn& t) -> Status {
        PKG_TRY(t.put_meta("token/c", "4"));
        PKG_ASSIGN_OR_RETURN(seen_by_fourth, t.list_meta("token/"));
        return ok_status();
      },
  });
  ASSERT_EQ(results.size(), 4U);
  EXPECT_TRUE(results[0].ok() && results[1].ok() && results[3].ok());
  ASSERT_FALSE(results[2].ok());
  EXPECT_EQ(seen_by_second, (MetaList{{"token/a", "1"}, {"token/b", "2"}, {"token/old", "0"}}));
  EXPECT_EQ(seen_by_fourth, (MetaList{{"token/b", "2"}, {"token/c", "4"}}));
  auto committed = store_->list_meta("token/");
  ASSERT_TRUE(committed.ok()) << committed.error().to_string();
  EXPECT_EQ(*committed, (MetaList{{"token/b", "2"}, {"token/c", "4"}}));
}

TEST_P(StoreTxnTest, ListMetaChecksItsPrefix) {
  auto r = store_->execute([](WriteTxn& t) -> Status {
    auto listed = t.list_meta(std::string("bad\0prefix", 10));
    if (listed.ok()) return ok_status();
    return std::move(listed).error();
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kInvalidParameter);
}

TEST_P(StoreTxnTest, AStoreReadInsideACommandIsRefused) {
  ASSERT_TRUE(put(package("ABC00001")).ok());
  std::vector<Error> refused;
  auto r = store_->execute([&](WriteTxn& t) -> Status {
    auto got = store_->get(cls("SMS_Package"), {Value::string("ABC00001")});
    if (!got.ok()) refused.push_back(got.error());
    auto meta = store_->get_meta("k");
    if (!meta.ok()) refused.push_back(meta.error());
    auto listed = store_->list_meta("");
    if (!listed.ok()) refused.push_back(listed.error());
    Status scanned = store_->scan(cls("SMS_Package"), Predicate::always(), [](cim::Instance&&) { return true; });
    if (!scanned.ok()) refused.push_back(scanned.error());
    Status journal = store_->read_journal(0, 10, [](JournalEntry&&) { return true; });
    if (!journal.ok()) refused.push_back(journal.error());
    return t.put_meta("k", "v");  // the transaction itself still works
  });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(refused.size(), 5U);
  for (const auto& e : refused) {
    EXPECT_EQ(e.code, WbemCode::kInvalidOperation) << e.to_string();
    EXPECT_NE(e.message.find("WriteTxn"), std::string::npos) << e.message;
  }
  // Outside a command the same reads work.
  EXPECT_TRUE(get(cls("SMS_Package"), {Value::string("ABC00001")}).has_value());
  EXPECT_EQ(*store_->get_meta("k"), std::optional<std::string>("v"));
}

// Every kind of write, several to the same key, in one batch: the journal carries previous and new instances,
// revisions stay gap-free, an unchanged put and a refused insert journal nothing, keys ignore case.
TEST_P(StoreTxnTest, WritesToOneKeyInOneBatchJournalExactly) {
  const std::size_t name = prop("SMS_Package", "Name");
  auto results = run_in_one_batch({
      [&](WriteTxn& t) { return t.insert(package("ABC00001", "one")); },
      [&](WriteTxn& t) { return t.insert(package("abc00001", "again")); },  // exists (case-insensitively)
      [&](WriteTxn& t) { return t.put(package("ABC00001", "one")); },       // unchanged
      [&](WriteTxn& t) { return t.put(package("abc00001", "two")); },       // modifies, key case too
      [&](WriteTxn& t) -> Status {
        PKG_ASSIGN_OR_RETURN(auto got, t.get(cls("SMS_Package"), {Value::string("ABC00001")}));
        if (!got || got->get(name) != Value::string("two")) {
          return make_error(WbemCode::kFailed, "the command does not see the batch's write");
        }
        return t.remove(cls("SMS_Package"), {Value::string("ABC00001")});
      },
      [&](WriteTxn& t) { return t.put(package("ABC00001", "three")); },  // created again
  });
  ASSERT_EQ(results.size(), 6U);
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].error().code, WbemCode::kAlreadyExists);
  for (std::size_t i : {2U, 3U, 4U, 5U}) EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].error().to_string();
  EXPECT_EQ(results[0]->revision, 1U);
  EXPECT_EQ(results[2]->revision, 1U);  // journaled nothing
  EXPECT_EQ(results[3]->revision, 2U);
  EXPECT_EQ(results[4]->revision, 3U);
  EXPECT_EQ(results[5]->revision, 4U);

  auto e = journal_after(0);
  ASSERT_EQ(e.size(), 4U);
  EXPECT_EQ(e[0].kind, ChangeKind::kCreated);
  EXPECT_EQ(e[0].previous, nullptr);
  EXPECT_EQ(e[1].kind, ChangeKind::kModified);
  ASSERT_NE(e[1].previous, nullptr);
  EXPECT_EQ(e[1].previous->get(name), Value::string("one"));
  EXPECT_EQ(e[1].instance->get(name), Value::string("two"));
  EXPECT_EQ(e[1].instance->get(prop("SMS_Package", "PackageID")), Value::string("abc00001"));
  EXPECT_EQ(e[2].kind, ChangeKind::kDeleted);
  EXPECT_EQ(e[2].previous->get(name), Value::string("two"));
  EXPECT_EQ(e[3].kind, ChangeKind::kCreated);
  EXPECT_EQ(e[3].previous, nullptr);
  for (std::size_t i = 0; i < e.size(); ++i) EXPECT_EQ(e[i].revision, i + 1);
  auto rows = scan_all(cls("SMS_Package"));
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].get(name), Value::string("three"));
  EXPECT_EQ(last_rev(), 4U);
}

PKGCAST_STORE_BACKENDS(StoreTxnTest);

}  // namespace
}  // namespace pkgcast::store::testing
