// Joins over a real SQLite store: the answer's shape (__Generic or one class), LEFT JOIN's missing partners,
// COUNT and DISTINCT over joins, site-limited callers seeing only their sites' rows of each joined class, paging,
// and the memory limit. (pushdown_property_test checks joins against brute force on both backends.)
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "cim/json.h"
#include "provider/provider.h"
#include "provider/provider_test_fixture.h"
#include "site/site.h"

namespace pkgcast::provider {
namespace {

// "PackageID/ProgramName" of each __Generic row with embedded P and G ("-" for a missing one), in the answer's
// order.
std::vector<std::string> in_order(const std::vector<cim::Instance>& rows) {
  std::vector<std::string> out;
  for (const auto& row : rows) {
    auto part = [&](const char* alias, const char* prop) -> std::string {
      const cim::Value* v = row.find(alias);
      if (v == nullptr || v->is_null()) return "-";
      const cim::Value* p = v->as_object().find(prop);
      return p == nullptr || p->is_null() ? "?" : p->as_string();
    };
    out.push_back(part("P", "PackageID") + "/" + part("G", "ProgramName"));
  }
  return out;
}

class ProviderJoinTest : public ProviderStoreTest {
 protected:
  void SetUp() override {
    open_store();
    ASSERT_FALSE(HasFatalFailure());
    site::Domain domain(*store_, "ABC", "server1");
    for (const char* name : {"Office", "Reader", "Tools"}) {
      site::PackageSpec spec;
      spec.name = name;
      ASSERT_TRUE(domain.create_package(spec).ok());
    }
    ASSERT_TRUE(domain.create_program({"ABC00001", "Install", "setup", "", "", 0, 0, ""}).ok());
    ASSERT_TRUE(domain.create_program({"ABC00001", "Remove", "setup /x", "", "", 0, 0, ""}).ok());
    ASSERT_TRUE(domain.create_program({"ABC00002", "Install", "reader.msi", "", "", 0, 0, ""}).ok());
    // A package of the branch site (as a child site's package replicates to its parent), with a program.
    const cim::ClassDef& pkg_cls = *store_->registry().find("SMS_Package");
    const cim::ClassDef& prog_cls = *store_->registry().find("SMS_Program");
    ASSERT_TRUE(store_
                    ->execute([&](store::WriteTxn& txn) -> Status {
                      cim::Instance pkg(pkg_cls);
                      pkg.set(*pkg_cls.find_property("PackageID"), cim::Value::string("S0100001"));
                      pkg.set(*pkg_cls.find_property("Name"), cim::Value::string("Branch tool"));
                      pkg.set(*pkg_cls.find_property("SourceSite"), cim::Value::string("S01"));
                      PKG_TRY(txn.put(pkg));
                      cim::Instance prog(prog_cls);
                      prog.set(*prog_cls.find_property("PackageID"), cim::Value::string("S0100001"));
                      prog.set(*prog_cls.find_property("ProgramName"), cim::Value::string("Install"));
                      return txn.put(prog);
                    })
                    .ok());
    admin_.role = site::Role::kFullAdmin;
    make_provider({});
  }
  void TearDown() override {
    last_.reset();
    ProviderStoreTest::TearDown();
  }
  void make_provider(QueryLimits limits) { provider_ = std::make_unique<Provider>(*store_, "ABC", "server1", limits); }

  // The prepared query is kept until the next one: a join's __Generic rows are of a class made for their query.
  Result<std::vector<cim::Instance>> query(std::string_view wql, const site::TokenRecord& caller) {
    std::vector<cim::Instance> out;
    PKG_ASSIGN_OR_RETURN(PreparedQuery prepared, provider_->prepare("", wql, caller));
    last_ = std::make_unique<PreparedQuery>(std::move(prepared));
    QueryCursor cursor;
    while (!cursor.done()) {
      Status page =
          provider_->run_page(*last_, cursor, PageBounds{.max_rows = 512, .slice = std::chrono::milliseconds(20)},
                              [&](const cim::Instance& inst) {
                                out.push_back(inst);
                                return true;
                              });
      last_cursor_rows_ = cursor.rows_evaluated();
      PKG_TRY(page);
    }
    return out;
  }
  Result<std::vector<cim::Instance>> query(std::string_view wql) { return query(wql, admin_); }

  // The same, sorted.
  static std::vector<std::string> pairs(const std::vector<cim::Instance>& rows) {
    std::vector<std::string> out = in_order(rows);
    std::sort(out.begin(), out.end());
    return out;
  }

  std::unique_ptr<PreparedQuery> last_;
  std::uint64_t last_cursor_rows_ = 0;  // rows evaluated by the last query
  site::TokenRecord admin_;
};

using V = std::vector<std::string>;
constexpr std::string_view kJoin =
    "SELECT * FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID";

TEST_F(ProviderJoinTest, AnswersGenericInstancesHoldingOneObjectPerAlias) {
  auto rows = query(kJoin);
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(pairs(*rows), (V{"ABC00001/Install", "ABC00001/Remove", "ABC00002/Install", "S0100001/Install"}));
  const cim::Instance& first = rows->front();
  EXPECT_EQ(first.class_name(), "__Generic");
  const cim::Instance& pkg = first.find("P")->as_object();
  EXPECT_EQ(pkg.class_name(), "SMS_Package");
  // Each embedded object is located as a row of its own class would be.
  EXPECT_EQ(pkg.path(), R"(\\server1\root\sms\site_ABC:SMS_Package.PackageID=")" + pkg.find("PackageID")->as_string() +
                            "\"");
}

TEST_F(ProviderJoinTest, LeftJoinKeepsRowsWithoutPartners) {
  auto rows = query("SELECT * FROM SMS_Package AS P LEFT JOIN SMS_Program AS G ON P.PackageID = G.PackageID "
                    "WHERE P.SourceSite = 'ABC'");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(pairs(*rows), (V{"ABC00001/Install", "ABC00001/Remove", "ABC00002/Install", "ABC00003/-"}));
}

TEST_F(ProviderJoinTest, OneAnsweredClassAnswersItsOwnInstancesProjected) {
  auto rows = query("SELECT P.Name FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID "
                    "WHERE G.ProgramName = 'Remove'");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().class_name(), "SMS_Package");
  EXPECT_EQ(rows->front().find("Name")->as_string(), "Office");
  EXPECT_EQ(rows->front().find("PackageID")->as_string(), "ABC00001");  // keys stay, for the path
  EXPECT_TRUE(rows->front().find("SourceSite")->is_null());             // the rest is projected away
}

TEST_F(ProviderJoinTest, CountsAndDistinctsJoinedRows) {
  auto count = query("SELECT COUNT(*) FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID");
  ASSERT_TRUE(count.ok()) << count.error().to_string();
  ASSERT_EQ(count->size(), 1u);
  EXPECT_EQ(count->front().find("Count")->as_uint(), 4u);
  auto distinct = query("SELECT DISTINCT P.* FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID");
  ASSERT_TRUE(distinct.ok()) << distinct.error().to_string();
  EXPECT_EQ(distinct->size(), 3u);  // ABC00001 has two programs, answered once
  // Distinct names: a row stands for every package of that name, so it carries the name and no key (as the
  // one-class form answers).
  distinct = query("SELECT DISTINCT P.Name FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID");
  ASSERT_TRUE(distinct.ok()) << distinct.error().to_string();
  ASSERT_EQ(distinct->size(), 3u);
  for (const auto& row : *distinct) {
    EXPECT_FALSE(row.find("Name")->is_null());
    EXPECT_TRUE(row.find("PackageID")->is_null()) << row.find("Name")->as_string();
  }
}

TEST_F(ProviderJoinTest, OrderBySortsByTheFirstClass) {
  auto rows = query(std::string(kJoin) + " ORDER BY P.Name DESC");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  std::vector<std::string> names;
  for (const auto& r : *rows) names.push_back(r.find("P")->as_object().find("Name")->as_string());
  EXPECT_EQ(names, (V{"Reader", "Office", "Office", "Branch tool"}));
}

// A term on a later class (or on both) is sorted in memory once the join is made, in the database's order: NULL
// (a LEFT JOIN's missing partner) first ascending and last descending, strings ignoring case, ties in the join's
// own order (the first class's key order).
TEST_F(ProviderJoinTest, OrderBySortsByAnyClassOfTheJoin) {
  auto rows = query(std::string(kJoin) + " ORDER BY G.ProgramName DESC, P.Name");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(in_order(*rows), (V{"ABC00001/Remove", "S0100001/Install", "ABC00001/Install", "ABC00002/Install"}));
  rows = query(std::string(kJoin) + " ORDER BY G.ProgramName");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(in_order(*rows), (V{"ABC00001/Install", "ABC00002/Install", "S0100001/Install", "ABC00001/Remove"}));
  constexpr std::string_view kLeft =
      "SELECT * FROM SMS_Package AS P LEFT JOIN SMS_Program AS G ON P.PackageID = G.PackageID "
      "WHERE P.SourceSite = 'ABC' ORDER BY G.CommandLine";
  rows = query(kLeft);
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(in_order(*rows), (V{"ABC00003/-", "ABC00002/Install", "ABC00001/Install", "ABC00001/Remove"}));
  rows = query(std::string(kLeft) + " DESC");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(in_order(*rows), (V{"ABC00001/Remove", "ABC00001/Install", "ABC00002/Install", "ABC00003/-"}));
  // One answered class, projected: sorted by a property it does not answer.
  rows = query("SELECT P.Name FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID "
               "ORDER BY G.CommandLine DESC");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  std::vector<std::string> names;
  for (const auto& r : *rows) names.push_back(r.find("Name")->as_string());
  EXPECT_EQ(names, (V{"Office", "Office", "Reader", "Branch tool"}));  // setup /x, setup, reader.msi, NULL
}

// Sorted in memory, the answer is held whole across pages of the first class, and counted against
// A page's join is cut between two rows of the first class once its slice is spent, so that no join holds a
// producer thread for a whole page however costly its combinations: with no time at all, each call joins one row
// of the first class, and the answer is the same rows in the same order.
TEST_F(ProviderJoinTest, APageIsJoinedInSlicesBetweenRowsOfTheFirstClass) {
  for (std::string_view wql :
       {kJoin, std::string_view("SELECT COUNT(*) FROM SMS_Package AS P, SMS_Program AS G"),
        std::string_view("SELECT * FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID "
                         "ORDER BY G.CommandLine")}) {
    SCOPED_TRACE(wql);
    auto whole = query(wql);
    ASSERT_TRUE(whole.ok()) << whole.error().to_string();
    auto prepared = provider_->prepare("", wql, admin_);
    ASSERT_TRUE(prepared.ok()) << prepared.error().to_string();
    QueryCursor cursor;
    std::vector<cim::Instance> sliced;
    int calls = 0;
    while (!cursor.done()) {
      ++calls;
      ASSERT_TRUE(provider_
                      ->run_page(*prepared, cursor, PageBounds{.max_rows = 512, .slice = std::chrono::milliseconds(0)},
                                 [&](const cim::Instance& inst) {
                                   sliced.push_back(inst);
                                   return true;
                                 })
                      .ok());
    }
    EXPECT_GE(calls, 4);  // four packages, one a call
    ASSERT_EQ(sliced.size(), whole->size());
    for (std::size_t i = 0; i < sliced.size(); ++i) {
      EXPECT_EQ(cim::to_json(sliced[i]).dump(), cim::to_json((*whole)[i]).dump()) << i;
    }
  }
}

// max_join_rows with the rows it shares; within the bound, pages of one row and a sink that takes one row at a
// time still get the whole answer in order.
TEST_F(ProviderJoinTest, AJoinSortedInMemoryIsWholeAcrossPagesAndBounded) {
  constexpr std::string_view kSorted =
      "SELECT * FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID ORDER BY G.CommandLine";
  // Pages of one row of the first class, and a sink that takes one row a page.
  auto one_by_one = [&](std::string_view wql) -> Result<std::vector<cim::Instance>> {
    PKG_ASSIGN_OR_RETURN(PreparedQuery prepared, provider_->prepare("", wql, admin_));
    last_ = std::make_unique<PreparedQuery>(std::move(prepared));  // the rows' __Generic class lives in it
    QueryCursor cursor;
    std::vector<cim::Instance> got;
    while (!cursor.done()) {
      PKG_TRY(provider_->run_page(*last_, cursor, PageBounds{.max_rows = 1, .slice = std::chrono::milliseconds(20)},
                                  [&](const cim::Instance& inst) {
                                    got.push_back(inst);
                                    return false;
                                  }));
    }
    return got;
  };
  auto got = one_by_one(kSorted);
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_EQ(in_order(*got), (V{"S0100001/Install", "ABC00002/Install", "ABC00001/Install", "ABC00001/Remove"}));

  // Unsorted, a page holds one package, its programs and their joined rows (at most 5 here); sorted, every joined
  // row as well.
  QueryLimits limits;
  limits.max_join_rows = 5;
  make_provider(limits);
  EXPECT_TRUE(one_by_one(kJoin).ok());
  auto refused = one_by_one(kSorted);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(refused.error().message.find("max_join_rows"), std::string::npos) << refused.error().message;

  // In bytes too: a sorted join holds its whole answer. A few KiB hold this one; one byte does not.
  limits = QueryLimits{};
  limits.max_join_bytes = 64 << 10;
  make_provider(limits);
  EXPECT_TRUE(one_by_one(kSorted).ok());
  limits.max_join_bytes = 1;
  make_provider(limits);
  EXPECT_TRUE(one_by_one(kJoin).ok());  // unsorted: rows go as they are made
  refused = one_by_one(kSorted);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(refused.error().message.find("max_join_bytes"), std::string::npos) << refused.error().message;
}

// A token limited to a site sees, in each joined class, only that site's rows: packages by SourceSite, programs
// by their package's, sites by SiteCode.
TEST_F(ProviderJoinTest, SiteLimitedCallersJoinOnlyTheirSitesRows) {
  site::TokenRecord branch;
  branch.role = site::Role::kReadOnly;
  branch.sites = {"s01"};
  auto rows = query(kJoin, branch);
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(pairs(*rows), (V{"S0100001/Install"}));
  // Programs first: a program of the head site is not seen, so neither is its join with the branch's package.
  rows = query("SELECT * FROM SMS_Program AS G LEFT JOIN SMS_Package AS P ON P.PackageID = G.PackageID", branch);
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(pairs(*rows), (V{"S0100001/Install"}));
  // A class without partners that the caller may see: the head site's packages joined to the branch's site row.
  rows = query("SELECT * FROM SMS_Package AS P LEFT JOIN SMS_Site AS S ON S.SiteCode = P.SourceSite", branch);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().find("S")->as_object().find("SiteCode")->as_string(), "S01");
  site::TokenRecord head = branch;
  head.sites = {"ABC"};
  rows = query("SELECT * FROM SMS_Package AS P, SMS_Site AS S WHERE S.SiteCode = 'S01'", head);
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());  // the head's token does not see the branch's site row
  auto count = query("SELECT COUNT(*) FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID", head);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->front().find("Count")->as_uint(), 3u);
}

TEST_F(ProviderJoinTest, TokensStayHiddenThroughJoins) {
  site::TokenRecord scoped;
  scoped.role = site::Role::kFullAdmin;
  scoped.sites = {"ABC"};
  auto rows = query("SELECT * FROM SMS_Package AS P JOIN PKG_Token AS T ON T.Role = P.Name", scoped);
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.error().code, WbemCode::kAccessDenied);
}

TEST_F(ProviderJoinTest, PagesResumeWithoutLosingJoinedRows) {
  auto prepared = provider_->prepare("", kJoin, admin_);
  ASSERT_TRUE(prepared.ok()) << prepared.error().to_string();
  QueryCursor cursor;
  std::vector<cim::Instance> got;
  // One outer row per page, and a sink that takes one row per page: the rest waits in the cursor.
  while (!cursor.done()) {
    ASSERT_TRUE(provider_
                    ->run_page(*prepared, cursor, PageBounds{.max_rows = 1, .slice = std::chrono::milliseconds(20)},
                               [&](const cim::Instance& inst) {
                                 got.push_back(inst);
                                 return false;
                               })
                    .ok());
  }
  EXPECT_EQ(pairs(got), (V{"ABC00001/Install", "ABC00001/Remove", "ABC00002/Install", "S0100001/Install"}));
}

TEST_F(ProviderJoinTest, AJoinHoldsAtMostMaxJoinRows) {
  QueryLimits limits;
  limits.max_join_rows = 3;
  make_provider(limits);
  auto rows = query(kJoin);
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(rows.error().message.find("max_join_rows"), std::string::npos) << rows.error().message;
  limits.max_join_rows = 20;
  make_provider(limits);
  EXPECT_TRUE(query(kJoin).ok());
}

// A join whose WHERE is never TRUE sends nothing and holds nothing, yet tries every combination of its classes
// (4^8 here): every one it tries counts against max_rows_evaluated, and the time is checked while it tries them.
TEST_F(ProviderJoinTest, AJoinThatFindsNothingStillStopsAtItsBudget) {
  constexpr std::string_view kEndless =
      "SELECT A.PackageID FROM SMS_Package AS A, SMS_Package AS B, SMS_Package AS C, SMS_Package AS D, "
      "SMS_Package AS E, SMS_Package AS F, SMS_Package AS G, SMS_Package AS H WHERE A.Name > H.Name AND "
      "H.Name > A.Name";
  QueryLimits limits;
  limits.max_rows_evaluated = 0;
  limits.max_time = std::chrono::milliseconds(0);
  make_provider(limits);
  auto rows = query(kEndless);
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_TRUE(rows->empty());
  EXPECT_GT(last_cursor_rows_, 65'536u);

  limits.max_rows_evaluated = 20'000;
  make_provider(limits);
  rows = query(kEndless);
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(rows.error().message.find("query_max_rows_evaluated"), std::string::npos) << rows.error().message;
  EXPECT_LT(last_cursor_rows_, 20'000u + wql::kJoinTriesPerCheck);

  limits.max_rows_evaluated = 0;
  limits.max_time = std::chrono::milliseconds(1);
  make_provider(limits);
  rows = query(kEndless);
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(rows.error().message.find("query_max_seconds"), std::string::npos) << rows.error().message;
}

TEST_F(ProviderJoinTest, EventQueriesCannotJoin) {
  auto rows = query("SELECT * FROM __InstanceCreationEvent JOIN SMS_Package ON TargetInstance.PackageID = "
                    "SMS_Package.PackageID WHERE TargetInstance ISA 'SMS_Package'");
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.error().to_string(),
            "WBEM_E_INVALID_QUERY: joins apply to data queries, not to event queries at 1:39");
}

}  // namespace
}  // namespace pkgcast::provider
