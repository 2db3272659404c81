#include "cim/instance.h"

#include <gtest/gtest.h>

namespace pkgcast::cim {
namespace {

Instance make_dp_row() {
  Instance inst(*ClassRegistry::builtin().find("SMS_DistributionPoint"));
  EXPECT_TRUE(inst.set("PackageID", Value::string("ABC00001")).ok());
  EXPECT_TRUE(inst.set("ServerNALPath", Value::string(R"(["Display=\\DP1\"]MSWNET:["SMS_SITE=ABC"]\\DP1\)")).ok());
  EXPECT_TRUE(inst.set("SiteCode", Value::string("ABC")).ok());
  return inst;
}

TEST(InstanceTest, SetCoercesAndRefusesUnknownProperties) {
  Instance pkg(*ClassRegistry::builtin().find("SMS_Package"));
  ASSERT_TRUE(pkg.set("sourceversion", Value::sint(CimType::kSint64, 3)).ok());
  EXPECT_EQ(*pkg.find("SourceVersion"), Value::uint32(3));
  auto unknown = pkg.set("Nope", Value::uint32(1));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, WbemCode::kInvalidProperty);
  auto bad = pkg.set("SourceVersion", Value::string("three"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, WbemCode::kTypeMismatch);
  EXPECT_EQ(*pkg.find("SourceVersion"), Value::uint32(3));  // unchanged on error
}

// The estimate the server's memory bounds use: it grows with the text held, and an embedded object counts whole.
TEST(InstanceTest, EstimatedBytesFollowTheTextHeld) {
  Instance pkg(*ClassRegistry::builtin().find("SMS_Package"));
  const std::size_t empty = estimated_bytes(pkg);
  EXPECT_GE(empty, 32 * pkg.class_def().properties().size());
  ASSERT_TRUE(pkg.set("Description", Value::string(std::string(10'000, 'd'))).ok());
  const std::size_t described = estimated_bytes(pkg);
  EXPECT_GE(described, empty + 10'000);
  EXPECT_LT(described, empty + 10'100);
  const ClassDef& event_cls = *ClassRegistry::builtin().find("__InstanceModificationEvent");
  Instance event(event_cls);
  event.set(*event_cls.find_property("TargetInstance"), Value::object(std::make_shared<const Instance>(pkg)));
  EXPECT_GE(estimated_bytes(event), described);
}

TEST(InstanceTest, PathsQuoteKeys) {
  Instance row = make_dp_row();
  EXPECT_EQ(row.relpath(),
            R"(SMS_DistributionPoint.PackageID="ABC00001",ServerNALPath="[\"Display=\\\\DP1\\\"]MSWNET:[\"SMS_SITE=ABC\"]\\\\DP1\\",SiteCode="ABC")");
  row.set_location("SITESRV", R"(root\sms\site_ABC)");
  EXPECT_EQ(row.path().substr(0, 29), R"(\\SITESRV\root\sms\site_ABC:S)");
}

TEST(InstanceTest, SystemProperties) {
  Instance row = make_dp_row();
  row.set_location("SITESRV", R"(root\sms\site_ABC)");
  EXPECT_EQ(*row.property("__CLASS"), Value::string("SMS_DistributionPoint"));
  EXPECT_EQ(*row.property("__SUPERCLASS"), Value::string("SMS_BaseClass"));
  EXPECT_EQ(*row.property("__DYNASTY"), Value::string("SMS_BaseClass"));
  EXPECT_EQ(*row.property("__NAMESPACE"), Value::string(R"(root\sms\site_ABC)"));
  EXPECT_EQ(*row.property("__SERVER"), Value::string("SITESRV"));
  EXPECT_EQ(*row.property("__GENUS"), Value::sint(CimType::kSint32, 2));
  EXPECT_EQ(row.property("__DERIVATION")->as_array().size(), 1u);
  EXPECT_TRUE(row.property("__REVISION")->is_null());
  EXPECT_EQ(row.property("packageid")->as_string(), "ABC00001");
  EXPECT_FALSE(row.property("__NOPE").ok());
}

}  // namespace
}  // namespace pkgcast::cim
