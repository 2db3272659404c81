// Decodes the answer of POST /api/v1/query, {"instances": [ {...}, {...} ], "error": {...}?}, as it streams in:
// each instance is handed over as soon as its closing brace arrives, and only that instance's text is held, so
// a large answer is never buffered whole (nor twice).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "pkgcast/instance.h"

namespace pkgcast::client {

// Not thread-safe; one decoder per answer.
class QueryAnswerDecoder {
 public:
  // One instance's JSON text, and everything outside the instances array, are bounded.
  static constexpr std::size_t kMaxInstanceBytes = 64u << 20;
  static constexpr std::size_t kMaxEnvelopeBytes = 1u << 20;

  explicit QueryAnswerDecoder(std::function<bool(Instance&&)> on_instance) : on_instance_(std::move(on_instance)) {}

  // Feeds the next piece. Returns false when on_instance asked to stop. WBEM_E_INVALID_OBJECT for an answer
  // that is not of the expected shape, WBEM_E_QUOTA_VIOLATION beyond the bounds.
  Result<bool> feed(std::string_view bytes);

  // At the end of the body: the error member the server appended when the query failed after rows had flowed,
  // or WBEM_E_INVALID_OBJECT for a truncated or malformed answer.
  Status finish();

 private:
  Result<bool> element_done();

  std::function<bool(Instance&&)> on_instance_;
  std::string envelope_;   // the answer without the instances' texts: {"instances":[],"error":{...}}
  std::string element_;    // the instance being received
  std::string last_key_;   // the last string closed at depth 1
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool in_instances_ = false;  // inside the "instances" array (depth 2)
  bool in_element_ = false;
  bool saw_instances_ = false;
};

}  // namespace pkgcast::client
