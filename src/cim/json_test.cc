#include "cim/json.h"

#include <gtest/gtest.h>

namespace pkgcast::cim {
namespace {

const ClassRegistry& reg() { return ClassRegistry::builtin(); }

TEST(JsonTest, InstanceRoundTrip) {
  Instance pkg(*reg().find("SMS_Package"));
  ASSERT_TRUE(pkg.set("PackageID", Value::string("ABC00001")).ok());
  ASSERT_TRUE(pkg.set("Name", Value::string("Office \"Pro\"")).ok());
  ASSERT_TRUE(pkg.set("SourceVersion", Value::uint32(4)).ok());
  ASSERT_TRUE(pkg.set("SourceDate", Value::string("2026-11-24T01:19:00.25Z")).ok());
  Json j = to_json(pkg);
  EXPECT_EQ(j.begin().key(), "__CLASS");
  EXPECT_EQ(j["SourceVersion"], 4);
  EXPECT_EQ(j["SourceDate"], "2026-11-24T01:19:00.250000Z");
  EXPECT_TRUE(j["Description"].is_null());
  auto back = instance_from_json(Json::parse(j.dump()), reg());
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(back.value(), pkg);
}

TEST(JsonTest, EventRoundTripWithEmbeddedInstances) {
  Instance before(*reg().find("SMS_PackageStatusRootSummarizer"));
  ASSERT_TRUE(before.set("PackageID", Value::string("ABC00001")).ok());
  ASSERT_TRUE(before.set("Installed", Value::uint32(1)).ok());
  Instance after = before;
  ASSERT_TRUE(after.set("Installed", Value::uint32(2)).ok());
  Instance ev(*reg().find("__InstanceModificationEvent"));
  ev.set_revision(42);
  ASSERT_TRUE(ev.set("TIME_CREATED", Value::uint64(134088839400000000ull)).ok());
  ASSERT_TRUE(ev.set("TargetInstance", Value::object(std::make_shared<const Instance>(after))).ok());
  ASSERT_TRUE(ev.set("PreviousInstance", Value::object(std::make_shared<const Instance>(before))).ok());
  Json j = to_json(ev);
  EXPECT_EQ(j.dump().substr(0, 58), R"({"__CLASS":"__InstanceModificationEvent","__REVISION":42,")");
  EXPECT_EQ(j["TargetInstance"]["Installed"], 2);
  auto back = instance_from_json(j, reg());
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(back.value(), ev);
}

TEST(JsonTest, RefusesBadInput) {
  struct Case {
    const char* json;
    WbemCode code;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"([1])", WbemCode::kInvalidObject},
           {R"({"Name": "x"})", WbemCode::kInvalidObject},
           {R"({"__CLASS": "SMS_Nope"})", WbemCode::kInvalidClass},
           {R"({"__CLASS": "SMS_Package", "Nope": 1})", WbemCode::kInvalidProperty},
           {R"({"__CLASS": "SMS_Package", "SourceVersion": "1"})", WbemCode::kTypeMismatch},
           {R"({"__CLASS": "SMS_Package", "SourceVersion": -1})", WbemCode::kValueOutOfRange},
           {R"({"__CLASS": "SMS_Package", "SourceVersion": 4294967296})", WbemCode::kValueOutOfRange},
           {R"({"__CLASS": "SMS_Package", "SourceDate": "yesterday"})", WbemCode::kInvalidParameter},
           {R"({"__CLASS": "SMS_DistributionPointInfo", "SourceDPs": "DP1"})", WbemCode::kTypeMismatch},
           {R"({"__CLASS": "SMS_DistributionPointInfo", "IsPullDP": 1})", WbemCode::kTypeMismatch},
           {R"({"__CLASS": "__InstanceCreationEvent", "TargetInstance": {"__CLASS": "Nope"}})",
            WbemCode::kInvalidClass},
       }) {
    auto r = instance_from_json(Json::parse(c.json), reg());
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.error().code, c.code) << c.json << " -> " << r.error().to_string();
  }
}

TEST(JsonTest, DeepNestingIsRefusedNotRecursed) {
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += R"({"__CLASS": "__InstanceCreationEvent", "TargetInstance": )";
  deep += "null";
  for (int i = 0; i < 100; ++i) deep += "}";
  auto r = instance_from_json(Json::parse(deep), reg());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kQuotaViolation);
}

}  // namespace
}  // namespace pkgcast::cim
