#include "cim/object_path.h"

#include <gtest/gtest.h>

namespace pkgcast::cim {
namespace {

TEST(ObjectPathTest, ParsesAbsoluteAndRelative) {
  auto p = ObjectPath::parse(R"(\\SRV\root\sms\site_ABC:SMS_Package.PackageID="ABC00001")");
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->server, "SRV");
  EXPECT_EQ(p->namespace_path, R"(root\sms\site_ABC)");
  EXPECT_EQ(p->class_name, "SMS_Package");
  ASSERT_EQ(p->keys.size(), 1u);
  EXPECT_EQ(p->keys[0].value, Value::string("ABC00001"));
  EXPECT_EQ(p->to_string(), R"(\\SRV\root\sms\site_ABC:SMS_Package.PackageID="ABC00001")");

  auto multi = ObjectPath::parse(R"(SMS_Program.PackageID="ABC00001",ProgramName="Install \"quiet\"")");
  ASSERT_TRUE(multi.ok());
  EXPECT_EQ(multi->keys[1].value, Value::string(R"(Install "quiet")"));
  EXPECT_EQ(ObjectPath::parse(multi->to_string()).value(), multi.value());

  auto num = ObjectPath::parse("SMS_DistributionDPStatus.ID=42");
  ASSERT_TRUE(num.ok());
  EXPECT_EQ(num->keys[0].value, Value::uint64(42));
  EXPECT_TRUE(ObjectPath::parse("PKG_Settings=@")->singleton);
}

// Instance::relpath writes the path itself; it must stay ObjectPath's, for every builtin class with keys of text
// that needs quoting, numbers, and none.
TEST(ObjectPathTest, InstanceRelpathIsTheObjectPaths) {
  const ClassRegistry& registry = ClassRegistry::builtin();
  int checked = 0;
  for (const char* name : {"SMS_DistributionPoint", "SMS_DistributionDPStatus", "SMS_PackageStatusDetailSummarizer",
                           "SMS_Package", "PKG_Settings"}) {
    const ClassDef* cls = registry.find(name);
    if (cls == nullptr) continue;
    Instance inst(*cls);
    for (std::size_t index : cls->key_indices()) {
      const Type type = cls->property(index).type;
      if (type.base == CimType::kString) {
        inst.set(index, Value::string(R"(a "quoted" \\path\)"));
      } else if (type.base == CimType::kUint64) {
        inst.set(index, Value::uint64(42));
      }
    }
    EXPECT_EQ(inst.relpath(), ObjectPath::of(inst).relpath()) << name;
    ++checked;
  }
  EXPECT_GE(checked, 4);
}

TEST(ObjectPathTest, RoundTripsInstancePaths) {
  Instance row(*ClassRegistry::builtin().find("SMS_DistributionPoint"));
  ASSERT_TRUE(row.set("PackageID", Value::string("ABC00001")).ok());
  ASSERT_TRUE(row.set("ServerNALPath", Value::string(R"(["Display=\\DP1\"]MSWNET:["SMS_SITE=ABC"]\\DP1\)")).ok());
  ASSERT_TRUE(row.set("SiteCode", Value::string("ABC")).ok());
  row.set_location("SRV", R"(root\sms\site_ABC)");
  auto parsed = ObjectPath::parse(row.path());
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  EXPECT_EQ(parsed.value(), ObjectPath::of(row));
}

TEST(ObjectPathTest, RefusesMalformedPaths) {
  for (const char* bad : {"", "\\\\", "\\\\SRV", ".Key=1", "SMS_Package.", "SMS_Package.PackageID",
                          "SMS_Package.PackageID=\"open", "SMS_Package.PackageID=abc", "SMS_Package PackageID=1",
                          "SMS_Package.A=1,", "SMS_Package.A=\"x\"junk"}) {
    auto r = ObjectPath::parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, WbemCode::kInvalidObjectPath) << bad;
    }
  }
}

}  // namespace
}  // namespace pkgcast::cim
