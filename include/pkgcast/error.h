// Errors of the client library. Every operation comes in two forms:
//   - the throwing form (exec_query, start, next_event, ...) throws pkgcast::ManagementError;
//   - the `try_` form (try_exec_query, try_start, try_next_event, ...) returns pkgcast::Result<T> / pkgcast::Status
//     and never throws.
// Both carry the same {WbemCode, message}: the WMI names and HRESULTs (WBEM_E_INVALID_QUERY = 0x80041017).
#pragma once

#include <stdexcept>
#include <string>

#include "core/result.h"
#include "core/wbem.h"

namespace pkgcast {

// What the throwing API throws: the code and the message of the server (or of the transport).
class ManagementError : public std::runtime_error {
 public:
  explicit ManagementError(Error error);

  WbemCode code() const { return error_.code; }
  const std::string& message() const { return error_.message; }
  // "WBEM_E_INVALID_QUERY"
  std::string_view code_name() const { return wbem_name(error_.code); }
  const Error& error() const { return error_; }

 private:
  Error error_;
};

// Throws ManagementError when `status` failed; returns the value of `result` otherwise.
void throw_if_error(const Status& status);
template <typename T>
T value_or_throw(Result<T>&& result) {
  if (!result.ok()) throw ManagementError(std::move(result).error());
  return std::move(result).value();
}

}  // namespace pkgcast
