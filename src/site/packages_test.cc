// Packages, programs and advertisements through the real store.
#include <gtest/gtest.h>

#include <fstream>

#include "site/test_fixture.h"

namespace pkgcast::site {
namespace {

class PackagesTest : public DomainTest {
 protected:
  std::optional<cim::Instance> row(std::string_view cls, std::vector<cim::Value> key) {
    auto r = store_->get(*store_->registry().find(cls), key);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::nullopt;
  }
  std::size_t count(std::string_view cls) {
    std::size_t n = 0;
    EXPECT_TRUE(store_
                    ->scan(*store_->registry().find(cls), store::Predicate::always(),
                           [&](cim::Instance&&) {
                             ++n;
                             return true;
                           })
                    .ok());
    return n;
  }
  cim::Instance make_package(std::string name = "Office") {
    PackageSpec spec;
    spec.name = std::move(name);
    auto pkg = domain_->create_package(spec);
    EXPECT_TRUE(pkg.ok()) << pkg.error().to_string();
    return *pkg;
  }
};

TEST_F(PackagesTest, CreatesAPackageWithItsSummaryRows) {
  PackageSpec spec;
  spec.name = "Office";
  spec.version = "16";
  spec.manufacturer = "Contoso";
  auto pkg = domain_->create_package(spec);
  ASSERT_TRUE(pkg.ok()) << pkg.error().to_string();
  EXPECT_EQ(str(*pkg, "PackageID"), "ABC00001");
  EXPECT_EQ(num(*pkg, "PkgSourceFlag"), 1u);
  EXPECT_EQ(num(*pkg, "SourceVersion"), 1u);
  EXPECT_EQ(num(*pkg, "Priority"), 2u);
  EXPECT_EQ(num(*pkg, "PkgFlags") & 0x04000000u, 0x04000000u);
  EXPECT_EQ(str(*pkg, "SourceSite"), "ABC");
  EXPECT_EQ(num(*pkg, "NumOfPrograms"), 0u);

  auto root = row("SMS_PackageStatusRootSummarizer", {cim::Value::string("ABC00001")});
  ASSERT_TRUE(root);
  EXPECT_EQ(str(*root, "Name"), "Office");
  EXPECT_EQ(num(*root, "Targeted"), 0u);
  EXPECT_EQ(num(*root, "Installed"), 0u);
  auto detail = row("SMS_PackageStatusDetailSummarizer", {cim::Value::string("ABC00001"), cim::Value::string("ABC")});
  ASSERT_TRUE(detail);
  EXPECT_EQ(str(*detail, "SiteName"), "Head office");
  auto extra = row("SMS_ObjectContentExtraInfo", {cim::Value::string("ABC00001")});
  ASSERT_TRUE(extra);
  EXPECT_EQ(str(*extra, "SoftwareName"), "Office");
}

TEST_F(PackagesTest, AllocatesIdsInHexSequence) {
  std::vector<std::string> ids;
  for (int i = 0; i < 11; ++i) ids.push_back(str(make_package("p" + std::to_string(i)), "PackageID"));
  EXPECT_EQ(ids[9], "ABC0000A");
  EXPECT_EQ(ids[10], "ABC0000B");
  // Deleting never frees a number.
  ASSERT_TRUE(domain_->delete_package("ABC0000B").ok());
  EXPECT_EQ(str(make_package(), "PackageID"), "ABC0000C");
}

TEST_F(PackagesTest, RefusesWhenTheIdSpaceIsExhausted) {
  ASSERT_TRUE(store_->execute([](store::WriteTxn& txn) { return txn.put_meta("ids/package/ABC", "1048574"); }).ok());
  EXPECT_EQ(str(make_package(), "PackageID"), "ABCFFFFF");
  PackageSpec spec;
  spec.name = "one too many";
  expect_refused(WbemCode::kQuotaViolation, [&] { return domain_->create_package(spec); });
}

TEST_F(PackagesTest, ConcurrentCreatesNeverCollide) {
  std::vector<std::thread> threads;
  std::vector<std::string> ids(40);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        PackageSpec spec;
        spec.name = "c";
        auto pkg = domain_->create_package(spec);
        ids[t * 10 + i] = pkg.ok() ? str(*pkg, "PackageID") : "error";
      }
    });
  }
  for (auto& th : threads) th.join();
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  EXPECT_EQ(ids.back(), "ABC00028");
}

TEST_F(PackagesTest, MeasuresTheSourceDirectory) {
  const auto src = dir_ / "src";
  std::filesystem::create_directories(src / "sub");
  std::ofstream(src / "a.bin") << std::string(3000, 'x');
  std::ofstream(src / "sub" / "b.bin") << std::string(2000, 'y');
  PackageSpec spec;
  spec.name = "With source";
  spec.source_path = src.string();
  auto pkg = domain_->create_package(spec);
  ASSERT_TRUE(pkg.ok()) << pkg.error().to_string();
  EXPECT_EQ(num(*pkg, "PkgSourceFlag"), 2u);
  EXPECT_EQ(num(*pkg, "PackageSize"), 5u);  // 5000 bytes, rounded up to KB
  EXPECT_EQ(str(*pkg, "PkgSourcePath"), src.string());
}

TEST_F(PackagesTest, RefusesBadPackagesAndChangesNothing) {
  PackageSpec spec;
  spec.name = "ok";
  spec.source_path = (dir_ / "not-here").string();
  expect_refused(
      WbemCode::kInvalidParameter, [&] { return domain_->create_package(spec); },
      "source directory '" + spec.source_path + "' does not exist");
  // Outside the source roots: refused without looking, whether it exists or not.
  for (const char* outside : {"/root", "/definitely/not/here", "/"}) {
    spec.source_path = outside;
    expect_refused(
        WbemCode::kAccessDenied, [&] { return domain_->create_package(spec); }, "not under an allowed source root");
  }
  spec.source_path = (dir_ / ".." / "..").string();
  expect_refused(
      WbemCode::kAccessDenied, [&] { return domain_->create_package(spec); }, dir_.string());
  std::filesystem::create_directory_symlink("/", dir_ / "escape");
  spec.source_path = (dir_ / "escape" / "etc").string();
  expect_refused(
      WbemCode::kAccessDenied, [&] { return domain_->create_package(spec); }, "source_roots");
  spec.source_path = "relative/path";
  expect_refused(
      WbemCode::kInvalidParameter, [&] { return domain_->create_package(spec); }, "absolute");
  std::ofstream(dir_ / "file") << "x";
  spec.source_path = (dir_ / "file").string();
  expect_refused(
      WbemCode::kInvalidParameter, [&] { return domain_->create_package(spec); }, "not a directory");
  spec.source_path.clear();
  spec.name = "";
  expect_refused(
      WbemCode::kInvalidParameter, [&] { return domain_->create_package(spec); }, "Name");
  spec.name = std::string(256, 'n');
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->create_package(spec); });
  spec.name = "ok";
  spec.priority = 7;
  expect_refused(
      WbemCode::kInvalidParameter, [&] { return domain_->create_package(spec); }, "Priority");
  spec.priority = 2;
  spec.version = "1\n";
  expect_refused(
      WbemCode::kInvalidParameter, [&] { return domain_->create_package(spec); }, "Version");
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->get_package("'; DROP TABLE x"); });
  expect_refused(WbemCode::kNotFound, [&] { return domain_->get_package("ABC00099"); });
  expect_refused(WbemCode::kNotFound, [&] { return domain_->delete_package("ABC00099"); });
  EXPECT_EQ(count("SMS_Package"), 0u);
}

TEST_F(PackagesTest, UpdatesNameEverywhere) {
  make_package("Old");
  PackageUpdate u;
  u.name = "New";
  u.priority = 1;
  auto pkg = domain_->update_package("abc00001", u);
  ASSERT_TRUE(pkg.ok()) << pkg.error().to_string();
  EXPECT_EQ(str(*pkg, "Name"), "New");
  EXPECT_EQ(num(*pkg, "Priority"), 1u);
  EXPECT_EQ(str(*row("SMS_PackageStatusRootSummarizer", {cim::Value::string("ABC00001")}), "Name"), "New");
  EXPECT_EQ(str(*row("SMS_ObjectContentExtraInfo", {cim::Value::string("ABC00001")}), "SoftwareName"), "New");
  PackageUpdate bad;
  bad.priority = 0;
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->update_package("ABC00001", bad); });
}

TEST_F(PackagesTest, ProgramsKeepNumOfPrograms) {
  make_package();
  auto p1 = domain_->create_program({"abc00001", "Install", "setup.exe /q", "", "", 0, 0, ""});
  ASSERT_TRUE(p1.ok()) << p1.error().to_string();
  ASSERT_TRUE(domain_->create_program({"ABC00001", "Uninstall", "setup.exe /x", "", "", 0, 0, ""}).ok());
  EXPECT_EQ(num(*domain_->get_package("ABC00001"), "NumOfPrograms"), 2u);
  expect_refused(WbemCode::kAlreadyExists, [&] {
    return domain_->create_program({"ABC00001", "INSTALL", "x", "", "", 0, 0, ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_program({"ABC00001", "x", "", "", "", 0, 0, ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_program({"ABC00001", std::string(101, 'p'), "x", "", "", 0, 0, ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_program({"ABC00001", "p", std::string(1025, 'c'), "", "", 0, 0, ""});
  });
  expect_refused(WbemCode::kNotFound, [&] {
    return domain_->create_program({"ABC00002", "p", "x", "", "", 0, 0, ""});
  });
  auto list = domain_->list_programs("ABC00001");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  ASSERT_TRUE(domain_->delete_program("ABC00001", "uninstall").ok());
  EXPECT_EQ(num(*domain_->get_package("ABC00001"), "NumOfPrograms"), 1u);
  expect_refused(WbemCode::kNotFound, [&] { return domain_->delete_program("ABC00001", "uninstall"); });
}

TEST_F(PackagesTest, AdvertisementsAreOfferedAtOnceWithoutSource) {
  make_package();
  ASSERT_TRUE(domain_->create_site({"XY1", "Branch", SiteType::kSecondary, "ABC", "server2"}).ok());
  ASSERT_TRUE(domain_->create_program({"ABC00001", "Install", "setup", "", "", 0, 0, ""}).ok());
  AdvertisementSpec spec;
  spec.package_id = "ABC00001";
  spec.program_name = "install";
  spec.collection_id = "SMS00001";
  auto ad = domain_->create_advertisement(spec);
  ASSERT_TRUE(ad.ok()) << ad.error().to_string();
  EXPECT_EQ(str(*ad, "AdvertisementID"), "ABC00001");
  EXPECT_EQ(str(*ad, "ProgramName"), "Install");
  EXPECT_EQ(num(*ad, "OfferType"), 2u);
  EXPECT_EQ(str(*ad, "AdvertisementName"), "Office - Install");
  // Offered at every site of the hierarchy, that of the package and the others, and at a site created later:
  // there is no content to wait for anywhere.
  ASSERT_TRUE(domain_->create_site({"XY2", "Branch 2", SiteType::kSecondary, "ABC", "server3"}).ok());
  for (const char* site : {"abc", "XY1", "xy2"}) {
    auto offers = domain_->list_offers(site);
    ASSERT_TRUE(offers.ok()) << site;
    ASSERT_EQ(offers->size(), 1u) << site;
    EXPECT_TRUE(offers->front().offered) << site;
    EXPECT_TRUE(offers->front().offered_time.has_value()) << site;
  }

  // The package is advertised now: it cannot go, nor can its program.
  expect_refused(
      WbemCode::kInvalidOperation, [&] { return domain_->delete_package("ABC00001"); },
      "package ABC00001 is advertised by ABC00001");
  expect_refused(WbemCode::kInvalidOperation, [&] { return domain_->delete_program("ABC00001", "Install"); });
}

TEST_F(PackagesTest, AdvertisementsWaitForContentWhenThereIsSource) {
  const auto src = dir_ / "src";
  std::filesystem::create_directories(src);
  PackageSpec pspec;
  pspec.name = "Sourced";
  pspec.source_path = src.string();
  ASSERT_TRUE(domain_->create_package(pspec).ok());
  ASSERT_TRUE(domain_->create_program({"ABC00001", "Install", "setup", "", "", 0, 0, ""}).ok());
  AdvertisementSpec spec{"ABC00001", "Install", "SMS00001", "", std::nullopt, std::nullopt, 2, 0, ""};
  ASSERT_TRUE(domain_->create_advertisement(spec).ok());
  auto offers = domain_->list_offers("ABC");
  ASSERT_TRUE(offers.ok());
  ASSERT_EQ(offers->size(), 1u);
  EXPECT_FALSE(offers->front().offered);
  EXPECT_FALSE(offers->front().offered_time.has_value());
  auto unknown = domain_->list_offers("ZZZ");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, WbemCode::kNotFound);
}

TEST_F(PackagesTest, RefusesBadAdvertisementsAndChangesNothing) {
  make_package();
  ASSERT_TRUE(domain_->create_program({"ABC00001", "Install", "setup", "", "", 0, 0, ""}).ok());
  AdvertisementSpec spec{"ABC00001", "Install", "SMS00001", "", std::nullopt, std::nullopt, 2, 0, ""};
  auto with = [&](auto change) {
    AdvertisementSpec s = spec;
    change(s);
    return [this, s] { return domain_->create_advertisement(s); };
  };
  expect_refused(WbemCode::kNotFound, with([](auto& s) { s.package_id = "ABC00002"; }));
  expect_refused(WbemCode::kNotFound, with([](auto& s) { s.program_name = "Nope"; }));
  expect_refused(WbemCode::kInvalidParameter, with([](auto& s) { s.collection_id = ""; }));
  expect_refused(WbemCode::kInvalidParameter, with([](auto& s) { s.collection_id = "SMS'; DROP"; }));
  expect_refused(WbemCode::kInvalidParameter, with([](auto& s) { s.offer_type = 1; }));
  expect_refused(WbemCode::kInvalidParameter, with([](auto& s) {
                   s.present_time = cim::DateTime::from_unix_micros(2'000'000'000'000'000);
                   s.expiration_time = cim::DateTime::from_unix_micros(1'000'000'000'000'000);
                 }));
  EXPECT_EQ(count("SMS_Advertisement"), 0u);
  EXPECT_EQ(count("PKG_AdvertisementOffer"), 0u);
}

TEST_F(PackagesTest, DeletingAPackageRemovesEveryRowThatNamesIt) {
  make_package();
  ASSERT_TRUE(domain_->create_program({"ABC00001", "Install", "setup", "", "", 0, 0, ""}).ok());
  auto deleted = domain_->delete_package("abc00001");
  ASSERT_TRUE(deleted.ok()) << deleted.error().to_string();
  for (const char* cls : {"SMS_Package", "SMS_Program", "SMS_PackageStatusRootSummarizer",
                          "SMS_PackageStatusDetailSummarizer", "SMS_ObjectContentExtraInfo"}) {
    EXPECT_EQ(count(cls), 0u) << cls;
  }
}

}  // namespace
}  // namespace pkgcast::site
