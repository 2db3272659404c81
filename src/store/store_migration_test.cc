// Conformance: a database written by an older pkgcast opens in a newer one; a newer one is refused unchanged.
#include "store/schema.h"
#include "store/store_test_util.h"

namespace pkgcast::store::testing {
namespace {

using cim::CimType;
using cim::Value;

cim::PropertyDef prop_def(std::string n, CimType t, bool array = false, bool key = false) {
  return cim::PropertyDef{std::move(n), cim::Type{t, array}, key, false, "", false, {}, false};
}

// "Version 1" of a product's classes, and "version 2" with a new property and a new class.
cim::ClassRegistry v1_registry() {
  return std::move(cim::ClassRegistry::build({{"Test_Thing",
                                               "",
                                               {prop_def("Id", CimType::kString, false, true),
                                                prop_def("Count", CimType::kUint32)},
                                               false,
                                               ""}}))
      .value();
}

cim::ClassRegistry v2_registry(bool extra_key = false) {
  std::vector<cim::PropertyDef> props{prop_def("Id", CimType::kString, false, true), prop_def("Count", CimType::kUint32),
                                      prop_def("Labels", CimType::kString, true), prop_def("PackageID", CimType::kString)};
  if (extra_key) props.push_back(prop_def("Region", CimType::kString, false, true));
  return std::move(cim::ClassRegistry::build(
                       {{"Test_Thing", "", props, false, ""},
                        {"Test_New", "", {prop_def("K", CimType::kUint64, false, true)}, false, ""}}))
      .value();
}

// "Version 2" where Test_Thing gains an abstract superclass declaring its key, a new property and no Count, so that
// Count moves after the superclass's properties (as SMS_Package did under SMS_PackageBaseclass).
cim::ClassRegistry rebased_registry() {
  cim::PropertyDef added = prop_def("Added", CimType::kString);
  added.default_value = Value::string("");
  return std::move(cim::ClassRegistry::build(
                       {{"Test_Base", "", {prop_def("Id", CimType::kString, false, true), added}, true, ""},
                        {"Test_Thing", "Test_Base", {prop_def("Count", CimType::kUint32)}, false, ""}}))
      .value();
}

class StoreMigrationTest : public StoreTest {
 protected:
  void SetUp() override {
    v1_ = std::make_unique<cim::ClassRegistry>(v1_registry());
    options_.registry = v1_.get();
    StoreTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    cim::Instance thing(cls("Test_Thing"));
    thing.set(0, Value::string("one"));
    thing.set(1, Value::uint32(5));
    ASSERT_TRUE(put(thing).ok());
    store_.reset();
  }

  Result<std::string> stored_version() {
    return db_->raw_query_text("SELECT value FROM pkgcast_internal WHERE name = 'schema_version'");
  }

  std::unique_ptr<cim::ClassRegistry> v1_;
  std::unique_ptr<cim::ClassRegistry> v2_;
};

TEST_P(StoreMigrationTest, AnOlderDatabaseOpensAndGainsNewPropertiesAndClasses) {
  v2_ = std::make_unique<cim::ClassRegistry>(v2_registry());
  options_.registry = v2_.get();
  reopen();
  auto old = get(cls("Test_Thing"), {Value::string("ONE")});
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->get(1), Value::uint32(5));
  EXPECT_TRUE(old->get(2).is_null());
  EXPECT_TRUE(old->get(3).is_null());
  // The old journal entry decodes against the new classes (missing properties are NULL).
  auto entries = journal_after(0);
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_TRUE(entries[0].instance->get(2).is_null());

  cim::Instance updated = *old;
  updated.set(2, Value::array(CimType::kString, {Value::string("x")}));
  updated.set(3, Value::string("ABC00001"));
  ASSERT_TRUE(put(updated).ok());
  cim::Instance fresh(cls("Test_New"));
  fresh.set(0, Value::uint64(77));
  ASSERT_TRUE(put(fresh).ok());
  EXPECT_EQ(scan_all(cls("Test_Thing"), Predicate::compare(3, Predicate::Op::kEq, Value::string("abc00001"))).size(),
            1U);
  EXPECT_EQ(scan_all(cls("Test_New")).size(), 1U);
  EXPECT_EQ(last_rev(), 3U);
  reopen();  // opening again changes nothing
  EXPECT_EQ(*get(cls("Test_Thing"), {Value::string("one")}), updated);
  EXPECT_EQ(*stored_version(), std::to_string(kSchemaVersion) + "\n");
}

TEST_P(StoreMigrationTest, AClassGivenAnAbstractSuperclassKeepsItsRows) {
  v2_ = std::make_unique<cim::ClassRegistry>(rebased_registry());
  options_.registry = v2_.get();
  reopen();
  auto old = get(cls("Test_Thing"), {Value::string("one")});
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->get(1), Value::string(""));  // the new property's default, as a new instance starts
  EXPECT_EQ(old->get(2), Value::uint32(5));   // Count, read by its name from its old column
  auto entries = journal_after(0);
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0].instance->get(2), Value::uint32(5));
  EXPECT_EQ(scan_all(cls("Test_Thing"), Predicate::compare(2, Predicate::Op::kEq, Value::uint32(5))).size(), 1U);
  cim::Instance updated = *old;
  updated.set(2, Value::uint32(6));
  ASSERT_TRUE(put(updated).ok());
  reopen();
  EXPECT_EQ(*get(cls("Test_Thing"), {Value::string("ONE")}), updated);
  // The abstract class has no table.
  const std::string find_table = is_pg() ? "SELECT count(*) FROM information_schema.tables WHERE table_name = 'Test_Base'"
                                         : "SELECT count(*) FROM sqlite_master WHERE name = 'Test_Base'";
  EXPECT_EQ(*db_->raw_query_text(find_table), "0\n");
}

TEST_P(StoreMigrationTest, NumberedMigrationsRunFromTheStoredVersion) {
  // Make the database look as schema version 1 left it: no journal time index.
  ASSERT_TRUE(db_->raw_exec("DROP INDEX pkgcast_journal_time").ok());
  ASSERT_TRUE(db_->raw_exec("UPDATE pkgcast_internal SET value = '1' WHERE name = 'schema_version'").ok());
  reopen();
  EXPECT_EQ(*stored_version(), std::to_string(kSchemaVersion) + "\n");
  const std::string find_index = is_pg() ? "SELECT indexname FROM pg_indexes WHERE indexname = 'pkgcast_journal_time'"
                                         : "SELECT name FROM sqlite_master WHERE name = 'pkgcast_journal_time'";
  EXPECT_EQ(*db_->raw_query_text(find_index), "pkgcast_journal_time\n");
  EXPECT_TRUE(get(cls("Test_Thing"), {Value::string("one")}).has_value());
}

// Schema 2 folded PostgreSQL's string keys with lower(col), which folds every letter in a UTF-8 database. Schema 3
// drops the indexes on that expression and makes them on lower(col COLLATE "C"), so that the writes' ON CONFLICT
// finds its index and 'Ü' and 'ü' are two keys.
TEST_P(StoreMigrationTest, Schema3RebuildsTheFoldedIndexesOnAsciiFolding) {
  if (is_pg()) {
    ASSERT_TRUE(db_->raw_exec("DROP INDEX \"pkgcast_ix_Test_Thing_key\"").ok());
    ASSERT_TRUE(db_->raw_exec("CREATE UNIQUE INDEX \"pkgcast_ix_Test_Thing_key\" ON \"Test_Thing\" "
                              "((lower(\"Id\") COLLATE \"C\"))")
                    .ok());
  }
  ASSERT_TRUE(db_->raw_exec("UPDATE pkgcast_internal SET value = '2' WHERE name = 'schema_version'").ok());
  reopen();
  EXPECT_EQ(*stored_version(), std::to_string(kSchemaVersion) + "\n");
  if (is_pg()) {
    auto def = db_->raw_query_text("SELECT indexdef FROM pg_indexes WHERE indexname = 'pkgcast_ix_Test_Thing_key'");
    ASSERT_TRUE(def.ok());
    EXPECT_NE(def->find("COLLATE \"C\")"), std::string::npos) << *def;
  }
  for (const char* id : {"Über", "über", "one"}) {
    cim::Instance thing(cls("Test_Thing"));
    thing.set(0, Value::string(id));
    thing.set(1, Value::uint32(7));
    ASSERT_TRUE(put(thing).ok()) << id;
  }
  EXPECT_EQ(scan_all(cls("Test_Thing")).size(), 3U);
  auto one = get(cls("Test_Thing"), {Value::string("ONE")});
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->get(1), Value::uint32(7));
}

TEST_P(StoreMigrationTest, ANewerDatabaseIsRefusedAndLeftUnchanged) {
  ASSERT_TRUE(db_->raw_exec("UPDATE pkgcast_internal SET value = '99' WHERE name = 'schema_version'").ok());
  v2_ = std::make_unique<cim::ClassRegistry>(v2_registry());
  options_.registry = v2_.get();
  auto s = open_with(options_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, WbemCode::kNotSupported) << s.error().to_string();
  EXPECT_NE(s.error().message.find("99"), std::string::npos);
  EXPECT_EQ(*stored_version(), "99\n");
  // Not even the new class's table was created.
  const std::string find_table = is_pg() ? "SELECT count(*) FROM information_schema.tables WHERE table_name = 'Test_New'"
                                         : "SELECT count(*) FROM sqlite_master WHERE name = 'Test_New'";
  EXPECT_EQ(*db_->raw_query_text(find_table), "0\n");
}

TEST_P(StoreMigrationTest, AChangedKeyIsRefused) {
  v2_ = std::make_unique<cim::ClassRegistry>(v2_registry(/*extra_key=*/true));
  options_.registry = v2_.get();
  auto s = open_with(options_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, WbemCode::kNotSupported) << s.error().to_string();
  options_.registry = v1_.get();
  reopen();
  EXPECT_TRUE(get(cls("Test_Thing"), {Value::string("one")}).has_value());
}

PKGCAST_STORE_BACKENDS(StoreMigrationTest);

}  // namespace
}  // namespace pkgcast::store::testing
