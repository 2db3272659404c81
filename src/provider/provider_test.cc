// The provider over a real SQLite store, with rows made by the domain.
#include "provider/provider.h"
#include "provider/provider_test_fixture.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <filesystem>
#include <random>

#include "provider/event_build.h"
#include "provider/json_writer.h"
#include "site/site.h"

namespace pkgcast::provider {
namespace {

class ProviderTest : public ProviderStoreTest {
 protected:
  void SetUp() override {
    open_store();
    ASSERT_FALSE(HasFatalFailure());
    site::Domain domain(*store_, "ABC", "server1");
    ASSERT_TRUE(domain.create_dp({"dp1", "ABC", "", "", false, {}, 0, ""}).ok());
    ASSERT_TRUE(domain.create_dp({"dp2", "S01", "", "", false, {}, 0, ""}).ok());
    for (const char* name : {"Office", "Reader", "office tools"}) {
      site::PackageSpec spec;
      spec.name = name;
      ASSERT_TRUE(domain.create_package(spec).ok());
    }
    ASSERT_TRUE(domain.create_program({"ABC00001", "Install", "setup", "", "", 0, 0, ""}).ok());
    provider_ = std::make_unique<Provider>(*store_, "ABC", "server1");
    admin_.role = site::Role::kFullAdmin;
  }

  Result<std::vector<cim::Instance>> query(std::string_view wql, const site::TokenRecord& caller,
                                           std::string_view ns = "") {
    std::vector<cim::Instance> out;
    PKG_TRY(provider_->exec_query(ns, wql, caller, [&](const cim::Instance& inst) {
      out.push_back(inst);
      return true;
    }));
    return out;
  }
  Result<std::vector<cim::Instance>> query(std::string_view wql) { return query(wql, admin_); }

  site::TokenRecord admin_;
};

TEST_F(ProviderTest, ServesItsOwnNamespaceOnly) {
  EXPECT_EQ(provider_->namespace_path(), "root\\sms\\site_ABC");
  EXPECT_TRUE(query("SELECT * FROM SMS_Site", admin_, "ROOT\\SMS\\SITE_abc").ok());
  EXPECT_TRUE(query("SELECT * FROM SMS_Site", admin_, "root/sms/site_ABC").ok());
  auto other = query("SELECT * FROM SMS_Site", admin_, "root\\sms\\site_XYZ");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, WbemCode::kInvalidNamespace);
  EXPECT_NE(other.error().message.find("site_XYZ"), std::string::npos);
  // WMI scripts' spellings with a server part: this machine (".", localhost, its own name, any case) is this one.
  for (const char* ns : {R"(\\.\root\sms\site_ABC)", R"(\\localhost\ROOT\SMS\SITE_ABC)", R"(\\SERVER1\root\sms\site_abc)",
                         "//./root/sms/site_ABC"}) {
    EXPECT_TRUE(query("SELECT * FROM SMS_Site", admin_, ns).ok()) << ns;
  }
  for (const char* ns : {R"(\\sccm01\root\sms\site_ABC)", R"(\\.\root\sms\site_XYZ)", R"(\\.)", R"(\\.\)",
                         R"(\\\root\sms\site_ABC)"}) {
    auto refused = query("SELECT * FROM SMS_Site", admin_, ns);
    ASSERT_FALSE(refused.ok()) << ns;
    EXPECT_EQ(refused.error().code, WbemCode::kInvalidNamespace) << ns;
  }
  auto elsewhere = query("SELECT * FROM SMS_Site", admin_, R"(\\sccm01\root\sms\site_ABC)");
  ASSERT_FALSE(elsewhere.ok());
  EXPECT_NE(elsewhere.error().message.find("another server"), std::string::npos) << elsewhere.error().message;
}

// Configuration Manager's own namespace answers the one class scripts read there to find their site's namespace.
TEST_F(ProviderTest, RootSmsHoldsSmsProviderLocationOnly) {
  for (const char* ns : {"root\\sms", "ROOT/SMS", R"(\\.\root\sms)", R"(\\SERVER1\Root\Sms)"}) {
    EXPECT_TRUE(query("SELECT * FROM SMS_ProviderLocation WHERE ProviderForLocalSite = TRUE", admin_, ns).ok()) << ns;
    for (const char* q : {"SELECT * FROM SMS_Site", "SELECT * FROM SMS_ProviderLocation AS L JOIN SMS_Site AS S ON "
                                                    "L.SiteCode = S.SiteCode"}) {
      auto refused = query(q, admin_, ns);
      ASSERT_FALSE(refused.ok()) << ns << ": " << q;
      EXPECT_EQ(refused.error().code, WbemCode::kInvalidClass);
      EXPECT_NE(refused.error().message.find("root\\sms\\site_ABC"), std::string::npos) << refused.error().message;
    }
  }
  EXPECT_TRUE(query("SELECT * FROM SMS_ProviderLocation", admin_, "").ok());
  auto path = provider_->get_object("root\\sms", "SMS_Site.SiteCode=\"ABC\"", admin_);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.error().code, WbemCode::kInvalidClass);
}

TEST_F(ProviderTest, FindsAPackageByKeyAndLocatesIt) {
  auto rows = query("SELECT * FROM SMS_Package WHERE PackageID = 'abc00002'");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().find("Name")->as_string(), "Reader");
  EXPECT_EQ(rows->front().path(), R"(\\server1\root\sms\site_ABC:SMS_Package.PackageID="ABC00002")");
}

TEST_F(ProviderTest, EvaluatesLikeAndBooleanLogic) {
  auto rows = query("SELECT * FROM SMS_Package WHERE Name LIKE 'OFF%' AND NOT Name = 'office'");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().find("Name")->as_string(), "office tools");
  rows = query("SELECT * FROM SMS_Package WHERE Name LIKE '[o]%' OR PackageID = 'ABC00002'");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 3u);
}

TEST_F(ProviderTest, ConvertsLiteralsAndAnswersInLists) {
  auto names = [&](std::string_view wql, const char* prop = "Name") {
    std::vector<std::string> out;
    auto rows = query(wql);
    EXPECT_TRUE(rows.ok()) << wql << ": " << (rows.ok() ? "" : rows.error().to_string());
    if (rows.ok()) {
      for (const auto& r : *rows) {
        const cim::Value* v = r.find(prop);
        out.push_back(v != nullptr && !v->is_null() ? v->as_string() : "");
      }
      std::sort(out.begin(), out.end());
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names("SELECT * FROM SMS_Site WHERE Type = '2'", "SiteName"), V{"Head"});
  EXPECT_EQ(names("SELECT * FROM SMS_Site WHERE Type IN (\"1\", 4)", "SiteName"), V{"Branch"});
  EXPECT_EQ(names("SELECT * FROM SMS_Package WHERE PackageID IN ('abc00001', 'ABC00003')"),
            (V{"Office", "office tools"}));
  EXPECT_EQ(names("SELECT * FROM SMS_Package WHERE PackageID NOT IN ('abc00001', 'ABC00003')"), V{"Reader"});
  EXPECT_EQ(names("SELECT * FROM SMS_Package WHERE PackageID IN ('ABC00002', NULL)"), V{"Reader"});
  EXPECT_EQ(names("SELECT * FROM SMS_Package WHERE PackageID NOT IN ('ABC00002', NULL)"), V{});
  EXPECT_EQ(names("SELECT * FROM SMS_Package WHERE SourceDate > '20000101' OR SourceDate IS NULL").size(), 3u);
  EXPECT_EQ(names("SELECT * FROM SMS_DistributionPointInfo WHERE IsPullDP = 0").size(), 2u);
  EXPECT_EQ(names("SELECT * FROM SMS_DistributionPointInfo WHERE IsPullDP IN (1)").size(), 0u);
  auto bad = query("SELECT * FROM SMS_Site WHERE Type = 'abc'");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().to_string(), "WBEM_E_INVALID_QUERY: 'abc' does not convert to uint32 'Type' at 1:37");
}

TEST_F(ProviderTest, BaseClassQueriesScanEveryClass) {
  auto rows = query("SELECT * FROM SMS_BaseClass");
  ASSERT_TRUE(rows.ok());
  // 2 sites, 2 DPs + 2 DP status rows, 3 packages with a root, a detail and an extra-info row each, 1 program,
  // the 2 DPs' PKG_Token audit rows (the caller is an unrestricted full-admin), and the SMS_SystemResourceList rows
  // of the 2 site servers (site server, provider and site system each) and of the 2 DPs (DP and site system each).
  EXPECT_EQ(rows->size(), 2u + 4u + 12u + 1u + 2u + 10u);
  rows = query("SELECT * FROM SMS_BaseClass WHERE __CLASS = 'SMS_Site'");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 2u);
}

// SMS_PackageBaseclass (abstract, Configuration Manager's base of SMS_Package) has no table: a query of it reads
// SMS_Package's, answering packages as SMS_Package instances (as WMI answers a base-class query with instances of
// the derived classes), and an object path through it finds the package.
TEST_F(ProviderTest, PackageBaseclassQueriesAnswerPackages) {
  auto rows = query("select * from SMS_PackageBaseclass WHERE PackageType='0'");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  ASSERT_EQ(rows->size(), 3u);
  const cim::Instance& pkg = rows->front();
  EXPECT_EQ(pkg.class_name(), "SMS_Package");
  EXPECT_EQ(pkg.path(), R"(\\server1\root\sms\site_ABC:SMS_Package.PackageID="ABC00001")");
  EXPECT_EQ(pkg.property("__DERIVATION").value(),
            cim::Value::array(cim::CimType::kString,
                              {cim::Value::string("SMS_PackageBaseclass"), cim::Value::string("SMS_BaseClass")}));
  // SELECT *: the whole instance, so every property the base declares, and the package's own (ObjectPath).
  const cim::ClassDef& base = *store_->registry().find("SMS_PackageBaseclass");
  for (const auto& p : base.properties()) EXPECT_NE(pkg.find(p.name), nullptr) << p.name;
  EXPECT_EQ(pkg.find("Name")->as_string(), "Office");
  EXPECT_EQ(pkg.find("ObjectPath")->as_string(), "/");
  EXPECT_EQ(*pkg.find("ISVString"), cim::Value::string(""));  // declared by the base, at its default

  // WHERE is pushed into SMS_Package's scan and still decided per row; ORDER BY and COUNT(*) run in SQL.
  rows = query("SELECT Name FROM SMS_PackageBaseclass WHERE Name LIKE 'office%' AND PackageID <> 'ABC00001'");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().find("Name")->as_string(), "office tools");
  EXPECT_EQ(rows->front().find("PackageID")->as_string(), "ABC00003");  // the key stays
  EXPECT_TRUE(rows->front().find("Priority")->is_null());                // the rest is projected away
  rows = query("SELECT Name FROM SMS_PackageBaseclass ORDER BY Name DESC");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ(rows->front().find("Name")->as_string(), "Reader");
  rows = query("SELECT COUNT(*) FROM SMS_PackageBaseclass WHERE Priority = 2");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(rows->front().find("Count")->as_uint(), 3u);
  rows = query("SELECT * FROM SMS_BaseClass WHERE __CLASS = 'SMS_PackageBaseclass'");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_TRUE(rows->empty());

  // GetObject: the package's own path, and one through the base class, which answers the SMS_Package instance.
  auto own = provider_->get_object("", R"(SMS_Package.PackageID="ABC00002")", admin_);
  ASSERT_TRUE(own.ok()) << own.error().to_string();
  auto through_base = provider_->get_object("", R"(SMS_PackageBaseclass.PackageID="abc00002")", admin_);
  ASSERT_TRUE(through_base.ok()) << through_base.error().to_string();
  EXPECT_EQ(through_base->class_name(), "SMS_Package");
  EXPECT_EQ(*through_base, *own);
  EXPECT_EQ(through_base->path(), R"(\\server1\root\sms\site_ABC:SMS_Package.PackageID="ABC00002")");
  auto missing = provider_->get_object("", R"(SMS_PackageBaseclass.PackageID="ABC00009")", admin_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, WbemCode::kNotFound);
}

TEST_F(ProviderTest, ProjectionKeepsSelectedAndKeyProperties) {
  auto rows = query("SELECT Name FROM SMS_Package WHERE PackageID = 'ABC00001'");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  const cim::Instance& pkg = rows->front();
  EXPECT_EQ(pkg.find("Name")->as_string(), "Office");
  EXPECT_EQ(pkg.find("PackageID")->as_string(), "ABC00001");
  EXPECT_TRUE(pkg.find("SourceSite")->is_null());
  EXPECT_TRUE(pkg.find("PkgFlags")->is_null());
}

TEST_F(ProviderTest, WhereSeesTheLocationTheRowsAreAnsweredWith) {
  const std::string path = R"(\\server1\root\sms\site_ABC:SMS_Package.PackageID="ABC00002")";
  const std::vector<std::string> conditions = {
      R"(__PATH = '\\\\server1\\root\\sms\\site_ABC:SMS_Package.PackageID="ABC00002"')",
      "__SERVER = 'SERVER1' AND PackageID = 'ABC00002'",
      R"(__NAMESPACE = 'root\\sms\\site_abc' AND Name = 'Reader')",
  };
  for (const auto& where : conditions) {
    auto rows = query("SELECT Name FROM SMS_Package WHERE " + where);
    ASSERT_TRUE(rows.ok()) << where << ": " << rows.error().to_string();
    ASSERT_EQ(rows->size(), 1u) << where;
    EXPECT_EQ(rows->front().path(), path);
  }
  auto none = query("SELECT * FROM SMS_Package WHERE __SERVER IS NULL OR __PATH = 'SMS_Package.PackageID=\"ABC00002\"'");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->size(), 0u);
}

TEST_F(ProviderTest, ProjectionListsTheSystemPropertiesItNames) {
  auto prepared = provider_->prepare("", "SELECT __PATH, Name, __CLASS, __SERVER, __PATH FROM SMS_Package", admin_);
  ASSERT_TRUE(prepared.ok()) << prepared.error().to_string();
  ASSERT_EQ(prepared->steps().size(), 1u);
  EXPECT_EQ(prepared->steps().front().system,
            (std::vector<wql::SystemProperty>{wql::SystemProperty::kPath, wql::SystemProperty::kServer}));
  auto all = provider_->prepare("", "SELECT * FROM SMS_Package", admin_);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->steps().front().system.empty());
}

TEST_F(ProviderTest, RefusesEventQueriesAndBadQueries) {
  auto ev = query("SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_Package'");
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(ev.error().code, WbemCode::kInvalidQueryType);
  auto cls = query("SELECT * FROM SMS_Package; DROP TABLE x");
  ASSERT_FALSE(cls.ok());
  EXPECT_EQ(cls.error().code, WbemCode::kInvalidQuery);
  auto prop = query("SELECT * FROM SMS_Package WHERE Nmae = 'x'");
  ASSERT_FALSE(prop.ok());
  EXPECT_EQ(prop.error().code, WbemCode::kInvalidProperty);
  // WMI's class and namespace events are known classes that pkgcast never delivers.
  for (const char* q : {"SELECT * FROM __ClassModificationEvent", "SELECT * FROM __NamespaceOperationEvent",
                        "SELECT * FROM __ClassCreationEvent WHERE TargetClass ISA 'SMS_Package'"}) {
    auto r = query(q);
    ASSERT_FALSE(r.ok()) << q;
    EXPECT_EQ(r.error().code, WbemCode::kNotSupported) << q << ": " << r.error().to_string();
  }
}

TEST_F(ProviderTest, SiteLimitedCallersSeeTheirSitesOnly) {
  site::TokenRecord branch;
  branch.role = site::Role::kReadOnly;
  branch.sites = {"s01"};
  auto dps = query("SELECT * FROM SMS_DistributionPointInfo", branch);
  ASSERT_TRUE(dps.ok());
  ASSERT_EQ(dps->size(), 1u);
  EXPECT_EQ(dps->front().find("Name")->as_string(), "dp2");
  auto pkgs = query("SELECT * FROM SMS_Package", branch);
  ASSERT_TRUE(pkgs.ok());
  EXPECT_TRUE(pkgs->empty());  // packages belong to ABC
  auto programs = query("SELECT * FROM SMS_Program", branch);
  ASSERT_TRUE(programs.ok());
  EXPECT_TRUE(programs->empty());

  site::TokenRecord head = branch;
  head.sites = {"ABC"};
  programs = query("SELECT * FROM SMS_Program", head);
  ASSERT_TRUE(programs.ok());
  EXPECT_EQ(programs->size(), 1u);
  auto sites = query("SELECT * FROM SMS_Site", head);
  ASSERT_TRUE(sites.ok());
  EXPECT_EQ(sites->size(), 1u);
}

TEST_F(ProviderTest, LazyPropertiesAreLeftOutOfQueriesAndFilledInByPath) {
  // Give package ABC00001 an icon, as a script would have stored one.
  auto pkg = store_->get(*store_->registry().find("SMS_Package"), {cim::Value::string("ABC00001")});
  ASSERT_TRUE(pkg.ok() && pkg->has_value());
  cim::Instance with_icon = **pkg;
  const cim::Value icon = cim::Value::array(cim::CimType::kUint8, {cim::Value::uint(cim::CimType::kUint8, 7),
                                                                    cim::Value::uint(cim::CimType::kUint8, 9)});
  ASSERT_TRUE(with_icon.set("Icon", icon).ok());
  ASSERT_TRUE(store_->execute([&](store::WriteTxn& txn) { return txn.put(with_icon); }).ok());

  for (const char* wql : {"SELECT * FROM SMS_Package WHERE PackageID = 'ABC00001'",
                          "SELECT Icon, Name FROM SMS_Package WHERE PackageID = 'ABC00001'"}) {
    SCOPED_TRACE(wql);
    auto prepared = provider_->prepare("", wql, admin_);
    ASSERT_TRUE(prepared.ok()) << prepared.error().to_string();
    std::vector<std::string> json;
    ASSERT_TRUE(provider_->run(*prepared, [&](const cim::Instance& inst) {
      EXPECT_TRUE(inst.find("Icon")->is_null());
      std::string out;
      append_row_json(out, inst, &prepared->steps().front());
      json.push_back(out);
      return true;
    }).ok());
    ASSERT_EQ(json.size(), 1u);
    EXPECT_EQ(json[0].find("\"Icon\""), std::string::npos) << json[0];
    EXPECT_NE(json[0].find("\"Name\""), std::string::npos) << json[0];
  }
  // A lazy property with a non-NULL default is left out too.
  auto ds = query("SELECT * FROM SMS_Package WHERE PackageID = 'ABC00002'");
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(*ds->front().find("ShareType"), cim::Value::uint32(1));  // not lazy: answered

  auto whole = provider_->get_object("", R"(SMS_Package.PackageID="abc00001")", admin_);
  ASSERT_TRUE(whole.ok()) << whole.error().to_string();
  EXPECT_EQ(*whole->find("Icon"), icon);
  EXPECT_EQ(whole->find("Name")->as_string(), "Office");
  EXPECT_EQ(whole->path(), R"(\\server1\root\sms\site_ABC:SMS_Package.PackageID="ABC00001")");
  auto absolute = provider_->get_object("", R"(\\server1\root\sms\site_ABC:SMS_Package.PackageID="ABC00001")", admin_);
  ASSERT_TRUE(absolute.ok()) << absolute.error().to_string();
  EXPECT_EQ(*absolute->find("Icon"), icon);
}

TEST(EventLazyTest, EventsCarryTheirInstancesWithoutLazyProperties) {
  const cim::ClassRegistry& reg = cim::ClassRegistry::builtin();
  auto classes = EventClasses::from(reg);
  ASSERT_TRUE(classes.ok());
  auto pkg = std::make_shared<cim::Instance>(*reg.find("SMS_Package"));
  ASSERT_TRUE(pkg->set("PackageID", cim::Value::string("ABC00001")).ok());
  ASSERT_TRUE(pkg->set("Icon", cim::Value::array(cim::CimType::kUint8, {cim::Value::uint(cim::CimType::kUint8, 1)})).ok());
  store::JournalEntry entry;
  entry.revision = 1;
  entry.kind = store::ChangeKind::kModified;
  entry.class_name = "SMS_Package";
  entry.instance = pkg;
  entry.previous = pkg;
  // EventEntry keeps references to the server and namespace: they must outlive it.
  const std::string server = "server1";
  const std::string ns = "root\\sms\\site_ABC";
  EventEntry event(entry, *classes, server, ns);
  for (const char* which : {"TargetInstance", "PreviousInstance"}) {
    const cim::Value* embedded = event.event()->find(which);
    ASSERT_TRUE(embedded != nullptr && !embedded->is_null()) << which;
    const cim::Instance& target = embedded->as_object();
    EXPECT_TRUE(target.find("Icon")->is_null()) << which;
    EXPECT_EQ(target.find("PackageID")->as_string(), "ABC00001");
    EXPECT_EQ(*target.find("ShareType"), cim::Value::uint32(1));
  }
  EXPECT_NE(event.json(nullptr)->find("\"Icon\":null"), std::string::npos);
  // The journal's own instance keeps it: only what is delivered leaves it out.
  EXPECT_FALSE(pkg->find("Icon")->is_null());
}

TEST_F(ProviderTest, GetObjectRefusesBadPathsAndHidesOtherSites) {
  const auto code = [&](std::string_view path, const site::TokenRecord& caller) {
    auto r = provider_->get_object("", path, caller);
    return r.ok() ? WbemCode::kOk : r.error().code;
  };
  EXPECT_EQ(code(R"(SMS_Package.PackageID="ABC00009")", admin_), WbemCode::kNotFound);
  EXPECT_EQ(code(R"(SMS_Package.PackageID=)", admin_), WbemCode::kInvalidObjectPath);
  EXPECT_EQ(code(R"(SMS_Package.Name="Office")", admin_), WbemCode::kInvalidObjectPath);
  EXPECT_EQ(code(R"(SMS_Program.PackageID="ABC00001")", admin_), WbemCode::kInvalidObjectPath);
  EXPECT_EQ(code(R"(SMS_Nope.ID="1")", admin_), WbemCode::kInvalidClass);
  EXPECT_EQ(code(R"(\\server1\root\sms\site_XYZ:SMS_Site.SiteCode="ABC")", admin_), WbemCode::kInvalidNamespace);
  EXPECT_EQ(code(R"(SMS_Program.PackageID="ABC00001",ProgramName="install")", admin_), WbemCode::kOk);
  EXPECT_EQ(code(R"(SMS_Site.SiteCode="S01")", admin_), WbemCode::kOk);
  site::TokenRecord limited;
  limited.role = site::Role::kReadOnly;
  limited.sites = {"ABC"};
  EXPECT_EQ(code(R"(SMS_Site.SiteCode="ABC")", limited), WbemCode::kOk);
  EXPECT_EQ(code(R"(SMS_Site.SiteCode="S01")", limited), WbemCode::kNotFound);
  EXPECT_EQ(code(R"(SMS_Program.PackageID="ABC00001",ProgramName="Install")", limited), WbemCode::kOk);
  limited.sites = {"S01"};
  EXPECT_EQ(code(R"(SMS_Program.PackageID="ABC00001",ProgramName="Install")", limited), WbemCode::kNotFound);
  EXPECT_EQ(code(R"(PKG_Token.TokenID="x")", limited), WbemCode::kAccessDenied);
}

TEST_F(ProviderTest, ASinkCanStopTheScan) {
  int seen = 0;
  ASSERT_TRUE(
      provider_->exec_query("", "SELECT * FROM SMS_BaseClass", admin_, [&](const cim::Instance&) { return ++seen < 2; })
          .ok());
  EXPECT_EQ(seen, 2);
}

// ---- pushdown shapes ------------------------------------------------------------------------------------------

store::Predicate pushed(std::string_view where) {
  auto q = wql::compile("SELECT * FROM SMS_Package WHERE " + std::string(where), cim::ClassRegistry::builtin());
  EXPECT_TRUE(q.ok()) << q.error().to_string();
  return push_down(*q->where(), /*ordered_strings=*/true);
}

std::size_t index_of(std::string_view name) {
  return *cim::ClassRegistry::builtin().find("SMS_Package")->find_property(name);
}

TEST(Pushdown, KeyEqualityBecomesAComparison) {
  const auto p = pushed("PackageID = 'ABC00001'");
  ASSERT_EQ(p.kind, store::Predicate::Kind::kCompare);
  EXPECT_EQ(p.property, index_of("PackageID"));
  EXPECT_EQ(p.op, store::Predicate::Op::kEq);
  EXPECT_EQ(p.value.as_string(), "ABC00001");
}

TEST(Pushdown, AndKeepsWhatTranslates) {
  const auto p = pushed("PackageID = 'A' AND Name LIKE 'x%' AND NOT Name LIKE 'y%'");
  ASSERT_EQ(p.kind, store::Predicate::Kind::kAnd);
  ASSERT_EQ(p.children.size(), 2u);
  EXPECT_EQ(p.children[1].kind, store::Predicate::Kind::kLike);
}

TEST(Pushdown, OrNeedsEveryBranch) {
  EXPECT_EQ(pushed("PackageID = 'A' OR NOT Name LIKE 'y%'").kind, store::Predicate::Kind::kTrue);
  EXPECT_EQ(pushed("PackageID = 'A' OR Name IS NULL").kind, store::Predicate::Kind::kOr);
}

TEST(Pushdown, NotFlipsComparisonsAndAppliesDeMorgan) {
  const auto p = pushed("NOT (Priority < 2 OR Name IS NULL)");
  ASSERT_EQ(p.kind, store::Predicate::Kind::kAnd);
  EXPECT_EQ(p.children[0].op, store::Predicate::Op::kGe);
  EXPECT_EQ(p.children[1].kind, store::Predicate::Kind::kIsNotNull);
}

TEST(Pushdown, InBecomesEqualitiesAndNotInInequalities) {
  const auto in = pushed("Priority IN (1, '2', 3.0)");
  ASSERT_EQ(in.kind, store::Predicate::Kind::kOr);
  ASSERT_EQ(in.children.size(), 3u);
  for (const auto& c : in.children) EXPECT_EQ(c.op, store::Predicate::Op::kEq);
  EXPECT_EQ(pushed("Priority IN (2)").kind, store::Predicate::Kind::kCompare);
  const auto not_in = pushed("PackageID NOT IN ('A', 'B')");
  ASSERT_EQ(not_in.kind, store::Predicate::Kind::kAnd);
  for (const auto& c : not_in.children) EXPECT_EQ(c.op, store::Predicate::Op::kNe);
  // A NULL value makes the list UNKNOWN-valued: kept in memory.
  EXPECT_EQ(pushed("PackageID IN ('A', NULL)").kind, store::Predicate::Kind::kTrue);
}

TEST(Pushdown, ConvertedLiteralsArePushedAsThePropertyType) {
  const auto p = pushed("Priority = '2'");
  ASSERT_EQ(p.kind, store::Predicate::Kind::kCompare);
  EXPECT_EQ(p.value.type().base, cim::CimType::kUint32);
  EXPECT_EQ(p.value.as_uint(), 2u);
  EXPECT_EQ(pushed("SourceDate > '20240101'").kind, store::Predicate::Kind::kCompare);
}

TEST(Pushdown, LiteralsOutsideThePropertyTypeStayInMemory) {
  EXPECT_EQ(pushed("Priority > -1").kind, store::Predicate::Kind::kTrue);
  EXPECT_EQ(pushed("Priority < 2.5").kind, store::Predicate::Kind::kTrue);
  EXPECT_EQ(pushed("Priority = 2.0").kind, store::Predicate::Kind::kCompare);
}

TEST(Pushdown, OrderedStringComparisonsOnlyWhereTheBackendAgrees) {
  auto q = wql::compile("SELECT * FROM SMS_Package WHERE Name < 'm'", cim::ClassRegistry::builtin());
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(push_down(*q->where(), false).kind, store::Predicate::Kind::kTrue);
  EXPECT_EQ(push_down(*q->where(), true).kind, store::Predicate::Kind::kCompare);
}

TEST(Pushdown, FunctionsOfLiteralsFoldAndTheRestStaysInMemory) {
  // DATEADD(dd, -7, GETDATE()) is a literal by the time the provider sees it: the comparison goes to SQL.
  const auto recent = pushed("SourceDate > DATEADD(dd, -7, GETDATE())");
  ASSERT_EQ(recent.kind, store::Predicate::Kind::kCompare);
  EXPECT_EQ(recent.property, index_of("SourceDate"));
  EXPECT_EQ(recent.value.type().base, cim::CimType::kDateTime);
  EXPECT_EQ(pushed("DATEADD(dd, -7, GETDATE()) < SourceDate").op, store::Predicate::Op::kGt);
  // A function of a property is computed per row; its AND siblings still pre-filter.
  EXPECT_EQ(pushed("UPPER(Name) = 'OFFICE'").kind, store::Predicate::Kind::kTrue);
  const auto mixed = pushed("DATEDIFF(dd, SourceDate, GETDATE()) < 7 AND Priority = 2");
  ASSERT_EQ(mixed.kind, store::Predicate::Kind::kCompare);
  EXPECT_EQ(mixed.property, index_of("Priority"));
  EXPECT_EQ(pushed("LOWER(Name) LIKE 'off%' OR Priority = 2").kind, store::Predicate::Kind::kTrue);
  auto q = wql::compile("SELECT * FROM SMS_Package WHERE SUBSTRING(Name, 1, 3) = 'Off'", cim::ClassRegistry::builtin());
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(push_down_exact(*q->where(), true).has_value());
}

TEST(Pushdown, LikePatternsTranslate) {
  EXPECT_EQ(like_to_store_pattern("a%b_c"), "a%b_c");
  EXPECT_EQ(like_to_store_pattern("[abc]x"), "_x");
  EXPECT_EQ(like_to_store_pattern("[^a-f]%"), "_%");
  EXPECT_EQ(like_to_store_pattern("[]]x"), "_x");
  EXPECT_EQ(like_to_store_pattern("[%]"), "_");
  EXPECT_EQ(like_to_store_pattern("a\\b"), "a\\\\b");
  EXPECT_EQ(like_to_store_pattern("[\xC3\xA9]"), "_");
}

}  // namespace
}  // namespace pkgcast::provider
