#include "server/metrics.h"

#include <cstdio>
#include <cstdlib>

#include "server/request_rules.h"

namespace pkgcast::server {
namespace {

// The shortest plain text that reads back as the same double ("0.0005", not "0.00050000000000000001"; "10", not
// "1e+01"); very large or small values keep their exponent.
std::string format_double(double v) {
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v && std::string_view(buf).find('e') == std::string_view::npos) break;
  }
  return buf;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Metrics::record_request(std::string_view method, std::string_view route, unsigned status,
                             std::chrono::nanoseconds duration) {
  const double seconds = std::chrono::duration<double>(duration).count();
  // The method label is one of the fixed strings (string_view keys into static storage), never client text.
  const std::string_view method_label = known_method(method).value_or("-");
  const unsigned status_label = status >= 100 && status <= 599 ? status : 0;
  MutexLock lock(mu_);
  ++requests_[{method_label, std::string(route), status_label}];
  auto it = durations_.find(route);
  if (it == durations_.end()) it = durations_.emplace(std::string(route), Histogram{}).first;
  Histogram& h = it->second;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::add_gauge(std::string name, std::string help, std::function<std::optional<double>()> read) {
  MutexLock lock(mu_);
  gauges_.push_back(Gauge{std::move(name), std::move(help), std::move(read)});
}

std::string Metrics::render() const {
  std::string out;
  out.reserve(4096);
  std::vector<Gauge> gauges;
  {
    MutexLock lock(mu_);
    out += "# HELP pkgcast_http_requests_total HTTP requests answered, by method, route pattern and status.\n";
    out += "# TYPE pkgcast_http_requests_total counter\n";
    for (const auto& [key, count] : requests_) {
      const auto& [method, route, status] = key;
      out += "pkgcast_http_requests_total{method=\"" + escape_label_value(method) + "\",route=\"" +
             escape_label_value(route) + "\",status=\"" + (status == 0 ? "other" : std::to_string(status)) +
             "\"} " +
             std::to_string(count) + "\n";
    }
    out += "# HELP pkgcast_http_request_duration_seconds Time from request parsed to response handed to the "
           "network, by route pattern.\n";
    out += "# TYPE pkgcast_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : durations_) {
      const std::string label = "route=\"" + escape_label_value(route) + "\"";
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < kBuckets.size(); ++i) {
        cumulative += h.buckets[i];
        out += "pkgcast_http_request_duration_seconds_bucket{" + label + ",le=\"" + format_double(kBuckets[i]) +
               "\"} " + std::to_string(cumulative) + "\n";
      }
      out += "pkgcast_http_request_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " +
             std::to_string(h.count) + "\n";
      out += "pkgcast_http_request_duration_seconds_sum{" + label + "} " + format_double(h.sum) + "\n";
      out += "pkgcast_http_request_duration_seconds_count{" + label + "} " + std::to_string(h.count) + "\n";
    }
    gauges = gauges_;
  }
  out += "# HELP pkgcast_http_open_connections Client connections currently open.\n";
  out += "# TYPE pkgcast_http_open_connections gauge\n";
  out += "pkgcast_http_open_connections " + std::to_string(open_connections()) + "\n";
  out += "# HELP pkgcast_http_active_streams Chunked responses (query results, event streams) in progress.\n";
  out += "# TYPE pkgcast_http_active_streams gauge\n";
  out += "pkgcast_http_active_streams " + std::to_string(active_streams()) + "\n";
  out += "# HELP pkgcast_http_connections_evicted_total Idle connections closed to admit a new one at a connection "
         "limit.\n";
  out += "# TYPE pkgcast_http_connections_evicted_total counter\n";
  out += "pkgcast_http_connections_evicted_total " +
         std::to_string(evicted_connections_.load(std::memory_order_relaxed)) + "\n";
  out += "# HELP pkgcast_http_connections_refused_total Connections answered 503 at a connection limit.\n";
  out += "# TYPE pkgcast_http_connections_refused_total counter\n";
  out += "pkgcast_http_connections_refused_total " +
         std::to_string(refused_connections_.load(std::memory_order_relaxed)) + "\n";
  // Gauges are read outside the lock: a callback may touch the database and must not stall request accounting.
  for (const auto& g : gauges) {
    const auto value = g.read();
    if (!value) continue;
    out += "# HELP " + g.name + " " + g.help + "\n";
    out += "# TYPE " + g.name + " gauge\n";
    out += g.name + " " + format_double(*value) + "\n";
  }
  return out;
}

}  // namespace pkgcast::server
