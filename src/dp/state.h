// The agent's durable state, <data-dir>/state.json: the last job-stream revision seen and, per package, the last
// job generation whose outcome is in the outbox. Written whole and atomically (core/paths.h write_file_atomic).
//
// {"name": "dp1", "revision": 42, "handled": {"ABC00001": 3, "ABC00002": 1}}
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "core/result.h"

namespace pkgcast::dp {

struct AgentState {
  std::uint64_t revision = 0;
  std::map<std::string, std::uint32_t> handled;  // PackageID -> generation
  std::string name;  // the DP whose state it is (--name); empty in a file written before it was recorded

  friend bool operator==(const AgentState&, const AgentState&) = default;
};

// A missing file is the empty state; a malformed one is WBEM_E_INVALID_PARAMETER naming the file.
Result<AgentState> load_state(const std::filesystem::path& file);
Status save_state(const std::filesystem::path& file, const AgentState& state);

}  // namespace pkgcast::dp
