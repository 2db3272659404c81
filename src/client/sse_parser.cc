#include "client/sse_parser.h"

#include <charconv>

namespace pkgcast::client {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

}  // namespace

Result<bool> SseParser::feed(std::string_view bytes, const SseCallbacks& callbacks) {
  std::size_t i = 0;
  // The BOM may itself arrive split across pieces.
  while (at_start_ && i < bytes.size()) {
    if (bytes[i] == kBom[bom_matched_]) {
      ++bom_matched_;
      ++i;
      if (bom_matched_ == kBom.size()) at_start_ = false;
      continue;
    }
    at_start_ = false;
    // A partial BOM that did not complete was text after all.
    line_.append(kBom.substr(0, bom_matched_));
  }
  while (i < bytes.size()) {
    const char c = bytes[i];
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') {
        ++i;
        continue;
      }
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      ++i;
      PKG_ASSIGN_OR_RETURN(bool go_on, line(line_, callbacks));
      line_.clear();
      if (!go_on) return false;
      continue;
    }
    // Copy the run up to the next line ending at once.
    std::size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) end = bytes.size();
    if (line_.size() + (end - i) > kMaxLineBytes) {
      return make_error(WbemCode::kQuotaViolation,
                        "event stream line longer than " + std::to_string(kMaxLineBytes) + " bytes");
    }
    line_.append(bytes.substr(i, end - i));
    i = end;
  }
  return true;
}

Result<bool> SseParser::line(std::string_view text, const SseCallbacks& callbacks) {
  if (text.empty()) {
    if (!data_seen_) {
      type_.clear();
      return true;
    }
    SseEvent event;
    event.type = type_.empty() ? "message" : type_;
    event.data = std::move(data_);
    if (!event.data.empty() && event.data.back() == '\n') event.data.pop_back();
    event.last_event_id = last_event_id_;
    data_.clear();
    type_.clear();
    data_seen_ = false;
    return !callbacks.on_event || callbacks.on_event(event);
  }
  if (text.front() == ':') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    if (callbacks.on_comment) callbacks.on_comment(text);
    return true;
  }
  std::string_view field = text;
  std::string_view value;
  if (const std::size_t colon = text.find(':'); colon != std::string_view::npos) {
    field = text.substr(0, colon);
    value = text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (data_.size() + value.size() + 1 > kMaxEventBytes) {
      return make_error(WbemCode::kQuotaViolation,
                        "event stream event larger than " + std::to_string(kMaxEventBytes) + " bytes");
    }
    data_.append(value);
    data_ += '\n';
    data_seen_ = true;
  } else if (field == "event") {
    type_ = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_ = std::string(value);
  } else if (field == "retry") {
    std::uint64_t ms = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (ec == std::errc() && end == value.data() + value.size() && !value.empty() && callbacks.on_retry) {
      callbacks.on_retry(ms);
    }
  }
  return true;
}

}  // namespace pkgcast::client
