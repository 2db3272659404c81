// Server metrics in Prometheus' text exposition format (version 0.0.4), served at GET /metrics.
//
//   pkgcast_http_requests_total{method,route,status}     counter. Every label is bounded: method is one of
//                                                         kKnownMethods or "-" (a request refused before its method
//                                                         was known good), route is the pattern
//                                                         ("/api/v1/packages/{id}") or a fixed label, never the raw
//                                                         path, and status is an HTTP status (100-599, else "other")
//   pkgcast_http_connections_evicted_total                counter: idle connections closed to admit a new one
//   pkgcast_http_connections_refused_total                counter: connections answered 503 at a connection limit
//   pkgcast_http_request_duration_seconds{route}          histogram, from request parsed to response handed over
//   pkgcast_http_open_connections                         gauge
//   pkgcast_http_active_streams                           gauge (chunked responses being produced)
//   plus gauges registered by the owner (pkgcast_store_last_revision, ...), read at scrape time.
//
// Thread safety: every method may be called from any thread. Gauge callbacks run on the scraping thread and must
// not call back into Metrics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include "core/mutex.h"
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/thread_annotations.h"

namespace pkgcast::server {

class Metrics {
 public:
  // Upper bounds (seconds) of the duration histogram; +Inf is implied.
  static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1.0,   2.5,   5.0,  10.0};

  // `route` must come from a bounded set (a router pattern or a fixed label); `method` and `status` are bounded
  // here whatever the caller passes.
  void record_request(std::string_view method, std::string_view route, unsigned status,
                      std::chrono::nanoseconds duration) PKG_EXCLUDES(mu_);

  void connection_evicted() { evicted_connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_refused() { refused_connections_.fetch_add(1, std::memory_order_relaxed); }

  void connection_opened() { open_connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }
  std::int64_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }
  void stream_started() { active_streams_.fetch_add(1, std::memory_order_relaxed); }
  void stream_finished() { active_streams_.fetch_sub(1, std::memory_order_relaxed); }
  std::int64_t active_streams() const { return active_streams_.load(std::memory_order_relaxed); }

  // A gauge whose value is read at scrape time; nullopt omits it from that scrape (e.g. the store is closing).
  // `name` must be a valid Prometheus metric name. Register before the server starts.
  void add_gauge(std::string name, std::string help, std::function<std::optional<double>()> read)
      PKG_EXCLUDES(mu_);

  // The whole exposition, "# HELP"/"# TYPE" lines included.
  std::string render() const PKG_EXCLUDES(mu_);

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};  // non-cumulative; rendered cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };
  struct Gauge {
    std::string name;
    std::string help;
    std::function<std::optional<double>()> read;
  };

  mutable Mutex mu_;
  std::map<std::tuple<std::string_view, std::string, unsigned>, std::uint64_t> requests_ PKG_GUARDED_BY(mu_);
  std::map<std::string, Histogram, std::less<>> durations_ PKG_GUARDED_BY(mu_);
  std::vector<Gauge> gauges_ PKG_GUARDED_BY(mu_);
  std::atomic<std::int64_t> open_connections_{0};
  std::atomic<std::int64_t> active_streams_{0};
  std::atomic<std::uint64_t> evicted_connections_{0};
  std::atomic<std::uint64_t> refused_connections_{0};
};

// Escapes a Prometheus label value (backslash, double quote, newline).
std::string escape_label_value(std::string_view value);

}  // namespace pkgcast::server
