#include "core/strings.h"

#include <gtest/gtest.h>

namespace pkgcast {
namespace {

TEST(StringsTest, CaseInsensitiveCompare) {
  EXPECT_TRUE(iequals("SMS_Package", "sms_package"));
  EXPECT_FALSE(iequals("SMS_Package", "SMS_Packages"));
  EXPECT_LT(icompare("abc", "ABD"), 0);
  EXPECT_EQ(icompare("ABC", "abc"), 0);
  EXPECT_GT(icompare("abcd", "ABC"), 0);
  EXPECT_EQ(IHash{}("Name"), IHash{}("NAME"));
}

TEST(StringsTest, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9"));
  EXPECT_FALSE(is_valid_utf8("\xC3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

}  // namespace
}  // namespace pkgcast
