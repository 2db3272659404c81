#include <gtest/gtest.h>

#include "cim/cim.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

const cim::ClassRegistry& reg() { return cim::ClassRegistry::builtin(); }

cim::Instance make(const char* json) {
  auto inst = cim::instance_from_json(cim::Json::parse(json), reg());
  EXPECT_TRUE(inst.ok()) << (inst.ok() ? "" : inst.error().to_string());
  return std::move(inst).value();
}

Truth eval(std::string_view where, const cim::Instance& inst) {
  auto q = compile("SELECT * FROM " + inst.class_name() + " WHERE " + std::string(where), reg());
  EXPECT_TRUE(q.ok()) << where << ": " << (q.ok() ? "" : q.error().to_string());
  return q.ok() ? evaluate(*q, inst) : Truth::kUnknown;
}

// Manufacturer is NULL; Name is set.
const cim::Instance& package() {
  static const cim::Instance p = make(R"({"__CLASS": "SMS_Package", "PackageID": "ABC00001", "Name": "Office",
                                           "Priority": 2, "PackageSize": 4294967295})");
  return p;
}

TEST(EvaluatorTest, ThreeValuedLogic) {
  const auto& p = package();
  EXPECT_EQ(eval("Manufacturer = 'x'", p), Truth::kUnknown);
  EXPECT_EQ(eval("NOT (Manufacturer = 'x')", p), Truth::kUnknown);
  EXPECT_EQ(eval("Manufacturer = 'x' AND Name = 'Office'", p), Truth::kUnknown);
  EXPECT_EQ(eval("Manufacturer = 'x' AND Name = 'Other'", p), Truth::kFalse);
  EXPECT_EQ(eval("Manufacturer = 'x' OR Name = 'Office'", p), Truth::kTrue);
  EXPECT_EQ(eval("Manufacturer = 'x' OR Name = 'Other'", p), Truth::kUnknown);
  EXPECT_EQ(eval("Manufacturer IS NULL", p), Truth::kTrue);
  EXPECT_EQ(eval("Manufacturer IS NOT NULL", p), Truth::kFalse);
  EXPECT_EQ(eval("Name = NULL", p), Truth::kFalse);  // WMI: IS NULL
  EXPECT_EQ(eval("Manufacturer = NULL", p), Truth::kTrue);
  EXPECT_EQ(eval("Manufacturer != NULL", p), Truth::kFalse);
  EXPECT_EQ(eval("Name <> NULL", p), Truth::kTrue);
  EXPECT_EQ(eval("Name < NULL", p), Truth::kUnknown);
  EXPECT_EQ(eval("Manufacturer LIKE '%'", p), Truth::kUnknown);
  EXPECT_EQ(eval("Manufacturer NOT LIKE '%'", p), Truth::kUnknown);
}

TEST(EvaluatorTest, StringsIgnoreAsciiCase) {
  const auto& p = package();
  EXPECT_EQ(eval("Name = 'OFFICE'", p), Truth::kTrue);
  EXPECT_EQ(eval("Name <> 'office'", p), Truth::kFalse);
  EXPECT_EQ(eval("Name < 'p'", p), Truth::kTrue);
  EXPECT_EQ(eval("Name > 'OFFICD'", p), Truth::kTrue);
}

TEST(EvaluatorTest, NumbersCompareByValueAcrossTypes) {
  const auto& p = package();
  EXPECT_EQ(eval("PackageSize = 4294967295", p), Truth::kTrue);
  EXPECT_EQ(eval("PackageSize > -1", p), Truth::kTrue);
  EXPECT_EQ(eval("PackageSize < 4294967295.5", p), Truth::kTrue);
  EXPECT_EQ(eval("PackageSize = 4294967295.0", p), Truth::kTrue);
  EXPECT_EQ(eval("Priority >= 2.0 AND Priority <= 2", p), Truth::kTrue);
  EXPECT_EQ(eval("Priority > -9223372036854775808", p), Truth::kTrue);
  EXPECT_EQ(eval("Priority < 18446744073709551615", p), Truth::kTrue);
  const auto big = make(R"({"__CLASS": "SMS_DistributionDPStatus", "ID": 18446744073709551615})");
  EXPECT_EQ(eval("ID > 9223372036854775807", big), Truth::kTrue);
  EXPECT_EQ(eval("ID = 18446744073709551615", big), Truth::kTrue);
  EXPECT_EQ(eval("ID > -1", big), Truth::kTrue);
  // 1.8446744073709552e19 is 2^64 exactly: one more than ID, which a plain double comparison would miss.
  EXPECT_EQ(eval("ID < 1.8446744073709552e19", big), Truth::kTrue);
  EXPECT_EQ(eval("ID = 1.8446744073709552e19", big), Truth::kFalse);
}

TEST(EvaluatorTest, DatetimesCompareAsInstants) {
  const auto p = make(R"({"__CLASS": "SMS_Package", "PackageID": "A", "SourceDate": "2026-01-15T10:00:00Z"})");
  EXPECT_EQ(eval("SourceDate = '2026-01-15T12:00:00+02:00'", p), Truth::kTrue);
  EXPECT_EQ(eval("SourceDate = '20260115100000.000000+000'", p), Truth::kTrue);
  EXPECT_EQ(eval("SourceDate > '2026-01-15'", p), Truth::kTrue);
  EXPECT_EQ(eval("SourceDate < LastRefreshTime", p), Truth::kUnknown);
}

TEST(EvaluatorTest, DataQueryNeedsTheFromClassOrASubclass) {
  auto q = compile("SELECT * FROM SMS_Package", reg());
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(matches(*q, package()));
  EXPECT_FALSE(matches(*q, make(R"({"__CLASS": "SMS_Site", "SiteCode": "ABC"})")));
  auto base = compile("SELECT * FROM SMS_BaseClass WHERE __CLASS = 'SMS_Package'", reg());
  ASSERT_TRUE(base.ok());
  EXPECT_TRUE(matches(*base, package()));
}

TEST(EvaluatorTest, EventsReadTargetAndPrevious) {
  auto q = compile(
      "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'SMS_PackageStatusRootSummarizer' "
      "AND TargetInstance.Installed > PreviousInstance.Installed",
      reg());
  ASSERT_TRUE(q.ok());
  const auto up = make(R"({"__CLASS": "__InstanceModificationEvent",
      "TargetInstance": {"__CLASS": "SMS_PackageStatusRootSummarizer", "PackageID": "A", "Installed": 3},
      "PreviousInstance": {"__CLASS": "SMS_PackageStatusRootSummarizer", "PackageID": "A", "Installed": 2}})");
  const auto down = make(R"({"__CLASS": "__InstanceModificationEvent",
      "TargetInstance": {"__CLASS": "SMS_PackageStatusRootSummarizer", "PackageID": "A", "Installed": 1},
      "PreviousInstance": {"__CLASS": "SMS_PackageStatusRootSummarizer", "PackageID": "A", "Installed": 2}})");
  const auto other = make(R"({"__CLASS": "__InstanceModificationEvent",
      "TargetInstance": {"__CLASS": "SMS_Package", "PackageID": "A"},
      "PreviousInstance": {"__CLASS": "SMS_Package", "PackageID": "A"}})");
  const auto creation = make(R"({"__CLASS": "__InstanceCreationEvent",
      "TargetInstance": {"__CLASS": "SMS_PackageStatusRootSummarizer", "PackageID": "A", "Installed": 3}})");
  const auto empty = make(R"({"__CLASS": "__InstanceModificationEvent"})");
  EXPECT_TRUE(matches_event(*q, up));
  EXPECT_FALSE(matches_event(*q, down));
  EXPECT_FALSE(matches_event(*q, other));
  EXPECT_EQ(evaluate(*q, other), Truth::kFalse);  // ISA is FALSE, properties of a foreign class read as NULL
  EXPECT_FALSE(matches_event(*q, creation));      // not a modification event
  EXPECT_FALSE(matches_event(*q, empty));
  EXPECT_EQ(evaluate(*q, empty), Truth::kUnknown);
  EXPECT_FALSE(matches_event(*q, package()));
  EXPECT_TRUE(matches(*q, up));  // matches() accepts event queries too
}

TEST(EvaluatorTest, ExactClassVersusIsa) {
  auto isa = compile("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Package'", reg());
  auto exact = compile("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance.__CLASS = 'sms_package'", reg());
  ASSERT_TRUE(isa.ok() && exact.ok());
  const auto ev = make(R"({"__CLASS": "__InstanceDeletionEvent", "__REVISION": 5,
      "TargetInstance": {"__CLASS": "SMS_Package", "PackageID": "A"}})");
  EXPECT_TRUE(matches_event(*isa, ev));
  EXPECT_TRUE(matches_event(*exact, ev));
  auto rev = compile("SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA 'SMS_Package' AND "
                     "__REVISION = 5 AND __CLASS = '__InstanceDeletionEvent'", reg());
  ASSERT_TRUE(rev.ok());
  EXPECT_TRUE(matches_event(*rev, ev));
}

TEST(EvaluatorTest, HavingOverAggregate) {
  auto q = compile("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package' "
                   "GROUP WITHIN 60 HAVING NumberOfEvents > 5",
                   reg());
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(matches_aggregate(*q, make(R"({"__CLASS": "__AggregateEvent", "NumberOfEvents": 6})")));
  EXPECT_FALSE(matches_aggregate(*q, make(R"({"__CLASS": "__AggregateEvent", "NumberOfEvents": 5})")));
  auto no_having = compile("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package' "
                           "GROUP WITHIN 60",
                           reg());
  ASSERT_TRUE(no_having.ok());
  EXPECT_TRUE(matches_aggregate(*no_having, make(R"({"__CLASS": "__AggregateEvent", "NumberOfEvents": 1})")));
}

TEST(EvaluatorTest, SystemProperties) {
  auto p = package();
  p.set_location("SITESERVER", "root\\sms\\site_ABC");
  EXPECT_EQ(eval("__SERVER = 'siteserver' AND __NAMESPACE = 'root\\\\sms\\\\site_abc'", p), Truth::kTrue);
  EXPECT_EQ(eval("__PATH = '\\\\\\\\SITESERVER\\\\root\\\\sms\\\\site_ABC:SMS_Package.PackageID=\"ABC00001\"'", p),
            Truth::kTrue);
  EXPECT_EQ(eval("__RELPATH = 'SMS_Package.PackageID=\"ABC00001\"'", p), Truth::kTrue);
  EXPECT_EQ(eval("__SUPERCLASS = 'SMS_PackageBaseclass' AND __DYNASTY = 'SMS_BaseClass' AND __GENUS = 2", p),
            Truth::kTrue);
  EXPECT_EQ(eval("__DERIVATION IS NOT NULL", p), Truth::kTrue);
  EXPECT_EQ(eval("__NAMESPACE IS NULL", package()), Truth::kTrue);
}

}  // namespace
}  // namespace pkgcast::wql
