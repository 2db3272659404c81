#include "cim/datetime.h"

#include <gtest/gtest.h>

namespace pkgcast::cim {
namespace {

TEST(DateTimeTest, ParsesDmtfWithOffset) {
  auto t = DateTime::parse_dmtf("20261124031900.500000+120");
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(t->to_iso8601(), "2026-11-24T01:19:00.500000Z");
  EXPECT_EQ(t->to_dmtf(), "20261124011900.500000+000");
}

TEST(DateTimeTest, ParsesIso8601Forms) {
  EXPECT_EQ(DateTime::parse("2026-11-24T01:19:00Z")->to_iso8601(), "2026-11-24T01:19:00Z");
  EXPECT_EQ(DateTime::parse("2026-11-24T03:19:00+02:00")->to_iso8601(), "2026-11-24T01:19:00Z");
  EXPECT_EQ(DateTime::parse("2026-11-23T20:19-05")->to_iso8601(), "2026-11-24T01:19:00Z");
  EXPECT_EQ(DateTime::parse("2026-11-24")->to_iso8601(), "2026-11-24T00:00:00Z");
  EXPECT_EQ(DateTime::parse("2024-02-29T12:00:00.1234567Z")->to_iso8601(), "2024-02-29T12:00:00.123456Z");
}

TEST(DateTimeTest, RefusesBadDates) {
  for (const char* bad : {"", "2026", "2026-13-01", "2025-02-29", "2026-11-24T25:00:00Z", "2026-11-24T01:19:00",
                          "2026-11-24T01:19:00Zjunk", "1500-01-01", "20261124011900.000000*000",
                          "2026112401190a.000000+000"}) {
    auto r = DateTime::parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, WbemCode::kInvalidParameter);
    }
  }
}

TEST(DateTimeTest, FiletimeRoundTrips) {
  auto t = *DateTime::parse("1601-01-01T00:00:00Z");
  EXPECT_EQ(t.to_filetime(), 0u);
  auto now = *DateTime::parse("2026-11-24T01:19:00.000001Z");
  EXPECT_EQ(DateTime::from_filetime(now.to_filetime()), now);
}

}  // namespace
}  // namespace pkgcast::cim
