// A PKG_DPJob as the agent sees it (docs/dp-protocol.md): what the server wants this DP to hold for one package.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace pkgcast::dp {

enum class JobAction : std::uint32_t { kInstall = 1, kRemove = 2, kValidate = 3, kCancel = 4 };

struct DpJob {
  std::string package_id;  // [A-Za-z0-9]{1,32}: it names directories on the DP
  std::string nal_path;
  JobAction action = JobAction::kInstall;
  std::uint32_t generation = 0;
  std::string content_id;  // "<PackageID>.<SourceVersion>", checked to be exactly that
  std::uint32_t source_version = 0;
  std::string manifest_hash;  // 64 lower-case hex digits (install and validate)
  std::uint64_t content_size = 0;
  std::vector<std::string> sources;  // content base URLs, in priority order (docs/dp-protocol.md, "Sources")
  std::uint32_t transfer_rate_kib = 0;  // 0 = unlimited
  // JobState 1 (SENT): the server gave the job its slot and the agent acts on it. A QUEUED job (0) is only
  // announced, and DONE (2) or FAILED (3) are over: the agent leaves those alone. Absent means SENT.
  bool sent = true;
  // Not a job of the server's: the package's job was deleted, and what the DP holds of the package goes, unreported
  // (action kRemove, generation 0).
  bool cleanup = false;
};

// Reads a PKG_DPJob instance in the API's JSON form. Everything that ends up in a file name or a URL is checked
// here (package id, content id, manifest hash), so later code can build paths from a DpJob without re-checking.
// Integers are accepted as JSON numbers or decimal strings. WBEM_E_INVALID_PARAMETER naming the property otherwise.
Result<DpJob> parse_job(std::string_view json);

std::string_view action_name(JobAction action);

// True for [A-Za-z0-9]{1,32}.
bool valid_package_id(std::string_view id);

}  // namespace pkgcast::dp
