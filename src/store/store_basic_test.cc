// Conformance: instances in and out, every property type, keys, NULLs, bad input, meta, open/close, durability.
#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include "store/backends.h"
#include "store/store_test_util.h"

namespace pkgcast::store::testing {
namespace {

using cim::CimType;
using cim::Value;

const cim::ClassRegistry& typed_registry() {
  static const cim::ClassRegistry reg = [] {
    auto p = [](std::string n, CimType t, bool array = false, bool key = false) {
      return cim::PropertyDef{std::move(n), cim::Type{t, array}, key, false, "", false, {}, false};
    };
    std::vector<cim::ClassSpec> specs{
        {"Test_Inner", "", {p("Id", CimType::kString, false, true), p("Count", CimType::kUint32)}, false, ""},
        {"Test_AllTypes",
         "",
         {p("Name", CimType::kString, false, true), p("U8", CimType::kUint8), p("U32", CimType::kUint32),
          p("U64", CimType::kUint64), p("S32", CimType::kSint32), p("S64", CimType::kSint64),
          p("Flag", CimType::kBoolean), p("When", CimType::kDateTime), p("Ratio", CimType::kReal64),
          p("Ref", CimType::kReference), p("Tags", CimType::kString, true), p("Numbers", CimType::kUint32, true),
          p("Inner", CimType::kObject)},
         false,
         ""},
        {"Test_U64Key", "", {p("ID", CimType::kUint64, false, true), p("Note", CimType::kString)}, false, ""},
        // Names that try to escape their quotes.
        {"Evil\"; DROP TABLE pkgcast_meta; --",
         "",
         {p("k'); DROP TABLE pkgcast_journal; --", CimType::kString, false, true), p("v\"x", CimType::kString)},
         false,
         ""},
    };
    return std::move(cim::ClassRegistry::build(specs)).value();
  }();
  return reg;
}

class StoreBasicTest : public StoreTest {};
class StoreTypedTest : public StoreTest {
 protected:
  void SetUp() override {
    options_.registry = &typed_registry();
    StoreTest::SetUp();
  }
  cim::Instance full(const std::string& name) const {
    cim::Instance i(cls("Test_AllTypes"));
    auto inner = std::make_shared<cim::Instance>(cls("Test_Inner"));
    inner->set(0, Value::string("in-1"));
    inner->set(1, Value::uint32(7));
    EXPECT_TRUE(i.set("Name", Value::string(name)).ok());
    EXPECT_TRUE(i.set("U8", Value::uint(CimType::kUint8, 255)).ok());
    EXPECT_TRUE(i.set("U32", Value::uint32(4'000'000'000U)).ok());
    EXPECT_TRUE(i.set("U64", Value::uint64(9'223'372'036'854'775'807ULL)).ok());
    EXPECT_TRUE(i.set("S32", Value::sint(CimType::kSint32, -2'000'000'000)).ok());
    EXPECT_TRUE(i.set("S64", Value::sint(CimType::kSint64, INT64_MIN)).ok());
    EXPECT_TRUE(i.set("Flag", Value::boolean(true)).ok());
    EXPECT_TRUE(i.set("When", Value::datetime(cim::DateTime::from_unix_micros(kStartTime + 123'456))).ok());
    EXPECT_TRUE(i.set("Ratio", Value::real(CimType::kReal64, 0.1 + 0.2)).ok());
    EXPECT_TRUE(i.set("Ref", Value::reference("SMS_Package.PackageID=\"ABC00001\"")).ok());
    EXPECT_TRUE(i.set("Tags", Value::array(CimType::kString, {Value::string("a"), Value(), Value::string("ü \"q\"")}))
                    .ok());
    EXPECT_TRUE(i.set("Numbers", Value::array(CimType::kUint32, {Value::uint32(1), Value::uint32(2)})).ok());
    EXPECT_TRUE(i.set("Inner", Value::object(inner)).ok());
    return i;
  }
};

TEST_P(StoreTypedTest, EveryPropertyTypeRoundTrips) {
  const cim::Instance in = full("alpha");
  ASSERT_TRUE(put(in).ok());
  auto out = get(cls("Test_AllTypes"), {Value::string("alpha")});
  ASSERT_TRUE(out.has_value());
  for (std::size_t i = 0; i < in.class_def().properties().size(); ++i) {
    EXPECT_EQ(out->get(i), in.get(i)) << in.class_def().property(i).name << ": " << out->get(i).to_display();
  }
  EXPECT_EQ(*out, in);
  // The journal carries the same instance.
  auto entries = journal_after(0);
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(*entries[0].instance, in);
}

TEST_P(StoreTypedTest, NullPropertiesStayNull) {
  cim::Instance in(cls("Test_AllTypes"));
  ASSERT_TRUE(in.set("Name", Value::string("empty")).ok());
  ASSERT_TRUE(put(in).ok());
  auto out = get(cls("Test_AllTypes"), {Value::string("empty")});
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, in);
  for (std::size_t i = 1; i < in.class_def().properties().size(); ++i) EXPECT_TRUE(out->get(i).is_null());
}

TEST_P(StoreTypedTest, Uint64AboveInt64MaxIsRefusedAndChangesNothing) {
  cim::Instance in = full("big");
  ASSERT_TRUE(in.set("U64", Value::uint64(9'223'372'036'854'775'808ULL)).ok());
  Status st = put(in);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, WbemCode::kValueOutOfRange) << st.error().to_string();
  EXPECT_FALSE(get(cls("Test_AllTypes"), {Value::string("big")}).has_value());
  EXPECT_EQ(last_rev(), 0U);

  cim::Instance keyed(cls("Test_U64Key"));
  keyed.set(0, Value::uint64(UINT64_MAX));
  EXPECT_EQ(put(keyed).error().code, WbemCode::kValueOutOfRange);
  keyed.set(0, Value::uint64(9'223'372'036'854'775'807ULL));
  ASSERT_TRUE(put(keyed).ok());
  EXPECT_TRUE(get(cls("Test_U64Key"), {Value::uint64(9'223'372'036'854'775'807ULL)}).has_value());
  // A lookup by a key the store can never hold is refused the same way.
  auto r = store_->get(cls("Test_U64Key"), {Value::uint64(UINT64_MAX)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kValueOutOfRange);
}

TEST_P(StoreTypedTest, BadValuesAreRefusedAndChangeNothing) {
  cim::Instance nan = full("nan");
  nan.set(nan.class_def().find_property("Ratio").value(), Value::real(CimType::kReal64, std::nan("")));
  EXPECT_EQ(put(nan).error().code, WbemCode::kInvalidParameter);

  cim::Instance utf = full("bad");
  utf.set(0, Value::string("bad\xff"));
  EXPECT_EQ(put(utf).error().code, WbemCode::kInvalidParameter);

  cim::Instance nul = full("nul");
  nul.set(nul.class_def().find_property("Ref").value(), Value::reference(std::string("a\0b", 3)));
  EXPECT_EQ(put(nul).error().code, WbemCode::kInvalidParameter);

  cim::Instance no_key(cls("Test_AllTypes"));
  EXPECT_EQ(put(no_key).error().code, WbemCode::kIllegalNull);

  cim::Instance mistyped = full("typed");
  mistyped.set(mistyped.class_def().find_property("U32").value(), Value::string("not a number"));
  EXPECT_EQ(put(mistyped).error().code, WbemCode::kTypeMismatch);

  EXPECT_TRUE(scan_all(cls("Test_AllTypes")).empty());
  EXPECT_EQ(last_rev(), 0U);
}

TEST_P(StoreTypedTest, QuotedNamesResistInjection) {
  const cim::ClassDef& evil = cls("Evil\"; DROP TABLE pkgcast_meta; --");
  cim::Instance i(evil);
  i.set(0, Value::string("k"));
  i.set(1, Value::string("v"));
  ASSERT_TRUE(put(i).ok());
  ASSERT_TRUE(store_->execute([](WriteTxn& t) { return t.put_meta("still", "here"); }).ok());
  auto out = get(evil, {Value::string("K")});
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->get(1), Value::string("v"));
  EXPECT_EQ(journal_after(0).size(), 1U);
  EXPECT_EQ(*store_->get_meta("still"), std::optional<std::string>("here"));
}

TEST_P(StoreBasicTest, PutGetInsertRemove) {
  const auto& pkg = cls("SMS_Package");
  ASSERT_TRUE(put(package("ABC00001", "First")).ok());
  auto got = get(pkg, {Value::string("ABC00001")});
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->get(prop("SMS_Package", "Name")), Value::string("First"));

  Status dup = insert(package("ABC00001", "Again"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, WbemCode::kAlreadyExists) << dup.error().to_string();
  EXPECT_EQ(get(pkg, {Value::string("ABC00001")})->get(prop("SMS_Package", "Name")), Value::string("First"));

  ASSERT_TRUE(insert(package("ABC00002", "Second")).ok());
  ASSERT_TRUE(remove(pkg, {Value::string("ABC00001")}).ok());
  EXPECT_FALSE(get(pkg, {Value::string("ABC00001")}).has_value());
  Status missing = remove(pkg, {Value::string("ABC00001")});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, WbemCode::kNotFound);
  EXPECT_EQ(last_rev(), 3U);  // created, created, deleted
}

TEST_P(StoreBasicTest, PutDecidesCreatedModifiedOrNothing) {
  ASSERT_TRUE(put(package("ABC00001", "One")).ok());
  ASSERT_TRUE(put(package("ABC00001", "One")).ok());  // unchanged: no journal entry
  ASSERT_TRUE(put(package("ABC00001", "Two")).ok());
  auto e = journal_after(0);
  ASSERT_EQ(e.size(), 2U);
  EXPECT_EQ(e[0].kind, ChangeKind::kCreated);
  EXPECT_EQ(e[0].previous, nullptr);
  EXPECT_EQ(e[1].kind, ChangeKind::kModified);
  ASSERT_NE(e[1].previous, nullptr);
  EXPECT_EQ(e[1].previous->get(prop("SMS_Package", "Name")), Value::string("One"));
  EXPECT_EQ(e[1].instance->get(prop("SMS_Package", "Name")), Value::string("Two"));
  EXPECT_EQ(e[1].key, "SMS_Package.PackageID=\"ABC00001\"");
  EXPECT_EQ(e[1].class_name, "SMS_Package");
}

TEST_P(StoreBasicTest, KeysCompareWithoutCase) {
  const auto& pkg = cls("SMS_Package");
  ASSERT_TRUE(put(package("abc0000a", "lower")).ok());
  EXPECT_TRUE(get(pkg, {Value::string("ABC0000A")}).has_value());
  EXPECT_EQ(insert(package("ABC0000A")).error().code, WbemCode::kAlreadyExists);
  ASSERT_TRUE(put(package("ABC0000A", "upper")).ok());  // the same instance, modified
  EXPECT_EQ(scan_all(pkg).size(), 1U);
  // The key is kept as last written; a write with the same key text changes the rest and keeps it.
  auto key_and_name = [&] {
    auto rows = scan_all(pkg);
    if (rows.size() != 1) return std::string("rows: ") + std::to_string(rows.size());
    return rows[0].get(0).to_display() + " " + rows[0].get(prop("SMS_Package", "Name")).to_display();
  };
  EXPECT_EQ(key_and_name(), "ABC0000A upper");
  ASSERT_TRUE(put(package("ABC0000A", "upper again")).ok());
  EXPECT_EQ(key_and_name(), "ABC0000A upper again");
  // In one batch: a write with the same key text, then one in another case, then the same text again.
  ASSERT_TRUE(store_
                  ->execute([&](WriteTxn& t) -> Status {
                    PKG_TRY(t.put(package("ABC0000A", "same")));
                    PKG_TRY(t.put(package("Abc0000a", "recased")));
                    return t.put(package("Abc0000a", "last"));
                  })
                  .ok());
  EXPECT_EQ(key_and_name(), "Abc0000a last");
  ASSERT_TRUE(remove(pkg, {Value::string("Abc0000A")}).ok());
  EXPECT_TRUE(scan_all(pkg).empty());
}

// As WQL and SQLite's NOCASE: only ASCII letters fold. 'Ü' and 'ü' are two keys, a lookup finds the one asked for,
// and `<>`, IN and the order compare them as different (PostgreSQL's lower() would fold them under the database's
// locale).
TEST_P(StoreBasicTest, OnlyAsciiLettersFold) {
  const auto& pkg = cls("SMS_Package");
  const std::size_t name = prop("SMS_Package", "Name");
  ASSERT_TRUE(insert(package("ABC0000Ü", "upper")).ok());
  ASSERT_TRUE(insert(package("abc0000ü", "lower")).ok());
  ASSERT_TRUE(insert(package("ABC0000I", "dotless")).ok());
  EXPECT_EQ(insert(package("abc0000i", "again")).error().code, WbemCode::kAlreadyExists);
  EXPECT_TRUE(insert(package("ABC0000İ", "dotted")).ok());
  EXPECT_EQ(scan_all(pkg).size(), 4U);
  auto found = get(pkg, {Value::string("ABC0000ü")});
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->get(name), Value::string("lower"));
  auto names_where = [&](Predicate p) {
    std::vector<std::string> out;
    EXPECT_TRUE(store_->scan(pkg, p, [&](cim::Instance&& inst) {
      out.push_back(inst.get(name).as_string());
      return true;
    }).ok());
    std::sort(out.begin(), out.end());
    return out;
  };
  const std::size_t id = 0;
  EXPECT_EQ(names_where(Predicate::compare(id, Predicate::Op::kNe, Value::string("abc0000Ü"))),
            (std::vector<std::string>{"dotless", "dotted", "lower"}));
  EXPECT_EQ(names_where(Predicate::any_of({Predicate::compare(id, Predicate::Op::kEq, Value::string("abc0000Ü")),
                                           Predicate::compare(id, Predicate::Op::kEq, Value::string("x"))})),
            (std::vector<std::string>{"upper"}));
  EXPECT_EQ(names_where(Predicate::like(id, "%ü")), (std::vector<std::string>{"lower"}));
  // Ordered by the bytes of the ASCII-folded text: I (0x69 folded), then Ü (C3 9C), then ü (C3 BC), then İ (C4 B0).
  ScanOptions options;
  options.order = {{id, false}};
  std::vector<std::string> ids;
  ASSERT_TRUE(store_->scan(pkg, Predicate::always(), [&](cim::Instance&& inst) {
    ids.push_back(inst.get(name).as_string());
    return true;
  }, options).ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"dotless", "upper", "lower", "dotted"}));
}

TEST_P(StoreBasicTest, InjectionInValuesIsStoredLiterally) {
  const std::string id = "x'); DROP TABLE \"SMS_Package\"; --";
  const std::string name = "\"; DELETE FROM pkgcast_journal; SELECT '";
  ASSERT_TRUE(put(package(id, name)).ok());
  auto got = get(cls("SMS_Package"), {Value::string(id)});
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->get(0), Value::string(id));
  EXPECT_EQ(got->get(prop("SMS_Package", "Name")), Value::string(name));
  auto rows = scan_all(cls("SMS_Package"),
                       Predicate::compare(prop("SMS_Package", "Name"), Predicate::Op::kEq, Value::string(name)));
  ASSERT_EQ(rows.size(), 1U);
  ASSERT_TRUE(store_->execute([&](WriteTxn& t) { return t.put_meta(id, name); }).ok());
  EXPECT_EQ(*store_->get_meta(id), std::optional<std::string>(name));
  EXPECT_EQ(journal_after(0).size(), 1U);
  ASSERT_TRUE(put(package("ABC00001")).ok());
  EXPECT_EQ(scan_all(cls("SMS_Package")).size(), 2U);
}

TEST_P(StoreBasicTest, BadRequestsNameTheirErrorAndChangeNothing) {
  const auto& pkg = cls("SMS_Package");
  auto wrong_count = store_->get(pkg, {Value::string("A"), Value::string("B")});
  EXPECT_EQ(wrong_count.error().code, WbemCode::kInvalidParameter);
  auto null_key = store_->get(pkg, {Value()});
  EXPECT_EQ(null_key.error().code, WbemCode::kInvalidParameter);
  auto abstract = store_->get(cls("SMS_BaseClass"), {});
  EXPECT_EQ(abstract.error().code, WbemCode::kInvalidClass);
  cim::Instance event(cls("__InstanceCreationEvent"));
  EXPECT_EQ(put(event).error().code, WbemCode::kInvalidClass);
  EXPECT_EQ(remove(pkg, {}).error().code, WbemCode::kInvalidParameter);
  EXPECT_EQ(store_->execute([](WriteTxn& t) { return t.put_meta("", "v"); }).error().code,
            WbemCode::kInvalidParameter);
  EXPECT_EQ(store_->execute([](WriteTxn& t) { return t.put_meta("k", "bad\xc3"); }).error().code,
            WbemCode::kInvalidParameter);
  EXPECT_TRUE(scan_all(pkg).empty());
  EXPECT_TRUE(store_->list_meta("")->empty());
  EXPECT_EQ(last_rev(), 0U);
}

TEST_P(StoreBasicTest, MetaGetPutListRemove) {
  auto r = store_->execute([](WriteTxn& t) -> Status {
    PKG_TRY(t.put_meta("token/b", "2"));
    PKG_TRY(t.put_meta("token/a", "1"));
    PKG_TRY(t.put_meta("tokenz", "not under token/"));
    PKG_TRY(t.put_meta("id/package", "ABC00004"));
    // A command sees its own meta writes.
    PKG_ASSIGN_OR_RETURN(auto v, t.get_meta("token/a"));
    if (v != std::optional<std::string>("1")) return make_error(WbemCode::kFailed, "own write not visible");
    return t.put_meta("token/a", "1b");
  });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->revision, 0U);  // meta is not journaled
  auto listed = store_->list_meta("token/");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2U);
  EXPECT_EQ((*listed)[0], std::make_pair(std::string("token/a"), std::string("1b")));
  EXPECT_EQ((*listed)[1], std::make_pair(std::string("token/b"), std::string("2")));
  EXPECT_EQ(store_->list_meta("")->size(), 4U);
  EXPECT_EQ(store_->list_meta("Token/")->size(), 0U);  // meta keys are exact
  EXPECT_EQ(*store_->get_meta("id/package"), std::optional<std::string>("ABC00004"));
  ASSERT_TRUE(store_->execute([](WriteTxn& t) -> Status {
                      PKG_TRY(t.remove_meta("token/b"));
                      return t.remove_meta("never-there");  // removing an absent key is not an error
                    })
                  .ok());
  EXPECT_FALSE(store_->get_meta("token/b")->has_value());
  EXPECT_EQ(store_->list_meta("token/")->size(), 1U);
}

TEST_P(StoreBasicTest, ExecuteIsDurableAcrossReopen) {
  ASSERT_TRUE(put(package("ABC00001", "kept")).ok());
  ASSERT_TRUE(store_->execute([](WriteTxn& t) { return t.put_meta("k", "v"); }).ok());
  reopen();
  auto got = get(cls("SMS_Package"), {Value::string("ABC00001")});
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->get(prop("SMS_Package", "Name")), Value::string("kept"));
  EXPECT_EQ(*store_->get_meta("k"), std::optional<std::string>("v"));
}

TEST_P(StoreBasicTest, CloseDrainsTheQueueThenRefuses) {
  std::vector<std::future<Result<CommitInfo>>> futures;
  for (int i = 0; i < 50; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "ABC%05X", i + 1);
    cim::Instance p = package(id);
    futures.push_back(store_->submit([p](WriteTxn& t) { return t.put(p); }));
  }
  store_->close();
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
  auto late = store_->execute([](WriteTxn&) { return ok_status(); });
  EXPECT_EQ(late.error().code, WbemCode::kShuttingDown);
  EXPECT_EQ(store_->get(cls("SMS_Package"), {Value::string("ABC00001")}).error().code, WbemCode::kShuttingDown);
  store_->close();  // idempotent
  reopen();
  EXPECT_EQ(scan_all(cls("SMS_Package")).size(), 50U);
}

// A lock held by another session (maintenance, a LOCK TABLE left open) fails the write after the lock wait, with
// nothing written, instead of holding the writer for as long as that session likes.
TEST_P(StoreBasicTest, PostgresLockHeldElsewhereFailsTheWriteBusy) {
  if (!is_pg()) GTEST_SKIP() << "PostgreSQL's lock_timeout";
  auto other = open_pg_connection(db_->url());
  ASSERT_TRUE(other.ok()) << other.error().to_string();
  ASSERT_TRUE((*other)->exec("BEGIN").ok());
  ASSERT_TRUE((*other)->exec("LOCK TABLE \"SMS_Package\" IN ACCESS EXCLUSIVE MODE").ok());
  const auto started = std::chrono::steady_clock::now();
  const Status blocked = put(package("ABC00001", "blocked"));
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.error().code, WbemCode::kServerTooBusy) << blocked.error().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  ASSERT_TRUE((*other)->exec("ROLLBACK").ok());
  EXPECT_FALSE(get(cls("SMS_Package"), {Value::string("ABC00001")}).has_value());
  ASSERT_TRUE(put(package("ABC00001", "after")).ok());  // the writer goes on
}

TEST_P(StoreBasicTest, PostgresAllowsOneWriterProcess) {
  if (!is_pg()) GTEST_SKIP() << "the single-writer advisory lock is PostgreSQL's";
  auto second = open_with(options_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, WbemCode::kServerTooBusy) << second.error().to_string();
  store_->close();
  auto third = open_with(options_);
  EXPECT_TRUE(third.ok()) << third.error().to_string();
}

TEST(StoreOpenTest, RefusesUrlsItCannotServe) {
  for (const char* url : {"", "mysql://localhost/db", ":memory:", "sqlite:", "/nonexistent-dir/x/site.db"}) {
    OpenOptions o;
    o.url = url;
    auto s = Store::open(o);
    EXPECT_FALSE(s.ok()) << url;
  }
  // A file that is not a database is named, with what is wrong with it.
  char tmpl[] = "/tmp/pkgcast-garbage-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  const std::string garbage(5000, '\x5a');
  ASSERT_EQ(::write(fd, garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
  ::close(fd);
  OpenOptions bad;
  bad.url = tmpl;
  auto s = Store::open(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find(std::string("SQLite database '") + tmpl + "': sqlite: file is not a database"),
            std::string::npos)
      << s.error().message;
  ::unlink(tmpl);

  OpenOptions zero;
  zero.url = "/tmp/never-created.db";
  zero.max_batch = 0;
  EXPECT_EQ(Store::open(zero).error().code, WbemCode::kInvalidParameter);
}

PKGCAST_STORE_BACKENDS(StoreBasicTest);
PKGCAST_STORE_BACKENDS(StoreTypedTest);

}  // namespace
}  // namespace pkgcast::store::testing
