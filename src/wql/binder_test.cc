#include <gtest/gtest.h>

#include "cim/cim.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

const cim::ClassRegistry& reg() { return cim::ClassRegistry::builtin(); }

BoundQuery compile_ok(std::string_view text) {
  auto q = compile(text, reg());
  EXPECT_TRUE(q.ok()) << text << ": " << (q.ok() ? "" : q.error().to_string());
  return std::move(q).value();
}

TEST(BinderTest, DataQueryResolvesIndices) {
  const auto q = compile_ok("SELECT Name, packageid FROM sms_package WHERE priority = 1");
  EXPECT_FALSE(q.is_event());
  EXPECT_EQ(q.from_class().name(), "SMS_Package");
  EXPECT_EQ(q.target_class(), nullptr);
  EXPECT_FALSE(q.select_all());
  ASSERT_EQ(q.selected().size(), 2u);
  EXPECT_EQ(q.selected()[1].name, "PackageID");  // registry spelling
  EXPECT_EQ(q.selected()[1].index, *q.from_class().find_property("PackageID"));
  const Condition* w = q.where();
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->kind, ConditionKind::kCompare);
  EXPECT_EQ(w->lhs.name, "Priority");
  EXPECT_EQ(w->lhs.def, &q.from_class().property(w->lhs.index));
  EXPECT_EQ(w->domain, Domain::kNumber);
  EXPECT_EQ(w->rhs.kind, Operand::Kind::kLiteral);
  EXPECT_EQ(w->rhs.literal.as_uint(), 1u);
}

TEST(BinderTest, LiteralOnTheLeftMovesRight) {
  const auto q = compile_ok("SELECT * FROM SMS_PackageStatusRootSummarizer WHERE 5 < Installed");
  EXPECT_EQ(q.where()->lhs.name, "Installed");
  EXPECT_EQ(q.where()->op, ast::CompareOp::kGt);
}

TEST(BinderTest, ClassComparisonsBecomeClassNodes) {
  const auto eq = compile_ok("SELECT * FROM SMS_BaseClass WHERE __CLASS = 'sms_package'");
  EXPECT_EQ(eq.where()->kind, ConditionKind::kClassEq);
  EXPECT_EQ(eq.where()->cls->name(), "SMS_Package");
  EXPECT_EQ(eq.where()->object, Source::kSelf);
  const auto ne = compile_ok("SELECT * FROM SMS_BaseClass WHERE __CLASS <> 'SMS_Package'");
  EXPECT_EQ(ne.where()->kind, ConditionKind::kNot);
  EXPECT_EQ(ne.where()->children[0].kind, ConditionKind::kClassEq);
}

TEST(BinderTest, NullComparisonsAndLiteralPairsFold) {
  // WMI's reading: `= NULL` is IS NULL, `<> NULL` IS NOT NULL; an ordering operator with NULL is UNKNOWN.
  EXPECT_EQ(compile_ok("SELECT * FROM SMS_Package WHERE Name = NULL").where()->kind, ConditionKind::kIsNull);
  EXPECT_FALSE(compile_ok("SELECT * FROM SMS_Package WHERE Name = NULL").where()->negated);
  EXPECT_TRUE(compile_ok("SELECT * FROM SMS_Package WHERE NULL <> Name").where()->negated);
  EXPECT_EQ(compile_ok("SELECT * FROM SMS_Package WHERE Name > NULL").where()->constant, Truth::kUnknown);
  EXPECT_EQ(compile_ok("SELECT * FROM SMS_Package WHERE 1 < 2.5").where()->constant, Truth::kTrue);
  EXPECT_EQ(compile_ok("SELECT * FROM SMS_Package WHERE 'a' = 'B'").where()->constant, Truth::kFalse);
}

TEST(BinderTest, NestedAndsFlatten) {
  const auto q = compile_ok("SELECT * FROM SMS_Package WHERE (Priority = 1 AND Name = 'a') AND (Version = 'b')");
  EXPECT_EQ(q.where()->kind, ConditionKind::kAnd);
  EXPECT_EQ(q.where()->children.size(), 3u);
}

TEST(BinderTest, EventQueryBindsAgainstTarget) {
  const auto q = compile_ok(
      "SELECT * FROM __InstanceModificationEvent WITHIN 120.5 WHERE TargetInstance ISA "
      "'SMS_PackageStatusRootSummarizer' AND TargetInstance.Installed <> PreviousInstance.Installed");
  EXPECT_TRUE(q.is_event());
  EXPECT_EQ(q.from_class().name(), "__InstanceModificationEvent");
  ASSERT_NE(q.target_class(), nullptr);
  EXPECT_EQ(q.target_class()->name(), "SMS_PackageStatusRootSummarizer");
  EXPECT_FALSE(q.target_exact());
  EXPECT_TRUE(q.target_index().has_value());
  EXPECT_TRUE(q.previous_index().has_value());
  EXPECT_DOUBLE_EQ(*q.within(), 120.5);
  const Condition& cmp = q.where()->children[1];
  EXPECT_EQ(cmp.lhs.source, Source::kTargetInstance);
  EXPECT_EQ(cmp.lhs.name, "TargetInstance.Installed");
  EXPECT_EQ(cmp.lhs.index, *q.target_class()->find_property("Installed"));
  EXPECT_EQ(cmp.rhs.property.source, Source::kPreviousInstance);
  EXPECT_EQ(bound_classes(q),
            (std::vector<std::string>{"__InstanceModificationEvent", "SMS_PackageStatusRootSummarizer"}));
}

TEST(BinderTest, NarrowestTargetWinsAndClassEqIsExact) {
  const auto q = compile_ok(
      "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_BaseClass' AND "
      "TargetInstance.__CLASS = 'SMS_Package'");
  EXPECT_EQ(q.target_class()->name(), "SMS_Package");
  EXPECT_TRUE(q.target_exact());
}

TEST(BinderTest, GroupBindsByAndHaving) {
  const auto q = compile_ok(
      "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_DistributionDPStatus' "
      "GROUP WITHIN 600 BY TargetInstance.PackageID HAVING NumberOfEvents > 25");
  ASSERT_TRUE(q.group().has_value());
  EXPECT_DOUBLE_EQ(q.group()->within, 600);
  ASSERT_EQ(q.group()->by.size(), 1u);
  EXPECT_EQ(q.group()->by[0].source, Source::kTargetInstance);
  ASSERT_TRUE(q.group()->having.has_value());
  EXPECT_EQ(q.group()->having->lhs.name, "NumberOfEvents");
  EXPECT_EQ(q.group()->aggregate_class->name(), "__AggregateEvent");
}

TEST(BinderTest, DatetimeLiteralsAreParsed) {
  const auto q = compile_ok("SELECT * FROM SMS_Package WHERE SourceDate > '20260101000000.000000+060'");
  EXPECT_EQ(q.where()->domain, Domain::kDateTime);
  EXPECT_EQ(q.where()->rhs.literal.as_datetime().to_iso8601(), "2025-12-31T23:00:00Z");
}

TEST(BinderTest, ErrorsCarryCodes) {
  EXPECT_EQ(compile("SELECT * FROM Nope", reg()).error().code, WbemCode::kInvalidClass);
  EXPECT_EQ(compile("SELECT Nope FROM SMS_Package", reg()).error().code, WbemCode::kInvalidProperty);
  EXPECT_EQ(compile("SELECT * FROM SMS_Package WHERE Name = Priority", reg()).error().code, WbemCode::kTypeMismatch);
  EXPECT_EQ(compile("SELECT * FROM SMS_Package WHERE Priority = 'abc'", reg()).error().code, WbemCode::kInvalidQuery);
  EXPECT_EQ(compile("SELECT * FROM SMS_Package WHERE Priority LIKE '1'", reg()).error().code,
            WbemCode::kInvalidOperator);
  EXPECT_EQ(compile("SELECT * FROM SMS_Package WITHIN 1", reg()).error().code, WbemCode::kNotEventClass);
  EXPECT_EQ(compile("SELECT * FROM __InstanceCreationEvent", reg()).error().code, WbemCode::kInvalidQuery);
}

// An OR of two classes does not name the watched class: the error says so, at the first class named, and says
// what to do instead.
TEST(BinderTest, AnEventQueryNamingItsClassOnlyUnderOrSaysWhy) {
  auto q = compile(
      "SELECT * FROM __InstanceOperationEvent WITHIN 5 WHERE TargetInstance ISA 'SMS_Package' OR "
      "TargetInstance ISA 'SMS_Program'",
      reg());
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, WbemCode::kInvalidQuery);
  EXPECT_NE(q.error().message.find("'SMS_Package' is named under OR or NOT"), std::string::npos)
      << q.error().message;
  EXPECT_NE(q.error().message.find("watch each class with a query of its own"), std::string::npos);
  auto n = compile("SELECT * FROM __InstanceCreationEvent WHERE NOT TargetInstance ISA 'SMS_Package'", reg());
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("under OR or NOT"), std::string::npos) << n.error().message;
  auto none = compile("SELECT * FROM __InstanceCreationEvent WHERE TIME_CREATED > 0", reg());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message.find("under OR"), std::string::npos) << none.error().message;
}

TEST(BinderTest, WorksWithARegistryOtherThanTheBuiltin) {
  cim::PropertyDef id;
  id.name = "Id";
  id.type = {cim::CimType::kUint32, false};
  id.key = true;
  cim::PropertyDef label;
  label.name = "Label";
  cim::ClassSpec base;
  base.name = "Base";
  base.properties = {id};
  cim::ClassSpec derived;
  derived.name = "Derived";
  derived.superclass = "Base";
  derived.properties = {label};
  auto custom = cim::ClassRegistry::build({base, derived});
  ASSERT_TRUE(custom.ok());
  auto q = compile("SELECT * FROM Base WHERE Id > 3", *custom);
  ASSERT_TRUE(q.ok()) << q.error().to_string();
  cim::Instance d(*custom->find("Derived"));
  d.set(0, cim::Value::uint32(4));
  EXPECT_TRUE(matches(*q, d));
  EXPECT_EQ(compile("SELECT * FROM Base WHERE Label = 'x'", *custom).error().code, WbemCode::kInvalidProperty);
}

}  // namespace
}  // namespace pkgcast::wql
