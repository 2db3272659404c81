// The pushdown property: whatever part of WHERE is pushed into SQL, exec_query returns exactly the rows that a
// brute-force wql::matches over every row returns. Random rows (NULLs, mixed case, LIKE metacharacters) and random
// condition trees printed to WQL, on SQLite and, when PKGCAST_TEST_PG_URL is set, PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "core/strings.h"
#include "provider/answer_shape.h"
#include "provider/provider.h"
#include "store/store_test_util.h"

namespace pkgcast::provider {
namespace {

using wql::ast::Expr;
using wql::ast::ExprKind;
using wql::ast::Literal;

const std::vector<std::string> kStrings = {"abc",  "ABC", "Abc",  "abd",  "a_c", "a%c",
                                           "x\\y", "",    "zeta", "Zeta", "ab",  "\xC3\xA9t\xC3\xA9",
                                           "_",    "[x]", "b",    "ABCD"};
const std::vector<std::uint64_t> kUints = {0, 1, 2, 5, 100, 4294967295u};
const std::vector<std::string> kDates = {"2024-01-01T00:00:00Z", "2024-06-01T12:00:00Z", "2025-01-01T00:00:00Z"};
// WMI's conversions (docs/wql.md): the same instants and numbers written as the other forms a literal may take.
const std::vector<std::string> kDateTexts = {"20240101", "2024-06-01 12:00:00", "2024/01/01", "2024.06.01",
                                             "20250101000000.000000+000", "2024-06-01T12:00:00",
                                             "20240601 12:00", "2024-06-01T14:00:00+02:00"};
const std::vector<std::string> kNumberTexts = {"0", "1", " 2 ", "5", "+100", "-1", "1.5", "4294967295",
                                               "4294967296", "2e0", "abc"};
const std::vector<std::string> kPatterns = {"a%", "%c",  "_bc",   "a[b-c]%", "[^a]%", "%\\%",
                                            "%",  "A_C", "a\\_c", "%[%]%",   "[]]%",  "%t_"};

class PushdownProperty : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    store::OpenOptions options;
    if (GetParam() == "postgresql") {
      // A database of its own (created through the maintenance URL, dropped afterwards): the PostgreSQL cases run
      // in parallel under ctest, and one database admits one writing store.
      std::string skip;
      std::string error;
      database_ = store::testing::TestDatabase::create("postgresql", skip, error);
      if (database_ == nullptr && !skip.empty()) GTEST_SKIP() << skip;
      ASSERT_NE(database_, nullptr) << error;
      options.url = database_->url();
    } else {
      dir_ = std::filesystem::temp_directory_path() / ("pkgcast_pushdown_" + std::to_string(std::random_device{}()));
      std::filesystem::create_directories(dir_);
      options.url = "sqlite:" + (dir_ / "p.db").string();
    }
    auto opened = store::Store::open(options);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    store_ = std::move(*opened);
    provider_ = std::make_unique<Provider>(*store_, "ABC", "server1");
  }
  void TearDown() override {
    provider_.reset();
    if (store_) store_->close();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  const cim::ClassDef& cls(std::string_view name) { return *store_->registry().find(name); }

  cim::Value random_value(const cim::PropertyDef& p, std::mt19937& rng) {
    if (rng() % 5 == 0) return {};
    switch (p.type.base) {
      case cim::CimType::kString:
        if (p.type.array) {
          return cim::Value::array(cim::CimType::kString, {cim::Value::string(kStrings[rng() % kStrings.size()])});
        }
        return cim::Value::string(kStrings[rng() % kStrings.size()]);
      case cim::CimType::kUint32:
        return cim::Value::uint32(static_cast<std::uint32_t>(kUints[rng() % kUints.size()]));
      case cim::CimType::kUint64:
        return cim::Value::uint64(kUints[rng() % kUints.size()]);
      case cim::CimType::kBoolean:
        return cim::Value::boolean(rng() % 2 == 0);
      case cim::CimType::kDateTime:
        return cim::Value::datetime(*cim::DateTime::parse(kDates[rng() % kDates.size()]));
      default:
        return {};
    }
  }

  void fill(std::mt19937& rng) {
    const std::vector<std::string> classes = {"SMS_Package", "SMS_PackageStatusRootSummarizer",
                                              "SMS_DistributionPointInfo"};
    // Start from empty tables (a PostgreSQL database may hold rows of an earlier run).
    ASSERT_TRUE(store_
                    ->execute([&](store::WriteTxn& txn) -> Status {
                      for (const auto& name : classes) {
                        std::vector<std::vector<cim::Value>> keys;
                        PKG_TRY(txn.scan(cls(name), store::Predicate::always(), [&](cim::Instance&& i) {
                          keys.push_back(store::key_of(i));
                          return true;
                        }));
                        for (const auto& k : keys) PKG_TRY(txn.remove(cls(name), k));
                      }
                      return ok_status();
                    })
                    .ok());
    ASSERT_TRUE(store_
                    ->execute([&](store::WriteTxn& txn) -> Status {
                      int serial = 0;
                      for (const auto& name : classes) {
                        for (int i = 0; i < 120; ++i) {
                          cim::Instance inst(cls(name));
                          const auto& props = inst.class_def().properties();
                          for (std::size_t p = 0; p < props.size(); ++p) inst.set(p, random_value(props[p], rng));
                          // Unique keys, in mixed case so that key comparisons are exercised too.
                          for (std::size_t k : inst.class_def().key_indices()) {
                            std::string key = (serial % 2 ? "abc" : "ABC") + std::to_string(10000 + serial);
                            inst.set(k, cim::Value::string(key));
                          }
                          ++serial;
                          PKG_TRY(txn.put(inst));
                        }
                      }
                      return ok_status();
                    })
                    .ok());
  }

  Literal literal_for(const cim::PropertyDef& p, std::mt19937& rng) {
    Literal l;
    switch (p.type.base) {
      case cim::CimType::kString:
        if (rng() % 6 == 0) {
          l.value = kUints[rng() % kUints.size()];  // `Name = 5` compares with '5'
          converting_ = true;
        } else {
          l.value = kStrings[rng() % kStrings.size()];
        }
        break;
      case cim::CimType::kDateTime:
        if (rng() % 2 == 0) {
          l.value = kDateTexts[rng() % kDateTexts.size()];
          converting_ = true;
        } else {
          l.value = kDates[rng() % kDates.size()];
        }
        break;
      case cim::CimType::kBoolean: {
        const int pick = static_cast<int>(rng() % 6);
        if (pick <= 2) converting_ = true;
        if (pick == 0) {
          l.value = std::uint64_t{rng() % 3};  // 0 is FALSE, 1 and 2 are TRUE
        } else if (pick == 1) {
          l.value = std::string(rng() % 2 ? "true" : "FALSE");
        } else if (pick == 2) {
          l.value = std::string(rng() % 2 ? "1" : "0");
        } else {
          l.value = rng() % 2 == 0;
        }
        break;
      }
      default: {
        const int pick = static_cast<int>(rng() % 14);
        if (pick >= 10) {
          l.value = kNumberTexts[rng() % kNumberTexts.size()];  // `State = '3'`
          converting_ = true;
        } else if (pick == 0) {
          l.value = std::int64_t{-1};
        } else if (pick == 1) {
          l.value = 1.5;
        } else if (pick == 2) {
          l.value = std::uint64_t{4294967296u};
        } else {
          l.value = kUints[rng() % kUints.size()];
        }
      }
    }
    return l;
  }

  // `alias`: the paths read `alias.Property` (a class of a join).
  Expr random_expr(const cim::ClassDef& from, std::mt19937& rng, int depth, const std::string& alias = "") {
    Expr e;
    const int pick = static_cast<int>(rng() % (depth > 0 ? 9 : 5));
    if (pick >= 5) {
      e.kind = pick == 5 ? ExprKind::kNot : (pick % 2 ? ExprKind::kAnd : ExprKind::kOr);
      const int n = e.kind == ExprKind::kNot ? 1 : 2 + static_cast<int>(rng() % 2);
      for (int i = 0; i < n; ++i) e.children.push_back(random_expr(from, rng, depth - 1, alias));
      return e;
    }
    const auto& props = from.properties();
    const auto& p = props[rng() % props.size()];
    wql::ast::PropertyPath path;
    path.parts = {p.name};
    path.positions = {wql::ast::Position{}};
    if (!alias.empty()) {
      path.parts.insert(path.parts.begin(), alias);
      path.positions.push_back(wql::ast::Position{});
    }
    e.lhs = path;
    if (pick == 0) {
      e.kind = ExprKind::kIsNull;
      e.negated = rng() % 2 == 0;
    } else if (pick == 1 && p.type.base == cim::CimType::kString && !p.type.array) {
      e.kind = ExprKind::kLike;
      e.negated = rng() % 4 == 0;
      Literal l;
      l.value = kPatterns[rng() % kPatterns.size()];
      e.rhs = l;
    } else if (pick == 2) {
      // IN / NOT IN, over scalars and arrays, with converted values and sometimes a NULL.
      e.kind = ExprKind::kIn;
      e.negated = rng() % 3 == 0;
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < n; ++i) e.list.push_back(rng() % 8 == 0 ? Literal{} : literal_for(p, rng));
      ++in_lists_;
    } else {
      e.kind = ExprKind::kCompare;
      const bool boolean = p.type.base == cim::CimType::kBoolean;
      e.op = boolean ? (rng() % 2 ? wql::ast::CompareOp::kEq : wql::ast::CompareOp::kNe)
                     : static_cast<wql::ast::CompareOp>(rng() % 6);
      e.rhs = literal_for(p, rng);
      // Extended WQL's functions: computed in memory over a property, folded (and pushed) over literals.
      if (rng() % 4 == 0 && !p.type.array && p.type.base == cim::CimType::kString) {
        wql::ast::Call call;
        call.function = rng() % 2 ? wql::ast::Function::kUpper : wql::ast::Function::kLower;
        call.args.push_back(e.lhs);
        e.lhs = wql::ast::CallBox(std::move(call));
        ++functions_;
      } else if (rng() % 3 == 0 && !p.type.array && p.type.base == cim::CimType::kDateTime) {
        wql::ast::Call call;
        call.function = wql::ast::Function::kDateAdd;
        call.datepart = rng() % 2 ? "dd" : "hh";
        Literal n;
        n.value = static_cast<std::int64_t>(rng() % 400) - 200;
        Literal date;
        date.value = kDates[rng() % kDates.size()];
        call.args = {n, date};
        e.rhs = wql::ast::CallBox(std::move(call));
        ++functions_;
      }
    }
    return e;
  }

  std::vector<std::string> brute_force(const wql::BoundQuery& q) {
    std::vector<std::string> out;
    for (const cim::ClassDef* c : store_->registry().subclasses_of(q.from_class())) {
      if (c->abstract() || c->is_event_class() || c->name().rfind("__", 0) == 0) continue;
      EXPECT_TRUE(store_
                      ->scan(*c, store::Predicate::always(),
                             [&](cim::Instance&& inst) {
                               if (wql::matches(q, inst)) out.push_back(inst.relpath());
                               return true;
                             })
                      .ok());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // SELECT COUNT(*) with the same WHERE: one __Generic instance counting the rows the query answers.
  void check_count(const wql::ast::Query& q, std::size_t expected, const site::TokenRecord& caller) {
    wql::ast::Query counted = q;
    counted.count = true;
    const std::string text = wql::print(counted);
    std::vector<std::uint64_t> got;
    const Status st = provider_->exec_query("", text, caller, [&](const cim::Instance& inst) {
      got.push_back(inst.find("Count")->as_uint());
      return true;
    });
    ASSERT_TRUE(st.ok()) << text << ": " << st.error().to_string();
    ASSERT_EQ(got, std::vector<std::uint64_t>{expected}) << text;
    auto prepared = provider_->prepare("", text, caller);
    if (prepared->count_in_sql()) ++counted_in_sql_;
  }

  // SELECT DISTINCT over one or two random scalar properties, read in pages of 7 rows: each combination of the
  // matching rows exactly once.
  void check_distinct(const wql::ast::Query& q, const cim::ClassDef& from, const wql::BoundQuery& bound,
                      std::mt19937& rng, const site::TokenRecord& caller) {
    wql::ast::Query distinct = q;
    distinct.distinct = true;
    std::vector<std::size_t> props;
    const int n = 1 + static_cast<int>(rng() % 2);
    for (int i = 0; i < n; ++i) {
      const std::size_t p = rng() % from.properties().size();
      if (from.property(p).type.array || std::find(props.begin(), props.end(), p) != props.end()) continue;
      props.push_back(p);
      wql::ast::PropertyPath path;
      path.parts = {from.property(p).name};
      path.positions = {wql::ast::Position{}};
      distinct.select.push_back(path);
    }
    if (props.empty()) return;
    if (rng() % 2 == 0) {  // sorted by the database: one run of equal values remembered at a time
      wql::ast::OrderTerm term;
      term.path = distinct.select.front();
      term.descending = rng() % 2 == 0;
      distinct.order_by.push_back(term);
    }
    const std::string text = wql::print(distinct);
    auto prepared = provider_->prepare("", text, caller);
    ASSERT_TRUE(prepared.ok()) << text << ": " << prepared.error().to_string();
    auto key = [&](const cim::Instance& inst) {
      std::vector<const cim::Value*> values;
      for (std::size_t p : props) values.push_back(&inst.get(p));
      return distinct_key(values);
    };
    std::vector<std::string> got;
    QueryCursor cursor;
    for (int guard = 0; guard < 1000 && !cursor.done(); ++guard) {
      ASSERT_TRUE(provider_
                      ->run_page(*prepared, cursor, PageBounds{.max_rows = 7, .slice = std::chrono::seconds(5)},
                                 [&](const cim::Instance& inst) {
                                   got.push_back(key(inst));
                                   return true;
                                 })
                      .ok());
    }
    std::set<std::string> want;
    for (const cim::ClassDef* c : store_->registry().subclasses_of(from)) {
      if (c->abstract()) continue;  // SMS_PackageBaseclass: its rows are SMS_Package's
      ASSERT_TRUE(store_
                      ->scan(*c, store::Predicate::always(),
                             [&](cim::Instance&& inst) {
                               if (wql::matches(bound, inst)) want.insert(key(inst));
                               return true;
                             })
                      .ok());
    }
    std::vector<std::string> sorted = got;
    std::sort(sorted.begin(), sorted.end());
    ASSERT_EQ(sorted, std::vector<std::string>(want.begin(), want.end())) << text;
    if (got.size() > 1) ++distinct_checked_;
  }

  int counted_in_sql_ = 0;    // COUNT(*) queries the database counted
  int distinct_checked_ = 0;  // DISTINCT answers of two rows or more
  // Whether the expression being generated holds a literal that the binder must convert.
  bool converting_ = false;
  int in_lists_ = 0;  // IN predicates generated
  int functions_ = 0;  // function calls generated
  std::filesystem::path dir_;
  std::unique_ptr<store::testing::TestDatabase> database_;  // PostgreSQL; outlives the store
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Provider> provider_;
};

TEST_P(PushdownProperty, PushdownAgreesWithBruteForce) {
  std::mt19937 rng(20240601);
  fill(rng);
  const std::vector<std::string> froms = {"SMS_Package", "SMS_PackageStatusRootSummarizer", "SMS_DistributionPointInfo",
                                          "SMS_BaseClass", "SMS_PackageBaseclass"};
  site::TokenRecord admin;
  admin.role = site::Role::kFullAdmin;
  int compared = 0;
  int nonempty = 0;
  int converted = 0;  // queries whose WHERE holds a literal of another type than its property
  for (int round = 0; round < 720; ++round) {
    wql::ast::Query q;
    q.from_class = froms[rng() % froms.size()];
    const cim::ClassDef& from = cls(q.from_class == "SMS_BaseClass" ? "SMS_Package" : q.from_class);
    converting_ = false;
    if (q.from_class != "SMS_BaseClass") q.where = random_expr(from, rng, 3);
    const std::string text = wql::print(q);
    auto bound = wql::compile(text, store_->registry());
    if (!bound.ok()) continue;  // e.g. a type the binder refuses; the generator is deliberately loose
    std::vector<std::string> got;
    const Status st = provider_->exec_query("", text, admin, [&](const cim::Instance& inst) {
      got.push_back(inst.relpath());
      return true;
    });
    ASSERT_TRUE(st.ok()) << text << ": " << st.error().to_string();
    std::sort(got.begin(), got.end());
    const auto expected = brute_force(*bound);
    ASSERT_EQ(got, expected) << text;
    check_count(q, expected.size(), admin);
    if (q.from_class != "SMS_BaseClass") check_distinct(q, from, *bound, rng, admin);
    ++compared;
    if (!expected.empty()) ++nonempty;
    if (converting_) ++converted;
  }
  // The generator must actually exercise the comparison, with results of both kinds.
  EXPECT_GT(compared, 300);
  EXPECT_GT(nonempty, 100);
  EXPECT_LT(nonempty, compared);
  EXPECT_GT(converted, 50);
  EXPECT_GT(in_lists_, 100);
  EXPECT_GT(counted_in_sql_, 50);
  EXPECT_GT(functions_, 50);
  EXPECT_GT(distinct_checked_, 100);
}

// ORDER BY's order (NULL first ascending, last descending; strings ignoring case), for checking answers.
int order_compare(const cim::Value& a, const cim::Value& b) {
  if (a.is_null() || b.is_null()) return a.is_null() == b.is_null() ? 0 : (a.is_null() ? -1 : 1);
  switch (a.type().base) {
    case cim::CimType::kString: return icompare(a.as_string(), b.as_string());
    case cim::CimType::kBoolean: return static_cast<int>(a.as_bool()) - static_cast<int>(b.as_bool());
    case cim::CimType::kDateTime: return a.as_datetime() < b.as_datetime() ? -1 : (b.as_datetime() < a.as_datetime());
    case cim::CimType::kSint8:
    case cim::CimType::kSint16:
    case cim::CimType::kSint32:
    case cim::CimType::kSint64: return a.as_sint() < b.as_sint() ? -1 : (b.as_sint() < a.as_sint());
    case cim::CimType::kReal32:
    case cim::CimType::kReal64: return a.as_real() < b.as_real() ? -1 : (b.as_real() < a.as_real());
    default: return a.as_uint() < b.as_uint() ? -1 : (b.as_uint() < a.as_uint());
  }
}

// Joins: whichever conditions go into each class's scan and however partners are looked up (IN lists of the key's
// values, or a class read whole), the provider answers exactly the joined rows that nested loops over every row
// with wql::evaluate_on and wql::matches_row give; COUNT(*) counts them. Inner, LEFT and `FROM A, B` joins of
// random classes (self-joins too) on a random string equality, with random conditions on either side.
TEST_P(PushdownProperty, JoinsAgreeWithBruteForce) {
  std::mt19937 rng(20261129);
  fill(rng);
  const std::vector<std::string> classes = {"SMS_Package", "SMS_PackageStatusRootSummarizer",
                                            "SMS_DistributionPointInfo"};
  site::TokenRecord admin;
  admin.role = site::Role::kFullAdmin;
  auto rows_of = [&](const cim::ClassDef& c) {
    std::vector<cim::Instance> out;
    EXPECT_TRUE(store_->scan(c, store::Predicate::always(), [&](cim::Instance&& inst) {
      inst.set_location("server1", provider_->namespace_path());
      out.push_back(std::move(inst));
      return true;
    }).ok());
    return out;
  };
  auto path = [](const std::string& alias, const std::string& name) {
    wql::ast::PropertyPath p;
    p.parts = {alias, name};
    p.positions = {wql::ast::Position{}, wql::ast::Position{}};
    return p;
  };
  auto string_property = [&](const cim::ClassDef& c) {
    std::vector<std::string> names;
    for (const auto& p : c.properties()) {
      if (p.type.base == cim::CimType::kString && !p.type.array) names.push_back(p.name);
    }
    return names[rng() % names.size()];
  };
  auto both = [](Expr a, Expr b) {
    Expr e;
    e.kind = ExprKind::kAnd;
    e.children = {std::move(a), std::move(b)};
    return e;
  };
  int compared = 0;
  int nonempty = 0;
  int left_missing = 0;  // LEFT JOIN rows without a partner, among the expected rows
  for (int round = 0; round < 150; ++round) {
    const cim::ClassDef& a = cls(classes[rng() % classes.size()]);
    const cim::ClassDef& b = cls(classes[rng() % classes.size()]);
    wql::ast::Query q;
    q.from_class = a.name();
    q.from_alias = "X";
    wql::ast::Join join;
    join.kind = static_cast<wql::ast::JoinKind>(rng() % 3);
    join.cls.name = b.name();
    join.cls.alias = "Y";
    Expr eq;
    eq.kind = ExprKind::kCompare;
    eq.lhs = path("X", string_property(a));
    eq.rhs = path("Y", string_property(b));
    if (rng() % 3 == 0) eq = both(std::move(eq), random_expr(b, rng, 1, "Y"));
    if (join.kind == wql::ast::JoinKind::kList) {
      q.where = std::move(eq);
    } else {
      join.on = std::move(eq);
    }
    q.joins.push_back(std::move(join));
    if (rng() % 2 == 0) {
      // Over one class, X or Y.
      const bool over_x = rng() % 2 == 0;
      Expr more = random_expr(over_x ? a : b, rng, 2, over_x ? "X" : "Y");
      q.where = q.where ? both(std::move(*q.where), std::move(more)) : std::move(more);
    }
    const std::string text = wql::print(q);
    auto bound = wql::compile(text, store_->registry());
    if (!bound.ok()) continue;
    std::vector<std::string> got;
    const Status st = provider_->exec_query("", text, admin, [&](const cim::Instance& inst) {
      const cim::Value* x = inst.find("X");
      const cim::Value* y = inst.find("Y");
      got.push_back(x->as_object().relpath() + "|" + (y->is_null() ? "-" : y->as_object().relpath()));
      return true;
    });
    ASSERT_TRUE(st.ok()) << text << ": " << st.error().to_string();
    std::sort(got.begin(), got.end());
    std::vector<std::string> expected;
    const auto xs = rows_of(a);
    const auto ys = rows_of(b);
    for (const auto& x : xs) {
      bool partnered = false;
      for (const auto& y : ys) {
        const cim::Instance* row[] = {&x, &y};
        if (wql::evaluate_on(*bound, 1, row) != wql::Truth::kTrue) continue;
        partnered = true;
        if (wql::matches_row(*bound, row)) expected.push_back(x.relpath() + "|" + y.relpath());
      }
      const cim::Instance* alone[] = {&x, nullptr};
      if (!partnered && bound->tables()[1].kind == wql::ast::JoinKind::kLeft && wql::matches_row(*bound, alone)) {
        expected.push_back(x.relpath() + "|-");
        ++left_missing;
      }
    }
    std::sort(expected.begin(), expected.end());
    ASSERT_EQ(got, expected) << text;
    wql::ast::Query counted = q;
    counted.count = true;
    std::uint64_t count = 0;
    ASSERT_TRUE(provider_->exec_query("", wql::print(counted), admin, [&](const cim::Instance& inst) {
      count = inst.find("Count")->as_uint();
      return true;
    }).ok());
    EXPECT_EQ(count, expected.size()) << text;
    // Sorted by a property of the joined class (and one of the first): sorted in memory, the same rows, in order.
    wql::ast::Query sorted = q;
    const auto sortable = [&](const cim::ClassDef& c) {
      std::vector<std::string> names;
      for (const auto& p : c.properties()) {
        if (!p.type.array && p.type.base != cim::CimType::kObject && !p.lazy) names.push_back(p.name);
      }
      return names[rng() % names.size()];
    };
    sorted.order_by.push_back({path("Y", sortable(b)), rng() % 2 == 0});
    if (rng() % 2 == 0) sorted.order_by.push_back({path("X", sortable(a)), rng() % 2 == 0});
    const std::string sorted_text = wql::print(sorted);
    std::vector<std::string> in_order;
    std::vector<std::vector<cim::Value>> sort_values;
    ASSERT_TRUE(provider_->exec_query("", sorted_text, admin, [&](const cim::Instance& inst) {
      const cim::Value* x = inst.find("X");
      const cim::Value* y = inst.find("Y");
      in_order.push_back(x->as_object().relpath() + "|" + (y->is_null() ? "-" : y->as_object().relpath()));
      std::vector<cim::Value> values;
      for (const auto& term : sorted.order_by) {
        const cim::Value* side = term.path.parts[0] == "X" ? x : y;
        const cim::Value* v = side->is_null() ? nullptr : side->as_object().find(term.path.parts[1]);
        values.push_back(v == nullptr ? cim::Value() : *v);
      }
      sort_values.push_back(std::move(values));
      return true;
    }).ok()) << sorted_text;
    for (std::size_t r = 1; r < sort_values.size(); ++r) {
      int cmp = 0;
      for (std::size_t i = 0; i < sorted.order_by.size() && cmp == 0; ++i) {
        cmp = order_compare(sort_values[r - 1][i], sort_values[r][i]);
        if (sorted.order_by[i].descending) cmp = -cmp;
      }
      ASSERT_LE(cmp, 0) << sorted_text << " rows " << r - 1 << ", " << r;
    }
    std::sort(in_order.begin(), in_order.end());
    ASSERT_EQ(in_order, expected) << sorted_text;
    ++compared;
    if (!expected.empty()) ++nonempty;
  }
  EXPECT_GT(compared, 100);
  EXPECT_GT(nonempty, 50);
  EXPECT_LT(nonempty, compared);
  EXPECT_GT(left_missing, 20);
}

// ORDER BY: the database sorts and the provider pages by (sort values, key); small pages joined must be the whole
// answer, each row once, in order (NULL first ascending, last descending; strings ignoring case).
TEST_P(PushdownProperty, OrderByStreamsSortedPages) {
  std::mt19937 rng(7);
  fill(rng);
  site::TokenRecord admin;
  admin.role = site::Role::kFullAdmin;
  const std::vector<std::pair<std::string, std::vector<std::pair<std::string, bool>>>> cases = {
      {"SMS_Package", {{"Name", false}}},
      {"SMS_Package", {{"Name", true}}},
      {"SMS_Package", {{"Priority", true}, {"SourceDate", false}}},
      {"SMS_PackageStatusRootSummarizer", {{"SourceDate", true}}},
      {"SMS_DistributionPointInfo", {{"IsPullDP", false}, {"Name", true}}}};
  for (const auto& [cls_name, terms] : cases) {
    std::string text = "SELECT * FROM " + cls_name + " WHERE " + terms.front().first + " IS NULL OR " +
                       terms.front().first + " IS NOT NULL ORDER BY ";
    for (std::size_t i = 0; i < terms.size(); ++i) {
      text += (i ? ", " : "") + terms[i].first + (terms[i].second ? " DESC" : "");
    }
    auto prepared = provider_->prepare("", text, admin);
    ASSERT_TRUE(prepared.ok()) << text << ": " << prepared.error().to_string();
    std::vector<cim::Instance> rows;
    QueryCursor cursor;
    for (int guard = 0; guard < 1000 && !cursor.done(); ++guard) {
      ASSERT_TRUE(provider_
                      ->run_page(*prepared, cursor, PageBounds{.max_rows = 7, .slice = std::chrono::seconds(5)},
                                 [&](const cim::Instance& inst) {
                                   rows.push_back(inst);
                                   return true;
                                 })
                      .ok());
    }
    ASSERT_EQ(rows.size(), 120u) << text;
    const cim::ClassDef& c = cls(cls_name);
    for (std::size_t r = 1; r < rows.size(); ++r) {
      int cmp = 0;
      for (const auto& [name, desc] : terms) {
        const std::size_t idx = *c.find_property(name);
        cmp = order_compare(rows[r - 1].get(idx), rows[r].get(idx));
        if (desc) cmp = -cmp;
        if (cmp != 0) break;
      }
      // Ties by key: descending after one descending term (the store walks one index both ways), else ascending.
      if (cmp == 0) {
        cmp = icompare(rows[r - 1].relpath(), rows[r].relpath()) < 0 ? -1 : 1;
        if (terms.size() == 1 && terms.front().second) cmp = -cmp;
      }
      EXPECT_LT(cmp, 0) << text << " rows " << r - 1 << ", " << r;
    }
  }
  auto many = provider_->prepare("", "SELECT * FROM SMS_BaseClass ORDER BY __CLASS", admin);
  ASSERT_FALSE(many.ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, PushdownProperty, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pkgcast::provider
