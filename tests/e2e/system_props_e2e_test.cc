// System properties against a real server, on both backends: WHERE on __PATH, __SERVER and __NAMESPACE answers
// as the rows are returned (located), and a projection naming system properties returns them in each row.
#include <nlohmann/json.hpp>

#include "server_fixture.h"

namespace pkgcast::testing {
namespace {

using nlohmann::json;

// WQL string literal for `s` (backslashes and quotes escaped).
std::string wql_literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

class SystemPropsE2eTest : public ServerTest {
 protected:
  json query(const std::string& wql) {
    auto r = cli({"--json", "query", wql});
    EXPECT_EQ(r.exit_code, 0) << wql << "\n" << r.err;
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_array()) << wql << "\n" << r.out;
    return j.is_array() ? j : json::array();
  }
};

TEST_P(SystemPropsE2eTest, WhereAndProjectionAnswerAsTheRowsAreReturned) {
  ASSERT_EQ(cli({"package", "create", "--name", "Office", "--manufacturer", "Contoso"}).exit_code, 0);
  ASSERT_EQ(cli({"package", "create", "--name", "Tools"}).exit_code, 0);

  // The projection carries the named system properties, the selected property and the key, nothing else.
  const json rows = query("SELECT __PATH, __SERVER, __NAMESPACE, __RELPATH, Name FROM SMS_Package WHERE "
                          "PackageID = 'ABC00001'");
  ASSERT_EQ(rows.size(), 1u) << rows.dump();
  const json& row = rows[0];
  EXPECT_EQ(row["__CLASS"], "SMS_Package");
  EXPECT_EQ(row["Name"], "Office");
  EXPECT_EQ(row["PackageID"], "ABC00001");
  EXPECT_FALSE(row.contains("Manufacturer")) << row.dump();
  ASSERT_TRUE(row["__SERVER"].is_string()) << row.dump();
  const std::string server = row["__SERVER"].get<std::string>();
  EXPECT_FALSE(server.empty());
  EXPECT_EQ(row["__NAMESPACE"], "root\\sms\\site_ABC");
  EXPECT_EQ(row["__RELPATH"], "SMS_Package.PackageID=\"ABC00001\"");
  const std::string path = "\\\\" + server + "\\root\\sms\\site_ABC:SMS_Package.PackageID=\"ABC00001\"";
  EXPECT_EQ(row["__PATH"], path);

  // WHERE sees the same values the rows carry.
  EXPECT_EQ(query("SELECT Name FROM SMS_Package WHERE __PATH = " + wql_literal(path)).size(), 1u);
  EXPECT_EQ(query("SELECT Name FROM SMS_Package WHERE __PATH LIKE " + wql_literal("\\\\" + server + "\\%")).size(),
            2u);
  EXPECT_EQ(query("SELECT Name FROM SMS_Package WHERE __PATH = 'SMS_Package.PackageID=\"ABC00001\"'").size(), 0u);
  EXPECT_EQ(query("SELECT Name FROM SMS_Package WHERE __SERVER = " + wql_literal(server)).size(), 2u);
  EXPECT_EQ(query("SELECT Name FROM SMS_Package WHERE __SERVER IS NULL").size(), 0u);
  EXPECT_EQ(query("SELECT Name FROM SMS_Package WHERE __SERVER = 'not-this-server'").size(), 0u);
  EXPECT_EQ(query("SELECT Name FROM SMS_Package WHERE __NAMESPACE = 'root\\\\sms\\\\site_ABC'").size(), 2u);
  // Mixed with pushed conditions: the pushed part only pre-filters.
  EXPECT_EQ(query("SELECT Name FROM SMS_Package WHERE Name = 'Tools' AND __SERVER = " + wql_literal(server)).size(),
            1u);
  EXPECT_EQ(query("SELECT Name FROM SMS_Package WHERE Name = 'Tools' OR __PATH = " + wql_literal(path)).size(), 2u);

  // SELECT * rows stay as they were: __CLASS and the properties.
  const json all = query("SELECT * FROM SMS_Package WHERE PackageID = 'ABC00002'");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_FALSE(all[0].contains("__PATH")) << all[0].dump();
  EXPECT_TRUE(all[0].contains("Manufacturer"));
}

INSTANTIATE_TEST_SUITE_P(Backends, SystemPropsE2eTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pkgcast::testing
