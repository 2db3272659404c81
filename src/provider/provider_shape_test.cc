// SELECT DISTINCT, SELECT COUNT(*) and IN (SELECT ...) over a real SQLite store (the pushdown property test checks
// DISTINCT and COUNT against brute force on SQLite and PostgreSQL with random data).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>

#include "core/strings.h"
#include "provider/answer_shape.h"
#include "provider/provider.h"
#include "provider/provider_test_fixture.h"
#include "site/site.h"

namespace pkgcast::provider {
namespace {

class ProviderShapeTest : public ProviderStoreTest {
 protected:
  void SetUp() override {
    open_store();
    ASSERT_FALSE(HasFatalFailure());
    site::Domain domain(*store_, "ABC", "server1");
    ASSERT_TRUE(domain.create_dp({"dp1", "ABC", "", "", false, {}, 0, ""}).ok());
    ASSERT_TRUE(domain.create_dp({"dp2", "S01", "", "", false, {}, 0, ""}).ok());
    ASSERT_TRUE(domain.create_dp({"dp3", "S01", "", "", false, {}, 0, ""}).ok());
    // Manufacturers repeat, in mixed case; one is missing (NULL... or empty, as the domain stores it).
    const std::vector<std::pair<std::string, std::string>> packages = {
        {"Office", "Microsoft"}, {"Reader", "Adobe"},   {"Teams", "MICROSOFT"}, {"Edge", "microsoft"},
        {"Acrobat", "Adobe"},    {"7-Zip", "Igor"},     {"Notepad", "Microsoft"}};
    for (const auto& [name, manufacturer] : packages) {
      site::PackageSpec spec;
      spec.name = name;
      spec.manufacturer = manufacturer;
      spec.priority = name.size() % 2 ? 1 : 2;
      ASSERT_TRUE(domain.create_package(spec).ok());
    }
    ASSERT_TRUE(domain.create_program({"ABC00001", "Install", "setup", "", "", 0, 0, ""}).ok());
    ASSERT_TRUE(domain.create_program({"ABC00001", "Remove", "setup /x", "", "", 0, 0, ""}).ok());
    admin_.role = site::Role::kFullAdmin;
    make_provider({});
  }
  void make_provider(QueryLimits limits) { provider_ = std::make_unique<Provider>(*store_, "ABC", "server1", limits); }

  Result<std::vector<cim::Instance>> query(std::string_view wql, const site::TokenRecord& caller) {
    std::vector<cim::Instance> out;
    PKG_TRY(provider_->exec_query("", wql, caller, [&](const cim::Instance& inst) {
      out.push_back(inst);
      return true;
    }));
    return out;
  }
  Result<std::vector<cim::Instance>> query(std::string_view wql) { return query(wql, admin_); }

  // COUNT(*): the one __Generic instance's Count; and whether the database counted.
  std::uint64_t count(std::string_view wql, const site::TokenRecord& caller, bool in_sql) {
    auto prepared = provider_->prepare("", wql, caller);
    EXPECT_TRUE(prepared.ok()) << prepared.error().to_string();
    if (!prepared.ok()) return 0;
    EXPECT_EQ(prepared->count_in_sql(), in_sql) << wql;
    auto rows = query(wql, caller);
    EXPECT_TRUE(rows.ok()) << rows.error().to_string();
    if (!rows.ok() || rows->size() != 1) {
      ADD_FAILURE() << wql << ": expected one instance";
      return 0;
    }
    const cim::Instance& answer = rows->front();
    EXPECT_EQ(answer.class_name(), "__Generic");
    EXPECT_EQ(answer.find("Count")->type().base, cim::CimType::kUint32);
    return answer.find("Count")->as_uint();
  }
  std::uint64_t count(std::string_view wql, bool in_sql = true) { return count(wql, admin_, in_sql); }

  std::vector<std::string> column(const std::vector<cim::Instance>& rows, std::string_view name) {
    std::vector<std::string> out;
    for (const auto& r : rows) {
      const cim::Value* v = r.find(name);
      out.push_back(v == nullptr || v->is_null() ? "NULL" : v->is_array() ? "[array]" : cim::to_json(*v).dump());
    }
    return out;
  }

  site::TokenRecord admin_;
};

TEST_F(ProviderShapeTest, CountIsOneGenericInstanceCountedBySql) {
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package"), 7u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE Manufacturer = 'microsoft'"), 4u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE Manufacturer = 'Adobe' OR Priority = 2"), 4u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE NOT (Name LIKE 'A%') AND Priority IN (1, '2')", false), 6u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE Name = NULL"), 0u);  // WMI: IS NULL
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE NOT (Name = NULL)"), 7u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE Name != NULL"), 7u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE Name > NULL"), 0u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE Name IS NOT NULL AND 1 = 1"), 7u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Program"), 2u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_DistributionPointInfo WHERE SiteCode = 's01'"), 2u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE PackageID = 'none'"), 0u);
}

TEST_F(ProviderShapeTest, CountOfWhatSqlCannotDecideExactlyStreamsTheRows) {
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE Name LIKE '[AE]%'", false), 2u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE NOT (Name LIKE 'A%')", false), 6u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE __RELPATH LIKE '%ABC0000%'", false), 7u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_BaseClass WHERE __CLASS = 'SMS_Site'", false), 2u);
  // A class whose rows live in several tables: one COUNT per table, summed.
  const auto all = query("SELECT * FROM SMS_BaseClass");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_BaseClass"), all->size());
}

TEST_F(ProviderShapeTest, CountSeesOnlyTheCallersSites) {
  site::TokenRecord branch;
  branch.role = site::Role::kReadOnly;
  branch.sites = {"s01"};
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_DistributionPointInfo", branch, true), 2u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package", branch, true), 0u);
  // SMS_Program rows take their package's site: read row by row.
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Program", branch, false), 0u);
  branch.sites = {"ABC"};
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Program", branch, false), 2u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_DistributionPointInfo", branch, true), 1u);
}

TEST_F(ProviderShapeTest, CountStopsAtTheRowBudget) {
  make_provider(QueryLimits{.max_rows_evaluated = 3});
  auto rows = query("SELECT COUNT(*) FROM SMS_Package WHERE Name LIKE '[AE]%'");
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.error().code, WbemCode::kQuotaViolation);
  // The database's own count reads no row into the server.
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package"), 7u);
}

TEST_F(ProviderShapeTest, DistinctKeepsOneRowPerCombination) {
  auto rows = query("SELECT DISTINCT Manufacturer FROM SMS_Package");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  // In key order, equal ignoring case: the first of each combination is answered.
  EXPECT_EQ(column(*rows, "Manufacturer"),
            (std::vector<std::string>{"\"Microsoft\"", "\"Adobe\"", "\"Igor\""}));
  for (const auto& r : *rows) {
    EXPECT_TRUE(r.find("PackageID")->is_null());  // no keys: a DISTINCT row is not one instance
    EXPECT_TRUE(r.find("Name")->is_null());
  }
  rows = query("SELECT DISTINCT Manufacturer, Priority FROM SMS_Package ORDER BY Priority DESC, Manufacturer");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(column(*rows, "Priority"), (std::vector<std::string>{"2", "2", "1", "1", "1"}));
  EXPECT_EQ(column(*rows, "Manufacturer"),
            (std::vector<std::string>{"\"Adobe\"", "\"Microsoft\"", "\"Adobe\"", "\"Igor\"", "\"MICROSOFT\""}));
  rows = query("SELECT DISTINCT Manufacturer FROM SMS_Package WHERE Name <> 'Reader' ORDER BY Manufacturer DESC");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(column(*rows, "Manufacturer"), (std::vector<std::string>{"\"Microsoft\"", "\"Igor\"", "\"Adobe\""}));
  rows = query("SELECT DISTINCT PackageID FROM SMS_Program");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 1u);
  rows = query("SELECT DISTINCT * FROM SMS_Package");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 7u);
}

TEST_F(ProviderShapeTest, DistinctPagesResumeWithoutRepeats) {
  auto prepared = provider_->prepare("", "SELECT DISTINCT Manufacturer FROM SMS_Package", admin_);
  ASSERT_TRUE(prepared.ok());
  std::vector<std::string> got;
  QueryCursor cursor;
  for (int guard = 0; guard < 100 && !cursor.done(); ++guard) {
    ASSERT_TRUE(provider_
                    ->run_page(*prepared, cursor, PageBounds{.max_rows = 1, .slice = std::chrono::seconds(5)},
                               [&](const cim::Instance& inst) {
                                 got.push_back(to_lower(inst.find("Manufacturer")->as_string()));
                                 return true;
                               })
                    .ok());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"microsoft", "adobe", "igor"}));
}

TEST_F(ProviderShapeTest, DistinctRemembersWithinItsLimitOrOneRunWhenSorted) {
  make_provider(QueryLimits{.max_distinct_rows = 2});
  // In key order every combination is remembered: three manufacturers pass a limit of two.
  auto rows = query("SELECT DISTINCT Manufacturer FROM SMS_Package");
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(rows.error().message.find("max_distinct_rows"), std::string::npos);
  // Sorted by the database, one run of equal sort values at a time.
  make_provider(QueryLimits{.max_distinct_rows = 1});
  rows = query("SELECT DISTINCT Name FROM SMS_Package ORDER BY Name");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(rows->size(), 7u);
  rows = query("SELECT DISTINCT Manufacturer, Priority FROM SMS_Package ORDER BY Manufacturer");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(rows->size(), 5u);
}

// The filter alone: rows that cannot be sorted (arrays, several tables) are all remembered, up to the limit;
// sorted rows start a new run where the sort values certainly differ, which non-ASCII strings do not certify
// (PostgreSQL's lower() may put 'É' and 'é' in one run).
TEST(DistinctFilter, RemembersRunsAndStopsAtTheLimit) {
  const cim::ClassDef& cls = *cim::ClassRegistry::builtin().find("SMS_Package");
  const std::size_t name = *cls.find_property("Name");
  auto row = [&](std::string_view v) {
    cim::Instance inst(cls);
    inst.set(name, cim::Value::string(std::string(v)));
    return inst;
  };
  DistinctFilter unsorted({name}, {}, 2);
  EXPECT_TRUE(*unsorted.admit(row("a")));
  EXPECT_FALSE(*unsorted.admit(row("A")));
  EXPECT_TRUE(*unsorted.admit(row("b")));
  auto third = unsorted.admit(row("c"));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, WbemCode::kQuotaViolation);

  DistinctFilter sorted({name}, {name}, 2);
  for (std::string_view v : {"a", "A", "b", "B", "c", "d", "e"}) {
    ASSERT_TRUE(sorted.admit(row(v)).ok());
    EXPECT_LE(sorted.remembered(), 1u);
  }
  DistinctFilter accented({name}, {name}, 0);
  EXPECT_TRUE(*accented.admit(row("\xC3\x89t\xC3\xA9")));   // Été
  EXPECT_TRUE(*accented.admit(row("\xC3\xA9t\xC3\xA9")));   // été: another value for WQL, the same run for lower()
  EXPECT_FALSE(*accented.admit(row("\xC3\x89T\xC3\xA9")));  // ÉTé: Été ignoring ASCII case
  EXPECT_EQ(accented.remembered(), 2u);
  EXPECT_TRUE(*accented.admit(row("x")));  // may still be lower()-equal to a non-ASCII value (U+212A is 'k')
  EXPECT_EQ(accented.remembered(), 3u);
  EXPECT_TRUE(*accented.admit(row("y")));
  EXPECT_EQ(accented.remembered(), 1u);
}

TEST_F(ProviderShapeTest, DistinctSeesOnlyTheCallersSites) {
  site::TokenRecord branch;
  branch.role = site::Role::kReadOnly;
  branch.sites = {"S01"};
  auto rows = query("SELECT DISTINCT SiteCode FROM SMS_DistributionPointInfo", branch);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(column(*rows, "SiteCode"), (std::vector<std::string>{"\"S01\""}));
  rows = query("SELECT DISTINCT PackageID FROM SMS_Program", branch);
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());
}

TEST_F(ProviderShapeTest, SubqueriesRunFirstAndTheirValuesFilterTheOuterScan) {
  auto rows = query("SELECT * FROM SMS_Package WHERE PackageID IN (SELECT PackageID FROM SMS_Program)");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(column(*rows, "Name"), (std::vector<std::string>{"\"Office\""}));
  rows = query("SELECT * FROM SMS_Package WHERE PackageID NOT IN (SELECT PackageID FROM SMS_Program) AND Priority = 2");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(column(*rows, "Name"), (std::vector<std::string>{"\"Reader\"", "\"Edge\""}));
  rows = query("SELECT * FROM SMS_DistributionPointInfo WHERE SiteCode IN (SELECT SiteCode FROM SMS_Site WHERE "
               "SiteCode IN (SELECT ReportingSiteCode FROM SMS_Site))");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(column(*rows, "Name"), (std::vector<std::string>{"\"dp1\""}));
  // A small answer is an IN list in the outer scan's SQL; COUNT(*) over it is the database's.
  auto prepared = provider_->prepare("", "SELECT * FROM SMS_Package WHERE PackageID IN (SELECT PackageID FROM SMS_Program)",
                                     admin_);
  ASSERT_TRUE(prepared.ok());
  ASSERT_EQ(prepared->steps().size(), 1u);
  EXPECT_EQ(prepared->steps()[0].filter.kind, store::Predicate::Kind::kCompare);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE PackageID IN (SELECT PackageID FROM SMS_Program)"), 1u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE PackageID NOT IN (SELECT PackageID FROM SMS_Program)"), 6u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE Name IN (SELECT Name FROM SMS_Package WHERE Name = 'none')"),
            0u);
}

TEST_F(ProviderShapeTest, SubqueriesRunAsTheCallerWithinTheirLimit) {
  site::TokenRecord reader;
  reader.role = site::Role::kReadOnly;
  auto denied = query("SELECT * FROM SMS_Site WHERE SiteCode IN (SELECT Description FROM PKG_Token)", reader);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, WbemCode::kAccessDenied);
  // A site-limited caller's subquery sees its sites only: S01's DPs name no ABC package site.
  site::TokenRecord branch = reader;
  branch.sites = {"S01"};
  auto rows = query("SELECT * FROM SMS_DistributionPointInfo WHERE SiteCode NOT IN (SELECT SiteCode FROM "
                    "SMS_DistributionPointInfo WHERE Name = 'dp1')",
                    branch);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 2u);
  rows = query("SELECT * FROM SMS_DistributionPointInfo WHERE SiteCode NOT IN (SELECT SiteCode FROM "
               "SMS_DistributionPointInfo WHERE Name = 'dp2')",
               branch);
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());
  make_provider(QueryLimits{.max_subquery_values = 3});
  auto over = query("SELECT * FROM SMS_Program WHERE PackageID IN (SELECT PackageID FROM SMS_Package)");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(over.error().message.find("max_subquery_values"), std::string::npos);
}

// Queries with subqueries answered at once are counted and given back on every path (answered, refused by a
// limit, failed): with room for one, one after the other always gets it.
TEST_F(ProviderShapeTest, ConcurrentSubqueryRunsAreCountedAndGivenBack) {
  make_provider(QueryLimits{.max_subquery_values = 3, .max_concurrent_subqueries = 1});
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(query("SELECT * FROM SMS_Package WHERE PackageID IN (SELECT PackageID FROM SMS_Program)").ok());
    auto over = query("SELECT * FROM SMS_Program WHERE PackageID IN (SELECT PackageID FROM SMS_Package)");
    ASSERT_FALSE(over.ok());
    EXPECT_EQ(over.error().code, WbemCode::kQuotaViolation);
  }
}

// The budget is one for the subqueries and the query together: each subquery alone reads within it, their sum
// does not (SMS_Package has 7 rows, SMS_Program fewer).
TEST_F(ProviderShapeTest, SubqueriesAndTheQueryShareOneBudget) {
  make_provider(QueryLimits{.max_rows_evaluated = 12});
  auto one = query("SELECT * FROM SMS_Program WHERE PackageID IN (SELECT PackageID FROM SMS_Package)");
  ASSERT_TRUE(one.ok()) << one.error().to_string();
  auto over = query(
      "SELECT * FROM SMS_Program WHERE PackageID IN (SELECT PackageID FROM SMS_Package) OR PackageID IN (SELECT "
      "PackageID FROM SMS_Package)");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(over.error().message.find("max_rows_evaluated"), std::string::npos) << over.error().message;
}

}  // namespace
}  // namespace pkgcast::provider
