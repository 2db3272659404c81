#include "server/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pkgcast::server {
namespace {

Handler returns(unsigned status) {
  return [status](Request&) { return Response::json(status, "{}"); };
}

unsigned call(const Router::Match& m) {
  Request r;
  return (*m.handler)(r).status;
}

TEST(RouterTest, MatchesLiteralAndParameterSegments) {
  Router router;
  router.add("GET", "/api/v1/packages", Access::kRead, returns(201));
  router.add("GET", "/api/v1/packages/{id}", Access::kRead, returns(202));
  router.add("POST", "/api/v1/packages/{id}/distribute", Access::kPackageAdmin, returns(203));

  auto list = router.match("GET", "/api/v1/packages");
  ASSERT_TRUE(list && list->handler);
  EXPECT_EQ(call(*list), 201u);
  EXPECT_TRUE(list->params.empty());
  EXPECT_EQ(list->pattern, "/api/v1/packages");

  auto one = router.match("GET", "/api/v1/packages/ABC00001");
  ASSERT_TRUE(one && one->handler);
  EXPECT_EQ(call(*one), 202u);
  EXPECT_EQ(one->params.at("id"), "ABC00001");
  EXPECT_EQ(one->access, Access::kRead);
  EXPECT_EQ(one->pattern, "/api/v1/packages/{id}");

  auto dist = router.match("POST", "/api/v1/packages/ABC00002/distribute");
  ASSERT_TRUE(dist && dist->handler);
  EXPECT_EQ(dist->params.at("id"), "ABC00002");
  EXPECT_EQ(dist->access, Access::kPackageAdmin);
}

TEST(RouterTest, UnknownPathIsNulloptAndWrongMethodHasNoHandler) {
  Router router;
  router.add("GET", "/api/v1/packages/{id}", Access::kRead, returns(200));
  router.add("DELETE", "/api/v1/packages/{id}", Access::kPackageAdmin, returns(204));
  EXPECT_FALSE(router.match("GET", "/api/v1/nothing"));
  EXPECT_FALSE(router.match("GET", "/api/v1/packages/A/extra"));
  EXPECT_FALSE(router.match("GET", "/api/v1/packages/"));  // an empty segment binds no parameter
  EXPECT_FALSE(router.match("GET", "/api/v1/packages"));

  auto wrong = router.match("PUT", "/api/v1/packages/ABC00001");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->handler, nullptr);
  EXPECT_EQ(router.allowed_methods("/api/v1/packages/ABC00001"),
            (std::vector<std::string>{"GET", "HEAD", "DELETE"}));
  EXPECT_TRUE(router.allowed_methods("/nope").empty());
}

TEST(RouterTest, HeadMatchesWhereverGetDoes) {
  Router router;
  router.add("GET", "/api/v1/packages/{id}", Access::kRead, returns(200));
  router.add("GET", "/api/v1/packages/search", Access::kPublic, returns(201));
  router.add("DELETE", "/api/v1/packages/{id}", Access::kPackageAdmin, returns(204));
  auto head = router.match("HEAD", "/api/v1/packages/ABC00001");
  ASSERT_TRUE(head);
  ASSERT_NE(head->handler, nullptr);
  EXPECT_EQ(head->pattern, "/api/v1/packages/{id}");
  EXPECT_EQ(head->params.at("id"), "ABC00001");
  EXPECT_EQ(head->access, Access::kRead);
  auto literal = router.match("HEAD", "/api/v1/packages/search");
  ASSERT_TRUE(literal);
  EXPECT_EQ(literal->pattern, "/api/v1/packages/search");

  Router no_get;
  no_get.add("POST", "/api/v1/query", Access::kRead, returns(200));
  auto none = no_get.match("HEAD", "/api/v1/query");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->handler, nullptr);
}

TEST(RouterTest, LiteralSegmentWinsOverParameterWhateverTheOrder) {
  Router router;
  router.add("GET", "/api/v1/dps/{name}", Access::kRead, returns(201));
  router.add("GET", "/api/v1/dps/self", Access::kDp, returns(202));
  auto self = router.match("GET", "/api/v1/dps/self");
  ASSERT_TRUE(self && self->handler);
  EXPECT_EQ(call(*self), 202u);
  auto other = router.match("GET", "/api/v1/dps/DP01");
  ASSERT_TRUE(other && other->handler);
  EXPECT_EQ(call(*other), 201u);
}

TEST(RouterTest, MethodAndLiteralsAreCaseSensitive) {
  Router router;
  router.add("GET", "/metrics", Access::kPublic, returns(200));
  EXPECT_FALSE(router.match("GET", "/Metrics"));
  auto m = router.match("get", "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->handler, nullptr);
}

TEST(RouterTest, RootPathMatchesOnlyRootPattern) {
  Router router;
  router.add("GET", "/", Access::kPublic, returns(200));
  EXPECT_TRUE(router.match("GET", "/"));
  EXPECT_FALSE(router.match("GET", "/x"));
}

TEST(RouterDeathTest, MalformedPatternsStopTheProcess) {
  Router router;
  EXPECT_DEATH(router.add("GET", "api", Access::kPublic, returns(200)), "must start with");
  EXPECT_DEATH(router.add("GET", "/a//b", Access::kPublic, returns(200)), "empty segment");
  EXPECT_DEATH(router.add("GET", "/a/x{id}", Access::kPublic, returns(200)), "whole segment");
  router.add("GET", "/a/{id}", Access::kPublic, returns(200));
  EXPECT_DEATH(router.add("GET", "/a/{id}", Access::kPublic, returns(200)), "registered twice");
}

TEST(RoleTest, EachAccessLevelAdmitsExactlyItsRoles) {
  using site::Role;
  struct Row {
    Access access;
    bool full, package, read, dp;
  };
  const Row rows[] = {
      {Access::kPublic, true, true, true, true},        {Access::kRead, true, true, true, false},
      {Access::kPackageAdmin, true, true, false, false}, {Access::kFullAdmin, true, false, false, false},
      {Access::kDp, true, false, false, true},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(static_cast<int>(r.access));
    EXPECT_EQ(role_allows(Role::kFullAdmin, r.access), r.full);
    EXPECT_EQ(role_allows(Role::kPackageAdmin, r.access), r.package);
    EXPECT_EQ(role_allows(Role::kReadOnly, r.access), r.read);
    EXPECT_EQ(role_allows(Role::kDp, r.access), r.dp);
  }
}

TEST(ErrorResponseTest, BodyNamesTheCodeAndHresult) {
  Response r = error_response(make_error(WbemCode::kInvalidQuery, "expected FROM at 1:10"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body,
            R"({"error":"WBEM_E_INVALID_QUERY","hresult":"0x80041017","message":"expected FROM at 1:10"})");
}

TEST(ErrorResponseTest, StatusFollowsTheCode) {
  EXPECT_EQ(http_status_for(WbemCode::kInvalidParameter), 400u);
  EXPECT_EQ(http_status_for(WbemCode::kInvalidClass), 400u);
  EXPECT_EQ(http_status_for(WbemCode::kInvalidProperty), 400u);
  EXPECT_EQ(http_status_for(WbemCode::kInvalidObjectPath), 400u);
  EXPECT_EQ(http_status_for(WbemCode::kTypeMismatch), 400u);
  EXPECT_EQ(http_status_for(WbemCode::kValueOutOfRange), 400u);
  EXPECT_EQ(http_status_for(WbemCode::kIllegalNull), 400u);
  EXPECT_EQ(http_status_for(WbemCode::kInvalidOperation), 400u);
  EXPECT_EQ(http_status_for(WbemCode::kQuotaViolation), 400u);
  EXPECT_EQ(http_status_for(WbemCode::kReadOnly), 400u);
  EXPECT_EQ(http_status_for(WbemCode::kAccessDenied), 403u);
  EXPECT_EQ(http_status_for(WbemCode::kNotFound), 404u);
  EXPECT_EQ(http_status_for(WbemCode::kInvalidNamespace), 404u);
  EXPECT_EQ(http_status_for(WbemCode::kInvalidMethod), 404u);
  EXPECT_EQ(http_status_for(WbemCode::kAlreadyExists), 409u);
  EXPECT_EQ(http_status_for(WbemCode::kShuttingDown), 503u);
  EXPECT_EQ(http_status_for(WbemCode::kServerTooBusy), 503u);
  EXPECT_EQ(http_status_for(WbemCode::kNotSupported), 501u);
  EXPECT_EQ(http_status_for(WbemCode::kFailed), 500u);
  EXPECT_EQ(http_status_for(WbemCode::kOutOfDiskSpace), 500u);
}

TEST(ErrorResponseTest, OnlyARefusalForLoadSaysWhenToRetry) {
  const Response busy = error_response(make_error(WbemCode::kServerTooBusy, "too many open streams"));
  EXPECT_EQ(busy.status, 503u);
  ASSERT_EQ(busy.headers.size(), 1u);
  EXPECT_EQ(busy.headers[0], (std::pair<std::string, std::string>("Retry-After", "1")));
  for (const WbemCode code : {WbemCode::kShuttingDown, WbemCode::kQuotaViolation, WbemCode::kFailed}) {
    EXPECT_TRUE(error_response(make_error(code, "x")).headers.empty());
  }
}

TEST(ErrorResponseTest, MessageWithQuotesAndInvalidUtf8StaysValidJson) {
  Response r = error_response(make_error(WbemCode::kInvalidProperty, "unknown property 'a\"b\xff'"));
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"], "WBEM_E_INVALID_PROPERTY");
  EXPECT_EQ(j["hresult"], "0x80041031");
  EXPECT_NE(j["message"].get<std::string>().find("a\"b"), std::string::npos);
}

TEST(RequestTest, HeaderByLowerCaseNameOrEmpty) {
  Request r;
  r.headers.emplace("authorization", "Bearer x");
  EXPECT_EQ(r.header("authorization"), "Bearer x");
  EXPECT_EQ(r.header("accept"), "");
}

TEST(ResponseTest, JsonSetsStatusAndBody) {
  Response r = Response::json(201, R"({"id":1})");
  EXPECT_EQ(r.status, 201u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"id":1})");
  EXPECT_FALSE(r.stream);
}

}  // namespace
}  // namespace pkgcast::server
