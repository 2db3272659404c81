// Every resource and verb of /api/v1, called through the router.
#include <fstream>

#include "server/routes/routes_fixture.h"

namespace pkgcast::server {
namespace {

TEST_F(RoutesTest, CreatesTheServersOwnSiteOnceAndRefusesAnother) {
  auto sites = call("GET", "/api/v1/sites");
  ASSERT_EQ(sites.status, 200u);
  ASSERT_EQ(sites.json().size(), 1u);
  EXPECT_EQ(sites.json()[0]["SiteCode"], "ABC");
  EXPECT_EQ(sites.json()[0]["ServerName"], "server1");
  ApiOptions again;
  again.site_code = "abc";
  again.server_name = "server1";
  EXPECT_TRUE(Api::create(*store_, again).ok());
  ApiOptions other = again;
  other.site_code = "XYZ";
  auto refused = Api::create(*store_, other);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, WbemCode::kInvalidParameter);
}

TEST_F(RoutesTest, SitesResource) {
  auto created = call("POST", "/api/v1/sites", R"({"code":"s01","name":"Branch","type":"secondary","parent":"ABC"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(created.json()["SiteCode"], "S01");
  EXPECT_EQ(created.json()["__CLASS"], "SMS_Site");
  EXPECT_EQ(call("GET", "/api/v1/sites/s01").json()["SiteName"], "Branch");
  EXPECT_EQ(call("GET", "/api/v1/sites/ZZZ").status, 404u);
  EXPECT_EQ(call("POST", "/api/v1/sites", R"({"code":"S01","name":"again","type":"secondary","parent":"ABC"})").status,
            409u);
  EXPECT_EQ(call("POST", "/api/v1/sites", R"({"code":"S02","name":"x","type":"tertiary","parent":"ABC"})").status,
            400u);
}

TEST_F(RoutesTest, InstancesByPathAnswerWholeInstancesQueriesLeaveLazyPropertiesOut) {
  auto created = call("POST", "/api/v1/packages", R"({"name":"Office"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json()["PackageID"];
  auto one = call("GET", "/api/v1/instances?path=SMS_Package.PackageID=\"" + id + "\"");
  ASSERT_EQ(one.status, 200u) << one.body;
  EXPECT_EQ(one.json()["Name"], "Office");
  EXPECT_TRUE(one.json().contains("Icon")) << one.body;  // lazy: NULL here, but answered
  EXPECT_EQ(one.json()["ObjectPath"], "/");
  auto rows = call("POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Package"})");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  ASSERT_FALSE(rows.json()["instances"].empty());
  EXPECT_FALSE(rows.json()["instances"][0].contains("Icon")) << rows.body;
  EXPECT_EQ(rows.json()["instances"][0]["ObjectPath"], "/");
  EXPECT_EQ(call("GET", "/api/v1/instances?path=SMS_Package.PackageID=\"ABC0000F\"").status, 404u);
  auto bad = call("GET", "/api/v1/instances?path=SMS_Package");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(bad.json()["error"], "WBEM_E_INVALID_OBJECT_PATH") << bad.body;
  EXPECT_EQ(call("GET", "/api/v1/instances").status, 400u);
}

TEST_F(RoutesTest, DpsResource) {
  auto created = call("POST", "/api/v1/dps", R"({"name":"DP1","site":"ABC","url":"http://127.0.0.1:9100"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  auto j = created.json();
  EXPECT_EQ(j["__CLASS"], "SMS_DistributionPointInfo");
  EXPECT_EQ(j["NALPath"], R"(["Display=\\DP1\"]MSWNET:["SMS_SITE=ABC"]\\DP1\)");
  EXPECT_EQ(j["url"], "http://127.0.0.1:9100");
  const std::string token = j["token"];
  EXPECT_EQ(token.rfind("pkc_", 0), 0u);

  auto list = call("GET", "/api/v1/dps", "", reader_);
  ASSERT_EQ(list.status, 200u);
  ASSERT_EQ(list.json().size(), 1u);
  EXPECT_FALSE(list.json()[0].contains("token"));
  EXPECT_EQ(list.json()[0]["url"], "http://127.0.0.1:9100");  // each row with its agent's URL, streamed
  EXPECT_TRUE(respond("GET", "/api/v1/dps", "", reader_).stream);
  EXPECT_EQ(call("GET", "/api/v1/dps/dp1").json()["Name"], "DP1");
  // LastContactTime: none until its agent reaches the server, then when it did (written at most once a minute).
  EXPECT_TRUE(call("GET", "/api/v1/dps/dp1").json()["LastContactTime"].is_null());
  ASSERT_EQ(call("GET", "/api/v1/dp/jobs", "", dp_).status, 200u);
  const auto contact = call("GET", "/api/v1/dps/dp1").json()["LastContactTime"];
  ASSERT_TRUE(contact.is_string()) << contact;
  const std::uint64_t revision = *store_->last_revision();
  ASSERT_EQ(call("GET", "/api/v1/dp/jobs", "", dp_).status, 200u);
  EXPECT_EQ(*store_->last_revision(), revision);  // not rewritten within the minute
  EXPECT_EQ(call("GET", "/api/v1/dps/dp1").json()["LastContactTime"], contact);
  EXPECT_EQ(call("DELETE", "/api/v1/dps/dp1").status, 200u);
  EXPECT_EQ(call("GET", "/api/v1/dps/dp1").status, 404u);
  EXPECT_EQ(call("DELETE", "/api/v1/dps/dp1").status, 404u);
}

TEST_F(RoutesTest, GroupsResource) {
  ASSERT_EQ(call("POST", "/api/v1/dps", R"({"name":"dp1","site":"ABC"})").status, 201u);
  auto group = call("POST", "/api/v1/groups", R"({"name":"West","description":"w"})");
  ASSERT_EQ(group.status, 201u) << group.body;
  const std::string id = group.json()["GroupID"];
  auto added = call("POST", "/api/v1/groups/" + id + "/members", R"({"dps":["dp1"]})");
  ASSERT_EQ(added.status, 200u) << added.body;
  EXPECT_EQ(added.json()["MemberCount"], 1);
  EXPECT_EQ(call("GET", "/api/v1/groups/West/members").json(), nlohmann::json::array({"dp1"}));
  EXPECT_EQ(call("GET", "/api/v1/groups").json().size(), 1u);
  auto removed = call("DELETE", "/api/v1/groups/" + id + "/members", R"({"dps":["DP1"]})");
  ASSERT_EQ(removed.status, 200u) << removed.body;
  EXPECT_EQ(removed.json()["MemberCount"], 0);
  EXPECT_EQ(call("POST", "/api/v1/groups/" + id + "/members", R"({"dps":["nope"]})").status, 404u);
}

// A fixture whose server takes packages' source files from under its directory.
class RoutesWithSourcesTest : public RoutesTest {
 protected:
  void configure(ApiOptions& options) override {
    std::filesystem::create_directories(dir_ / "src" / "app");
    std::ofstream(dir_ / "src" / "app" / "setup.sh") << "echo installed\n";
    options.source_roots = {dir_ / "src"};
    options.content_library = dir_ / "library";
  }
};

// As in Configuration Manager, a DP that joins a DP group gets the group's packages (a target row in
// INSTALL_PENDING); the members it had keep theirs, and a DP that leaves keeps what it holds.
TEST_F(RoutesWithSourcesTest, ADpThatJoinsAGroupGetsTheGroupsPackages) {
  for (const char* dp : {"dp1", "dp2"}) {
    ASSERT_EQ(call("POST", "/api/v1/dps", std::string(R"({"name":")") + dp + R"(","site":"ABC"})").status, 201u);
  }
  const std::string source = (dir_ / "src" / "app").string();
  auto pkg = call("POST", "/api/v1/packages", R"({"name":"App","source":")" + source + R"("})");
  ASSERT_EQ(pkg.status, 201u) << pkg.body;
  const std::string id = pkg.json()["PackageID"];
  auto group = call("POST", "/api/v1/groups", R"({"name":"West"})");
  ASSERT_EQ(group.status, 201u) << group.body;
  const std::string gid = group.json()["GroupID"];
  ASSERT_EQ(call("POST", "/api/v1/groups/" + gid + "/members", R"({"dps":["dp1"]})").status, 200u);
  auto sent = call("POST", "/api/v1/packages/" + id + "/distribute", R"({"groups":["West"]})");
  ASSERT_EQ(sent.status, 200u) << sent.body;
  auto targets = [&] {
    auto r = call("POST", "/api/v1/query",
                  R"({"query":"SELECT * FROM SMS_PackageStatusDistPointsSummarizer WHERE PackageID = ')" + id + "'\"}");
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.json()["instances"].size();
  };
  EXPECT_EQ(targets(), 1u);
  auto joined = call("POST", "/api/v1/groups/" + gid + "/members", R"({"dps":["dp2"]})");
  ASSERT_EQ(joined.status, 200u) << joined.body;
  EXPECT_EQ(targets(), 2u);
  ASSERT_EQ(call("DELETE", "/api/v1/groups/" + gid + "/members", R"({"dps":["dp2"]})").status, 200u);
  EXPECT_EQ(targets(), 2u);

  // A package of the group deleted while a DP joins (its row read, the package gone before it is sent): the DP
  // still gets the others, and the join succeeds. The race is made certain with a row naming a package that is
  // not there, sorted before the real one.
  ASSERT_EQ(call("POST", "/api/v1/dps", R"({"name":"dp3","site":"ABC"})").status, 201u);
  const cim::ClassDef* content = store_->registry().find("SMS_DPGroupContentInfo");
  ASSERT_NE(content, nullptr);
  cim::Instance stale(*content);
  ASSERT_TRUE(stale.set("GroupID", cim::Value::string(gid)).ok());
  ASSERT_TRUE(stale.set("PackageID", cim::Value::string("AAA00001")).ok());
  ASSERT_TRUE(store_->execute([&](store::WriteTxn& txn) { return txn.put(stale); }).ok());
  auto third = call("POST", "/api/v1/groups/" + gid + "/members", R"({"dps":["dp3"]})");
  ASSERT_EQ(third.status, 200u) << third.body;
  EXPECT_EQ(targets(), 3u);
}

TEST_F(RoutesTest, PackagesProgramsAndAdvertisements) {
  auto pkg =
      call("POST", "/api/v1/packages", R"({"name":"Office","version":"16","manufacturer":"Contoso"})", packager_);
  ASSERT_EQ(pkg.status, 201u) << pkg.body;
  EXPECT_EQ(pkg.json()["PackageID"], "ABC00001");
  EXPECT_EQ(call("GET", "/api/v1/packages/abc00001", "", reader_).json()["Name"], "Office");
  EXPECT_EQ(call("GET", "/api/v1/packages", "", reader_).json().size(), 1u);
  auto patched = call("PATCH", "/api/v1/packages/ABC00001", R"({"name":"Office 2","priority":1})", packager_);
  ASSERT_EQ(patched.status, 200u) << patched.body;
  EXPECT_EQ(patched.json()["Name"], "Office 2");

  auto program =
      call("POST", "/api/v1/packages/ABC00001/programs", R"({"name":"Install","command_line":"setup /q"})", packager_);
  ASSERT_EQ(program.status, 201u) << program.body;
  EXPECT_EQ(call("GET", "/api/v1/packages/ABC00001/programs").json().size(), 1u);

  auto ad = call("POST", "/api/v1/advertisements",
                 R"({"package_id":"ABC00001","program":"Install","collection":"SMS00001","offer_type":"available"})",
                 packager_);
  ASSERT_EQ(ad.status, 201u) << ad.body;
  EXPECT_EQ(ad.json()["AdvertisementID"], "ABC00001");
  auto offers = call("GET", "/api/v1/advertisements?site=abc", "", reader_);
  ASSERT_EQ(offers.status, 200u) << offers.body;
  ASSERT_EQ(offers.json().size(), 1u);
  EXPECT_EQ(offers.json()[0]["Offered"], true);
  EXPECT_EQ(call("GET", "/api/v1/advertisements").json().size(), 1u);
  EXPECT_EQ(call("GET", "/api/v1/advertisements?color=red").status, 400u);
  auto unknown_site = call("GET", "/api/v1/advertisements?site=ZZZ", "", reader_);
  EXPECT_EQ(unknown_site.status, 404u) << unknown_site.body;
  EXPECT_EQ(unknown_site.error(), "WBEM_E_NOT_FOUND");

  auto refused = call("DELETE", "/api/v1/packages/ABC00001", "", packager_);
  EXPECT_EQ(refused.status, 400u);
  EXPECT_EQ(refused.error(), "WBEM_E_INVALID_OPERATION");
  EXPECT_EQ(call("DELETE", "/api/v1/packages/ABC00001/programs/Install", "", packager_).status, 400u);

  auto pkg2 = call("POST", "/api/v1/packages", R"({"name":"Temp"})", packager_);
  ASSERT_EQ(pkg2.status, 201u);
  ASSERT_EQ(call("POST", "/api/v1/packages/ABC00002/programs", R"({"name":"P","command_line":"x"})", packager_).status,
            201u);
  EXPECT_EQ(call("DELETE", "/api/v1/packages/ABC00002/programs/p", "", packager_).status, 200u);
  EXPECT_EQ(call("DELETE", "/api/v1/packages/ABC00002", "", packager_).status, 200u);
  EXPECT_EQ(call("GET", "/api/v1/packages/ABC00002").status, 404u);
}

// A list is streamed page by page (a page of rows, or less when the room the server offers is full), so a stalled
// reader holds a stream's buffer, not the whole list; every row comes once, in key order, whatever the room.
TEST_F(RoutesTest, ListsAreStreamedInKeyOrderAcrossPages) {
  constexpr int kPackages = 300;  // more than one page of rows
  for (int i = 0; i < kPackages; ++i) {
    ASSERT_EQ(call("POST", "/api/v1/packages", R"({"name":"P","description":")" + std::string(500, 'd') + "\"}").status,
              201u);
  }
  for (const std::size_t room : {std::size_t{1}, std::size_t{4096}, std::size_t{1} << 20}) {
    Response resp = respond("GET", "/api/v1/packages", "", reader_);
    ASSERT_EQ(resp.status, 200u);
    ASSERT_TRUE(resp.stream) << "a list is a stream";
    const DrainedStream d = drain(*resp.stream, room);
    ASSERT_TRUE(d.status.ok()) << d.status.error().to_string();
    const auto j = nlohmann::json::parse(d.out, nullptr, false);
    ASSERT_TRUE(j.is_array()) << d.out.substr(0, 200);
    ASSERT_EQ(j.size(), static_cast<std::size_t>(kPackages)) << "room " << room;
    for (std::size_t i = 1; i < j.size(); ++i) {
      ASSERT_LT(j[i - 1]["PackageID"].get<std::string>(), j[i]["PackageID"].get<std::string>()) << "room " << room;
    }
    if (room == 4096) {
      EXPECT_GT(d.calls, 30) << "not one piece of the whole list";
    }
  }
  site::TokenRecord elsewhere = reader_;
  elsewhere.sites = {"S01"};
  EXPECT_EQ(call("GET", "/api/v1/packages", "", elsewhere).json(), nlohmann::json::array());
  auto paged = call("GET", "/api/v1/packages?limit=1", "", reader_);
  EXPECT_EQ(paged.status, 400u);
  EXPECT_EQ(paged.error(), "WBEM_E_INVALID_PARAMETER");
  EXPECT_EQ(call("GET", "/api/v1/sites?x=1").status, 400u);
}

TEST_F(RoutesTest, QueryStreamsInstances) {
  for (int i = 0; i < 3; ++i) ASSERT_EQ(call("POST", "/api/v1/packages", R"({"name":"P"})").status, 201u);
  auto r =
      call("POST", "/api/v1/query",
           R"({"namespace":"root\\sms\\site_ABC","query":"SELECT * FROM SMS_PackageStatusRootSummarizer"})", reader_);
  ASSERT_EQ(r.status, 200u) << r.body;
  auto j = r.json();
  ASSERT_TRUE(j.is_object()) << r.body;
  ASSERT_EQ(j["instances"].size(), 3u);
  EXPECT_EQ(j["instances"][0]["__CLASS"], "SMS_PackageStatusRootSummarizer");
  EXPECT_EQ(j["instances"][0]["Targeted"], 0);
  EXPECT_FALSE(j.contains("error"));

  auto one =
      call("POST", "/api/v1/query", R"({"query":"SELECT PackageID FROM SMS_Package WHERE PackageID='ABC00002'"})");
  ASSERT_EQ(one.status, 200u);
  ASSERT_EQ(one.json()["instances"].size(), 1u);
  EXPECT_TRUE(one.json()["instances"][0]["Name"].is_null());

  auto empty = call("POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Advertisement"})");
  EXPECT_EQ(empty.json(), nlohmann::json::parse(R"({"instances":[]})"));
}

// A join's __Generic rows embed one object per class, each projected as a one-class query's: the same members as
// that class's query with the same selection (the selected properties, the keys, the system properties named,
// no lazy ones), not every other property as null.
TEST_F(RoutesTest, JoinedObjectsAreProjectedAsOneClassQueries) {
  ASSERT_EQ(call("POST", "/api/v1/packages", R"({"name":"Office"})").status, 201u);
  ASSERT_EQ(call("POST", "/api/v1/packages/ABC00001/programs", R"({"name":"Install","command_line":"setup /q"})")
                .status,
            201u);
  auto rows = [&](const std::string& wql) {
    auto r = call("POST", "/api/v1/query", nlohmann::json{{"query", wql}}.dump());
    EXPECT_EQ(r.status, 200u) << wql << ": " << r.body;
    const auto j = r.json();
    EXPECT_FALSE(j.contains("error")) << r.body;
    EXPECT_EQ(j["instances"].size(), 1u) << wql << ": " << r.body;
    return j["instances"].empty() ? nlohmann::json::object() : j["instances"][0];
  };
  auto members = [](const nlohmann::json& object) {
    std::vector<std::string> names;
    for (const auto& [name, value] : object.items()) names.push_back(name);
    return names;
  };
  const std::string join = " FROM SMS_Package AS P JOIN SMS_Program AS G ON P.PackageID = G.PackageID";

  auto listed = rows("SELECT P.Name, G.CommandLine" + join);
  EXPECT_EQ(listed["__CLASS"], "__Generic");
  EXPECT_EQ(members(listed["P"]), (std::vector<std::string>{"Name", "PackageID", "__CLASS"})) << listed.dump();
  EXPECT_EQ(members(listed["P"]), members(rows("SELECT Name FROM SMS_Package")));
  EXPECT_EQ(members(listed["G"]), members(rows("SELECT CommandLine FROM SMS_Program")));
  EXPECT_EQ(listed["G"]["CommandLine"], "setup /q");

  auto with_path = rows("SELECT P.__PATH, P.Name, G.ProgramName" + join);
  EXPECT_EQ(members(with_path["P"]), members(rows("SELECT __PATH, Name FROM SMS_Package"))) << with_path.dump();
  EXPECT_EQ(with_path["P"]["__PATH"], rows("SELECT __PATH FROM SMS_Package")["__PATH"]);

  auto all = rows("SELECT *" + join);
  EXPECT_EQ(members(all["P"]), members(rows("SELECT * FROM SMS_Package"))) << all.dump();
  EXPECT_EQ(members(all["G"]), members(rows("SELECT * FROM SMS_Program")));
  EXPECT_FALSE(all["P"].contains("Icon"));  // lazy: left out, as a one-class query leaves it out
}

// A stopping server ends a query answer in progress with its last words (router.h, end_early): the rows sent so far,
// the array closed, and the "error" member naming WBEM_E_SHUTTING_DOWN, so the body is complete JSON that says it is
// not the whole answer.
TEST_F(RoutesTest, AQueryEndedByAStopClosesItsAnswerWithTheError) {
  for (int i = 0; i < 3; ++i) ASSERT_EQ(call("POST", "/api/v1/packages", R"({"name":"P"})").status, 201u);
  const std::string query = R"({"query":"SELECT * FROM SMS_Package"})";
  const Error stopping = make_error(WbemCode::kShuttingDown, "the server is stopping");
  for (const bool after_a_row : {false, true}) {
    Response resp = respond("POST", "/api/v1/query", query, reader_);
    ASSERT_EQ(resp.status, 200u) << resp.body;
    ASSERT_TRUE(resp.stream);
    resp.stream->start([] {});
    std::string out;
    if (after_a_row) {
      // Room for about one row: the source stops after it and asks to be called again.
      ASSERT_EQ(resp.stream->next(out, 1).kind(), StreamSource::Step::Kind::kMore);
    }
    ASSERT_TRUE(resp.stream->end_early(stopping, out));
    auto j = nlohmann::json::parse(out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << out;
    EXPECT_EQ(j["instances"].size(), after_a_row ? 1u : 0u) << out;
    EXPECT_EQ(j["error"]["error"], "WBEM_E_SHUTTING_DOWN") << out;
  }
}

TEST_F(RoutesTest, QueryErrorsComeBeforeAnyRow) {
  auto ns = call("POST", "/api/v1/query", R"({"namespace":"root\\sms\\site_XYZ","query":"SELECT * FROM SMS_Site"})");
  EXPECT_EQ(ns.status, 404u);
  EXPECT_EQ(ns.error(), "WBEM_E_INVALID_NAMESPACE");
  auto syntax = call("POST", "/api/v1/query", R"({"query":"SELECT FROM"})");
  EXPECT_EQ(syntax.status, 400u);
  EXPECT_EQ(syntax.error(), "WBEM_E_INVALID_QUERY");
  auto cls = call("POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Nothing"})");
  EXPECT_EQ(cls.error(), "WBEM_E_INVALID_CLASS");
  auto event = call("POST", "/api/v1/query",
                    R"({"query":"SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'"})");
  EXPECT_EQ(event.error(), "WBEM_E_INVALID_QUERY_TYPE");
}

TEST_F(RoutesTest, TokensResource) {
  auto created = call("POST", "/api/v1/tokens", R"({"role":"read-only","site":"abc","description":"ci"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  auto j = created.json();
  EXPECT_EQ(j["role"], "read-only");
  EXPECT_EQ(j["sites"], nlohmann::json::array({"ABC"}));
  const std::string token = j["token"];
  auto record = site::lookup_token(*store_, token);
  ASSERT_TRUE(record.ok() && record->has_value());
  auto list = call("GET", "/api/v1/tokens");
  ASSERT_EQ(list.status, 200u);
  EXPECT_EQ(list.body.find(token), std::string::npos);
  EXPECT_EQ(call("POST", "/api/v1/tokens", R"({"role":"dp"})").status, 400u);
  EXPECT_EQ(call("POST", "/api/v1/tokens", R"({"role":"god"})").status, 400u);
  EXPECT_EQ(call("POST", "/api/v1/tokens", R"({"role":"read-only","sites":["QQQ"]})").status, 404u);
  EXPECT_EQ(call("POST", "/api/v1/tokens", R"({"role":"read-only","site":"ABC","sites":["ABC"]})").status, 400u);
  auto none = call("POST", "/api/v1/tokens", R"({"role":"read-only","sites":[]})");  // not "every site"
  EXPECT_EQ(none.status, 400u);
  EXPECT_NE(none.body.find("leave 'sites' out"), std::string::npos) << none.body;
}

}  // namespace
}  // namespace pkgcast::server
