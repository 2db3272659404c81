#include "site/transfer_window.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pkgcast::site {
namespace {

constexpr Micros kHour = 3'600'000'000;
// Sunday 2026-11-29 00:00 UTC.
constexpr Micros kSunday = 1'795'910'400'000'000;

Micros at(int day, int hour) { return kSunday + (day * 24 + hour) * kHour; }

TEST(TransferWindow, OpenByDefault) {
  EXPECT_EQ(*parse_transfer_window(""), "");
  EXPECT_EQ(*parse_transfer_window("   "), "");
  EXPECT_EQ(*parse_transfer_window("* * all"), "");
  EXPECT_EQ(*parse_transfer_window(std::string(168, 'a')), "");
  EXPECT_TRUE(transfer_window_open("", 3, at(2, 10)));
}

TEST(TransferWindow, RulesApplyInOrderOverAnOpenWeek) {
  auto w = parse_transfer_window("Mon-Fri 08-18 closed; Wed 12-13 high");
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  ASSERT_EQ(w->size(), 168u);
  EXPECT_TRUE(transfer_window_open(*w, 3, at(1, 7)));    // Monday 07:00
  EXPECT_FALSE(transfer_window_open(*w, 1, at(1, 8)));   // Monday 08:00
  EXPECT_FALSE(transfer_window_open(*w, 1, at(5, 17)));  // Friday 17:59 is in 17:00-18:00
  EXPECT_TRUE(transfer_window_open(*w, 3, at(5, 18)));   // Friday 18:00
  EXPECT_TRUE(transfer_window_open(*w, 1, at(3, 12)));   // Wednesday noon: high only
  EXPECT_FALSE(transfer_window_open(*w, 2, at(3, 12)));
  EXPECT_TRUE(transfer_window_open(*w, 2, at(0, 12)));   // Sunday
  EXPECT_EQ(next_transfer_window_opening(*w, 3, at(1, 9) + 123), at(1, 18));
  EXPECT_EQ(next_transfer_window_opening(*w, 1, at(3, 11)), at(3, 12));
}

TEST(TransferWindow, DayAndHourRangesWrap) {
  auto w = parse_transfer_window("Fri-Mon 22-06 medium");
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  EXPECT_FALSE(transfer_window_open(*w, 3, at(5, 23)));  // Friday 23:00
  EXPECT_FALSE(transfer_window_open(*w, 3, at(6, 5)));   // Saturday 05:00 (Friday's night)
  EXPECT_TRUE(transfer_window_open(*w, 2, at(6, 5)));
  EXPECT_FALSE(transfer_window_open(*w, 3, at(2, 3)));   // Tuesday 03:00 (Monday's night)
  EXPECT_TRUE(transfer_window_open(*w, 3, at(2, 6)));
  EXPECT_TRUE(transfer_window_open(*w, 3, at(3, 3)));    // Wednesday 03:00
  auto days = parse_transfer_window("sat,SUN * closed");
  ASSERT_TRUE(days.ok());
  EXPECT_FALSE(transfer_window_open(*days, 1, at(6, 0)));
  EXPECT_FALSE(transfer_window_open(*days, 1, at(0, 23)));
  EXPECT_TRUE(transfer_window_open(*days, 1, at(1, 0)));
}

TEST(TransferWindow, AlwaysClosedNeverOpens) {
  auto w = parse_transfer_window("* * closed");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, std::string(168, 'C'));
  EXPECT_EQ(next_transfer_window_opening(*w, 1, at(0, 0)), 0);
}

TEST(TransferWindow, TheStoredFormRoundTrips) {
  std::string week(168, 'A');
  week[5] = 'C';
  week[30] = 'h';
  auto w = parse_transfer_window(week);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)[30], 'H');
  EXPECT_EQ(*parse_transfer_window(*w), *w);
  EXPECT_FALSE(transfer_window_open(*w, 1, at(0, 5)));
}

TEST(TransferWindow, BadRulesAreRefusedWithTheRule) {
  const std::vector<std::string> bad = {"Mon 08-18", "Mon 08-18 closed extra", "Moonday 08-18 closed",
                                        "Mon 8-25 closed", "Mon 08-08 closed", "Mon 24-02 closed",
                                        "Mon 08:00-18:00 closed", "Mon 08-18 shut", "Mon- 08-18 closed",
                                        std::string(167, 'A'), "Mon 08-18 closed;; Tue x y z"};
  for (const std::string& text : bad) {
    auto w = parse_transfer_window(text);
    EXPECT_FALSE(w.ok()) << text;
    if (!w.ok()) {
      EXPECT_EQ(w.error().code, WbemCode::kInvalidParameter);
      EXPECT_NE(w.error().message.find("transfer window rule"), std::string::npos) << w.error().message;
    }
  }
  // Malformed stored values never block distribution.
  EXPECT_TRUE(transfer_window_open("garbage", 3, at(1, 10)));
}

}  // namespace
}  // namespace pkgcast::site
