// Event forms on particular classes: the SDK sample's queries on the Root summarizer, and inheritance.
#include "provider/events_test_fixture.h"

namespace pkgcast::provider::testing {
namespace {

// The SDK sample's two queries, on the Root summarizer rows.
TEST_F(EventsTest, SdkSampleQueriesOnTheRootSummarizer) {
  auto root = [&](const std::string& id, std::uint32_t installed) {
    cim::Instance r(cls("SMS_PackageStatusRootSummarizer"));
    EXPECT_TRUE(r.set("PackageID", cim::Value::string(id)).ok());
    EXPECT_TRUE(r.set("Targeted", cim::Value::uint32(100)).ok());
    EXPECT_TRUE(r.set("Installed", cim::Value::uint32(installed)).ok());
    return r;
  };
  auto created = subscribe(
      "SELECT * FROM __InstanceCreationEvent WITHIN 120 WHERE TargetInstance ISA 'SMS_PackageStatusRootSummarizer'");
  auto modified = subscribe(
      "SELECT * FROM __InstanceModificationEvent WITHIN 120 WHERE TargetInstance ISA "
      "'SMS_PackageStatusRootSummarizer' AND TargetInstance.PackageID = 'ABC00000'");
  const std::uint64_t r1 = put(root("ABC00000", 0));
  const std::uint64_t r2 = put(root("ABC00000", 1));
  EXPECT_EQ(revisions(drain(*created)), std::vector<std::uint64_t>{r1});
  auto m = drain(*modified);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0]["__REVISION"], r2);
  EXPECT_EQ(m[0]["TargetInstance"]["Installed"], 1);
  EXPECT_EQ(m[0]["PreviousInstance"]["Installed"], 0);
}

// Configuration Manager's SMS_PackageBaseclass, abstract: a subscription on it sees every package change, as
// SMS_Package events, and reads the base's properties of TargetInstance; it is indexed by key like any other.
TEST_F(EventsTest, PackageBaseclassSubscriptionSeesPackages) {
  auto any = subscribe("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_PackageBaseclass'");
  auto renamed = subscribe(
      "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_PackageBaseclass' AND "
      "TargetInstance.Name <> PreviousInstance.Name AND TargetInstance.PackageID = 'ABC00001'");
  auto named = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance.__CLASS = 'SMS_Package' AND "
                         "TargetInstance ISA 'SMS_PackageBaseclass'");
  const std::uint64_t r1 = put(package("ABC00001", "Office"));
  const std::uint64_t r2 = put(package("ABC00001", "Office 2"));
  const std::uint64_t r3 = put(package("ABC00002", "Reader"));
  put(package("ABC00002", "Reader 2"));
  auto all = drain(*any);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0]["__CLASS"], "__InstanceCreationEvent");
  EXPECT_EQ(all[0]["TargetInstance"]["__CLASS"], "SMS_Package");
  EXPECT_EQ(revisions(drain(*renamed)), std::vector<std::uint64_t>{r2});
  EXPECT_EQ(revisions(drain(*named)), (std::vector<std::uint64_t>{r1, r3}));
}

// A base class with a subclass, both stored: a subscription on the base sees both; one on the subclass only it.
TEST_F(EventsTest, BaseClassSubscriptionSeesSubclassInstances) {
  using cim::CimType;
  auto p = [](std::string name, CimType t, bool key = false) {
    return cim::PropertyDef{std::move(name), {t, false}, key, false, "", false, {}, false};
  };
  static const Result<cim::ClassRegistry> registry = cim::ClassRegistry::build({
      {"Test_Root", "", {}, true, ""},
      {"Test_Base", "Test_Root", {p("Name", CimType::kString, true), p("Size", CimType::kUint32)}, false, ""},
      {"Test_Derived", "Test_Base", {p("Extra", CimType::kString)}, false, ""},
      {"Test_Other", "Test_Root", {p("Name", CimType::kString, true)}, false, ""},
      {"__Event", "", {p("TIME_CREATED", CimType::kUint64)}, true, ""},
      {"__InstanceOperationEvent", "__Event", {p("TargetInstance", CimType::kObject)}, true, ""},
      {"__InstanceCreationEvent", "__InstanceOperationEvent", {}, false, ""},
      {"__InstanceDeletionEvent", "__InstanceOperationEvent", {}, false, ""},
      {"__InstanceModificationEvent", "__InstanceOperationEvent", {p("PreviousInstance", CimType::kObject)}, false,
       ""},
      {"__AggregateEvent", "__Event", {p("NumberOfEvents", CimType::kUint32), p("Representative", CimType::kObject)},
       false, ""},
  });
  ASSERT_TRUE(registry.ok()) << registry.error().to_string();
  open({}, &*registry);
  auto base = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Test_Base'");
  auto exact = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance.__CLASS = 'Test_Base'");
  auto derived = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Test_Derived'");
  auto keyed = subscribe("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Test_Base' AND "
                         "TargetInstance.Name = 'd1'");
  auto make = [&](const char* c, const char* name) {
    cim::Instance inst(cls(c));
    EXPECT_TRUE(inst.set("Name", cim::Value::string(name)).ok());
    return inst;
  };
  const std::uint64_t r1 = put(make("Test_Base", "b1"));
  const std::uint64_t r2 = put(make("Test_Derived", "d1"));
  put(make("Test_Other", "o1"));
  EXPECT_EQ(revisions(drain(*base)), (std::vector<std::uint64_t>{r1, r2}));
  EXPECT_EQ(revisions(drain(*exact)), std::vector<std::uint64_t>{r1});
  auto d = drain(*derived);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["TargetInstance"]["__CLASS"], "Test_Derived");
  EXPECT_EQ(revisions(drain(*keyed)), std::vector<std::uint64_t>{r2});
}

}  // namespace
}  // namespace pkgcast::provider::testing
