#include "pkgcast/error.h"

namespace pkgcast {

ManagementError::ManagementError(Error error) : std::runtime_error(error.to_string()), error_(std::move(error)) {}

void throw_if_error(const Status& status) {
  if (!status.ok()) throw ManagementError(status.error());
}

}  // namespace pkgcast
