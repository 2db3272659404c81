#include "cim/datetime.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

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

// to_iso8601 writes its digits by hand for years 0..9999; to_dmtf (snprintf) must show the same fields.
TEST(DateTimeTest, Iso8601AgreesWithDmtfFields) {
  std::mt19937_64 rng(3);
  const std::int64_t first = -62'167'219'200'000'000;  // 0000-01-01T00:00:00Z
  const std::int64_t last = 253'402'300'799'999'999;   // 9999-12-31T23:59:59.999999Z
  std::vector<std::int64_t> samples = {first, last, 0, -1, 1, 1'000'000, 951'782'400'000'000};
  for (int i = 0; i < 20'000; ++i) {
    std::int64_t us = std::uniform_int_distribution<std::int64_t>(first, last)(rng);
    if (i % 2 == 0) us -= us % 1'000'000;  // whole seconds: no fraction is written
    samples.push_back(us);
  }
  for (std::int64_t us : samples) {
    const DateTime t = DateTime::from_unix_micros(us);
    const std::string d = t.to_dmtf();  // YYYYMMDDhhmmss.uuuuuu+000
    std::string want = d.substr(0, 4) + "-" + d.substr(4, 2) + "-" + d.substr(6, 2) + "T" + d.substr(8, 2) + ":" +
                       d.substr(10, 2) + ":" + d.substr(12, 2);
    if (d.substr(15, 6) != "000000") want += "." + d.substr(15, 6);
    want += "Z";
    ASSERT_EQ(t.to_iso8601(), want) << us;
  }
  // Outside 0..9999 the year keeps snprintf's form.
  EXPECT_EQ(DateTime::from_unix_micros(last + 1).to_iso8601(), "10000-01-01T00:00:00Z");
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

// The range is the instant's in UTC: an offset cannot carry a time before 1601 or after 9999 in.
TEST(DateTimeTest, RangeHoldsInUtc) {
  for (const char* outside : {"1601-01-01T00:00:00+01:00", "16010101000000.000000+060", "9999-12-31T23:30:00-01:00",
                              "99991231233000.000000-060"}) {
    auto r = DateTime::parse(outside);
    ASSERT_FALSE(r.ok()) << outside;
    EXPECT_EQ(r.error().code, WbemCode::kInvalidParameter);
    EXPECT_NE(r.error().message.find("outside 1601..9999 in UTC"), std::string::npos) << r.error().message;
  }
  for (const char* inside : {"1601-01-01T00:00:00Z", "1601-01-01T00:30:00+00:30", "9999-12-31T23:59:59.999999Z",
                             "9999-12-31T23:00:00-00:59"}) {
    EXPECT_TRUE(DateTime::parse(inside).ok()) << inside;
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
