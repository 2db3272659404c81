#include "summarizer/test_fixture.h"

#include "summarizer/internal.h"

namespace pkgcast::summarizer::testing {

using namespace internal;

namespace {

const cim::ClassDef& cls(std::string_view name) {
  return *cim::ClassRegistry::builtin().find(name);
}

std::string counts_text(const std::optional<cim::Instance>& row, std::initializer_list<const char*> names) {
  if (!row) return "absent";
  std::string out;
  for (const char* n : names) out += (out.empty() ? "" : "/") + std::to_string(get_uint(*row, n));
  return out;
}

}  // namespace

std::string nal_of(const std::string& dp_name, const std::string& site) {
  return "[\"Display=\\\\" + dp_name + "\\\"]MSWNET:[\"SMS_SITE=" + site + "\"]\\\\" + dp_name + "\\";
}

Status put_site(store::WriteTxn& txn, const std::string& code, const std::string& name) {
  cim::Instance s(cls("SMS_Site"));
  set_prop(s, "SiteCode", str_value(code));
  set_prop(s, "SiteName", str_value(name));
  set_prop(s, "Type", u32_value(2));
  return txn.insert(s);
}

Status put_dp(store::WriteTxn& txn, const std::string& dp_name, const std::string& site) {
  cim::Instance dp(cls("SMS_DistributionPointInfo"));
  set_prop(dp, "NALPath", str_value(nal_of(dp_name, site)));
  set_prop(dp, "Name", str_value(dp_name));
  set_prop(dp, "SiteCode", str_value(site));
  PKG_TRY(txn.insert(dp));
  cim::Instance status(cls("SMS_DPStatusInfo"));
  set_prop(status, "NALPath", str_value(nal_of(dp_name, site)));
  set_prop(status, "Name", str_value(dp_name));
  set_prop(status, "SiteCode", str_value(site));
  set_prop(status, "IsPullDP", cim::Value::boolean(false));
  for (const char* n : {"NumberInstalled", "NumberInProgress", "NumberErrors", "NumberUnknown"}) {
    set_prop(status, n, u32_value(0));
  }
  set_prop(status, "MessageState", u32_value(1));
  PKG_TRY(txn.insert(status));
  cim::Instance role(cls("SMS_SystemResourceList"));
  set_prop(role, "NALPath", str_value(nal_of(dp_name, site)));
  set_prop(role, "ResourceType", str_value("Windows NT Server"));
  set_prop(role, "RoleName", str_value("SMS Distribution Point"));
  set_prop(role, "SiteCode", str_value(site));
  PKG_TRY(txn.insert(role));
  set_prop(role, "RoleName", str_value("SMS Site System"));
  return txn.insert(role);
}

Status put_package(store::WriteTxn& txn, const std::string& id, const std::string& site, bool has_source, Micros now) {
  cim::Instance pkg(cls("SMS_Package"));
  set_prop(pkg, "PackageID", str_value(id));
  set_prop(pkg, "Name", str_value("Package " + id));
  set_prop(pkg, "PkgSourceFlag", u32_value(has_source ? 2 : 1));
  set_prop(pkg, "PackageType", u32_value(0));
  set_prop(pkg, "SourceVersion", u32_value(1));
  set_prop(pkg, "SourceSite", str_value(site));
  PKG_TRY(txn.insert(pkg));
  cim::Instance root(cls("SMS_PackageStatusRootSummarizer"));
  set_prop(root, "PackageID", str_value(id));
  set_prop(root, "Name", str_value("Package " + id));
  set_prop(root, "SourceSite", str_value(site));
  set_prop(root, "SourceVersion", u32_value(1));
  set_prop(root, "SourceDate", time_value(now));
  for (const char* n : {"Targeted", "Installed", "Retrying", "Failed"}) set_prop(root, n, u32_value(0));
  PKG_TRY(txn.insert(root));
  cim::Instance detail(cls("SMS_PackageStatusDetailSummarizer"));
  set_prop(detail, "PackageID", str_value(id));
  set_prop(detail, "SiteCode", str_value(site));
  set_prop(detail, "Name", str_value("Package " + id));
  set_prop(detail, "SourceVersion", u32_value(1));
  set_prop(detail, "SummaryDate", time_value(now));
  for (const char* n : {"Targeted", "Installed", "Retrying", "Failed"}) set_prop(detail, n, u32_value(0));
  PKG_TRY(txn.insert(detail));
  cim::Instance extra(cls("SMS_ObjectContentExtraInfo"));
  set_prop(extra, "ObjectID", str_value(id));
  set_prop(extra, "PackageID", str_value(id));
  set_prop(extra, "SourceVersion", u32_value(1));
  for (const char* n : {"Targeted", "NumberSuccess", "NumberInProgress", "NumberErrors", "NumberUnknown"}) {
    set_prop(extra, n, u32_value(0));
  }
  return txn.insert(extra);
}

Status put_package_version(store::WriteTxn& txn, const std::string& id, std::uint32_t version) {
  PKG_ASSIGN_OR_RETURN(auto pkg, txn.get(cls("SMS_Package"), {str_value(id)}));
  if (!pkg) return make_error(WbemCode::kNotFound, "package " + id);
  set_prop(*pkg, "SourceVersion", u32_value(version));
  return txn.put(*pkg);
}

Status put_advertisement(store::WriteTxn& txn, const std::string& ad_id, const std::string& package_id, Micros now) {
  cim::Instance ad(cls("SMS_Advertisement"));
  set_prop(ad, "AdvertisementID", str_value(ad_id));
  set_prop(ad, "PackageID", str_value(package_id));
  set_prop(ad, "ProgramName", str_value("install"));
  PKG_TRY(txn.insert(ad));
  PKG_ASSIGN_OR_RETURN(auto pkg, txn.get(cls("SMS_Package"), {str_value(package_id)}));
  auto insert_offer = [&](const std::string& site, bool is) {
    cim::Instance o(cls("PKG_AdvertisementOffer"));
    set_prop(o, "AdvertisementID", str_value(ad_id));
    set_prop(o, "SiteCode", str_value(site));
    set_prop(o, "PackageID", str_value(package_id));
    set_prop(o, "Offered", cim::Value::boolean(is));
    if (is) set_prop(o, "OfferedTime", time_value(now));
    return txn.insert(o);
  };
  // As site/advertisements.cc: without source files, offered at every site; with them, per Detail row.
  if (get_uint(*pkg, "PkgSourceFlag") == 1) {
    std::vector<std::string> sites;
    PKG_TRY(txn.scan(cls("SMS_Site"), store::Predicate::always(), [&](const cim::Instance& site) {
      sites.push_back(get_text(site, "SiteCode"));
      return true;
    }));
    for (const auto& site : sites) PKG_TRY(insert_offer(site, true));
    return ok_status();
  }
  PKG_ASSIGN_OR_RETURN(auto details,
                       scan_where(txn, cls("SMS_PackageStatusDetailSummarizer"), "PackageID", package_id));
  for (const auto& d : details) {
    PKG_TRY(insert_offer(get_text(d, "SiteCode"), offered(true, get_uint(d, "Targeted"), get_uint(d, "Installed"))));
  }
  return ok_status();
}

void SummarizerTest::SetUp() {
  std::string skip;
  std::string error;
  db_ = store::testing::TestDatabase::create(GetParam(), skip, error);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(db_) << error;
  store::OpenOptions options;
  options.url = db_->url();
  options.clock = &clock_;
  auto opened = store::Store::open(options);
  ASSERT_TRUE(opened.ok()) << opened.error().to_string();
  store_ = std::move(*opened);
}

void SummarizerTest::TearDown() {
  if (store_) store_->close();
  store_.reset();
  db_.reset();
}

DpRef SummarizerTest::ref(const std::string& package_id, const std::string& dp_name, const std::string& site) const {
  return DpRef{package_id, nal_of(dp_name, site), site, dp_name, {}};
}

Status SummarizerTest::run(store::WriteCommand command) {
  auto r = store_->execute(std::move(command));
  if (!r.ok()) return std::move(r).error();
  return ok_status();
}

std::string SummarizerTest::root(const std::string& package_id) {
  auto row = store_->get(cls("SMS_PackageStatusRootSummarizer"), {str_value(package_id)});
  EXPECT_TRUE(row.ok());
  return counts_text(row.ok() ? *row : std::nullopt, {"Targeted", "Installed", "Retrying", "Failed"});
}

std::string SummarizerTest::detail(const std::string& package_id, const std::string& site) {
  auto row = store_->get(cls("SMS_PackageStatusDetailSummarizer"), {str_value(package_id), str_value(site)});
  EXPECT_TRUE(row.ok());
  return counts_text(row.ok() ? *row : std::nullopt, {"Targeted", "Installed", "Retrying", "Failed"});
}

std::string SummarizerTest::dist(const std::string& package_id, const std::string& dp_name, const std::string& site) {
  auto row = store_->get(cls("SMS_PackageStatusDistPointsSummarizer"),
                         {str_value(package_id), str_value(nal_of(dp_name, site)), str_value(site)});
  EXPECT_TRUE(row.ok());
  return counts_text(row.ok() ? *row : std::nullopt, {"State", "SourceVersion"});
}

std::string SummarizerTest::extra(const std::string& package_id) {
  auto row = store_->get(cls("SMS_ObjectContentExtraInfo"), {str_value(package_id)});
  EXPECT_TRUE(row.ok());
  return counts_text(row.ok() ? *row : std::nullopt,
                     {"Targeted", "NumberSuccess", "NumberInProgress", "NumberErrors", "NumberUnknown"});
}

std::string SummarizerTest::dp_status(const std::string& dp_name, const std::string& site) {
  auto row = store_->get(cls("SMS_DPStatusInfo"), {str_value(nal_of(dp_name, site))});
  EXPECT_TRUE(row.ok());
  return counts_text(row.ok() ? *row : std::nullopt,
                     {"NumberInstalled", "NumberInProgress", "NumberErrors", "NumberUnknown", "MessageState"});
}

std::string SummarizerTest::offer(const std::string& ad_id, const std::string& site) {
  auto row = store_->get(cls("PKG_AdvertisementOffer"), {str_value(ad_id), str_value(site)});
  EXPECT_TRUE(row.ok());
  if (!row.ok() || !*row) return "absent";
  const cim::Value* v = (*row)->find("Offered");
  return v != nullptr && !v->is_null() && v->as_bool() ? "TRUE" : "FALSE";
}

std::uint64_t SummarizerTest::last_revision() {
  auto r = store_->last_revision();
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : 0;
}

std::string SummarizerTest::differences() {
  auto diffs = check(*store_);
  if (!diffs.ok()) return "check failed: " + diffs.error().to_string();
  std::string out;
  for (const auto& d : *diffs) out += d.to_string() + "\n";
  return out;
}

}  // namespace pkgcast::summarizer::testing
