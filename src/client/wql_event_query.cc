#include "pkgcast/wql_event_query.h"

#include <array>
#include <charconv>

namespace pkgcast {
namespace {

// .NET (Core 3.0 and later) writes TimeSpan.TotalSeconds with double.ToString(InvariantCulture): the shortest
// digits that read back as the same double, laid out as the "G" format does for doubles: fixed when the decimal
// exponent is in (-5, 15), otherwise "d.dddE+XX" with at least two exponent digits ("1E+15", "1E-05").
std::string seconds_text(double s) {
  std::array<char, 64> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), s, std::chars_format::scientific);
  if (ec != std::errc()) return "0";
  const std::string sci(buf.data(), end);  // "-1.2345e+02"
  const std::size_t e = sci.find('e');
  std::string sign;
  std::string digits;
  for (std::size_t i = 0; i < e; ++i) {
    if (sci[i] == '-') sign = "-";
    if (sci[i] >= '0' && sci[i] <= '9') digits += sci[i];
  }
  int exp = 0;
  std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exp);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (digits == "0") return "0";
  if (exp > -5 && exp < 15) {
    std::string out;
    if (exp < 0) {
      out = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<std::size_t>(exp) + 1 >= digits.size()) {
      out = digits + std::string(static_cast<std::size_t>(exp) + 1 - digits.size(), '0');
    } else {
      out = digits.substr(0, static_cast<std::size_t>(exp) + 1) + "." + digits.substr(static_cast<std::size_t>(exp) + 1);
    }
    return sign + out;
  }
  std::string out = sign + digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  std::string exp_digits = std::to_string(exp < 0 ? -exp : exp);
  if (exp_digits.size() < 2) exp_digits.insert(0, "0");
  return out + "E" + (exp < 0 ? "-" : "+") + exp_digits;
}

}  // namespace

std::string WqlEventQuery::query_string() const {
  if (event_class_name.empty()) return {};
  std::string s = "select * from " + event_class_name;
  if (within.count() != 0) s += " within " + seconds_text(within.count());
  if (!condition.empty()) s += " where " + condition;
  if (group_within.count() != 0) {
    s += " group within " + seconds_text(group_within.count());
    if (!group_by.empty()) {
      s += " by ";
      for (std::size_t i = 0; i < group_by.size(); ++i) {
        if (i > 0) s += ',';
        s += group_by[i];
      }
    }
    if (!having.empty()) s += " having " + having;
  }
  return s;
}

}  // namespace pkgcast
