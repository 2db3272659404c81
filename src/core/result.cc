#include "core/result.h"

namespace pkgcast {

std::string Error::to_string() const {
  std::string out(wbem_name(code));
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

}  // namespace pkgcast
