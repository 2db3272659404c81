#include "server/metrics.h"

#include <gtest/gtest.h>

namespace pkgcast::server {
namespace {

using std::chrono::microseconds;

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(MetricsTest, CountsRequestsByMethodRouteAndStatus) {
  Metrics m;
  m.record_request("GET", "/api/v1/packages/{id}", 200, microseconds(300));
  m.record_request("GET", "/api/v1/packages/{id}", 200, microseconds(300));
  m.record_request("GET", "/api/v1/packages/{id}", 404, microseconds(300));
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, R"(pkgcast_http_requests_total{method="GET",route="/api/v1/packages/{id}",status="200"} 2)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(pkgcast_http_requests_total{method="GET",route="/api/v1/packages/{id}",status="404"} 1)"));
  EXPECT_TRUE(has_line(text, "# TYPE pkgcast_http_requests_total counter"));
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Metrics m;
  m.record_request("GET", "/r", 200, microseconds(400));     // <= 0.0005
  m.record_request("GET", "/r", 200, microseconds(2000));    // <= 0.0025
  m.record_request("GET", "/r", 200, std::chrono::seconds(20));  // only +Inf
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, R"(pkgcast_http_request_duration_seconds_bucket{route="/r",le="0.0005"} 1)")) << text;
  EXPECT_TRUE(has_line(text, R"(pkgcast_http_request_duration_seconds_bucket{route="/r",le="0.001"} 1)"));
  EXPECT_TRUE(has_line(text, R"(pkgcast_http_request_duration_seconds_bucket{route="/r",le="0.0025"} 2)"));
  EXPECT_TRUE(has_line(text, R"(pkgcast_http_request_duration_seconds_bucket{route="/r",le="10"} 2)")) << text;
  EXPECT_TRUE(has_line(text, R"(pkgcast_http_request_duration_seconds_bucket{route="/r",le="+Inf"} 3)"));
  EXPECT_TRUE(has_line(text, R"(pkgcast_http_request_duration_seconds_count{route="/r"} 3)"));
}

TEST(MetricsTest, GaugesAndConnectionCounts) {
  Metrics m;
  m.connection_opened();
  m.connection_opened();
  m.connection_closed();
  m.stream_started();
  m.add_gauge("pkgcast_store_last_revision", "Last journal revision.", [] { return std::optional<double>(42); });
  m.add_gauge("pkgcast_absent", "Omitted.", [] { return std::optional<double>(); });
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, "pkgcast_http_open_connections 1"));
  EXPECT_TRUE(has_line(text, "pkgcast_http_active_streams 1"));
  EXPECT_TRUE(has_line(text, "pkgcast_store_last_revision 42"));
  EXPECT_EQ(text.find("pkgcast_absent"), std::string::npos);
}

TEST(MetricsTest, InventedMethodsAndStatusesDoNotGrowTheLabelSet) {
  Metrics m;
  m.record_request("GET", "/r", 200, microseconds(1));
  const std::size_t before = m.render().size();
  for (int i = 0; i < 2000; ++i) {
    m.record_request("X" + std::to_string(i), "/r", 200, microseconds(1));
    m.record_request("GET", "/r", 1000 + static_cast<unsigned>(i), microseconds(1));
  }
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, R"(pkgcast_http_requests_total{method="-",route="/r",status="200"} 2000)")) << text;
  EXPECT_TRUE(has_line(text, R"(pkgcast_http_requests_total{method="GET",route="/r",status="other"} 2000)"));
  EXPECT_LT(text.size(), before + 400);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace pkgcast::server
