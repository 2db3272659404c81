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

TEST(JsonWriter, RowsCarryTheSystemPropertiesAProjectionNames) {
  const auto& registry = cim::ClassRegistry::builtin();
  cim::Instance pkg(*registry.find("SMS_Package"));
  ASSERT_TRUE(pkg.set("PackageID", cim::Value::string("ABC00001")).ok());
  ASSERT_TRUE(pkg.set("Name", cim::Value::string("Office")).ok());
  pkg.set_location("SITESERVER", "root\\sms\\site_ABC");
  ScanStep step;
  step.cls = &pkg.class_def();
  for (std::size_t i = 0; i < pkg.class_def().properties().size(); ++i) {
    const auto& name = pkg.class_def().property(i).name;
    if (name != "PackageID" && name != "Name") step.nulled.push_back(i);
  }
  step.system = {wql::SystemProperty::kPath, wql::SystemProperty::kServer, wql::SystemProperty::kGenus,
                 wql::SystemProperty::kDerivation};
  std::string out;
  append_row_json(out, pkg, &step);
  const auto row = cim::Json::parse(out, nullptr, false);
  ASSERT_TRUE(row.is_object()) << out;
  EXPECT_EQ(out.rfind("{\"__CLASS\":\"SMS_Package\",\"__PATH\":", 0), 0u) << out;
  EXPECT_EQ(row["__PATH"], "\\\\SITESERVER\\root\\sms\\site_ABC:SMS_Package.PackageID=\"ABC00001\"");
  EXPECT_EQ(row["__SERVER"], "SITESERVER");
  EXPECT_EQ(row["__GENUS"], 2);
  EXPECT_EQ(row["__DERIVATION"], cim::Json::array({"SMS_PackageBaseclass", "SMS_BaseClass"}));
  EXPECT_EQ(row["Name"], "Office");
  EXPECT_EQ(row["PackageID"], "ABC00001");
  EXPECT_FALSE(row.contains("Version"));
  EXPECT_EQ(row.size(), 7u) << out;

  std::string whole;
  append_row_json(whole, pkg, nullptr);
  EXPECT_EQ(cim::Json::parse(whole), cim::to_json(pkg));
}

// A joined answer's rows repeat the outer row's object: the cache writes the same text as without it, and takes
// a changed object (the next package) for what it is.
TEST(JsonWriter, TheEmbeddedObjectCacheWritesWhatTheWriterWrites) {
  const auto& registry = cim::ClassRegistry::builtin();
  cim::ClassSpec spec;
  spec.name = "__Generic";
  spec.properties.push_back({"P", cim::Type{cim::CimType::kObject, false}, false, true, "SMS_Package", false, {}, false});
  spec.properties.push_back({"G", cim::Type{cim::CimType::kObject, false}, false, true, "SMS_Program", false, {}, false});
  auto generic = cim::ClassRegistry::build({spec});
  ASSERT_TRUE(generic.ok()) << generic.error().to_string();
  auto package = [&](const std::string& id) {
    auto p = std::make_shared<cim::Instance>(*registry.find("SMS_Package"));
    EXPECT_TRUE(p->set("PackageID", cim::Value::string(id)).ok());
    EXPECT_TRUE(p->set("Name", cim::Value::string("name of " + id)).ok());
    return std::shared_ptr<const cim::Instance>(std::move(p));
  };
  auto program = [&](const std::string& id, const std::string& name) {
    auto g = std::make_shared<cim::Instance>(*registry.find("SMS_Program"));
    EXPECT_TRUE(g->set("PackageID", cim::Value::string(id)).ok());
    EXPECT_TRUE(g->set("ProgramName", cim::Value::string(name)).ok());
    return std::shared_ptr<const cim::Instance>(std::move(g));
  };
  const auto p1 = package("ABC00001");
  const auto p2 = package("ABC00002");
  std::vector<cim::Instance> rows;
  for (const auto& [p, name] : std::vector<std::pair<std::shared_ptr<const cim::Instance>, std::string>>{
           {p1, "install"}, {p1, "uninstall"}, {p2, "install"}, {p1, "repair"}}) {
    cim::Instance row(*generic->find("__Generic"));
    row.set(0, cim::Value::object(p));
    row.set(1, cim::Value::object(program(p->get(0).as_string(), name)));
    rows.push_back(std::move(row));
  }
  cim::Instance half(*generic->find("__Generic"));  // a LEFT JOIN's row without a program
  half.set(0, cim::Value::object(p2));
  rows.push_back(std::move(half));
  EmbeddedJsonCache cache;
  for (const auto& row : rows) {
    std::string plain;
    std::string cached;
    append_row_json(plain, row, nullptr);
    append_row_json(cached, row, nullptr, &cache);
    EXPECT_EQ(cached, plain);
    EXPECT_EQ(cim::Json::parse(cached), cim::to_json(row));
  }
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
