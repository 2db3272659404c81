// Hostile input: every case must end in a clear error (or a result), never a crash, a hang or a stack overflow.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "cim/cim.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

const cim::ClassRegistry& reg() { return cim::ClassRegistry::builtin(); }

TEST(HostileTest, HundredKilobyteQueryIsAQuotaViolation) {
  std::string text = "SELECT * FROM SMS_Package WHERE Name = '" + std::string(100 * 1024, 'x') + "'";
  auto q = parse(text);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, WbemCode::kQuotaViolation);
  EXPECT_EQ(q.error().message, "query of " + std::to_string(text.size()) + " bytes is longer than the limit of " +
                                   std::to_string(kMaxQueryBytes));
}

TEST(HostileTest, LongestAcceptedQueryParses) {
  const std::string head = "SELECT * FROM SMS_Package WHERE Name = '";
  const std::string text = head + std::string(kMaxQueryBytes - head.size() - 1, 'x') + "'";
  ASSERT_EQ(text.size(), kMaxQueryBytes);
  EXPECT_TRUE(compile(text, reg()).ok());
}

TEST(HostileTest, TwentyThousandParenthesesAreTooDeep) {
  // Balanced, 40 KB: refused for its length before anything recurses.
  const std::string balanced =
      "SELECT * FROM SMS_Package WHERE " + std::string(20000, '(') + "Name = 'x'" + std::string(20000, ')');
  EXPECT_EQ(parse(balanced).error().code, WbemCode::kQuotaViolation);
  // Within the length limit: refused at the 257th level.
  const std::string deep =
      "SELECT * FROM SMS_Package WHERE " + std::string(16000, '(') + "Name = 'x'" + std::string(16000, ')');
  auto q = parse(deep);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, WbemCode::kQuotaViolation);
  EXPECT_EQ(q.error().message, "condition nested deeper than 256 at 1:289");
}

TEST(HostileTest, UnbalancedParenthesesAndNotsAreTooDeep) {
  EXPECT_EQ(parse("SELECT * FROM C WHERE " + std::string(20000, '(')).error().code, WbemCode::kQuotaViolation);
  std::string nots;
  for (int i = 0; i < 5000; ++i) nots += "NOT ";
  EXPECT_EQ(parse("SELECT * FROM C WHERE " + nots + "a = 1").error().code, WbemCode::kQuotaViolation);
}

TEST(HostileTest, DeepestAllowedNestingWorksEndToEnd) {
  const std::size_t depth = kMaxNestingDepth;
  std::string text = "SELECT * FROM SMS_Package WHERE ";
  for (std::size_t i = 0; i < depth / 2; ++i) text += "NOT (";
  text += "Name = 'x'";
  text += std::string(depth / 2, ')');
  auto q = compile(text, reg());
  ASSERT_TRUE(q.ok()) << q.error().to_string();
  auto again = parse(print(q->query()));
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_TRUE(*again == q->query());
  cim::Instance p(*reg().find("SMS_Package"));
  EXPECT_FALSE(matches(*q, p));  // NULL Name: UNKNOWN through every NOT
}

TEST(HostileTest, TooManyTerms) {
  std::string text = "SELECT * FROM SMS_Package WHERE Priority = 1";
  for (std::size_t i = 0; i < kMaxTerms; ++i) text += " OR Priority = 1";
  auto q = parse(text);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(q.error().message.find("more than 1024 terms"), std::string::npos);
}

// Each ORDER BY term makes every page's statement costlier; each subquery is a query of its own.
TEST(HostileTest, ManyOrderByTermsOrSubqueries) {
  std::string sorted = "SELECT * FROM SMS_Package ORDER BY Name";
  for (std::size_t i = 1; i < kMaxOrderByTerms; ++i) sorted += ", Version DESC";
  EXPECT_TRUE(parse(sorted).ok());
  auto q = parse(sorted + ", Priority");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(q.error().message.find("more than 16 ORDER BY properties"), std::string::npos) << q.error().message;

  std::string nested = "SELECT * FROM SMS_Package WHERE PackageID IN (SELECT PackageID FROM SMS_Program)";
  for (std::size_t i = 1; i < kMaxSubqueries; ++i) nested += " OR PackageID IN (SELECT PackageID FROM SMS_Program)";
  EXPECT_TRUE(parse(nested).ok());
  q = parse(nested + " OR Name IN (SELECT ProgramName FROM SMS_Program)");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, WbemCode::kQuotaViolation);
  EXPECT_NE(q.error().message.find("more than 16 subqueries"), std::string::npos) << q.error().message;
}

TEST(HostileTest, LongLikePattern) {
  const std::string longest =
      "SELECT * FROM SMS_Package WHERE Name LIKE '" + std::string(kMaxLikePatternBytes, 'a') + "'";
  EXPECT_TRUE(parse(longest).ok());
  auto q = parse("SELECT * FROM SMS_Package WHERE Name LIKE '%" + std::string(kMaxLikePatternBytes, 'a') + "'");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, WbemCode::kQuotaViolation);
  EXPECT_EQ(q.error().message, "LIKE pattern longer than 512 bytes at 1:38");
}

TEST(HostileTest, NulBytesAndInvalidUtf8) {
  EXPECT_EQ(parse(std::string_view("SELECT\0 * FROM C", 16)).error().to_string(),
            "WBEM_E_INVALID_QUERY: NUL byte at 1:7");
  EXPECT_EQ(parse("SELECT * FROM C WHERE a = '\xC3'").error().to_string(),
            "WBEM_E_INVALID_QUERY: invalid UTF-8 at 1:28");
  EXPECT_EQ(parse(std::string(5000, '\xFF')).error().to_string(), "WBEM_E_INVALID_QUERY: invalid UTF-8 at 1:1");
}

TEST(HostileTest, RandomBytesNeverCrash) {
  std::mt19937 rng(42);
  const std::string alphabet = "SELECT*FROMWHERE AND OR NOT()'\"\\=<>!.,_%[]^-0x9e TargetInstance ISA IS NULL";
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const int len = static_cast<int>(rng() % 80);
    for (int k = 0; k < len; ++k) {
      text += rng() % 4 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    }
    if (i % 2 == 0) text = "SELECT * FROM SMS_Package WHERE " + text;
    auto q = compile(text, reg());
    if (!q.ok()) {
      EXPECT_FALSE(q.error().message.empty());
      continue;
    }
    auto again = parse(print(q->query()));
    ASSERT_TRUE(again.ok()) << print(q->query());
    EXPECT_TRUE(*again == q->query());
  }
}

}  // namespace
}  // namespace pkgcast::wql
