#include "cim/value.h"

#include <gtest/gtest.h>

namespace pkgcast::cim {
namespace {

TEST(ValueTest, NullAndEquality) {
  EXPECT_TRUE(Value().is_null());
  EXPECT_EQ(Value(), Value());
  EXPECT_NE(Value(), Value::uint32(0));
  EXPECT_EQ(Value::string("a"), Value::string("a"));
  EXPECT_NE(Value::string("a"), Value::string("A"));  // structural: case matters here, WQL decides otherwise
  EXPECT_NE(Value::uint32(1), Value::uint64(1));      // different types
}

TEST(ValueTest, DisplayText) {
  EXPECT_EQ(Value::boolean(true).to_display(), "TRUE");
  EXPECT_EQ(Value::sint(CimType::kSint32, -5).to_display(), "-5");
  EXPECT_EQ(Value::real(CimType::kReal64, 0.1).to_display(), "0.1");
  EXPECT_EQ(Value::array(CimType::kString, {Value::string("a"), Value()}).to_display(), "{a, NULL}");
}

TEST(ValueTest, CoerceIntegersWithRangeChecks) {
  auto ok = coerce(Value::sint(CimType::kSint64, 200), Type{CimType::kUint8, false});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->type().base, CimType::kUint8);
  EXPECT_EQ(ok->as_uint(), 200u);
  auto neg = coerce(Value::sint(CimType::kSint64, -1), Type{CimType::kUint32, false});
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.error().code, WbemCode::kValueOutOfRange);
  auto big = coerce(Value::uint64(1ull << 40), Type{CimType::kUint32, false});
  EXPECT_FALSE(big.ok());
  auto whole = coerce(Value::real(CimType::kReal64, 5.0), Type{CimType::kUint32, false});
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->as_uint(), 5u);
  EXPECT_FALSE(coerce(Value::real(CimType::kReal64, 5.5), Type{CimType::kUint32, false}).ok());
}

TEST(ValueTest, CoerceStringsToDatetimeAndRefusesNonsense) {
  auto dt = coerce(Value::string("20261124011900.000000+000"), Type{CimType::kDateTime, false});
  ASSERT_TRUE(dt.ok());
  EXPECT_EQ(dt->as_datetime().to_iso8601(), "2026-11-24T01:19:00Z");
  auto bad = coerce(Value::string("abc"), Type{CimType::kUint32, false});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, WbemCode::kTypeMismatch);
  EXPECT_FALSE(coerce(Value::uint32(1), Type{CimType::kUint32, true}).ok());
  auto arr = coerce(Value::array(CimType::kSint64, {Value::sint(CimType::kSint64, 3)}), Type{CimType::kUint32, true});
  ASSERT_TRUE(arr.ok());
  EXPECT_EQ(arr->as_array()[0], Value::uint32(3));
}

}  // namespace
}  // namespace pkgcast::cim
