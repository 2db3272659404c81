#include "core/result.h"

#include <gtest/gtest.h>

namespace pkgcast {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return make_error(WbemCode::kInvalidParameter, "not positive");
  return v;
}

Result<int> doubled(int v) {
  PKG_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return x * 2;
}

Status check(int v) {
  PKG_TRY(parse_positive(v));
  return ok_status();
}

TEST(ResultTest, ValueAndErrorPropagate) {
  EXPECT_EQ(*doubled(21), 42);
  auto r = doubled(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kInvalidParameter);
  EXPECT_TRUE(check(3).ok());
  EXPECT_FALSE(check(0).ok());
}

TEST(ResultTest, ErrorTextNamesTheWbemCode) {
  Error e{WbemCode::kInvalidQuery, "expected FROM at 1:10"};
  EXPECT_EQ(e.to_string(), "WBEM_E_INVALID_QUERY: expected FROM at 1:10");
  EXPECT_EQ(wbem_hresult(WbemCode::kInvalidQuery), "0x80041017");
  EXPECT_EQ(wbem_code_from_name("WBEM_E_INVALID_CLASS"), WbemCode::kInvalidClass);
  EXPECT_EQ(wbem_code_from_name("WBEM_E_NONSENSE"), std::nullopt);
}

}  // namespace
}  // namespace pkgcast
