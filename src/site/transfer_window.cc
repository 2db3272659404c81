#include "site/transfer_window.h"

#include "core/clock.h"

#include <array>
#include <cctype>
#include <charconv>
#include <optional>
#include <vector>

#include "core/strings.h"

namespace pkgcast::site {
namespace {

constexpr std::array<std::string_view, 7> kDays = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
constexpr Micros kHour = 3'600'000'000;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

Error bad(std::string_view rule, std::string_view why) {
  return make_error(WbemCode::kInvalidParameter,
                    "transfer window rule '" + std::string(rule) + "': " + std::string(why) +
                        " (rules are DAYS HOURS LEVEL, e.g. \"Mon-Fri 08-18 closed\"; docs/distribution.md)");
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

std::optional<int> day_of(std::string_view name) {
  for (std::size_t i = 0; i < kDays.size(); ++i) {
    if (iequals(name, kDays[i])) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::optional<int> hour_of(std::string_view text) {
  int h = -1;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), h);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty() || text.size() > 2 || h < 0 || h > 24) {
    return std::nullopt;
  }
  return h;
}

// Days of the week a DAYS field names.
Result<std::array<bool, 7>> parse_days(std::string_view rule, std::string_view field) {
  std::array<bool, 7> days{};
  if (field == "*") {
    days.fill(true);
    return days;
  }
  for (std::string_view part : split(field, ',')) {
    const std::size_t dash = part.find('-');
    const auto first = day_of(part.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : day_of(part.substr(dash + 1));
    if (!first || !last) return bad(rule, "'" + std::string(part) + "' is not a day or a range of days");
    for (int d = *first;; d = (d + 1) % 7) {
      days[static_cast<std::size_t>(d)] = true;
      if (d == *last) break;
    }
  }
  return days;
}

char level_of(std::string_view word) {
  if (iequals(word, "all") || iequals(word, "open")) return 'A';
  if (iequals(word, "medium") || iequals(word, "normal")) return 'M';
  if (iequals(word, "high")) return 'H';
  if (iequals(word, "closed")) return 'C';
  return 0;
}

bool allows(char level, std::uint32_t priority) {
  switch (level) {
    case 'C': return false;
    case 'H': return priority <= 1;
    case 'M': return priority <= 2;
    default: return true;  // 'A', and anything unexpected
  }
}

bool well_formed(std::string_view window) {
  if (window.size() != kHoursPerWeek) return false;
  for (char c : window) {
    if (c != 'A' && c != 'M' && c != 'H' && c != 'C') return false;
  }
  return true;
}

// Hour of the week (0 = Sunday 00:00 UTC) of `now`; 1970-01-01 was a Thursday.
std::size_t hour_of_week(Micros now) {
  const Micros hours = now >= 0 ? now / kHour : (now - kHour + 1) / kHour;
  const Micros h = (hours + 4 * 24) % static_cast<Micros>(kHoursPerWeek);
  return static_cast<std::size_t>(h < 0 ? h + static_cast<Micros>(kHoursPerWeek) : h);
}

}  // namespace

Result<std::string> parse_transfer_window(std::string_view text) {
  const std::string_view trimmed = trim(text);
  if (trimmed.empty()) return std::string();
  std::string upper;
  for (char c : trimmed) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (well_formed(upper)) return upper.find_first_not_of('A') == std::string::npos ? std::string() : upper;

  std::string week(kHoursPerWeek, 'A');
  for (std::string_view raw : split(trimmed, ';')) {
    const std::string_view rule = trim(raw);
    if (rule.empty()) continue;
    std::vector<std::string_view> fields;
    for (std::string_view f : split(rule, ' ')) {
      if (!f.empty()) fields.push_back(f);
    }
    if (fields.size() != 3) return bad(rule, "a rule has three fields");
    PKG_ASSIGN_OR_RETURN(auto days, parse_days(rule, fields[0]));
    int from = 0, to = 24;
    if (fields[1] != "*") {
      const std::size_t dash = fields[1].find('-');
      const auto a = dash == std::string_view::npos ? std::nullopt : hour_of(fields[1].substr(0, dash));
      const auto b = dash == std::string_view::npos ? std::nullopt : hour_of(fields[1].substr(dash + 1));
      if (!a || !b || *a == 24 || *a == *b) {
        return bad(rule, "'" + std::string(fields[1]) + "' is not an hour range such as 08-18");
      }
      from = *a;
      to = *b;
    }
    const char level = level_of(fields[2]);
    if (level == 0) return bad(rule, "'" + std::string(fields[2]) + "' is not all, medium, high or closed");
    for (std::size_t d = 0; d < 7; ++d) {
      if (!days[d]) continue;
      // A wrapping range (22-06) runs into the next day.
      const int span = to > from ? to - from : 24 - from + to;
      for (int k = 0; k < span; ++k) week[(d * 24 + static_cast<std::size_t>(from + k)) % kHoursPerWeek] = level;
    }
  }
  return week.find_first_not_of('A') == std::string::npos ? std::string() : week;
}

bool transfer_window_open(std::string_view window, std::uint32_t priority, Micros now) {
  if (!well_formed(window)) return true;
  return allows(window[hour_of_week(now)], priority);
}

Micros next_transfer_window_opening(std::string_view window, std::uint32_t priority, Micros now) {
  const Micros hour_start = now - (((now % kHour) + kHour) % kHour);
  if (!well_formed(window)) return hour_start + kHour;  // open at every hour
  const std::size_t h = hour_of_week(now);
  for (std::size_t k = 1; k <= kHoursPerWeek; ++k) {
    if (allows(window[(h + k) % kHoursPerWeek], priority)) return hour_start + static_cast<Micros>(k) * kHour;
  }
  return 0;
}

}  // namespace pkgcast::site
