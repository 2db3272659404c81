// The rows the domain derives from others, on both backends: SMS_SystemResourceList (one per site system role) and
// SMS_DPGroupContentInfo (which package is assigned to which DP group), created and removed in the commands that
// cause them and journaled; and a database made by the previous schema (main as of this change) migrating to them.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "distmgr/distmgr.h"
#include "site/site.h"
#include "site/test_fixture.h"  // str, num
#include "store/store_test_util.h"
#include "summarizer/summarizer.h"

namespace pkgcast::distmgr {
namespace {

using site::num;
using site::str;

constexpr Micros kStart = 1'800'000'000'000'000;


Targets groups(std::vector<std::string> names) {
  Targets t;
  t.groups = std::move(names);
  return t;
}

class DerivedRowsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string skip, error;
    db_ = store::testing::TestDatabase::create(GetParam(), skip, error);
    if (!skip.empty()) GTEST_SKIP() << skip;
    ASSERT_TRUE(db_) << error;
  }
  void TearDown() override {
    dm_.reset();
    domain_.reset();
    if (store_) store_->close();
    store_.reset();
    db_.reset();
  }

  void open(const cim::ClassRegistry* registry = &cim::ClassRegistry::builtin()) {
    dm_.reset();
    domain_.reset();
    if (store_) store_->close();
    store::OpenOptions options;
    options.url = db_->url();
    options.clock = &clock_;
    options.registry = registry;
    auto opened = store::Store::open(options);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    store_ = std::move(*opened);
    if (registry != &cim::ClassRegistry::builtin()) return;
    domain_ = std::make_unique<site::Domain>(*store_, "ABC", "server1");
    DistOptions o;
    o.clock = &clock_;
    dm_ = std::make_unique<DistributionManager>(*store_, *domain_, o);
  }

  // A site with two DPs (dp2 serving HTTPS).
  void populate() {
    ASSERT_TRUE(domain_->create_site({"ABC", "Head office", site::SiteType::kPrimary, "", "server1"}).ok());
    for (auto [name, url] : {std::pair{"dp1", "http://dp1:8751"}, {"dp2", "https://dp2:8751"}}) {
      site::DpSpec spec;
      spec.name = name;
      spec.site_code = "ABC";
      spec.url = url;
      ASSERT_TRUE(domain_->create_dp(spec).ok());
    }
  }

  // A package made without a source directory, then given source files and their recorded content, as a source
  // ingest would (distribution itself is tested in distmgr_test).
  std::string distributable_package(const std::string& name) {
    site::PackageSpec spec;
    spec.name = name;
    spec.description = "the " + name;
    auto pkg = domain_->create_package(spec);
    EXPECT_TRUE(pkg.ok()) << pkg.error().to_string();
    if (!pkg.ok()) return {};
    cim::Instance row = *pkg;
    EXPECT_TRUE(row.set("PkgSourceFlag", cim::Value::uint32(2)).ok());
    EXPECT_TRUE(row.set("PackageSize", cim::Value::uint32(42)).ok());
    // Version 1's content, as an ingest records it (the content library itself is not this layer's).
    const site::SourceContent content{std::string(64, 'a'), 42 * 1024, 21 * 1024, kStart};
    EXPECT_TRUE(store_
                    ->execute([&](store::WriteTxn& txn) -> Status {
                      PKG_TRY(site::record_content(txn, str(row, "PackageID"), 1, content));
                      return txn.put(row);
                    })
                    .ok());
    return str(row, "PackageID");
  }

  std::vector<cim::Instance> rows(std::string_view cls) {
    std::vector<cim::Instance> out;
    EXPECT_TRUE(store_
                    ->scan(*store_->registry().find(cls), store::Predicate::always(),
                           [&](cim::Instance&& i) {
                             out.push_back(std::move(i));
                             return true;
                           })
                    .ok());
    return out;
  }
  std::set<std::string> role_keys() {
    std::set<std::string> out;
    for (const auto& r : rows("SMS_SystemResourceList")) {
      out.insert(str(r, "RoleName") + "@" + str(r, "ServerName") + "/" + str(r, "SiteCode") + "/" +
                 str(r, "ResourceType") + "/" + std::to_string(num(r, "SslState")));
    }
    return out;
  }
  // "kind class" of each journal entry after `after`, for the classes named.
  std::vector<std::string> journaled(std::uint64_t after, std::string_view cls) {
    std::vector<std::string> out;
    EXPECT_TRUE(store_
                    ->read_journal(after, 100000,
                                   [&](store::JournalEntry&& e) {
                                     if (e.class_name == cls) {
                                       out.push_back(std::to_string(static_cast<int>(e.kind)) + " " + e.key);
                                     }
                                     return true;
                                   })
                    .ok());
    return out;
  }
  std::uint64_t revision() { return *store_->last_revision(); }
  cim::Instance group(const std::string& id) {
    auto g = domain_->get_group(id);
    EXPECT_TRUE(g.ok());
    return g.ok() ? *g : cim::Instance(*store_->registry().find("SMS_DistributionPointGroup"));
  }

  ManualClock clock_{kStart};
  std::unique_ptr<store::testing::TestDatabase> db_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<site::Domain> domain_;
  std::unique_ptr<DistributionManager> dm_;
};

TEST_P(DerivedRowsTest, SystemResourceListFollowsSitesAndDps) {
  open();
  populate();
  EXPECT_EQ(role_keys(),
            (std::set<std::string>{
                "SMS Distribution Point@dp1/ABC/Windows NT Server/0",
                "SMS Distribution Point@dp2/ABC/Windows NT Server/1", "SMS Provider@server1/ABC/Windows NT Server/2",
                "SMS Site Server@server1/ABC/Windows NT Server/2", "SMS Site System@dp1/ABC/Windows NT Server/2",
                "SMS Site System@dp2/ABC/Windows NT Server/2", "SMS Site System@server1/ABC/Windows NT Server/2"}));
  for (const auto& r : rows("SMS_SystemResourceList")) {
    if (str(r, "RoleName") == "SMS Distribution Point" && str(r, "ServerName") == "dp1") {
      EXPECT_EQ(str(r, "NALPath"), site::dp_nal_path("dp1", "ABC"));
      EXPECT_EQ(str(r, "ServerRemoteName"), "dp1");
      EXPECT_EQ(str(r, "InternetEnabled"), "FALSE");
    }
  }
  const std::uint64_t before = revision();
  ASSERT_TRUE(domain_->remove_dp("DP2").ok());
  EXPECT_EQ(role_keys().count("SMS Distribution Point@dp2/ABC/Windows NT Server/1"), 0u);
  EXPECT_EQ(role_keys().count("SMS Site System@dp2/ABC/Windows NT Server/2"), 0u);
  EXPECT_EQ(role_keys().size(), 5u);
  const auto entries = journaled(before, "SMS_SystemResourceList");
  ASSERT_EQ(entries.size(), 2u);
  for (const auto& e : entries) {
    EXPECT_EQ(e.substr(0, 2), std::to_string(static_cast<int>(store::ChangeKind::kDeleted)) + " ");
  }

  // admin check: every DP has its role row; one that went missing is reported.
  auto clean = summarizer::check(*store_);
  ASSERT_TRUE(clean.ok()) << clean.error().to_string();
  EXPECT_TRUE(clean->empty()) << clean->front().to_string();
  const cim::ClassDef& roles = *store_->registry().find("SMS_SystemResourceList");
  ASSERT_TRUE(store_
                  ->execute([&](store::WriteTxn& txn) {
                    return txn.remove(roles, {cim::Value::string(site::dp_nal_path("dp1", "ABC")),
                                              cim::Value::string("Windows NT Server"),
                                              cim::Value::string("SMS Distribution Point"), cim::Value::string("ABC")});
                  })
                  .ok());
  auto found = summarizer::check(*store_);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().class_name, "SMS_SystemResourceList");
  EXPECT_EQ(found->front().expected, "present");

  // A refused DP (its site does not exist) leaves no role row behind.
  site::DpSpec bad;
  bad.name = "dp9";
  bad.site_code = "QQQ";
  EXPECT_FALSE(domain_->create_dp(bad).ok());
  EXPECT_EQ(role_keys().size(), 4u);

  // A DP on the site server's host shares its site system row, which stays when the DP goes.
  site::DpSpec on_server;
  on_server.name = "server1";
  on_server.site_code = "ABC";
  ASSERT_TRUE(domain_->create_dp(on_server).ok());
  EXPECT_EQ(role_keys().size(), 5u);
  ASSERT_TRUE(domain_->remove_dp("server1").ok());
  EXPECT_EQ(role_keys().size(), 4u);
  EXPECT_EQ(role_keys().count("SMS Site System@server1/ABC/Windows NT Server/2"), 1u);
}

TEST_P(DerivedRowsTest, GroupContentFollowsDistributionAndThePackage) {
  open();
  populate();
  auto g = domain_->create_group({"West", ""});
  ASSERT_TRUE(g.ok());
  const std::string gid = str(*g, "GroupID");
  ASSERT_TRUE(domain_->add_group_members(gid, {"dp1", "dp2"}).ok());
  EXPECT_EQ(num(group(gid), "MemberCount"), 2u);
  EXPECT_EQ(str(group(gid), "HasMember"), "TRUE");
  EXPECT_EQ(num(domain_->get_dp("dp1")->dp, "GroupCount"), 1u);
  const std::string pkg = distributable_package("App");

  // An unknown group refuses the whole distribution: no assignment, no target.
  const std::uint64_t before_refusal = revision();
  EXPECT_EQ(dm_->distribute(pkg, groups({"West", "Nowhere"})).error().code, WbemCode::kNotFound);
  EXPECT_EQ(revision(), before_refusal);
  EXPECT_TRUE(rows("SMS_DPGroupContentInfo").empty());

  const std::uint64_t before = revision();
  auto targets = dm_->distribute(pkg, groups({"west"}));
  ASSERT_TRUE(targets.ok()) << targets.error().to_string();
  EXPECT_EQ(targets->size(), 2u);
  auto content = rows("SMS_DPGroupContentInfo");
  ASSERT_EQ(content.size(), 1u);
  EXPECT_EQ(str(content[0], "GroupID"), gid);
  EXPECT_EQ(str(content[0], "PackageID"), pkg);
  EXPECT_EQ(str(content[0], "ObjectID"), pkg);
  EXPECT_EQ(str(content[0], "Name"), "App");
  EXPECT_EQ(str(content[0], "Description"), "the App");
  EXPECT_EQ(num(content[0], "SourceSize"), 42u);
  EXPECT_EQ(num(content[0], "ObjectTypeID"), 2u);
  EXPECT_EQ(num(group(gid), "ContentCount"), 1u);
  EXPECT_EQ(journaled(before, "SMS_DPGroupContentInfo").size(), 1u);

  auto clean = summarizer::check(*store_);
  ASSERT_TRUE(clean.ok()) << clean.error().to_string();
  EXPECT_TRUE(clean->empty()) << clean->front().to_string();

  // Again: the assignment exists already, nothing about the group changes.
  const std::uint64_t again = revision();
  ASSERT_TRUE(dm_->distribute(pkg, groups({gid})).ok());
  EXPECT_EQ(revision(), again);

  // The row repeats the package: a rename follows in the same command.
  site::PackageUpdate rename;
  rename.name = "App 2";
  ASSERT_TRUE(domain_->update_package(pkg, rename).ok());
  EXPECT_EQ(str(rows("SMS_DPGroupContentInfo")[0], "Name"), "App 2");

  // Deleting the package takes its assignment and the group's count with it.
  const std::uint64_t before_delete = revision();
  ASSERT_TRUE(domain_->delete_package(pkg).ok());
  EXPECT_TRUE(rows("SMS_DPGroupContentInfo").empty());
  EXPECT_EQ(num(group(gid), "ContentCount"), 0u);
  const auto deleted = journaled(before_delete, "SMS_DPGroupContentInfo");
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_EQ(deleted[0].substr(0, 2), std::to_string(static_cast<int>(store::ChangeKind::kDeleted)) + " ");

  // Leaving the group lowers the DP's GroupCount.
  ASSERT_TRUE(domain_->remove_group_members(gid, {"dp1"}).ok());
  EXPECT_EQ(num(domain_->get_dp("dp1")->dp, "GroupCount"), 0u);
  EXPECT_EQ(num(domain_->get_dp("dp2")->dp, "GroupCount"), 1u);
}

// The properties each class had in the previous schema (main at the time of this change, src/cim/classes.cc);
// classes not listed kept all of theirs, and SMS_DPGroupContentInfo and SMS_SystemResourceList did not exist.
const std::map<std::string, std::set<std::string>>& previous_properties() {
  static const std::map<std::string, std::set<std::string>> m{
      {"SMS_Site", {"SiteCode", "SiteName", "Type", "ReportingSiteCode", "ServerName", "Status", "Version"}},
      {"SMS_DistributionPointInfo",
       {"NALPath", "Name", "ServerName", "SiteCode", "SiteName", "Description", "IsPullDP", "SourceDPs",
        "TransferRate", "LastContactTime", "TransferWindow"}},
      {"SMS_DistributionPointGroup", {"GroupID", "Name", "Description", "MemberCount", "ContentCount"}},
      {"SMS_Package",
       {"PackageID", "Name", "Version", "Language", "Manufacturer", "Description", "PkgSourcePath", "PkgSourceFlag",
        "PackageType", "PackageSize", "SourceVersion", "SourceDate", "SourceSite", "Priority", "PkgFlags",
        "LastRefreshTime", "ActionInProgress", "NumOfPrograms"}},
      {"SMS_Program",
       {"PackageID", "ProgramName", "CommandLine", "WorkingDirectory", "Comment", "ProgramFlags", "Duration",
        "DiskSpaceReq"}},
      {"SMS_Advertisement",
       {"AdvertisementID", "AdvertisementName", "CollectionID", "PackageID", "ProgramName", "PresentTime",
        "ExpirationTime", "ExpirationTimeEnabled", "OfferType", "AdvertFlags", "SourceSite", "Comment"}},
      {"SMS_DistributionPoint",
       {"PackageID", "ServerNALPath", "SiteCode", "SiteName", "SourceSite", "Status", "LastRefreshTime",
        "RefreshNow"}},
      {"SMS_PackageStatusDistPointsSummarizer",
       {"PackageID", "ServerNALPath", "SiteCode", "SourceNALPath", "SourceVersion", "State", "LastCopied",
        "SummaryDate", "PackageType", "InstallStatus"}},
      {"SMS_ObjectContentExtraInfo",
       {"ObjectID", "PackageID", "SoftwareName", "SourceSite", "SourceSize", "SourceVersion", "Targeted",
        "NumberSuccess", "NumberInProgress", "NumberErrors", "NumberUnknown", "LastUpdateDate"}},
      {"SMS_DistributionDPStatus",
       {"ID", "PackageID", "NALPath", "Name", "SiteCode", "MessageID", "MessageState", "MessageSeverity",
        "InsStrings", "LastUpdateDate"}},
      {"SMS_DPStatusInfo",
       {"NALPath", "Name", "SiteCode", "IsPullDP", "NumberInstalled", "NumberInProgress", "NumberErrors",
        "NumberUnknown", "MessageState", "LastStatusTime"}},
  };
  return m;
}

// The previous schema's registry: the builtin classes cut down to what they had then.
cim::ClassRegistry previous_registry() {
  std::vector<cim::ClassSpec> specs;
  for (const cim::ClassDef* cls : cim::ClassRegistry::builtin().all()) {
    if (cls->name() == "SMS_DPGroupContentInfo" || cls->name() == "SMS_SystemResourceList") continue;
    // SMS_PackageBaseclass came later: SMS_Package then derived from SMS_BaseClass and declared its properties.
    if (cls->name() == "SMS_PackageBaseclass") continue;
    const cim::ClassDef* super = cls->superclass();
    if (super != nullptr && super->name() == "SMS_PackageBaseclass") super = super->superclass();
    cim::ClassSpec spec{cls->name(), super ? super->name() : "", {}, cls->abstract(), cls->description()};
    const std::size_t inherited = super ? super->properties().size() : 0;
    const auto listed = previous_properties().find(cls->name());
    for (std::size_t i = inherited; i < cls->properties().size(); ++i) {
      cim::PropertyDef p = cls->property(i);
      if (listed != previous_properties().end() && listed->second.count(p.name) == 0) continue;
      p.default_value = {};  // the previous schema had no defaults
      p.at_default = false;
      p.lazy = false;
      spec.properties.push_back(std::move(p));
    }
    specs.push_back(std::move(spec));
  }
  return std::move(cim::ClassRegistry::build(specs)).value();
}

TEST_P(DerivedRowsTest, ADatabaseOfThePreviousSchemaMigrates) {
  const cim::ClassRegistry old = previous_registry();
  open(&old);
  // Rows as the previous pkgcast wrote them: a site, a DP in a group, a package with a program.
  const auto row = [&](std::string_view cls, std::vector<std::pair<std::string, cim::Value>> values) {
    cim::Instance i(*old.find(cls));
    for (auto& [name, v] : values) EXPECT_TRUE(i.set(name, std::move(v)).ok()) << name;
    return i;
  };
  const std::string nal = site::dp_nal_path("dp1", "ABC");
  ASSERT_TRUE(store_
                  ->execute([&](store::WriteTxn& txn) -> Status {
                    PKG_TRY(txn.insert(row("SMS_Site", {{"SiteCode", cim::Value::string("ABC")},
                                                        {"SiteName", cim::Value::string("Head office")},
                                                        {"Type", cim::Value::uint32(2)},
                                                        {"ServerName", cim::Value::string("server1")}})));
                    PKG_TRY(txn.insert(row("SMS_DistributionPointInfo",
                                           {{"NALPath", cim::Value::string(nal)},
                                            {"Name", cim::Value::string("dp1")},
                                            {"SiteCode", cim::Value::string("ABC")},
                                            {"TransferRate", cim::Value::uint32(100)}})));
                    PKG_TRY(txn.put_meta("dp/dp1", R"({"url":"https://dp1:8751"})"));
                    PKG_TRY(txn.insert(row("SMS_DistributionPointGroup",
                                           {{"GroupID", cim::Value::string("{G}")},
                                            {"Name", cim::Value::string("West")},
                                            {"MemberCount", cim::Value::uint32(1)},
                                            {"ContentCount", cim::Value::uint32(0)}})));
                    PKG_TRY(txn.put_meta("group/{G}", R"(["dp1"])"));
                    PKG_TRY(txn.insert(row("SMS_Package", {{"PackageID", cim::Value::string("ABC00001")},
                                                           {"Name", cim::Value::string("App")},
                                                           {"Version", cim::Value::string("1.0")},
                                                           {"PkgSourceFlag", cim::Value::uint32(1)},
                                                           {"PackageType", cim::Value::uint32(0)}})));
                    PKG_TRY(txn.insert(row("SMS_Program", {{"PackageID", cim::Value::string("ABC00001")},
                                                           {"ProgramName", cim::Value::string("Install")}})));
                    // An advertisement of that package without source files, offered at its own site only.
                    PKG_TRY(txn.insert(row("SMS_Advertisement", {{"AdvertisementID", cim::Value::string("ABC00001")},
                                                                 {"PackageID", cim::Value::string("ABC00001")},
                                                                 {"ProgramName", cim::Value::string("Install")}})));
                    return txn.insert(
                        row("PKG_AdvertisementOffer", {{"AdvertisementID", cim::Value::string("ABC00001")},
                                                       {"SiteCode", cim::Value::string("ABC")},
                                                       {"PackageID", cim::Value::string("ABC00001")},
                                                       {"Offered", cim::Value::boolean(true)}}));
                  })
                  .ok());

  open();
  // The new columns hold their defaults on the old rows.
  auto pkg = domain_->get_package("ABC00001");
  ASSERT_TRUE(pkg.ok()) << pkg.error().to_string();
  EXPECT_EQ(str(*pkg, "ShareType"), "1");
  EXPECT_EQ(str(*pkg, "ObjectPath"), "/");
  EXPECT_EQ(str(*pkg, "MIFName"), "");
  EXPECT_TRUE(pkg->find("Icon")->is_null());
  EXPECT_EQ(str(domain_->get_dp("dp1")->dp, "ResourceType"), "Windows NT Server");
  EXPECT_EQ(str(domain_->get_dp("dp1")->dp, "IsActive"), "TRUE");

  // The derived values and rows come from the upgrade, journaled, once.
  const std::uint64_t before = revision();
  auto ran = domain_->upgrade_rows();
  ASSERT_TRUE(ran.ok()) << ran.error().to_string();
  EXPECT_TRUE(*ran);
  auto programs = domain_->list_programs("ABC00001");
  ASSERT_TRUE(programs.ok());
  ASSERT_EQ(programs->size(), 1u);
  EXPECT_EQ(str((*programs)[0], "PackageName"), "App");
  EXPECT_EQ(str((*programs)[0], "PackageVersion"), "1.0");
  const auto dp = domain_->get_dp("dp1")->dp;
  EXPECT_EQ(num(dp, "GroupCount"), 1u);
  EXPECT_EQ(str(dp, "RateLimitsEnabled"), "TRUE");
  EXPECT_EQ(str(group("{G}"), "HasMember"), "TRUE");
  EXPECT_EQ(str(group("{G}"), "SourceSite"), "ABC");
  EXPECT_EQ(role_keys(),
            (std::set<std::string>{
                "SMS Distribution Point@dp1/ABC/Windows NT Server/1", "SMS Provider@server1/ABC/Windows NT Server/2",
                "SMS Site Server@server1/ABC/Windows NT Server/2", "SMS Site System@dp1/ABC/Windows NT Server/2",
                "SMS Site System@server1/ABC/Windows NT Server/2"}));
  EXPECT_EQ(journaled(before, "SMS_SystemResourceList").size(), 5u);
  EXPECT_EQ(journaled(before, "SMS_Program").size(), 1u);
  EXPECT_EQ(journaled(before, "PKG_AdvertisementOffer").size(), 0u);  // offered at its one site already

  // A site created since is offered the advertisement at once, and an upgrade of a database whose sites lack the
  // offer rows gives them theirs.
  ASSERT_TRUE(domain_->create_site({"XYZ", "Branch", site::SiteType::kSecondary, "ABC", "server2"}).ok());
  auto offers = domain_->list_offers("XYZ");
  ASSERT_TRUE(offers.ok()) << offers.error().to_string();
  ASSERT_EQ(offers->size(), 1u);
  EXPECT_TRUE(offers->front().offered);
  ASSERT_TRUE(store_
                  ->execute([&](store::WriteTxn& txn) -> Status {
                    PKG_TRY(txn.remove(*store_->registry().find("PKG_AdvertisementOffer"),
                                       {cim::Value::string("ABC00001"), cim::Value::string("XYZ")}));
                    return txn.put_meta("site/upgrade_level", "2");
                  })
                  .ok());
  ran = domain_->upgrade_rows();
  ASSERT_TRUE(ran.ok() && *ran);
  offers = domain_->list_offers("XYZ");
  ASSERT_TRUE(offers.ok());
  ASSERT_EQ(offers->size(), 1u);
  EXPECT_TRUE(offers->front().offered);

  const std::uint64_t after = revision();
  ran = domain_->upgrade_rows();
  ASSERT_TRUE(ran.ok());
  EXPECT_FALSE(*ran);
  EXPECT_EQ(revision(), after);
}

INSTANTIATE_TEST_SUITE_P(Backends, DerivedRowsTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace pkgcast::distmgr
