// Conformance: scans with every predicate kind, checked against an independent in-memory evaluator; key order,
// limits, early stop, predicate errors, and that an index serves PackageID equality.
#include <algorithm>
#include <random>

#include "core/strings.h"
#include "store/store_test_util.h"

namespace pkgcast::store::testing {
namespace {

using cim::CimType;
using cim::Value;
using Op = Predicate::Op;

// WQL's meaning of a predicate, written without SQL: the oracle the backends are checked against.
bool like_match(std::string_view s, std::string_view p) {
  if (p.empty()) return s.empty();
  if (p[0] == '%') {
    for (std::size_t i = 0; i <= s.size(); ++i) {
      if (like_match(s.substr(i), p.substr(1))) return true;
    }
    return false;
  }
  if (s.empty()) return false;
  if (p[0] == '_') return like_match(s.substr(1), p.substr(1));
  if (p[0] == '\\' && p.size() > 1) p = p.substr(1);
  return ascii_lower(s[0]) == ascii_lower(p[0]) && like_match(s.substr(1), p.substr(1));
}

int compare_values(const Value& a, const Value& b) {
  const CimType t = a.type().base;
  if (t == CimType::kString) return icompare(a.as_string(), b.as_string());
  if (t == CimType::kBoolean) return static_cast<int>(a.as_bool()) - static_cast<int>(b.as_bool());
  if (t == CimType::kDateTime) return a.as_datetime() < b.as_datetime() ? -1 : a.as_datetime() == b.as_datetime() ? 0 : 1;
  if (cim::is_unsigned_integer(t)) return a.as_uint() < b.as_uint() ? -1 : a.as_uint() == b.as_uint() ? 0 : 1;
  return a.as_sint() < b.as_sint() ? -1 : a.as_sint() == b.as_sint() ? 0 : 1;
}

bool eval(const Predicate& p, const cim::Instance& inst) {
  switch (p.kind) {
    case Predicate::Kind::kTrue: return true;
    case Predicate::Kind::kAnd:
      return std::all_of(p.children.begin(), p.children.end(), [&](const auto& c) { return eval(c, inst); });
    case Predicate::Kind::kOr:
      return std::any_of(p.children.begin(), p.children.end(), [&](const auto& c) { return eval(c, inst); });
    case Predicate::Kind::kIsNull: return inst.get(p.property).is_null();
    case Predicate::Kind::kIsNotNull: return !inst.get(p.property).is_null();
    case Predicate::Kind::kLike:
      return !inst.get(p.property).is_null() && like_match(inst.get(p.property).as_string(), p.pattern);
    case Predicate::Kind::kCompare: {
      const Value& v = inst.get(p.property);
      if (v.is_null()) return false;
      const int c = compare_values(v, p.value);
      switch (p.op) {
        case Op::kEq: return c == 0;
        case Op::kNe: return c != 0;
        case Op::kLt: return c < 0;
        case Op::kLe: return c <= 0;
        case Op::kGt: return c > 0;
        case Op::kGe: return c >= 0;
      }
    }
  }
  return false;
}

class StoreScanTest : public StoreTest {
 protected:
  // SMS_Package rows with mixed case, NULLs, datetimes; SMS_DistributionPointInfo rows with booleans;
  // SMS_DistributionDPStatus rows with uint64 keys.
  void load() {
    const char* names[] = {"Alpha", "alpha tools", "BETA", "beta%", "Gamma_1", "gamma", "delta", "Zeta", "", "épsilon"};
    std::vector<cim::Instance> all;
    for (int i = 0; i < 10; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, i % 2 ? "abc%05X" : "ABC%05X", i + 1);
      cim::Instance p = package(id, names[i]);
      if (i % 3 != 0) p.set(prop("SMS_Package", "SourceVersion"), Value::uint32(static_cast<std::uint32_t>(i * 7 % 5)));
      if (i % 4 != 1) {
        p.set(prop("SMS_Package", "SourceDate"),
              Value::datetime(cim::DateTime::from_unix_micros(kStartTime + static_cast<std::int64_t>(i) * 3'600'000'000)));
      }
      if (i == 3) p.set(prop("SMS_Package", "Name"), Value());
      all.push_back(p);
    }
    for (int i = 0; i < 6; ++i) {
      cim::Instance dp(cls("SMS_DistributionPointInfo"));
      dp.set(0, Value::string("\\\\DP" + std::to_string(i) + "\\"));
      if (i != 5) dp.set(prop("SMS_DistributionPointInfo", "IsPullDP"), Value::boolean(i % 2 == 0));
      dp.set(prop("SMS_DistributionPointInfo", "SiteCode"), Value::string(i < 3 ? "ABC" : "xyz"));
      all.push_back(dp);
    }
    for (std::uint64_t id : {1ULL, 42ULL, 1ULL << 40, 9'223'372'036'854'775'807ULL}) {
      cim::Instance s(cls("SMS_DistributionDPStatus"));
      s.set(0, Value::uint64(id));
      s.set(prop("SMS_DistributionDPStatus", "PackageID"), Value::string("ABC00001"));
      all.push_back(s);
    }
    auto r = store_->execute([&](WriteTxn& t) -> Status {
      for (const auto& i : all) PKG_TRY(t.put(i));
      return ok_status();
    });
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    for (auto& i : all) data_[i.class_name()].push_back(i);
  }

  // The scan must return exactly the oracle's rows (all of these predicates are exact in SQL), in key order.
  void check(const std::string& cls_name, const Predicate& p, const std::string& label) {
    std::vector<std::string> want;
    for (const auto& i : data_[cls_name]) {
      if (eval(p, i)) want.push_back(i.relpath());
    }
    std::vector<std::string> got;
    for (const auto& i : scan_all(cls(cls_name), p)) got.push_back(i.relpath());
    std::vector<std::string> sorted_got = got;
    auto by_key = [](const std::string& a, const std::string& b) { return icompare(a, b) < 0; };
    std::sort(want.begin(), want.end(), by_key);
    std::sort(sorted_got.begin(), sorted_got.end(), by_key);
    EXPECT_EQ(sorted_got, want) << label;
    auto counted = store_->count(cls(cls_name), p);
    ASSERT_TRUE(counted.ok()) << counted.error().to_string();
    EXPECT_EQ(*counted, want.size()) << label << ": SELECT COUNT(*)";
    if (cls_name == "SMS_Package") {
      EXPECT_EQ(got, sorted_got) << label << ": not in key order";
    }
  }

  std::map<std::string, std::vector<cim::Instance>> data_;
};

TEST_P(StoreScanTest, EveryPredicateKindMatchesTheOracle) {
  load();
  const std::size_t name = prop("SMS_Package", "Name");
  const std::size_t ver = prop("SMS_Package", "SourceVersion");
  const std::size_t date = prop("SMS_Package", "SourceDate");
  const std::size_t id = prop("SMS_Package", "PackageID");
  const Op ops[] = {Op::kEq, Op::kNe, Op::kLt, Op::kLe, Op::kGt, Op::kGe};
  for (Op op : ops) {
    const std::string o = std::to_string(static_cast<int>(op));
    check("SMS_Package", Predicate::compare(ver, op, Value::uint32(2)), "uint32 op " + o);
    check("SMS_Package", Predicate::compare(name, op, Value::string("gamma")), "string op " + o);
    check("SMS_Package", Predicate::compare(id, op, Value::string("abc00004")), "key op " + o);
    check("SMS_Package",
          Predicate::compare(date, op, Value::datetime(cim::DateTime::from_unix_micros(kStartTime + 4 * 3'600'000'000LL))),
          "datetime op " + o);
    check("SMS_DistributionPointInfo",
          Predicate::compare(prop("SMS_DistributionPointInfo", "IsPullDP"), op, Value::boolean(true)), "bool op " + o);
    check("SMS_DistributionDPStatus", Predicate::compare(0, op, Value::uint64(42)), "uint64 op " + o);
    check("SMS_DistributionDPStatus", Predicate::compare(0, op, Value::uint64(9'223'372'036'854'775'807ULL)),
          "uint64 max op " + o);
  }
  check("SMS_Package", Predicate::compare(name, Op::kEq, Value::string("ALPHA")), "case-insensitive =");
  for (const char* pat : {"alpha%", "%A%", "gamma\\_1", "gamma_1", "beta\\%", "%", "_eta", "", "É%"}) {
    check("SMS_Package", Predicate::like(name, pat), std::string("like ") + pat);
  }
  check("SMS_Package", Predicate::is_null(name), "is null");
  check("SMS_Package", Predicate::is_null(ver, /*negated=*/true), "is not null");
  check("SMS_Package",
        Predicate::all_of({Predicate::like(name, "%a%"), Predicate::compare(ver, Op::kGe, Value::uint32(1))}), "and");
  check("SMS_Package",
        Predicate::any_of({Predicate::compare(name, Op::kEq, Value::string("zeta")), Predicate::is_null(date),
                           Predicate::all_of({Predicate::compare(ver, Op::kEq, Value::uint32(0)),
                                              Predicate::like(id, "ABC%")})}),
        "or of and");
  check("SMS_Package", Predicate::all_of({}), "empty and");
  check("SMS_Package", Predicate::any_of({}), "empty or");
  check("SMS_Package", Predicate::always(), "true");
  check("SMS_DistributionPointInfo",
        Predicate::compare(prop("SMS_DistributionPointInfo", "SiteCode"), Op::kEq, Value::string("XYZ")), "sitecode");
}

// An OR of equalities of one string column (WQL's IN list, the join's lookups) is one array on PostgreSQL: values
// with the array literal's own syntax in them, a NULL-looking word, case and non-ASCII letters match exactly.
TEST_P(StoreScanTest, InListsOfStringsMatchExactly) {
  load();
  const std::size_t name = prop("SMS_Package", "Name");
  const char* tricky[] = {"a\"quoted\" name", "back\\slash", "comma, and {braces}", "NULL", "  spaced  ", "ÉCOLE"};
  ASSERT_TRUE(store_->execute([&](WriteTxn& t) -> Status {
                      int n = 0;
                      for (const char* v : tricky) {
                        cim::Instance p = package("XYZ0000" + std::to_string(n++), v);
                        PKG_TRY(t.put(p));
                        data_["SMS_Package"].push_back(p);
                      }
                      return ok_status();
                    })
                  .ok());
  auto in = [&](std::vector<std::string> values) {
    std::vector<Predicate> any;
    for (auto& v : values) any.push_back(Predicate::compare(name, Op::kEq, Value::string(std::move(v))));
    return Predicate::any_of(std::move(any));
  };
  check("SMS_Package", in({"a\"QUOTED\" name", "BACK\\SLASH", "comma, and {braces}", "null", "  spaced  "}),
        "in list with literal syntax");
  check("SMS_Package", in({"ALPHA", "beta%", "gamma", "", "nothing"}), "in list with case and the empty string");
  check("SMS_Package", in({"école", "ÉCOLE", "épsilon"}), "in list with non-ASCII letters");
  check("SMS_Package", in({"\\", "\"", ","}), "in list of syntax only");
  // Another column in the OR, or another operator, is rendered term by term, with the same answer.
  check("SMS_Package",
        Predicate::any_of({Predicate::compare(name, Op::kEq, Value::string("alpha")),
                           Predicate::compare(0, Op::kEq, Value::string("xyz00001"))}),
        "or over two columns");
}

TEST_P(StoreScanTest, PredicatesAreSupersetsWhereSqlCannotBeExact) {
  load();
  // uint64 beyond what the store holds: every stored value is below it.
  EXPECT_EQ(scan_all(cls("SMS_DistributionDPStatus"), Predicate::compare(0, Op::kLt, Value::uint64(UINT64_MAX))).size(),
            4U);
  EXPECT_TRUE(scan_all(cls("SMS_DistributionDPStatus"), Predicate::compare(0, Op::kGe, Value::uint64(UINT64_MAX))).empty());
  // A real against an integer column compares numerically.
  EXPECT_EQ(scan_all(cls("SMS_DistributionDPStatus"),
                     Predicate::compare(0, Op::kLt, Value::real(CimType::kReal64, 42.5)))
                .size(),
            2U);
  // A string compared with a datetime column is read as a datetime.
  EXPECT_EQ(scan_all(cls("SMS_Package"), Predicate::compare(prop("SMS_Package", "SourceDate"), Op::kLt,
                                                            Value::string("2026-01-01T01:00:00Z")))
                .size(),
            1U);
  // Arrays cannot be compared in SQL: every row comes back, for the caller to filter.
  const std::size_t dps = prop("SMS_DistributionPointInfo", "SourceDPs");
  EXPECT_EQ(scan_all(cls("SMS_DistributionPointInfo"), Predicate::like(dps, "x%")).size(), 6U);
}

TEST_P(StoreScanTest, KeyOrderLimitAndEarlyStop) {
  std::vector<std::string> ids;
  for (int i = 0; i < 1500; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, i % 2 ? "abc%05X" : "ABC%05X", i + 1);
    ids.push_back(id);
  }
  std::vector<std::string> shuffled = ids;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  ASSERT_TRUE(store_->execute([&](WriteTxn& t) -> Status {
                      for (const auto& id : shuffled) PKG_TRY(t.put(package(id)));
                      return ok_status();
                    })
                  .ok());
  auto all = scan_all(cls("SMS_Package"));
  ASSERT_EQ(all.size(), ids.size());
  EXPECT_EQ(column(all, 0), ids);  // key order ignores case, as keys do
  ScanOptions three;
  three.limit = 3;
  EXPECT_EQ(column(scan_all(cls("SMS_Package"), Predicate::always(), three), 0),
            std::vector<std::string>(ids.begin(), ids.begin() + 3));

  // The sink stops the scan: no more rows are delivered, and the connection is fit for the next read.
  for (int round = 0; round < 3; ++round) {
    int seen = 0;
    ASSERT_TRUE(store_->scan(cls("SMS_Package"), Predicate::always(), [&](cim::Instance&&) { return ++seen < 5; }).ok());
    EXPECT_EQ(seen, 5);
  }
  // The same inside a write command, whose transaction must survive the early stop.
  auto r = store_->execute([&](WriteTxn& t) -> Status {
    int seen = 0;
    PKG_TRY(t.scan(cls("SMS_Package"), Predicate::always(), [&](cim::Instance&&) { return ++seen < 700; }));
    if (seen != 700) return make_error(WbemCode::kFailed, "wrong count " + std::to_string(seen));
    // A lookup from inside a scan callback, on the same connection.
    PKG_TRY(t.scan(cls("SMS_Package"), Predicate::always(), [&](cim::Instance&& i) {
      return t.get(cls("SMS_Package"), key_of(i)).ok() && ++seen < 710;
    }));
    return t.put(package("ABC99999"));
  });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(get(cls("SMS_Package"), {Value::string("ABC99999")}).has_value());
}

// Keyset paging: `after` resumes strictly after a key in the scan's own order, so pages of any size joined
// together are the whole scan, case-insensitive string keys included, over one key column and two.
TEST_P(StoreScanTest, PagesResumeAfterTheLastKeySeen) {
  std::vector<cim::Instance> programs;
  ASSERT_TRUE(store_->execute([&](WriteTxn& t) -> Status {
                      for (int i = 0; i < 60; ++i) {
                        char id[16];
                        std::snprintf(id, sizeof id, i % 2 ? "abc%05X" : "ABC%05X", i / 3 + 1);
                        if (i % 3 == 0) PKG_TRY(t.put(package(id)));
                        cim::Instance prog(cls("SMS_Program"));
                        prog.set(prop("SMS_Program", "PackageID"), Value::string(id));
                        prog.set(prop("SMS_Program", "ProgramName"),
                                 Value::string(std::string(i % 2 ? "install" : "Install") + std::to_string(i % 3)));
                        PKG_TRY(t.put(prog));
                      }
                      return ok_status();
                    })
                  .ok());
  for (const char* name : {"SMS_Package", "SMS_Program"}) {
    const auto all = scan_all(cls(name));
    ASSERT_FALSE(all.empty());
    for (std::uint64_t page : {1u, 3u, 7u, 100u}) {
      std::vector<cim::Instance> joined;
      ScanOptions o;
      o.limit = page;
      for (int guard = 0; guard < 1000; ++guard) {
        auto rows = scan_all(cls(name), Predicate::always(), o);
        if (rows.empty()) break;
        o.after = key_of(rows.back());
        for (auto& r : rows) joined.push_back(std::move(r));
      }
      ASSERT_EQ(joined.size(), all.size()) << name << " page " << page;
      for (std::size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(key_of(joined[i]), key_of(all[i])) << name << " page " << page << " row " << i;
      }
    }
  }
  // After a key written in the other case: the same place in the order.
  ScanOptions o;
  o.after = std::vector<Value>{Value::string("abc00001")};
  const auto rest = scan_all(cls("SMS_Package"), Predicate::always(), o);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(icompare(rest.front().get(0).as_string(), "ABC00002"), 0);
  // With a filter, and with a key of the wrong shape.
  o.after = std::vector<Value>{Value::string("ABC00010")};
  const auto filtered = scan_all(cls("SMS_Package"),
                                 Predicate::compare(0, Op::kLe, Value::string("abc00012")), o);
  EXPECT_EQ(filtered.size(), 2u);
  o.after = std::vector<Value>{Value::string("a"), Value::string("b")};
  EXPECT_FALSE(store_->scan(cls("SMS_Package"), Predicate::always(), [](cim::Instance&&) { return true; }, o).ok());
}

// The order an ordered scan promises, written without SQL: the terms (NULL first ascending, last descending;
// strings without regard to case), then the key, ascending after several terms and in the term's direction after
// one (so that one index on (col, key...) serves both directions).
void sort_like_the_store(std::vector<cim::Instance>& rows, const std::vector<SortKey>& order) {
  const bool key_descending = order.size() == 1 && order.front().descending;
  std::sort(rows.begin(), rows.end(), [&](const cim::Instance& a, const cim::Instance& b) {
    for (const SortKey& term : order) {
      const Value& x = a.get(term.property);
      const Value& y = b.get(term.property);
      if (x.is_null() != y.is_null()) return x.is_null() != term.descending;
      if (x.is_null()) continue;
      const int cmp = compare_values(x, y);
      if (cmp != 0) return term.descending ? cmp > 0 : cmp < 0;
    }
    for (std::size_t k : a.class_def().key_indices()) {
      const int cmp = compare_values(a.get(k), b.get(k));
      if (cmp != 0) return key_descending ? cmp > 0 : cmp < 0;
    }
    return false;
  });
}

// Pages of `page` rows of an ordered scan, each resumed after the previous page's last row, joined.
std::vector<cim::Instance> paged_scan(Store& store, const cim::ClassDef& c, const Predicate& filter,
                                      const std::vector<SortKey>& order, std::uint64_t page) {
  std::vector<cim::Instance> joined;
  ScanOptions o;
  o.order = order;
  o.limit = page;
  for (int guard = 0; guard < 10'000; ++guard) {
    std::vector<cim::Instance> rows;
    const Status st = store.scan(c, filter, [&](cim::Instance&& i) { rows.push_back(std::move(i)); return true; }, o);
    EXPECT_TRUE(st.ok()) << st.error().to_string();
    EXPECT_LE(rows.size(), page);
    if (rows.empty() || !st.ok()) break;
    o.after = key_of(rows.back());
    std::vector<Value> sort_values;
    for (const SortKey& term : order) sort_values.push_back(rows.back().get(term.property));
    o.after_sort = std::move(sort_values);
    for (auto& r : rows) joined.push_back(std::move(r));
  }
  return joined;
}

// Ordered scans: the database sorts as sort_like_the_store says; pages resume after (sort values, key) and join to
// the same sequence.
TEST_P(StoreScanTest, OrderedScansSortInSqlAndPagesResume) {
  load();
  const auto& c = cls("SMS_Package");
  const std::size_t name = prop("SMS_Package", "Name");
  const std::size_t version = prop("SMS_Package", "SourceVersion");
  const std::size_t date = prop("SMS_Package", "SourceDate");
  const std::vector<std::vector<SortKey>> orders = {
      {{name, false}}, {{name, true}}, {{version, true}, {date, false}}, {{date, true}}, {{version, false}},
      {{version, true}}};
  for (const auto& order : orders) {
    std::vector<cim::Instance> want = data_["SMS_Package"];
    sort_like_the_store(want, order);
    std::string label;
    for (const SortKey& term : order) label += c.property(term.property).name + (term.descending ? " DESC " : " ");
    for (std::uint64_t page : {1u, 3u, 100u}) {
      const std::vector<cim::Instance> joined = paged_scan(*store_, c, Predicate::always(), order, page);
      ASSERT_EQ(joined.size(), want.size()) << label << "page " << page;
      for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(joined[i].relpath(), want[i].relpath()) << label << "page " << page << " row " << i;
      }
    }
  }
  // Refusals: an array property, an index out of range, a resumption without sort values.
  ScanOptions bad;
  bad.order = {{prop("SMS_DistributionPointInfo", "SourceDPs"), false}};
  auto sink = [](cim::Instance&&) { return true; };
  EXPECT_EQ(store_->scan(cls("SMS_DistributionPointInfo"), Predicate::always(), sink, bad).error().code,
            WbemCode::kInvalidParameter);
  bad.order = {{999, false}};
  EXPECT_EQ(store_->scan(c, Predicate::always(), sink, bad).error().code, WbemCode::kInvalidParameter);
  bad.order = {{name, false}};
  bad.after = std::vector<Value>{Value::string("ABC00001")};
  EXPECT_EQ(store_->scan(c, Predicate::always(), sink, bad).error().code, WbemCode::kInvalidParameter);
}

// A class with a sort index (schema.cc): SMS_PackageStatusDistPointsSummarizer by SummaryDate, three key columns
// in mixed case, NULL dates and runs of equal dates, so that pages end inside the NULL rows, inside a run of ties
// and exactly where the NULL rows end.
class OrderedByIndexTest : public StoreScanTest {
 protected:
  static constexpr std::string_view kClass = "SMS_PackageStatusDistPointsSummarizer";

  void fill() {
    const auto& c = cls(kClass);
    const std::size_t date = prop(kClass, "SummaryDate");
    std::mt19937 rng(11);
    for (int pkg = 0; pkg < 4; ++pkg) {
      for (int dp = 0; dp < 5; ++dp) {
        for (const char* site : {"ABC", "xyz"}) {
          cim::Instance row(c);
          char id[16];
          std::snprintf(id, sizeof id, (pkg + dp) % 2 ? "abc%05X" : "ABC%05X", pkg + 1);
          row.set(prop(kClass, "PackageID"), Value::string(id));
          row.set(prop(kClass, "ServerNALPath"),
                  Value::string(std::string(dp % 2 ? "[\"display=\\\\dp" : "[\"Display=\\\\DP") +
                                std::to_string(dp) + "\"]"));
          row.set(prop(kClass, "SiteCode"), Value::string(site));
          // About a quarter NULL; the rest one of four dates, so most rows tie with others.
          const unsigned r = rng() % 8;
          if (r >= 2) {
            row.set(date, Value::datetime(cim::DateTime::from_unix_micros(kStartTime + (r % 4) * 60'000'000LL)));
          }
          rows_.push_back(row);
        }
      }
    }
    auto r = store_->execute([&](WriteTxn& t) -> Status {
      for (const auto& i : rows_) PKG_TRY(t.put(i));
      return ok_status();
    });
    ASSERT_TRUE(r.ok()) << r.error().to_string();
  }

  std::vector<cim::Instance> rows_;
};

TEST_P(OrderedByIndexTest, PagesAcrossNullsAndTiesJoinToTheWholeOrder) {
  fill();
  const auto& c = cls(kClass);
  const std::size_t date = prop(kClass, "SummaryDate");
  const std::size_t site = prop(kClass, "SiteCode");
  std::size_t nulls = 0;
  for (const auto& r : rows_) nulls += r.get(date).is_null() ? 1 : 0;
  ASSERT_GT(nulls, 2u);
  ASSERT_LT(nulls, rows_.size() - 2);
  const Predicate abc = Predicate::compare(site, Op::kEq, Value::string("abc"));
  for (bool descending : {false, true}) {
    const std::vector<SortKey> order{{date, descending}};
    for (const Predicate* filter : {static_cast<const Predicate*>(nullptr), &abc}) {
      std::vector<cim::Instance> want;
      for (const auto& r : rows_) {
        if (filter == nullptr || eval(*filter, r)) want.push_back(r);
      }
      sort_like_the_store(want, order);
      for (std::uint64_t page : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{nulls}, std::uint64_t{7},
                                 std::uint64_t{1000}}) {
        const std::string label = std::string(descending ? "DESC" : "ASC") + (filter ? " abc" : "") + " page " +
                                  std::to_string(page);
        const auto joined = paged_scan(*store_, c, filter ? *filter : Predicate::always(), order, page);
        ASSERT_EQ(joined.size(), want.size()) << label;
        for (std::size_t i = 0; i < want.size(); ++i) {
          EXPECT_EQ(joined[i].relpath(), want[i].relpath()) << label << " row " << i;
        }
      }
    }
  }
  // A sink that stops inside the first part (NULL rows ascending) gets no row of the second.
  ScanOptions o;
  o.order = {{date, false}};
  std::size_t seen = 0;
  ASSERT_TRUE(store_->scan(c, Predicate::always(), [&](cim::Instance&&) { return ++seen < 2; }, o).ok());
  EXPECT_EQ(seen, 2u);
}

// The plan of every statement of a page, as the database explains it.
std::vector<std::string> plans_of(SqlStore& store, bool pg, const cim::ClassDef& c, const ScanOptions& o) {
  auto statements = store.ordered_scan_sql_for_test(c, Predicate::always(), o);
  EXPECT_TRUE(statements.ok()) << statements.error().to_string();
  std::vector<std::string> out;
  if (!statements.ok()) return out;
  for (const auto& [sql, params] : *statements) {
    // With sequential and bitmap scans priced out (on the test's small, unanalyzed tables they cost less than any
    // index walk), PostgreSQL shows whether an index can give the order without a sort.
    auto plan = pg ? store.query_text_for_test({"SET enable_seqscan = off", "SET enable_bitmapscan = off"},
                                               "EXPLAIN " + sql, params)
                   : store.query_text_for_test({}, "EXPLAIN QUERY PLAN " + sql, params);
    EXPECT_TRUE(plan.ok()) << plan.error().to_string();
    out.push_back(plan.ok() ? sql + "\n" + *plan : sql);
  }
  return out;
}

bool sorts(const std::string& plan, bool pg) {
  return plan.find(pg ? "Sort" : "USE TEMP B-TREE") != std::string::npos;
}

TEST_P(OrderedByIndexTest, OneTermOrdersWalkTheSortIndexWithoutSorting) {
  fill();
  const std::vector<std::pair<std::string_view, std::string_view>> indexed = {
      {kClass, "SummaryDate"},
      {"SMS_PackageStatusDetailSummarizer", "SummaryDate"},
      {"SMS_DistributionDPStatus", "LastUpdateDate"}};
  for (const auto& [cls_name, prop_name] : indexed) {
    const auto& c = cls(cls_name);
    const std::size_t p = prop(cls_name, prop_name);
    // A resumption key of the class's shape (the values need not exist).
    std::vector<Value> after;
    for (std::size_t k : c.key_indices()) {
      after.push_back(c.property(k).type.base == CimType::kUint64 ? Value::uint64(42) : Value::string("ABC00002"));
    }
    for (bool descending : {false, true}) {
      for (int resume = 0; resume < 3; ++resume) {  // none, after a date, after a NULL
        ScanOptions o;
        o.order = {{p, descending}};
        o.limit = 50;
        if (resume > 0) {
          o.after = after;
          o.after_sort = std::vector<Value>{
              resume == 1 ? Value::datetime(cim::DateTime::from_unix_micros(kStartTime)) : Value()};
        }
        const auto plans = plans_of(sql_store(), is_pg(), c, o);
        EXPECT_FALSE(plans.empty());
        for (const std::string& plan : plans) {
          EXPECT_FALSE(sorts(plan, is_pg())) << cls_name << " " << (descending ? "DESC" : "ASC") << " resume "
                                             << resume << ":\n" << plan;
          EXPECT_NE(plan.find(is_pg() ? "Index" : "USING INDEX"), std::string::npos) << plan;
        }
      }
    }
  }
  // The check can fail: a column without a sort index is sorted.
  ScanOptions o;
  o.order = {{prop("SMS_Package", "Name"), true}};
  o.limit = 50;
  const auto plans = plans_of(sql_store(), is_pg(), cls("SMS_Package"), o);
  ASSERT_FALSE(plans.empty());
  EXPECT_TRUE(sorts(plans.front(), is_pg())) << plans.front();
}

// A database made before a column had its sort index gets it when it is next opened.
TEST_P(OrderedByIndexTest, AnOlderDatabaseGainsTheSortIndexOnOpen) {
  fill();
  const std::string find = is_pg() ? "SELECT indexname FROM pg_indexes WHERE tablename = "
                                     "'SMS_PackageStatusDistPointsSummarizer' AND indexdef LIKE '%SummaryDate%'"
                                   : "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                                     "'SMS_PackageStatusDistPointsSummarizer' AND sql LIKE '%SummaryDate%'";
  auto name = db_->raw_query_text(find);
  ASSERT_TRUE(name.ok()) << name.error().to_string();
  ASSERT_FALSE(name->empty());
  ASSERT_EQ(std::count(name->begin(), name->end(), '\n'), 1);
  store_.reset();
  ASSERT_TRUE(db_->raw_exec("DROP INDEX \"" + name->substr(0, name->size() - 1) + "\"").ok());
  EXPECT_EQ(*db_->raw_query_text(find), "");
  reopen();
  EXPECT_EQ(*db_->raw_query_text(find), *name);
  ScanOptions o;
  o.order = {{prop(kClass, "SummaryDate"), true}};
  EXPECT_EQ(scan_all(cls(kClass), Predicate::always(), o).size(), rows_.size());
}

PKGCAST_STORE_BACKENDS(OrderedByIndexTest);

TEST_P(StoreScanTest, CommandsSeeTheirBatchsOwnWrites) {
  auto r = store_->execute([&](WriteTxn& t) -> Status {
    PKG_TRY(t.put(package("ABC00001", "a")));
    PKG_TRY(t.put(package("ABC00002", "b")));
    std::size_t n = 0;
    PKG_TRY(t.scan(cls("SMS_Package"), Predicate::always(), [&](cim::Instance&&) { return ++n > 0; }));
    PKG_ASSIGN_OR_RETURN(auto one, t.get(cls("SMS_Package"), {Value::string("abc00001")}));
    if (n != 2 || !one) return make_error(WbemCode::kFailed, "own writes not visible");
    return ok_status();
  });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
}

TEST_P(StoreScanTest, BadPredicatesAreRefused) {
  load();
  const auto& pkg = cls("SMS_Package");
  auto code = [&](const Predicate& p) {
    Status st = store_->scan(pkg, p, [](cim::Instance&&) { return true; });
    return st.ok() ? WbemCode::kOk : st.error().code;
  };
  EXPECT_EQ(code(Predicate::compare(999, Op::kEq, Value::string("x"))), WbemCode::kInvalidProperty);
  EXPECT_EQ(code(Predicate::compare(0, Op::kEq, Value())), WbemCode::kInvalidParameter);
  EXPECT_EQ(code(Predicate::compare(prop("SMS_Package", "SourceVersion"), Op::kEq, Value::string("seven"))),
            WbemCode::kTypeMismatch);
  EXPECT_EQ(code(Predicate::like(0, "ABC\\")), WbemCode::kInvalidParameter);
  EXPECT_EQ(code(Predicate::like(0, "ABC\xff")), WbemCode::kInvalidParameter);
  Predicate deep = Predicate::always();
  for (int i = 0; i < 300; ++i) deep = Predicate::all_of({deep});
  EXPECT_EQ(code(deep), WbemCode::kQuotaViolation);
  std::vector<Predicate> many(40'000, Predicate::compare(0, Op::kEq, Value::string("x")));
  EXPECT_EQ(code(Predicate::any_of(many)), WbemCode::kQuotaViolation);
  EXPECT_EQ(code(Predicate::like(0, "ABC\\\\")), WbemCode::kOk);  // an escaped backslash is fine
}

// True when some line of the plan looks `column` up through an index (not a full scan filtered afterwards).
bool index_lookup_on(const std::string& plan, const std::string& column, bool pg) {
  std::size_t start = 0;
  while (start < plan.size()) {
    std::size_t end = plan.find('\n', start);
    if (end == std::string::npos) end = plan.size();
    const std::string line = plan.substr(start, end - start);
    const bool lookup = pg ? line.find("Index Cond") != std::string::npos
                           : line.find("SEARCH") != std::string::npos && line.find("USING") != std::string::npos;
    if (lookup && line.find(column) != std::string::npos) return true;
    start = end + 1;
  }
  return false;
}

TEST_P(StoreScanTest, AnIndexServesPackageIdAndSiteCodeEquality) {
  load();
  auto plan_of = [&](const std::string& cls_name, const std::string& prop_name) -> std::string {
    const Predicate p = Predicate::compare(prop(cls_name, prop_name), Op::kEq, Value::string("abc00001"));
    auto q = sql_store().scan_sql_for_test(cls(cls_name), p);
    EXPECT_TRUE(q.ok()) << q.error().to_string();
    if (!q.ok()) return {};
    // With sequential scans priced out, PostgreSQL shows whether any index can answer the condition.
    auto plan = is_pg() ? sql_store().query_text_for_test({"SET enable_seqscan = off"}, "EXPLAIN " + q->first, q->second)
                        : sql_store().query_text_for_test({}, "EXPLAIN QUERY PLAN " + q->first, q->second);
    EXPECT_TRUE(plan.ok()) << plan.error().to_string();
    return plan.ok() ? *plan : std::string();
  };
  for (const char* cls_name : {"SMS_Package", "SMS_Advertisement", "SMS_PackageStatusDetailSummarizer",
                               "SMS_DistributionDPStatus"}) {
    const std::string plan = plan_of(cls_name, "PackageID");
    EXPECT_TRUE(index_lookup_on(plan, "PackageID", is_pg())) << cls_name << ":\n" << plan;
  }
  for (const char* cls_name : {"SMS_PackageStatusDetailSummarizer", "SMS_DistributionPointInfo"}) {
    const std::string plan = plan_of(cls_name, "SiteCode");
    EXPECT_TRUE(index_lookup_on(plan, "SiteCode", is_pg())) << cls_name << ":\n" << plan;
  }
  // A list of 256 values (a join's lookup of partners) is looked up in the index too, on the key index's first
  // column and on an index of its own.
  for (const char* cls_name : {"SMS_Program", "SMS_Advertisement"}) {
    std::vector<Predicate> any;
    for (int i = 0; i < 256; ++i) {
      any.push_back(
          Predicate::compare(prop(cls_name, "PackageID"), Op::kEq, Value::string("ABC" + std::to_string(10000 + i))));
    }
    auto q = sql_store().scan_sql_for_test(cls(cls_name), Predicate::any_of(std::move(any)));
    ASSERT_TRUE(q.ok()) << q.error().to_string();
    auto plan = is_pg() ? sql_store().query_text_for_test({"SET enable_seqscan = off"}, "EXPLAIN " + q->first, q->second)
                        : sql_store().query_text_for_test({}, "EXPLAIN QUERY PLAN " + q->first, q->second);
    ASSERT_TRUE(plan.ok()) << plan.error().to_string();
    EXPECT_TRUE(index_lookup_on(*plan, "PackageID", is_pg())) << cls_name << ":\n" << *plan;
  }
}

PKGCAST_STORE_BACKENDS(StoreScanTest);

}  // namespace
}  // namespace pkgcast::store::testing
