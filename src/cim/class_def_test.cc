#include "cim/class_def.h"

#include <gtest/gtest.h>

namespace pkgcast::cim {
namespace {

TEST(ClassRegistryTest, BuiltinHasEveryClassOfTheProvider) {
  const auto& reg = ClassRegistry::builtin();
  for (const char* name :
       {"SMS_BaseClass", "SMS_Site", "SMS_DistributionPointInfo", "SMS_DistributionPointGroup", "SMS_Package",
        "SMS_Program", "SMS_Advertisement", "PKG_AdvertisementOffer", "SMS_DistributionPoint",
        "SMS_PackageStatusDistPointsSummarizer", "SMS_PackageStatusDetailSummarizer",
        "SMS_PackageStatusRootSummarizer", "SMS_ObjectContentExtraInfo", "SMS_DistributionDPStatus",
        "SMS_DPStatusInfo", "__Event", "__InstanceOperationEvent", "__InstanceCreationEvent",
        "__InstanceDeletionEvent", "__InstanceModificationEvent", "__AggregateEvent"}) {
    EXPECT_NE(reg.find(name), nullptr) << name;
  }
  EXPECT_EQ(reg.find("sms_package"), reg.find("SMS_Package"));
  auto missing = reg.get("SMS_Nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, WbemCode::kInvalidClass);
}

TEST(ClassRegistryTest, KeysAndInheritance) {
  const auto& reg = ClassRegistry::builtin();
  const ClassDef* dp = reg.find("SMS_DistributionPoint");
  ASSERT_EQ(dp->key_indices().size(), 3u);
  EXPECT_EQ(dp->property(dp->key_indices()[1]).name, "ServerNALPath");
  EXPECT_TRUE(dp->is_a("SMS_BaseClass"));
  EXPECT_FALSE(dp->is_a("SMS_Package"));
  const ClassDef* mod = reg.find("__InstanceModificationEvent");
  EXPECT_TRUE(mod->is_event_class());
  EXPECT_TRUE(mod->is_a(*reg.find("__InstanceOperationEvent")));
  EXPECT_EQ(mod->derivation(), (std::vector<std::string>{"__InstanceOperationEvent", "__Event"}));
  // Inherited properties keep their index in the subclass.
  const ClassDef* op = reg.find("__InstanceOperationEvent");
  EXPECT_EQ(op->find_property("TargetInstance"), mod->find_property("targetinstance"));
  EXPECT_FALSE(reg.find("SMS_Package")->is_event_class());
}

TEST(ClassRegistryTest, BuildRefusesBadSpecs) {
  auto dup = ClassRegistry::build({{"A", "", {}, false, ""}, {"a", "", {}, false, ""}});
  EXPECT_FALSE(dup.ok());
  auto orphan = ClassRegistry::build({{"B", "Missing", {}, false, ""}});
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.error().code, WbemCode::kInvalidClass);
  auto dup_prop = ClassRegistry::build(
      {{"C", "", {{"X", Type{}, false, false, "", false, {}, false}, {"x", Type{}, false, false, "", false, {}, false}}, false, ""}});
  EXPECT_FALSE(dup_prop.ok());
}

TEST(ClassRegistryTest, SystemPropertyNames) {
  EXPECT_TRUE(is_system_property("__class"));
  EXPECT_TRUE(is_system_property("__REVISION"));
  EXPECT_FALSE(is_system_property("__Nope"));
  EXPECT_FALSE(is_system_property("Name"));
}

}  // namespace
}  // namespace pkgcast::cim
