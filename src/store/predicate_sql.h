// Predicate -> SQL WHERE text with bound parameters. Internal to src/store.
#pragma once

#include <string>

#include "core/result.h"
#include "store/schema.h"
#include "store/sql.h"
#include "store/store.h"

namespace pkgcast::store {

// Renders `p` for `table`, appending its values to `params` (placeholders continue from params.size()).
// The SQL admits every row `p` admits (a superset where SQL cannot say exactly, e.g. comparisons on arrays).
// Errors: WBEM_E_INVALID_PROPERTY (index out of range), WBEM_E_TYPE_MISMATCH (value of the wrong kind),
// WBEM_E_INVALID_PARAMETER (NULL comparison value, pattern ending in a lone '\', bad text),
// WBEM_E_QUOTA_VIOLATION (nested deeper than 256 or more than 30,000 values).
Result<std::string> render_predicate(const Predicate& p, const TableInfo& table, const Dialect& d, SqlParams& params);

}  // namespace pkgcast::store
