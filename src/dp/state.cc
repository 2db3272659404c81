#include "dp/state.h"

#include <nlohmann/json.hpp>

#include "core/paths.h"

namespace pkgcast::dp {

Result<AgentState> load_state(const std::filesystem::path& file) {
  auto text = read_file(file.string());
  if (!text.ok()) {
    if (text.error().code == WbemCode::kNotFound) return AgentState{};
    return std::move(text).error();
  }
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&] { return make_error(WbemCode::kInvalidParameter, "malformed agent state '" + file.string() + "'"); };
  if (!j.is_object()) return bad();
  AgentState state;
  if (auto it = j.find("name"); it != j.end()) {
    if (!it->is_string()) return bad();
    state.name = it->get<std::string>();
  }
  if (auto it = j.find("revision"); it != j.end()) {
    if (!it->is_number_unsigned()) return bad();
    state.revision = it->get<std::uint64_t>();
  }
  if (auto it = j.find("handled"); it != j.end()) {
    if (!it->is_object()) return bad();
    for (const auto& [k, v] : it->items()) {
      if (!v.is_number_unsigned()) return bad();
      state.handled[k] = static_cast<std::uint32_t>(v.get<std::uint64_t>());
    }
  }
  return state;
}

Status save_state(const std::filesystem::path& file, const AgentState& state) {
  nlohmann::json j = {{"revision", state.revision}, {"handled", nlohmann::json::object()}};
  if (!state.name.empty()) j["name"] = state.name;
  for (const auto& [k, v] : state.handled) j["handled"][k] = v;
  return write_file_atomic(file.string(), j.dump() + "\n", 0600);
}

}  // namespace pkgcast::dp
