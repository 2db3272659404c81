#include "client/query_stream.h"

#include <nlohmann/json.hpp>

namespace pkgcast::client {
namespace {

Error malformed(std::string_view what) {
  return make_error(WbemCode::kInvalidObject, "malformed query answer: " + std::string(what));
}

}  // namespace

Result<bool> QueryAnswerDecoder::feed(std::string_view bytes) {
  for (const char c : bytes) {
    if (in_element_) {
      if (element_.size() >= kMaxInstanceBytes) {
        return make_error(WbemCode::kQuotaViolation,
                          "an instance of the answer is larger than " + std::to_string(kMaxInstanceBytes) + " bytes");
      }
      element_ += c;
    } else if (!(in_instances_ && depth_ >= 2 && c != ']')) {
      if (envelope_.size() >= kMaxEnvelopeBytes) return malformed("too large outside the instances");
      envelope_ += c;
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      } else if (depth_ == 1 && last_key_.size() < 64) {
        last_key_ += c;
      }
      continue;
    }
    if (in_instances_ && depth_ == 2 && c != '{' && c != ',' && c != ']' && c != ' ' && c != '\n' && c != '\r' &&
        c != '\t') {
      return malformed("an element of instances is not an object");
    }
    switch (c) {
      case '"':
        in_string_ = true;
        if (depth_ == 1) last_key_.clear();
        break;
      case '{':
      case '[':
        ++depth_;
        if (depth_ > Instance::kMaxObjectDepth + 2) return malformed("nested too deep");
        if (depth_ == 2 && c == '[' && last_key_ == "instances") {
          in_instances_ = true;
          saw_instances_ = true;
        } else if (in_instances_ && depth_ == 3) {
          if (c != '{') return malformed("an element of instances is not an object");
          in_element_ = true;
          element_ = "{";
        }
        break;
      case '}':
      case ']':
        --depth_;
        if (depth_ < 0) return malformed("unbalanced brackets");
        if (in_element_ && depth_ == 2) {
          in_element_ = false;
          PKG_ASSIGN_OR_RETURN(bool go_on, element_done());
          if (!go_on) return false;
        } else if (in_instances_ && depth_ == 1) {
          in_instances_ = false;
        }
        break;
      default:
        break;
    }
  }
  return true;
}

Result<bool> QueryAnswerDecoder::element_done() {
  auto inst = Instance::from_json(element_);
  element_.clear();
  if (!inst.ok()) return malformed(inst.error().message);
  return on_instance_(std::move(inst).value());
}

Status QueryAnswerDecoder::finish() {
  if (depth_ != 0 || in_string_ || !saw_instances_) return malformed("truncated");
  auto j = nlohmann::json::parse(envelope_, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return malformed("not a JSON object");
  const auto it = j.find("error");
  if (it == j.end()) return ok_status();
  const nlohmann::json& e = *it;
  std::string name = e.is_object() && e.contains("error") && e["error"].is_string() ? e["error"].get<std::string>() : "";
  std::string message =
      e.is_object() && e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
  const auto code = wbem_code_from_name(name);
  return make_error(code.value_or(WbemCode::kFailed), code ? message : name + ": " + message);
}

}  // namespace pkgcast::client
