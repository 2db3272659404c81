#include "pkgcast/instance.h"

#include <gtest/gtest.h>

#include "pkgcast/error.h"

namespace pkgcast {
namespace {

constexpr std::string_view kEvent = R"({"__CLASS":"__InstanceModificationEvent","__REVISION":42,
  "TIME_CREATED":134085503400000000,
  "TargetInstance":{"__CLASS":"SMS_PackageStatusRootSummarizer","PackageID":"ABC00001","Name":"Office",
                    "Targeted":3,"Installed":2,"Retrying":0,"Failed":-1,"SourceSize":2.5,"Dist":true,
                    "LastRefresh":"2026-11-24T01:19:00Z","Tags":["a","b"],"Missing":null},
  "PreviousInstance":{"__CLASS":"SMS_PackageStatusRootSummarizer","Installed":1}})";

Instance event() {
  auto r = Instance::from_json(kEvent);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return std::move(r).value();
}

TEST(InstanceTest, PropertiesAndEmbeddedObjectsAsInTheSample) {
  const Instance e = event();
  EXPECT_EQ(e.class_name(), "__InstanceModificationEvent");
  EXPECT_EQ(e.revision(), 42u);
  EXPECT_EQ(e["TargetInstance"]["Installed"].as_uint32(), 2u);
  EXPECT_EQ(e["TargetInstance"]["Name"].as_string(), "Office");
  EXPECT_EQ(e["PreviousInstance"]["Installed"].as_int64(), 1);
  EXPECT_EQ(e["TargetInstance"].as_object().class_name(), "SMS_PackageStatusRootSummarizer");
  EXPECT_EQ(e["TIME_CREATED"].as_uint64(), 134085503400000000u);
  // Names are case-insensitive, system properties included.
  EXPECT_EQ(e["targetinstance"]["INSTALLED"].as_uint32(), 2u);
  EXPECT_EQ(e["__class"].as_string(), "__InstanceModificationEvent");
  EXPECT_EQ(e["__REVISION"].as_uint64(), 42u);
  EXPECT_EQ(e.properties().front().first, "__CLASS");
}

TEST(InstanceTest, TypedGettersConvertOnlyWithoutLoss) {
  const Instance e = event();
  const Instance& t = e["TargetInstance"].as_object();
  EXPECT_EQ(t["Targeted"].as_double(), 3.0);
  EXPECT_EQ(t["Failed"].as_int32(), -1);
  EXPECT_EQ(t["Failed"].to_uint32().error().code, WbemCode::kValueOutOfRange);
  EXPECT_EQ(t["SourceSize"].to_int64().error().code, WbemCode::kTypeMismatch);
  EXPECT_EQ(t["SourceSize"].as_double(), 2.5);
  EXPECT_TRUE(t["Dist"].as_bool());
  EXPECT_EQ(t["Name"].to_uint32().error().code, WbemCode::kTypeMismatch);
  EXPECT_TRUE(t["Missing"].is_null());
  EXPECT_EQ(t["Missing"].to_string(), "NULL");
  EXPECT_EQ(t["Tags"].as_array().size(), 2u);
  EXPECT_EQ(t["Tags"].to_string(), "{a, b}");
  EXPECT_EQ(t["LastRefresh"].as_datetime().time_since_epoch().count(), 1795483140000000);
  EXPECT_EQ(t["Name"].to_datetime().error().code, WbemCode::kTypeMismatch);
}

TEST(InstanceTest, MissingPropertiesThrowOrAreNull) {
  const Instance e = event();
  try {
    (void)e["TargetInstance"]["Instaled"];
    FAIL() << "expected ManagementError";
  } catch (const ManagementError& err) {
    EXPECT_EQ(err.code(), WbemCode::kNotFound);
    EXPECT_EQ(err.message(), "no property 'Instaled' on SMS_PackageStatusRootSummarizer");
  }
  EXPECT_EQ(e.find("Nope"), nullptr);
  EXPECT_THROW((void)e["TIME_CREATED"]["x"], ManagementError);
}

TEST(InstanceTest, JsonRoundTripsInOrder) {
  const Instance e = event();
  auto again = Instance::from_json(e.to_json());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, e);
  EXPECT_EQ(again->to_json(), e.to_json());
  EXPECT_EQ(e.to_json().substr(0, 53), R"({"__CLASS":"__InstanceModificationEvent","__REVISION")");
}

TEST(InstanceTest, BadJsonIsRefused) {
  EXPECT_EQ(Instance::from_json("[1]").error().code, WbemCode::kInvalidObject);
  EXPECT_EQ(Instance::from_json("{").error().code, WbemCode::kInvalidObject);
  std::string deep;
  for (int i = 0; i < Instance::kMaxObjectDepth + 1; ++i) deep += R"({"a":)";
  deep += "1";
  for (int i = 0; i < Instance::kMaxObjectDepth + 1; ++i) deep += "}";
  EXPECT_EQ(Instance::from_json(deep).error().code, WbemCode::kInvalidObject);
}

}  // namespace
}  // namespace pkgcast
