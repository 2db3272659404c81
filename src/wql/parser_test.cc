#include <gtest/gtest.h>

#include "wql/lexer.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

ast::Query parse_ok(std::string_view text) {
  auto q = parse(text);
  EXPECT_TRUE(q.ok()) << text << ": " << (q.ok() ? "" : q.error().to_string());
  return q.ok() ? *q : ast::Query{};
}

TEST(ParserTest, DataQueryShape) {
  const auto q = parse_ok("SELECT Name, PackageID FROM SMS_Package WHERE Priority = 1");
  ASSERT_EQ(q.select.size(), 2u);
  EXPECT_EQ(q.select[1].dotted(), "PackageID");
  EXPECT_EQ(q.from_class, "SMS_Package");
  EXPECT_EQ(format_position(q.from_pos), "1:29");
  ASSERT_TRUE(q.where.has_value());
  EXPECT_EQ(q.where->kind, ast::ExprKind::kCompare);
  EXPECT_FALSE(q.within.has_value());
  EXPECT_FALSE(q.group.has_value());
}

TEST(ParserTest, AndOrChainsAreFlatParenthesesAreNot) {
  const auto flat = parse_ok("SELECT * FROM C WHERE a = 1 AND b = 2 AND c = 3");
  EXPECT_EQ(flat.where->kind, ast::ExprKind::kAnd);
  EXPECT_EQ(flat.where->children.size(), 3u);
  const auto nested = parse_ok("SELECT * FROM C WHERE (a = 1 AND b = 2) AND c = 3");
  EXPECT_EQ(nested.where->children.size(), 2u);
  EXPECT_EQ(nested.where->children[0].kind, ast::ExprKind::kAnd);
  EXPECT_FALSE(flat == nested);
}

TEST(ParserTest, PrecedenceNotThenAndThenOr) {
  const auto q = parse_ok("SELECT * FROM C WHERE NOT a = 1 AND b = 2 OR c = 3");
  EXPECT_EQ(print(*q.where), "(NOT (a = 1) AND b = 2) OR c = 3");
}

TEST(ParserTest, IntegersHaveOneRepresentation) {
  const auto a = parse_ok("SELECT * FROM C WHERE x = -0");
  const auto b = parse_ok("SELECT * FROM C WHERE x = 0x0");
  EXPECT_TRUE(a == b);
  const auto& lit = std::get<ast::Literal>(a.where->rhs);
  EXPECT_TRUE(std::holds_alternative<std::uint64_t>(lit.value));
  const auto min = parse_ok("SELECT * FROM C WHERE x = -9223372036854775808");
  EXPECT_EQ(std::get<std::int64_t>(std::get<ast::Literal>(min.where->rhs).value), INT64_MIN);
}

TEST(ParserTest, EqualityIgnoresPositions) {
  EXPECT_TRUE(parse_ok("select * from C where a=1") == parse_ok("SELECT *\n FROM C\n WHERE a = 1"));
  EXPECT_FALSE(parse_ok("SELECT * FROM C WHERE a = 1") == parse_ok("SELECT * FROM C WHERE a = 2"));
  EXPECT_FALSE(parse_ok("SELECT * FROM C WHERE a = 1") == parse_ok("SELECT * FROM C WHERE a = 1.0"));
}

TEST(ParserTest, CanonicalPrintRoundTrips) {
  for (const char* text : {
           "select * from __InstanceModificationEvent within 120.5 where TargetInstance isa \"X\"",
           "SELECT a FROM C WHERE NOT NOT (x LIKE 'a%' OR y IS NOT NULL) AND z NOT LIKE '[^a]'",
           "SELECT * FROM C WHERE s = 'a\\'b\\\\c\\n\"d' AND r = -1.5e-7 AND i = 0x10 AND n = NULL",
           "SELECT * FROM E WHERE TargetInstance ISA 'C' GROUP WITHIN 1e3 BY TargetInstance.a, TargetInstance.b "
           "HAVING NumberOfEvents > 5",
           "SELECT * FROM C WHERE x = 1e300 AND y = 123456789012345678901234.5",
       }) {
    const auto q = parse_ok(text);
    const std::string printed = print(q);
    const auto again = parse_ok(printed);
    EXPECT_TRUE(again == q) << printed;
    EXPECT_EQ(print(again), printed);
  }
}

TEST(ParserTest, GroupClause) {
  const auto q = parse_ok("SELECT * FROM E WHERE TargetInstance ISA 'C' GROUP WITHIN 60.5 BY TargetInstance.Name "
                          "HAVING NumberOfEvents > 5");
  ASSERT_TRUE(q.group.has_value());
  EXPECT_DOUBLE_EQ(q.group->within, 60.5);
  ASSERT_EQ(q.group->by.size(), 1u);
  EXPECT_EQ(q.group->by[0].dotted(), "TargetInstance.Name");
  ASSERT_TRUE(q.group->having.has_value());
}

TEST(ParserTest, ErrorsNameWhatAndWhere) {
  auto e = parse("SELECT * Foo");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, WbemCode::kInvalidQuery);
  EXPECT_EQ(e.error().message, "expected FROM at 1:10");
  EXPECT_EQ(e.error().to_string(), "WBEM_E_INVALID_QUERY: expected FROM at 1:10");
}

TEST(ParserTest, JsonForm) {
  const auto j = to_json(parse_ok("SELECT * FROM E WITHIN 5 WHERE TargetInstance ISA 'C'"));
  EXPECT_EQ(j["select"], "*");
  EXPECT_EQ(j["within"], 5.0);
  EXPECT_EQ(j["where"]["op"], "ISA");
  EXPECT_EQ(j["where"]["left"]["property"], "TargetInstance");
  EXPECT_EQ(j["where"]["right"]["literal"], "C");
}

}  // namespace
}  // namespace pkgcast::wql
