// Field validation for the domain. Every check names the field it refuses, so an API error reads like
// `WBEM_E_INVALID_PARAMETER: Name must be 1..255 characters`.
#include "core/strings.h"
#include "site/internal.h"

namespace pkgcast::site::internal {
namespace {

bool is_alnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }

}  // namespace

Error invalid(std::string_view field, std::string_view why) {
  return make_error(WbemCode::kInvalidParameter, std::string(field) + " " + std::string(why));
}

Error not_found(std::string what) { return make_error(WbemCode::kNotFound, std::move(what)); }

Status check_text(std::string_view field, std::string_view value, std::size_t min, std::size_t max, TextKind kind) {
  if (value.size() < min || value.size() > max) {
    if (min == 0) return invalid(field, "must be at most " + std::to_string(max) + " bytes");
    return invalid(field, "must be " + std::to_string(min) + ".." + std::to_string(max) + " bytes");
  }
  if (!is_valid_utf8(value)) return invalid(field, "is not valid UTF-8");
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7F) continue;
    if (kind == TextKind::kMultiLine && (c == '\t' || c == '\n' || c == '\r')) continue;
    return invalid(field, "must not contain control characters");
  }
  return ok_status();
}

Result<std::string> normalize_site_code(std::string_view field, std::string_view value) {
  if (value.size() != 3)
    return invalid(field, "must be exactly 3 characters [A-Z0-9], got '" + std::string(value.substr(0, 16)) + "'");
  for (char c : value) {
    if (!is_alnum(c)) return invalid(field, "must be 3 characters [A-Z0-9], got '" + std::string(value) + "'");
  }
  return to_upper(value);
}

Status check_dp_name(std::string_view field, std::string_view value) {
  if (value.empty() || value.size() > 253) return invalid(field, "must be 1..253 characters");
  std::size_t label_start = 0;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size() && value[i] != '.') {
      const char c = value[i];
      if (!is_alnum(c) && c != '-') {
        return invalid(field, "may contain only letters, digits, '-' and '.' (a host name), got '" +
                                  std::string(value.substr(0, 64)) + "'");
      }
      continue;
    }
    const std::string_view label = value.substr(label_start, i - label_start);
    if (label.empty() || label.size() > 63) return invalid(field, "labels must be 1..63 characters");
    if (label.front() == '-' || label.back() == '-') return invalid(field, "labels must not start or end with '-'");
    label_start = i + 1;
  }
  return ok_status();
}

Result<std::string> normalize_object_id(std::string_view field, std::string_view value) {
  bool ok = value.size() == 8;
  for (std::size_t i = 0; ok && i < value.size(); ++i) ok = i < 3 ? is_alnum(value[i]) : is_hex(value[i]);
  if (!ok) {
    return invalid(field,
                   "must be a site code and 5 hex digits (ABC00001), got '" + std::string(value.substr(0, 32)) + "'");
  }
  return to_upper(value);
}

Status check_url(std::string_view field, std::string_view value) {
  PKG_TRY(check_text(field, value, 1, kMaxPath));
  if (!starts_with_icase(value, "http://") && !starts_with_icase(value, "https://")) {
    return invalid(field, "must be an http:// or https:// URL");
  }
  if (value.find(' ') != std::string_view::npos) return invalid(field, "must not contain spaces");
  const auto host_start = value.find("//") + 2;
  if (host_start >= value.size() || value[host_start] == '/') return invalid(field, "must name a host");
  return ok_status();
}

}  // namespace pkgcast::site::internal
