#include "provider/json_writer.h"

#include <gtest/gtest.h>

namespace pkgcast::provider {
namespace {

TEST(JsonWriter, MatchesTheCimCodec) {
  const auto& registry = cim::ClassRegistry::builtin();
  cim::Instance dp(*registry.find("SMS_DistributionPointInfo"));
  ASSERT_TRUE(dp.set("NALPath", cim::Value::string(R"(["Display=\\DP1\"]MSWNET:["SMS_SITE=ABC"]\\DP1\)")).ok());
  ASSERT_TRUE(dp.set("Name", cim::Value::string("dp1 \"quoted\"\n\t\x01 \xC3\xA9")).ok());
  ASSERT_TRUE(dp.set("IsPullDP", cim::Value::boolean(true)).ok());
  ASSERT_TRUE(
      dp.set("SourceDPs", cim::Value::array(cim::CimType::kString, {cim::Value::string("a"), cim::Value()})).ok());
  ASSERT_TRUE(dp.set("TransferRate", cim::Value::uint32(4294967295u)).ok());
  ASSERT_TRUE(
      dp.set("LastContactTime", cim::Value::datetime(cim::DateTime::from_unix_micros(1'700'000'000'123'456))).ok());
  std::string out;
  append_instance_json(out, dp);
  const auto parsed = cim::Json::parse(out);
  EXPECT_EQ(parsed, cim::to_json(dp));
  EXPECT_EQ(out, cim::to_json(dp).dump());
}

TEST(JsonWriter, ReplacesInvalidUtf8) {
  std::string out;
  append_json_string(out,
                     "a\xFF"
                     "b\xC3");
  EXPECT_EQ(out,
            "\"a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\"");
  EXPECT_FALSE(cim::Json::parse(out, nullptr, false).is_discarded());
}

}  // namespace
}  // namespace pkgcast::provider
