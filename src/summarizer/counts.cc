// The counting rules of classes.md as arithmetic: what one DistPoints row contributes to each summary. Every
// operation computes contribution(after) - contribution(before) and applies that delta, so the rules live here
// only, and check.cc sums the same function over every row.
#include "summarizer/internal.h"

namespace pkgcast::summarizer {

std::string_view dp_state_name(DpState s) {
  switch (s) {
    case DpState::kInstalled: return "INSTALLED";
    case DpState::kInstallPending: return "INSTALL_PENDING";
    case DpState::kInstallRetrying: return "INSTALL_RETRYING";
    case DpState::kInstallFailed: return "INSTALL_FAILED";
    case DpState::kRemovalPending: return "REMOVAL_PENDING";
    case DpState::kRemovalRetrying: return "REMOVAL_RETRYING";
    case DpState::kRemovalFailed: return "REMOVAL_FAILED";
    case DpState::kContentUpdating: return "CONTENT_UPDATING";
    case DpState::kContentMonitoring: return "CONTENT_MONITORING";
  }
  return "UNKNOWN";
}

std::optional<DpState> dp_state_from(std::uint64_t value) {
  if (value > static_cast<std::uint64_t>(DpState::kContentMonitoring)) return std::nullopt;
  return static_cast<DpState>(value);
}

bool offered(bool has_source_files, std::uint64_t targeted, std::uint64_t installed) {
  if (!has_source_files) return true;
  return targeted > 0 && installed == targeted;
}

namespace internal {

Counts& Counts::operator+=(const Counts& o) {
  targeted += o.targeted;
  installed += o.installed;
  retrying += o.retrying;
  failed += o.failed;
  in_progress += o.in_progress;
  errors += o.errors;
  unknown += o.unknown;
  return *this;
}

Counts operator-(const Counts& a, const Counts& b) {
  return Counts{a.targeted - b.targeted,       a.installed - b.installed, a.retrying - b.retrying, a.failed - b.failed,
                a.in_progress - b.in_progress, a.errors - b.errors,       a.unknown - b.unknown};
}

bool Counts::moves_targeted_installed_retrying_failed() const {
  return targeted != 0 || installed != 0 || retrying != 0 || failed != 0;
}

bool Counts::moves_extra_info() const {
  return targeted != 0 || installed != 0 || in_progress != 0 || errors != 0 || unknown != 0;
}

bool Counts::moves_dp_status() const {
  return installed != 0 || in_progress != 0 || errors != 0 || unknown != 0;
}

bool targeted_state(DpState s) {
  return s != DpState::kRemovalPending && s != DpState::kRemovalRetrying && s != DpState::kRemovalFailed;
}

Counts contribution(const RowFacts& row, std::uint32_t current_version) {
  const DpState s = row.state;
  Counts c;
  c.targeted = targeted_state(s) ? 1 : 0;
  c.installed = s == DpState::kInstalled && row.version == current_version ? 1 : 0;
  c.retrying = s == DpState::kInstallRetrying || s == DpState::kRemovalRetrying ? 1 : 0;
  c.failed = s == DpState::kInstallFailed || s == DpState::kRemovalFailed ? 1 : 0;
  c.errors = c.failed;
  c.in_progress = s == DpState::kInstallPending || s == DpState::kInstallRetrying || s == DpState::kRemovalPending ||
                          s == DpState::kRemovalRetrying || s == DpState::kContentUpdating ||
                          s == DpState::kContentMonitoring
                      ? 1
                      : 0;
  c.unknown = s == DpState::kInstallPending ? 1 : 0;
  return c;
}

std::uint32_t worst_message_state(std::uint64_t errors, std::uint64_t in_progress) {
  if (errors > 0) return kMessageError;
  if (in_progress > 0) return kMessageInProgress;
  return kMessageSuccess;
}

}  // namespace internal
}  // namespace pkgcast::summarizer
