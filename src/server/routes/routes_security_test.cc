// Refusals: roles, site limits, malformed and hostile input. Each refused call must change nothing.
#include <chrono>
#include <string>

#include "server/routes/routes_fixture.h"

namespace pkgcast::server {
namespace {

class RoutesSecurityTest : public RoutesTest {
 protected:
  // Expects `status` and `error`, and that the store journaled nothing.
  void expect_refused(const std::string& method, const std::string& target, const std::string& body,
                      const site::TokenRecord& caller, unsigned status, const std::string& error = "",
                      const std::string& message_part = "") {
    const auto before = revision();
    const Reply r = call(method, target, body, caller);
    EXPECT_EQ(r.status, status) << method << " " << target << " " << body << " -> " << r.body;
    if (!error.empty()) {
      EXPECT_EQ(r.error(), error) << r.body;
    }
    if (!message_part.empty()) {
      EXPECT_NE(r.body.find(message_part), std::string::npos) << r.body;
    }
    EXPECT_EQ(revision(), before) << method << " " << target << " changed the store";
  }
};

TEST_F(RoutesSecurityTest, RolesAreEnforced) {
  expect_refused("POST", "/api/v1/sites", R"({"code":"S01","name":"B","type":"secondary","parent":"ABC"})", packager_,
                 403);
  expect_refused("POST", "/api/v1/dps", R"({"name":"dp1","site":"ABC"})", packager_, 403);
  expect_refused("POST", "/api/v1/groups", R"({"name":"g"})", packager_, 403);
  expect_refused("POST", "/api/v1/tokens", R"({"role":"read-only"})", packager_, 403);
  expect_refused("GET", "/api/v1/tokens", "", reader_, 403);
  expect_refused("POST", "/api/v1/packages", R"({"name":"p"})", reader_, 403);
  expect_refused("POST", "/api/v1/advertisements", R"({"package_id":"ABC00001","program":"p","collection":"c"})",
                 reader_, 403);
  expect_refused("POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Site"})", dp_, 403);
  expect_refused("GET", "/api/v1/packages", "", dp_, 403);
  // A DP's token implies its own DP: naming another is refused, naming itself (in any case) is what it implies.
  expect_refused("GET", "/api/v1/dp/jobs?dp=dp2", "", dp_, 403, "WBEM_E_ACCESS_DENIED");
  EXPECT_EQ(call("GET", "/api/v1/dp/jobs?dp=DP1", "", dp_).status, 200u);
  EXPECT_EQ(call("GET", "/api/v1/dp/jobs", "", dp_).status, 200u);
}

TEST_F(RoutesSecurityTest, SiteLimitedTokensActOnTheirSitesOnly) {
  ASSERT_EQ(call("POST", "/api/v1/sites", R"({"code":"S01","name":"B","type":"secondary","parent":"ABC"})").status,
            201u);
  ASSERT_EQ(call("POST", "/api/v1/dps", R"({"name":"dpabc","site":"ABC"})").status, 201u);
  ASSERT_EQ(call("POST", "/api/v1/packages", R"({"name":"p"})").status, 201u);
  site::TokenRecord branch_admin = admin_;
  branch_admin.sites = {"S01"};
  site::TokenRecord branch_packager = packager_;
  branch_packager.sites = {"S01"};

  expect_refused("POST", "/api/v1/dps", R"({"name":"dp9","site":"ABC"})", branch_admin, 403, "WBEM_E_ACCESS_DENIED");
  // An object outside the token's sites is answered as one that does not exist (404, same message).
  expect_refused("DELETE", "/api/v1/dps/dpabc", "", branch_admin, 404, "WBEM_E_NOT_FOUND", "DP 'dpabc' does not exist");
  expect_refused("GET", "/api/v1/dps/dpabc", "", branch_admin, 404, "WBEM_E_NOT_FOUND", "DP 'dpabc' does not exist");
  expect_refused("GET", "/api/v1/sites/ABC", "", branch_admin, 404, "WBEM_E_NOT_FOUND", "site 'ABC' does not exist");
  expect_refused("POST", "/api/v1/packages", R"({"name":"p"})", branch_packager, 403);
  expect_refused("PATCH", "/api/v1/packages/ABC00001", R"({"name":"q"})", branch_packager, 404, "WBEM_E_NOT_FOUND",
                 "package 'ABC00001' does not exist");
  expect_refused("DELETE", "/api/v1/packages/ABC00001", "", branch_packager, 404);
  expect_refused("GET", "/api/v1/packages/abc00001", "", branch_packager, 404, "WBEM_E_NOT_FOUND",
                 "package 'ABC00001' does not exist");
  expect_refused("GET", "/api/v1/packages/ABC00001/programs", "", branch_packager, 404);
  expect_refused("POST", "/api/v1/advertisements", R"({"package_id":"ABC00001","program":"p","collection":"c"})",
                 branch_packager, 404, "WBEM_E_NOT_FOUND");
  expect_refused("POST", "/api/v1/tokens", R"({"role":"read-only"})", branch_admin, 403);
  expect_refused("POST", "/api/v1/tokens", R"({"role":"read-only","site":"ABC"})", branch_admin, 403);
  expect_refused("GET", "/api/v1/advertisements?site=ABC", "", branch_packager, 403);

  // Lists show only the token's sites.
  EXPECT_EQ(call("GET", "/api/v1/packages", "", branch_packager).json().size(), 0u);
  EXPECT_EQ(call("GET", "/api/v1/dps", "", branch_admin).json().size(), 0u);
  auto sites = call("GET", "/api/v1/sites", "", branch_admin).json();
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0]["SiteCode"], "S01");
  auto q = call("POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Package"})", branch_packager);
  EXPECT_EQ(q.json()["instances"].size(), 0u);
  // What is theirs, they may do.
  EXPECT_EQ(call("POST", "/api/v1/dps", R"({"name":"dps01","site":"s01"})", branch_admin).status, 201u);
}

TEST_F(RoutesSecurityTest, BodiesAreReadStrictly) {
  expect_refused("POST", "/api/v1/packages", R"({"name":"p",})", admin_, 400, "WBEM_E_INVALID_PARAMETER",
                 "malformed JSON at byte");
  expect_refused("POST", "/api/v1/packages", "{\"name\":", admin_, 400, "WBEM_E_INVALID_PARAMETER", "malformed JSON");
  expect_refused("POST", "/api/v1/packages", "", admin_, 400, "WBEM_E_INVALID_PARAMETER");
  expect_refused("POST", "/api/v1/packages", R"(["name"])", admin_, 400, "WBEM_E_INVALID_PARAMETER", "JSON object");
  expect_refused("POST", "/api/v1/packages", R"({"name":"p","colour":"red"})", admin_, 400, "WBEM_E_INVALID_PARAMETER",
                 "unknown field 'colour'");
  expect_refused("POST", "/api/v1/packages", R"({"name":5})", admin_, 400, "WBEM_E_INVALID_PARAMETER", "'name'");
  expect_refused("POST", "/api/v1/packages", R"({"name":"p","priority":"high"})", admin_, 400,
                 "WBEM_E_INVALID_PARAMETER", "'priority'");
  expect_refused("POST", "/api/v1/packages", R"({"name":"p","priority":-1})", admin_, 400);
  expect_refused("POST", "/api/v1/packages", R"({"version":"1"})", admin_, 400, "WBEM_E_INVALID_PARAMETER",
                 "'name' is required");
  expect_refused("POST", "/api/v1/dps", R"({"name":"dp1","site":"ABC","pull":"yes"})", admin_, 400);
  expect_refused("POST", "/api/v1/dps", R"({"name":"dp1","site":"ABC","source_dps":"dp0"})", admin_, 400);
  expect_refused("POST", "/api/v1/query", R"({"query":["SELECT"]})", admin_, 400);
  expect_refused("POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Site","limit":1})", admin_, 400);
  expect_refused("POST", "/api/v1/advertisements",
                 R"({"package_id":"ABC00001","program":"p","collection":"c","present_time":"yesterday"})", admin_, 400);
  // This Api has no source roots: every source is refused, without looking at it.
  expect_refused("POST", "/api/v1/packages", R"({"name":"p","source":"/no/such/dir"})", admin_, 403,
                 "WBEM_E_ACCESS_DENIED", "source_roots");
  // A member name twice: nlohmann would keep the last, another reader the first.
  expect_refused("POST", "/api/v1/packages", R"({"name":"p","name":"q"})", admin_, 400, "WBEM_E_INVALID_PARAMETER",
                 "field 'name' appears twice");
  expect_refused("POST", "/api/v1/groups/x/members", R"({"dps":["a"],"dps":[]})", admin_, 400,
                 "WBEM_E_INVALID_PARAMETER", "'dps'");
}

TEST_F(RoutesSecurityTest, ManyMemberNamesCostLinearTime) {
  // A body within max_body_bytes holding 90,000 distinct member names, from the least privileged token that may
  // send a body: looking for duplicates among them must not pin a handler thread (a list search took 38 s).
  std::string many = "{";
  for (int i = 0; many.size() < 1'000'000; ++i) many += "\"" + std::to_string(1'000'000 + i) + "\":0,";
  const std::string distinct = many + R"("query":"SELECT * FROM SMS_Site"})";
  const std::string twice = many + R"("1000000":1})";
  const auto start = std::chrono::steady_clock::now();
  expect_refused("POST", "/api/v1/query", distinct, reader_, 400, "WBEM_E_INVALID_PARAMETER", "unknown field");
  expect_refused("POST", "/api/v1/query", twice, reader_, 400, "WBEM_E_INVALID_PARAMETER",
                 "field '1000000' appears twice");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);
}

TEST_F(RoutesSecurityTest, DeeplyNestedBodiesAreRefusedBeforeTheyAreBuilt) {
  // 64 levels are more than any body of this API needs: the deepest is accepted as JSON (and then refused for
  // what it says), one more is refused for its depth, whatever its size.
  const auto nested = [](std::size_t levels) {
    return R"({"query":)" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
  };
  expect_refused("POST", "/api/v1/query", nested(64), reader_, 400, "WBEM_E_INVALID_PARAMETER",
                 "field 'query' must be a string");
  expect_refused("POST", "/api/v1/query", nested(65), reader_, 400, "WBEM_E_INVALID_PARAMETER",
                 "JSON nested deeper than 64 levels");
  const auto start = std::chrono::steady_clock::now();
  expect_refused("POST", "/api/v1/query", nested(500'000), reader_, 400, "WBEM_E_INVALID_PARAMETER",
                 "JSON nested deeper than 64 levels");
  std::string objects;
  for (int i = 0; i < 100'000; ++i) objects += R"({"a":)";
  expect_refused("POST", "/api/v1/packages", objects + "1" + std::string(100'000, '}'), admin_, 400,
                 "WBEM_E_INVALID_PARAMETER", "JSON nested deeper than 64 levels");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 1.0);
  // A malformed document is still reported where it breaks.
  expect_refused("POST", "/api/v1/query", R"({"query": [1, 2,]})", reader_, 400, "WBEM_E_INVALID_PARAMETER",
                 "malformed JSON at byte 17");
}

TEST_F(RoutesSecurityTest, InjectionAttemptsExecuteNothing) {
  ASSERT_EQ(call("POST", "/api/v1/packages", R"({"name":"Office"})").status, 201u);
  const auto before = revision();
  auto literal = call("POST", "/api/v1/query",
                      R"({"query":"SELECT * FROM SMS_Package WHERE Name = 'x\\'; DROP TABLE SMS_Package; --'"})");
  EXPECT_EQ(literal.status, 200u) << literal.body;
  EXPECT_EQ(literal.json()["instances"].size(), 0u);
  auto like =
      call("POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Package WHERE Name LIKE '%\\' OR 1=1 --'"})");
  EXPECT_EQ(like.status, 200u);
  EXPECT_EQ(like.json()["instances"].size(), 0u);
  // SQL's doubled quote is not WQL's escape: the statement does not parse.
  expect_refused("POST", "/api/v1/query",
                 R"({"query":"SELECT * FROM SMS_Package WHERE Name = 'x''; DROP TABLE SMS_Package; --'"})", admin_, 400,
                 "WBEM_E_INVALID_QUERY");
  expect_refused("POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Package; DROP TABLE SMS_Package"})", admin_,
                 400, "WBEM_E_INVALID_QUERY");
  expect_refused("POST", "/api/v1/query", R"({"query":"SELECT * FROM \"SMS_Package; DROP\""})", admin_, 400);
  expect_refused("POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Package WHERE \"Name; DROP\" = 1"})", admin_,
                 400);
  expect_refused("GET", "/api/v1/packages/ABC00001'%20OR%20'1'='1", "", admin_, 400);
  expect_refused("GET", "/api/v1/dps/x';DROP TABLE x;--", "", admin_, 400);
  expect_refused("POST", "/api/v1/packages", R"({"name":"p\u0000; DROP TABLE x"})", admin_, 400);
  EXPECT_EQ(revision(), before);
  // The tables still answer.
  auto all = call("POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Package"})");
  ASSERT_EQ(all.status, 200u);
  EXPECT_EQ(all.json()["instances"].size(), 1u);
  EXPECT_EQ(call("GET", "/api/v1/packages/ABC00001").json()["Name"], "Office");
}

}  // namespace
}  // namespace pkgcast::server
