#include "core/wbem.h"

#include <array>
#include <cstdio>
#include <string>
#include <utility>

namespace pkgcast {
namespace {

constexpr std::array<std::pair<WbemCode, std::string_view>, 32> kNames{{
    {WbemCode::kOk, "WBEM_S_NO_ERROR"},
    {WbemCode::kFailed, "WBEM_E_FAILED"},
    {WbemCode::kNotFound, "WBEM_E_NOT_FOUND"},
    {WbemCode::kAccessDenied, "WBEM_E_ACCESS_DENIED"},
    {WbemCode::kTypeMismatch, "WBEM_E_TYPE_MISMATCH"},
    {WbemCode::kInvalidParameter, "WBEM_E_INVALID_PARAMETER"},
    {WbemCode::kNotSupported, "WBEM_E_NOT_SUPPORTED"},
    {WbemCode::kInvalidNamespace, "WBEM_E_INVALID_NAMESPACE"},
    {WbemCode::kInvalidObject, "WBEM_E_INVALID_OBJECT"},
    {WbemCode::kInvalidClass, "WBEM_E_INVALID_CLASS"},
    {WbemCode::kTransportFailure, "WBEM_E_TRANSPORT_FAILURE"},
    {WbemCode::kInvalidOperation, "WBEM_E_INVALID_OPERATION"},
    {WbemCode::kInvalidQuery, "WBEM_E_INVALID_QUERY"},
    {WbemCode::kInvalidQueryType, "WBEM_E_INVALID_QUERY_TYPE"},
    {WbemCode::kAlreadyExists, "WBEM_E_ALREADY_EXISTS"},
    {WbemCode::kReadOnly, "WBEM_E_READ_ONLY"},
    {WbemCode::kIllegalNull, "WBEM_E_ILLEGAL_NULL"},
    {WbemCode::kValueOutOfRange, "WBEM_E_VALUE_OUT_OF_RANGE"},
    {WbemCode::kInvalidMethod, "WBEM_E_INVALID_METHOD"},
    {WbemCode::kInvalidProperty, "WBEM_E_INVALID_PROPERTY"},
    {WbemCode::kCallCancelled, "WBEM_E_CALL_CANCELLED"},
    {WbemCode::kInvalidObjectPath, "WBEM_E_INVALID_OBJECT_PATH"},
    {WbemCode::kOutOfDiskSpace, "WBEM_E_OUT_OF_DISK_SPACE"},
    {WbemCode::kServerTooBusy, "WBEM_E_SERVER_TOO_BUSY"},
    {WbemCode::kNotEventClass, "WBEM_E_NOT_EVENT_CLASS"},
    {WbemCode::kAggregatingByObject, "WBEM_E_AGGREGATING_BY_OBJECT"},
    {WbemCode::kInvalidOperator, "WBEM_E_INVALID_OPERATOR"},
    {WbemCode::kTimedOut, "WBEM_E_TIMED_OUT"},
    {WbemCode::kQuotaViolation, "WBEM_E_QUOTA_VIOLATION"},
    {WbemCode::kShuttingDown, "WBEM_E_SHUTTING_DOWN"},
    {WbemCode::kRegistrationTooBroad, "WBEMESS_E_REGISTRATION_TOO_BROAD"},
    {WbemCode::kRegistrationTooPrecise, "WBEMESS_E_REGISTRATION_TOO_PRECISE"},
}};

}  // namespace

std::string_view wbem_name(WbemCode code) {
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "WBEM_E_FAILED";
}

std::string wbem_hresult(WbemCode code) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", static_cast<unsigned>(code));
  return buf;
}

std::optional<WbemCode> wbem_code_from_name(std::string_view name) {
  for (const auto& [c, n] : kNames) {
    if (n == name) return c;
  }
  return std::nullopt;
}

}  // namespace pkgcast
