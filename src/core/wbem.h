// WBEM status codes: the names and HRESULT values of WMI, so that errors read the way administrators know them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pkgcast {

// Values are WMI's HRESULTs (WbemErrorEnum). Only the codes pkgcast reports are listed.
enum class WbemCode : std::uint32_t {
  kOk = 0,
  kFailed = 0x80041001,
  kNotFound = 0x80041002,
  kAccessDenied = 0x80041003,
  kTypeMismatch = 0x80041005,
  kInvalidParameter = 0x80041008,
  kNotSupported = 0x8004100C,
  kInvalidNamespace = 0x8004100E,
  kInvalidObject = 0x8004100F,
  kInvalidClass = 0x80041010,
  kTransportFailure = 0x80041015,
  kInvalidOperation = 0x80041016,
  kInvalidQuery = 0x80041017,
  kInvalidQueryType = 0x80041018,
  kAlreadyExists = 0x80041019,
  kReadOnly = 0x80041023,
  kIllegalNull = 0x80041028,
  kValueOutOfRange = 0x8004102B,
  kInvalidMethod = 0x8004102E,
  kInvalidProperty = 0x80041031,
  kCallCancelled = 0x80041032,
  kInvalidObjectPath = 0x8004103A,
  kOutOfDiskSpace = 0x8004103B,
  kServerTooBusy = 0x80041045,
  kNotEventClass = 0x80041059,
  kAggregatingByObject = 0x8004105D,
  kInvalidOperator = 0x80041063,
  kTimedOut = 0x80041069,
  kQuotaViolation = 0x8004106C,
  kShuttingDown = 0x80041033,
  kRegistrationTooBroad = 0x80042001,
  kRegistrationTooPrecise = 0x80042002,
};

// "WBEM_E_INVALID_QUERY" for kInvalidQuery; "WBEM_S_NO_ERROR" for kOk.
std::string_view wbem_name(WbemCode code);

// "0x80041017".
std::string wbem_hresult(WbemCode code);

// Inverse of wbem_name; nullopt for a name pkgcast does not use.
std::optional<WbemCode> wbem_code_from_name(std::string_view name);

}  // namespace pkgcast
