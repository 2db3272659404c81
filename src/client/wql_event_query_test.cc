#include "pkgcast/wql_event_query.h"

#include <gtest/gtest.h>

namespace pkgcast {
namespace {

using namespace std::chrono_literals;

TEST(WqlEventQueryTest, TheTextDotNetBuilds) {
  EXPECT_EQ((WqlEventQuery{.event_class_name = "__InstanceModificationEvent",
                           .within = 120s,
                           .condition = "TargetInstance isa 'SMS_PackageStatusRootSummarizer'"})
                .query_string(),
            "select * from __InstanceModificationEvent within 120 where TargetInstance isa "
            "'SMS_PackageStatusRootSummarizer'");
  EXPECT_EQ(WqlEventQuery{.event_class_name = "MyEvent"}.query_string(), "select * from MyEvent");
  EXPECT_EQ((WqlEventQuery{.event_class_name = "__InstanceCreationEvent", .within = 10s}).query_string(),
            "select * from __InstanceCreationEvent within 10");
  EXPECT_EQ((WqlEventQuery{.event_class_name = "MyEvent", .condition = "PropVal > 8", .group_within = 10s})
                .query_string(),
            "select * from MyEvent where PropVal > 8 group within 10");
  EXPECT_EQ((WqlEventQuery{.event_class_name = "EmailEvent", .group_within = 10min, .group_by = {"Sender"}})
                .query_string(),
            "select * from EmailEvent group within 600 by Sender");
  EXPECT_EQ((WqlEventQuery{.event_class_name = "EmailEvent",
                           .group_within = 300s,
                           .group_by = {"Sender", "Subject"},
                           .having = "NumberOfEvents > 5"})
                .query_string(),
            "select * from EmailEvent group within 300 by Sender,Subject having NumberOfEvents > 5");
}

TEST(WqlEventQueryTest, GroupByAndHavingNeedGroupWithin) {
  EXPECT_EQ((WqlEventQuery{.event_class_name = "E", .group_by = {"P"}, .having = "NumberOfEvents > 1"})
                .query_string(),
            "select * from E");
  EXPECT_EQ(WqlEventQuery{}.query_string(), "");
}

TEST(WqlEventQueryTest, SecondsAreWrittenAsDotNetWritesADouble) {
  auto text = [](std::chrono::duration<double> d) {
    return WqlEventQuery{.event_class_name = "E", .within = d}.query_string().substr(23);
  };
  EXPECT_EQ(text(500ms), "0.5");
  EXPECT_EQ(text(120.5s), "120.5");
  EXPECT_EQ(text(1ms), "0.001");
  EXPECT_EQ(text(std::chrono::duration<double>(0.0001)), "0.0001");
  EXPECT_EQ(text(std::chrono::duration<double>(0.00001)), "1E-05");
  EXPECT_EQ(text(std::chrono::duration<double>(1e6)), "1000000");
  EXPECT_EQ(text(std::chrono::duration<double>(1e15)), "1E+15");
  EXPECT_EQ(text(std::chrono::duration<double>(123456789012345.0)), "123456789012345");
  EXPECT_EQ(text(std::chrono::duration<double>(1.0 / 3)), "0.3333333333333333");
}

}  // namespace
}  // namespace pkgcast
