// Conformance: what the journal table holds (docs/storage.md, "The journal's previous instance") and that rows
// an older pkgcast wrote still read; a row written by many commands of one batch.
#include "store/store_test_util.h"

namespace pkgcast::store::testing {
namespace {

using cim::Value;

class StoreJournalFormatTest : public StoreTest {
 protected:
  std::string stored(const std::string& column, std::uint64_t revision) {
    auto text = db_->raw_query_text("SELECT " + column + " FROM pkgcast_journal WHERE revision = " +
                                    std::to_string(revision));
    EXPECT_TRUE(text.ok()) << text.error().to_string();
    return text.ok() ? *text : "";
  }

  // A journal row as an older pkgcast wrote it: every instance whole.
  void plant(std::uint64_t revision, ChangeKind kind, const std::string& key, const std::string& instance,
             const std::string& previous) {
    ASSERT_TRUE(db_->raw_exec("INSERT INTO pkgcast_journal (revision, commit_time, kind, class_name, instance_key, "
                              "instance, previous) VALUES (" +
                              std::to_string(revision) + ", " + std::to_string(kStartTime) + ", " +
                              std::to_string(static_cast<int>(kind)) + ", 'SMS_Package', '" + key + "', '" +
                              instance + "', " + previous + ")")
                    .ok());
  }

  cim::Instance described(const std::string& id, const std::string& name, const std::string& description) {
    cim::Instance p = package(id, name);
    EXPECT_TRUE(p.set("Description", Value::string(description)).ok());
    return p;
  }
};

TEST_P(StoreJournalFormatTest, AModificationKeepsOnlyThePreviousValuesOfWhatChanged) {
  ASSERT_TRUE(put(described("ABC00001", "one", "first")).ok());
  ASSERT_TRUE(put(described("ABC00001", "two", "first")).ok());
  cim::Instance cleared = package("ABC00001", "two");  // Description back to NULL
  ASSERT_TRUE(put(cleared).ok());
  ASSERT_TRUE(remove(cls("SMS_Package"), {Value::string("ABC00001")}).ok());

  EXPECT_EQ(stored("previous", 1), "NULL\n");  // created
  EXPECT_EQ(stored("previous", 2), "{\"Name\":\"one\"}\n");
  EXPECT_EQ(stored("previous", 3), "{\"Description\":\"first\"}\n");
  EXPECT_EQ(stored("previous", 4), "NULL\n");  // deleted: the instance is the previous instance

  // Read back, every entry carries its whole previous instance.
  auto e = journal_after(0);
  ASSERT_EQ(e.size(), 4U);
  EXPECT_EQ(e[0].previous, nullptr);
  ASSERT_TRUE(e[1].previous && e[2].previous && e[3].previous);
  EXPECT_EQ(*e[1].previous, *e[0].instance);
  EXPECT_EQ(*e[2].previous, *e[1].instance);
  EXPECT_EQ(*e[3].previous, *e[2].instance);
  EXPECT_EQ(*e[3].instance, *e[2].instance);
}

TEST_P(StoreJournalFormatTest, RowsAnOlderVersionWroteWithWholePreviousInstancesStillRead) {
  const std::string one = R"({"__CLASS":"SMS_Package","PackageID":"ABC00001","Name":"one"})";
  const std::string two = R"({"__CLASS":"SMS_Package","PackageID":"ABC00001","Name":"two"})";
  const std::string key = R"(SMS_Package.PackageID="ABC00001")";
  plant(1, ChangeKind::kCreated, key, one, "NULL");
  plant(2, ChangeKind::kModified, key, two, "'" + one + "'");
  plant(3, ChangeKind::kDeleted, key, two, "'" + two + "'");
  reopen();
  ASSERT_EQ(last_rev(), 3U);
  ASSERT_TRUE(put(package("ABC00001", "three")).ok());  // revision 4, in today's format
  ASSERT_TRUE(put(package("ABC00001", "four")).ok());

  auto e = journal_after(0);
  ASSERT_EQ(e.size(), 5U);
  const std::size_t name = prop("SMS_Package", "Name");
  ASSERT_TRUE(e[1].previous && e[2].previous && e[4].previous);
  EXPECT_EQ(e[1].previous->get(name), Value::string("one"));
  EXPECT_EQ(e[2].previous->get(name), Value::string("two"));
  EXPECT_EQ(e[4].previous->get(name), Value::string("three"));
  EXPECT_EQ(*e[4].previous, *e[3].instance);
}

TEST_P(StoreJournalFormatTest, APreviousColumnNamingAnUnknownPropertyIsAnError) {
  ASSERT_TRUE(put(package("ABC00001", "one")).ok());
  plant(2, ChangeKind::kModified, R"(SMS_Package.PackageID="ABC00001")",
        R"({"__CLASS":"SMS_Package","PackageID":"ABC00001","Name":"two"})", R"('{"Nmae":"one"}')");
  reopen();
  Status st = store_->read_journal(0, 10, [](JournalEntry&&) { return true; });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, WbemCode::kFailed);
  EXPECT_NE(st.error().message.find("'Nmae'"), std::string::npos) << st.error().message;
}

// The batch writes a row once, with its last values; every command's change is still journaled, and a command
// that needs the database (a scan) sees every earlier write.
TEST_P(StoreJournalFormatTest, ARowWrittenByManyCommandsOfOneBatchEndsWithItsLastValues) {
  ASSERT_TRUE(put(package("ABC00002", "kept")).ok());
  const cim::ClassDef& pkg = cls("SMS_Package");
  const std::size_t name = prop("SMS_Package", "Name");
  std::vector<std::string> scanned;
  auto results = run_in_one_batch({
      [&](WriteTxn& t) { return t.insert(package("ABC00001", "a")); },
      [&](WriteTxn& t) { return t.put(package("ABC00001", "b")); },
      [&](WriteTxn& t) -> Status {
        PKG_TRY(t.put(package("ABC00001", "lost")));
        return make_error(WbemCode::kFailed, "fails after its write");
      },
      [&](WriteTxn& t) { return t.put(package("ABC00001", "c")); },
      [&](WriteTxn& t) { return t.put(package("ABC00002", "x")); },
      [&](WriteTxn& t) { return t.remove(pkg, {Value::string("ABC00002")}); },
      [&](WriteTxn& t) { return t.put(package("abc00002", "y")); },
      [&](WriteTxn& t) { return t.put(package("ABC00002", "z")); },
      [&](WriteTxn& t) {
        return t.scan(pkg, Predicate::always(), [&](cim::Instance&& row) {
          scanned.push_back(row.get(name).to_display());
          return true;
        });
      },
      [&](WriteTxn& t) { return t.put(package("ABC00001", "d")); },
      [&](WriteTxn& t) { return t.put(package("ABC00003", "new")); },
      [&](WriteTxn& t) { return t.remove(pkg, {Value::string("ABC00003")}); },
  });
  ASSERT_EQ(results.size(), 12U);
  for (std::size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i].ok(), i != 2) << i;
  EXPECT_EQ(scanned, (std::vector<std::string>{"c", "z"}));
  EXPECT_EQ(column(scan_all(pkg), name), (std::vector<std::string>{"d", "z"}));
  EXPECT_EQ(column(scan_all(pkg), prop("SMS_Package", "PackageID")),
            (std::vector<std::string>{"ABC00001", "ABC00002"}));

  auto e = journal_after(1);
  std::vector<std::string> kinds;
  for (const auto& entry : e) {
    kinds.push_back(std::string(change_kind_name(entry.kind)) + " " + entry.instance->get(name).to_display());
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"created a", "modified b", "modified c", "modified x",
                                             "deleted x", "created y", "modified z", "modified d",
                                             "created new", "deleted new"}));
  // Each modification's previous instance is the one before it.
  EXPECT_EQ(*e[1].previous, *e[0].instance);
  EXPECT_EQ(*e[2].previous, *e[1].instance);
  EXPECT_EQ(*e[6].previous, *e[5].instance);
  EXPECT_EQ(*e[7].previous, *e[2].instance);

  reopen();  // what the database holds, not the writer's cache
  EXPECT_EQ(get(pkg, {Value::string("ABC00001")})->get(name), Value::string("d"));
  EXPECT_EQ(get(pkg, {Value::string("ABC00002")})->get(name), Value::string("z"));
  EXPECT_FALSE(get(pkg, {Value::string("ABC00003")}));
}

PKGCAST_STORE_BACKENDS(StoreJournalFormatTest);

}  // namespace
}  // namespace pkgcast::store::testing
