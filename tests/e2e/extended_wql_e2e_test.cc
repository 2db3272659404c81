// Configuration Manager's extended WQL against a real server, on both backends: a fixture site (two sites, DPs, a
// group, packages, programs, advertisements, distributions) answers joins and ordered, distinct, counted, converted,
// function and subquery forms with exactly the rows that SQL written by hand over the same database gives. The SQL
// runs on the server's own database (the SQLite file, read-only, beside the running server; or the PostgreSQL
// database) after the fixture is written, so both sides see the same rows.
#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "server_fixture.h"

namespace pkgcast::testing {
namespace {

using nlohmann::json;
using Rows = std::vector<std::vector<std::string>>;

// A value as both sides print it: numbers in decimal, text as is, NULL as "NULL".
std::string text_of(const json& v) {
  if (v.is_null()) return "NULL";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  return v.dump();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

class ExtendedWqlE2eTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (HasFailure() || IsSkipped()) return;
    build_fixture();
  }

  void must(std::vector<std::string> args) {
    auto r = cli(args);
    ASSERT_EQ(r.exit_code, 0) << args[0] << " " << (args.size() > 1 ? args[1] : "") << "\n" << r.err;
  }

  // Two sites, three DPs (no agent runs: what is distributed stays pending), a group, six packages with a file
  // each, programs, advertisements and distributions by DP, site and group.
  void build_fixture() {
    must({"site", "create", "XYZ", "--name", "Branch", "--parent", "ABC", "--type", "secondary"});
    must({"dp", "add", "dp1.abc.example", "--site", "ABC"});
    must({"dp", "add", "dp2.abc.example", "--site", "ABC"});
    must({"dp", "add", "dp1.xyz.example", "--site", "XYZ"});
    must({"group", "create", "Branches"});
    must({"group", "add", "Branches", "dp1.xyz.example", "dp2.abc.example"});
    struct Pkg {
      const char* name;
      const char* manufacturer;
      const char* priority;
    };
    for (const Pkg& p : {Pkg{"Office", "Contoso", "1"}, Pkg{"Tools", "Fabrikam", "2"}, Pkg{"Browser", "contoso", "3"},
                         Pkg{"Drivers", "Northwind", "2"}, Pkg{"Agent", "Fabrikam", "1"}, Pkg{"Codecs", "", "2"}}) {
      const std::string source = dir_.path() + "/src/" + p.name;
      write_file(source + "/setup.txt", std::string("the files of ") + p.name + "\n");
      std::vector<std::string> args = {"package", "create", "--name",     p.name,
                                       "--priority", p.priority, "--source", source};
      if (*p.manufacturer != '\0') args.insert(args.end(), {"--manufacturer", p.manufacturer});
      must(args);
    }
    struct Prog {
      const char* package;
      const char* name;
      const char* command;
    };
    for (const Prog& p : {Prog{"ABC00001", "Install", "setup.exe /q"}, Prog{"ABC00001", "Uninstall", "setup.exe /x"},
                          Prog{"ABC00002", "Install", "msiexec /i tools.msi /qn"},
                          Prog{"ABC00003", "Install", "msiexec /i browser.msi"},
                          Prog{"ABC00005", "Install", "agent.exe"}, Prog{"ABC00005", "Repair", "msiexec /fa agent.msi"},
                          Prog{"ABC00006", "Play", "codecs.exe"}}) {
      must({"program", "create", p.package, "--name", p.name, "--command-line", p.command});
    }
    must({"advertisement", "create", "ABC00001", "--program", "Install", "--collection", "SMS00001"});
    must({"advertisement", "create", "ABC00002", "--program", "Install", "--collection", "SMS00001"});
    must({"advertisement", "create", "ABC00005", "--program", "Repair", "--collection", "SMS000US", "--offer-type",
          "available"});
    must({"distribute", "ABC00001", "--site", "ABC"});
    must({"distribute", "ABC00002", "--group", "Branches"});
    must({"distribute", "ABC00003", "--dp", "dp1.xyz.example"});
    must({"distribute", "ABC00005", "--site", "XYZ", "--site", "ABC"});
  }

  // The rows the server answers, as JSON.
  json answer(const std::string& query, const std::string& token = "") {
    auto r = token.empty() ? cli({"--json", "query", query}) : cli_with_token(token, {"--json", "query", query});
    EXPECT_EQ(r.exit_code, 0) << query << "\n" << r.err;
    const json rows = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(rows.is_array()) << query << "\n" << r.out;
    return rows.is_array() ? rows : json::array();
  }

  // The named properties of each row the server answers, in its order. A name "A.Prop" reads property Prop of the
  // embedded object A (a join's __Generic rows).
  Rows wql(const std::string& query, const std::vector<std::string>& props, const std::string& token = "") {
    Rows out;
    for (const json& row : answer(query, token)) {
      auto& values = out.emplace_back();
      for (const std::string& p : props) {
        const std::size_t dot = p.find('.');
        const json& holder = dot == std::string::npos ? row : row.value(p.substr(0, dot), json());
        const std::string name = dot == std::string::npos ? p : p.substr(dot + 1);
        const bool present = holder.is_object() && holder.contains(name);
        EXPECT_TRUE(present) << query << ": no " << p << " in " << row.dump();
        values.push_back(present ? text_of(holder[name]) : "?");
      }
    }
    return out;
  }

  // The rows of a query written by hand, on the server's database.
  Rows sql(const std::string& query) {
    Rows out;
    if (db_url_.empty()) {
      sqlite3* db = nullptr;
      const std::string file = data_dir_ + "/pkgcast.db";
      EXPECT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
      sqlite3_busy_timeout(db, 5000);
      sqlite3_stmt* st = nullptr;
      EXPECT_EQ(sqlite3_prepare_v2(db, query.c_str(), -1, &st, nullptr), SQLITE_OK) << query << ": " << sqlite3_errmsg(db);
      while (st != nullptr && sqlite3_step(st) == SQLITE_ROW) {
        auto& values = out.emplace_back();
        for (int i = 0; i < sqlite3_column_count(st); ++i) {
          const unsigned char* t = sqlite3_column_text(st, i);
          values.push_back(t == nullptr ? "NULL" : reinterpret_cast<const char*>(t));
        }
      }
      sqlite3_finalize(st);
      sqlite3_close(db);
      return out;
    }
    PGconn* conn = PQconnectdb(db_url_.c_str());
    EXPECT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
    PGresult* res = PQexec(conn, query.c_str());
    EXPECT_EQ(PQresultStatus(res), PGRES_TUPLES_OK) << query << ": " << PQerrorMessage(conn);
    for (int r = 0; r < PQntuples(res); ++r) {
      auto& values = out.emplace_back();
      for (int c = 0; c < PQnfields(res); ++c) {
        values.push_back(PQgetisnull(res, r, c) ? "NULL" : PQgetvalue(res, r, c));
      }
    }
    PQclear(res);
    PQfinish(conn);
    return out;
  }

  // Rows in any order: compared sorted.
  static Rows sorted(Rows rows) {
    std::sort(rows.begin(), rows.end());
    return rows;
  }
};

TEST_P(ExtendedWqlE2eTest, OrderedQueriesAnswerInTheOrderSqlGives) {
  // String order ignores case; ties are broken by the key (ascending after several terms, in the direction of a
  // single term; these names are distinct).
  const Rows by_name = wql("SELECT PackageID, Name FROM SMS_Package ORDER BY Name DESC", {"PackageID", "Name"});
  EXPECT_EQ(by_name, sql(R"(SELECT "PackageID", "Name" FROM "SMS_Package" ORDER BY lower("Name") DESC)"));
  EXPECT_EQ(by_name.size(), 6u);

  const Rows two_terms = wql("SELECT PackageID, Priority FROM SMS_Package ORDER BY Priority, Manufacturer DESC",
                             {"PackageID", "Priority"});
  EXPECT_EQ(two_terms,
            sql(R"(SELECT "PackageID", "Priority" FROM "SMS_Package" ORDER BY "Priority",
                   "Manufacturer" IS NULL ASC, lower("Manufacturer") DESC, lower("PackageID"))"));

  const Rows dps = wql("SELECT PackageID, ServerNALPath, SiteCode FROM SMS_DistributionPoint WHERE SiteCode = 'abc' "
                       "ORDER BY ServerNALPath DESC, PackageID",
                       {"PackageID", "ServerNALPath", "SiteCode"});
  EXPECT_EQ(dps, sql(R"(SELECT "PackageID", "ServerNALPath", "SiteCode" FROM "SMS_DistributionPoint"
                        WHERE lower("SiteCode") = 'abc' ORDER BY lower("ServerNALPath") DESC, lower("PackageID"))"));
  EXPECT_EQ(dps.size(), 5u);  // ABC00001 x 2, ABC00002 on dp2, ABC00005 x 2
}

TEST_P(ExtendedWqlE2eTest, DistinctAndCountAnswerAsSqlDoes) {
  // DISTINCT over a string compares as WQL does, without regard to case: "Contoso" and "contoso" are one value.
  Rows makers = wql("SELECT DISTINCT Manufacturer FROM SMS_Package", {"Manufacturer"});
  for (auto& row : makers) row[0] = lower(row[0]);
  EXPECT_EQ(sorted(makers), sorted(sql(R"(SELECT DISTINCT lower("Manufacturer") FROM "SMS_Package")")))
      << "the empty manufacturer of Codecs is one value too";

  const Rows sites = wql("SELECT DISTINCT SiteCode FROM SMS_DistributionPoint", {"SiteCode"});
  EXPECT_EQ(sorted(sites), sorted(sql(R"(SELECT DISTINCT "SiteCode" FROM "SMS_DistributionPoint")")));

  auto count = [&](const std::string& query) { return wql(query, {"Count"}); };
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Program"), sql(R"(SELECT COUNT(*) FROM "SMS_Program")"));
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Program WHERE PackageID = 'ABC00005'"),
            sql(R"(SELECT COUNT(*) FROM "SMS_Program" WHERE lower("PackageID") = 'abc00005')"));
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_DistributionPoint WHERE SiteCode = 'XYZ'"),
            sql(R"(SELECT COUNT(*) FROM "SMS_DistributionPoint" WHERE lower("SiteCode") = 'xyz')"));
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE Manufacturer = ''"),
            sql(R"(SELECT COUNT(*) FROM "SMS_Package" WHERE "Manufacturer" = '')"));
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Package WHERE Manufacturer = ''"), (Rows{{"1"}}));
  EXPECT_EQ(count("SELECT COUNT(*) FROM SMS_Advertisement WHERE ProgramName = 'Nothing'"), (Rows{{"0"}}));
}

TEST_P(ExtendedWqlE2eTest, LiteralsAreConvertedToThePropertysType) {
  const std::vector<std::string> id = {"PackageID"};
  const Rows high = sql(R"(SELECT "PackageID" FROM "SMS_Package" WHERE "Priority" = 1)");
  EXPECT_EQ(high.size(), 2u);
  EXPECT_EQ(sorted(wql("SELECT PackageID FROM SMS_Package WHERE Priority = '1'", id)), sorted(high));
  EXPECT_EQ(sorted(wql("SELECT PackageID FROM SMS_Package WHERE Priority = \"1\"", id)), sorted(high));
  EXPECT_EQ(sorted(wql("SELECT PackageID FROM SMS_Package WHERE Priority IN ('2', '3')", id)),
            sorted(sql(R"(SELECT "PackageID" FROM "SMS_Package" WHERE "Priority" IN (2, 3))")));
  EXPECT_EQ(sorted(wql("SELECT PackageID FROM SMS_Package WHERE Priority NOT IN ('2', '3')", id)), sorted(high));

  // Dates as DMTF, ISO-8601 and SQL Server's forms. Every package was created today, after 2020.
  const Rows all = sql(R"(SELECT "PackageID" FROM "SMS_Package")");
  for (const char* date : {"'20200101'", "'2020-01-01'", "'2020-01-01T00:00:00Z'", "'20200101000000.000000+000'",
                           "'2020/01/01'", "'20200101 00:00:00'", "'01/01/2020'", "'Jan 1 2020 12:00 AM'"}) {
    EXPECT_EQ(sorted(wql(std::string("SELECT PackageID FROM SMS_Package WHERE LastRefreshTime > ") + date, id)),
              sorted(all))
        << date;
    EXPECT_TRUE(wql(std::string("SELECT PackageID FROM SMS_Package WHERE LastRefreshTime < ") + date, id).empty())
        << date;
  }
  EXPECT_EQ(sorted(wql("SELECT PackageID FROM SMS_Package WHERE LastRefreshTime > '2020-01-01'", id)),
            sorted(sql(R"(SELECT "PackageID" FROM "SMS_Package" WHERE "LastRefreshTime" > 1577836800000000)")));

  // A literal that does not convert is refused as WMI refuses it, and nothing is answered.
  auto r = cli({"--json", "query", "SELECT PackageID FROM SMS_Package WHERE Priority = 'high'"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("WBEM_E_"), std::string::npos) << r.err;
}

TEST_P(ExtendedWqlE2eTest, FunctionsAndSubqueriesAnswerAsSqlDoes) {
  const std::vector<std::string> id = {"PackageID"};
  EXPECT_EQ(sorted(wql("SELECT PackageID FROM SMS_Package WHERE UPPER(Manufacturer) = 'CONTOSO'", id)),
            sorted(sql(R"(SELECT "PackageID" FROM "SMS_Package" WHERE upper("Manufacturer") = 'CONTOSO')")));
  EXPECT_EQ(sorted(wql("SELECT PackageID FROM SMS_Package WHERE SUBSTRING(Name, 1, 2) = 'Co'", id)),
            sorted(sql(R"(SELECT "PackageID" FROM "SMS_Package" WHERE lower(substr("Name", 1, 2)) = 'co')")));
  EXPECT_EQ(sorted(wql("SELECT PackageID FROM SMS_Package WHERE LastRefreshTime > DATEADD(dd, -1, GETDATE())", id)),
            sorted(sql(R"(SELECT "PackageID" FROM "SMS_Package")")));
  EXPECT_TRUE(wql("SELECT PackageID FROM SMS_Package WHERE DATEDIFF(dd, LastRefreshTime, GETDATE()) > 1", id).empty());

  // Packages with an msiexec program, and those without any program at all.
  const Rows msi = wql("SELECT PackageID, Name FROM SMS_Package WHERE PackageID IN (SELECT PackageID FROM SMS_Program "
                       "WHERE CommandLine LIKE 'msiexec%') ORDER BY PackageID",
                       {"PackageID", "Name"});
  EXPECT_EQ(msi, sql(R"(SELECT "PackageID", "Name" FROM "SMS_Package" WHERE lower("PackageID") IN
                        (SELECT lower("PackageID") FROM "SMS_Program" WHERE lower("CommandLine") LIKE 'msiexec%')
                        ORDER BY lower("PackageID"))"));
  EXPECT_EQ(msi.size(), 3u);
  EXPECT_EQ(sorted(wql("SELECT PackageID FROM SMS_Package WHERE PackageID NOT IN (SELECT PackageID FROM SMS_Program)",
                       id)),
            (Rows{{"ABC00004"}}));
  // Advertised packages distributed at site XYZ.
  EXPECT_EQ(sorted(wql("SELECT AdvertisementID FROM SMS_Advertisement WHERE PackageID IN (SELECT PackageID FROM "
                       "SMS_DistributionPoint WHERE SiteCode = 'XYZ')",
                       {"AdvertisementID"})),
            sorted(sql(R"(SELECT "AdvertisementID" FROM "SMS_Advertisement" WHERE lower("PackageID") IN
                          (SELECT lower("PackageID") FROM "SMS_DistributionPoint" WHERE lower("SiteCode") = 'xyz'))")));
}

TEST_P(ExtendedWqlE2eTest, JoinsAnswerAsSqlDoes) {
  // An inner join answers __Generic rows with one embedded object per class, named by its alias.
  const json generic = answer("SELECT * FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID");
  ASSERT_FALSE(generic.empty());
  EXPECT_EQ(generic[0]["__CLASS"], "__Generic") << generic[0].dump();
  EXPECT_EQ(generic[0]["P"]["__CLASS"], "SMS_Package") << generic[0].dump();
  EXPECT_EQ(generic[0]["G"]["__CLASS"], "SMS_Program") << generic[0].dump();
  // Each embedded object is projected as a one-class query's row: the selection and the keys, nothing padded.
  const json states = answer("SELECT SMS_Package.Name, SMS_PackageStatusDistPointsSummarizer.State FROM SMS_Package "
                             "JOIN SMS_PackageStatusDistPointsSummarizer ON SMS_Package.PackageID = "
                             "SMS_PackageStatusDistPointsSummarizer.PackageID");
  ASSERT_FALSE(states.empty());
  for (const json& row : states) {
    const json& pkg = row["SMS_Package"];
    const json& dp = row["SMS_PackageStatusDistPointsSummarizer"];
    EXPECT_EQ(pkg.size(), 3u) << row.dump();  // __CLASS, PackageID, Name
    EXPECT_TRUE(pkg["Name"].is_string()) << row.dump();
    EXPECT_EQ(dp.size(), 5u) << row.dump();  // __CLASS, the three keys, State
    EXPECT_TRUE(dp["State"].is_number()) << row.dump();
  }
  const Rows pairs = wql("SELECT P.PackageID, P.Name, G.ProgramName FROM SMS_Package AS P JOIN SMS_Program AS G ON "
                         "P.PackageID = G.PackageID",
                         {"P.PackageID", "P.Name", "G.ProgramName"});
  EXPECT_EQ(sorted(pairs), sorted(sql(R"(SELECT p."PackageID", p."Name", g."ProgramName" FROM "SMS_Package" p
                                         JOIN "SMS_Program" g ON lower(p."PackageID") = lower(g."PackageID"))")));
  EXPECT_EQ(pairs.size(), 7u);

  // Ordered by the first class, in SQL; the programs of one package in their key order.
  const Rows ordered = wql("SELECT P.PackageID, G.ProgramName FROM SMS_Package P INNER JOIN SMS_Program G ON "
                           "G.PackageID = P.PackageID ORDER BY P.Name DESC",
                           {"P.PackageID", "G.ProgramName"});
  EXPECT_EQ(ordered, sql(R"(SELECT p."PackageID", g."ProgramName" FROM "SMS_Package" p JOIN "SMS_Program" g
                            ON lower(p."PackageID") = lower(g."PackageID")
                            ORDER BY lower(p."Name") DESC, lower(g."PackageID"), lower(g."ProgramName"))"));

  // A LEFT JOIN keeps the packages without a program; one class answered gives that class's instances.
  const Rows lonely = wql("SELECT P.* FROM SMS_Package AS P LEFT JOIN SMS_Program AS G ON P.PackageID = G.PackageID "
                          "WHERE G.PackageID IS NULL",
                          {"PackageID"});
  EXPECT_EQ(lonely, sql(R"(SELECT p."PackageID" FROM "SMS_Package" p LEFT JOIN "SMS_Program" g
                           ON lower(p."PackageID") = lower(g."PackageID") WHERE g."PackageID" IS NULL)"));
  EXPECT_EQ(lonely, (Rows{{"ABC00004"}}));

  // ANSI-89: FROM A, B WHERE ...; advertisements whose package is distributed at XYZ, with each DP.
  EXPECT_EQ(sorted(wql("SELECT A.AdvertisementID, D.ServerNALPath FROM SMS_Advertisement AS A, SMS_DistributionPoint "
                       "AS D WHERE A.PackageID = D.PackageID AND D.SiteCode = 'XYZ'",
                       {"A.AdvertisementID", "D.ServerNALPath"})),
            sorted(sql(R"(SELECT a."AdvertisementID", d."ServerNALPath" FROM "SMS_Advertisement" a,
                          "SMS_DistributionPoint" d WHERE lower(a."PackageID") = lower(d."PackageID")
                          AND lower(d."SiteCode") = 'xyz')")));

  // COUNT and DISTINCT over a join.
  EXPECT_EQ(wql("SELECT COUNT(*) FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID WHERE "
                "P.Priority = '1'",
                {"Count"}),
            sql(R"(SELECT COUNT(*) FROM "SMS_Package" p JOIN "SMS_Program" g
                   ON lower(p."PackageID") = lower(g."PackageID") WHERE p."Priority" = 1)"));
  EXPECT_EQ(sorted(wql("SELECT DISTINCT P.Name FROM SMS_Package AS P JOIN SMS_DistributionPoint AS D ON P.PackageID = "
                       "D.PackageID",
                       {"Name"})),
            sorted(sql(R"(SELECT DISTINCT p."Name" FROM "SMS_Package" p JOIN "SMS_DistributionPoint" d
                          ON lower(p."PackageID") = lower(d."PackageID"))")));

  // Site limits hold for each joined class. A token limited to ABC sees ABC's packages (their SourceSite) and only
  // ABC's DP rows; one limited to XYZ sees no package, so no joined row, though XYZ has DP rows.
  auto token_for = [&](const char* site) {
    const std::string out = cli({"token", "create", "--role", "read-only", "--site", site}).out;
    return out.substr(0, out.find('\n'));
  };
  const std::string join = "SELECT P.PackageID, D.SiteCode FROM SMS_Package AS P JOIN SMS_DistributionPoint AS D ON "
                           "P.PackageID = D.PackageID";
  const Rows head_office = wql(join, {"P.PackageID", "D.SiteCode"}, token_for("ABC"));
  EXPECT_EQ(sorted(head_office), sorted(sql(R"(SELECT d."PackageID", d."SiteCode" FROM "SMS_DistributionPoint" d
                                               JOIN "SMS_Package" p ON lower(p."PackageID") = lower(d."PackageID")
                                               WHERE lower(d."SiteCode") = 'abc' AND lower(p."SourceSite") = 'abc')")));
  EXPECT_EQ(head_office.size(), 5u);
  const std::string branch = token_for("XYZ");
  EXPECT_EQ(wql("SELECT PackageID FROM SMS_DistributionPoint", {"PackageID"}, branch).size(), 3u);
  EXPECT_TRUE(wql(join, {"P.PackageID", "D.SiteCode"}, branch).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, ExtendedWqlE2eTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pkgcast::testing
