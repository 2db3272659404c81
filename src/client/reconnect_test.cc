#include "client/reconnect.h"

#include <gtest/gtest.h>

namespace pkgcast::client_detail {
namespace {

using std::chrono::milliseconds;

TEST(ReconnectDelayTest, DoublesUpToTheBoundWithJitterInTheUpperHalf) {
  const milliseconds initial{250};
  const milliseconds max{30'000};
  EXPECT_EQ(reconnect_delay(1, initial, max, 0.0), milliseconds(125));
  EXPECT_EQ(reconnect_delay(1, initial, max, 0.999), milliseconds(249));
  EXPECT_EQ(reconnect_delay(2, initial, max, 0.0), milliseconds(250));
  EXPECT_EQ(reconnect_delay(3, initial, max, 0.0), milliseconds(500));
  EXPECT_EQ(reconnect_delay(7, initial, max, 0.0), milliseconds(8'000));
  EXPECT_EQ(reconnect_delay(8, initial, max, 0.0), milliseconds(15'000));  // 32 s, bounded to 30 s
  EXPECT_EQ(reconnect_delay(9, initial, max, 0.0), milliseconds(15'000));
  EXPECT_EQ(reconnect_delay(1'000'000, initial, max, 0.5), milliseconds(22'500));
}

}  // namespace
}  // namespace pkgcast::client_detail
