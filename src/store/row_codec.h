// Instances <-> rows, keys -> parameters, instances <-> journal JSON. Internal to src/store.
// The mapping rules are docs/storage.md's "Type mapping".
#pragma once

#include <string>
#include <vector>

#include "cim/cim.h"
#include "core/result.h"
#include "store/schema.h"
#include "store/sql.h"

namespace pkgcast::store {

// An instance checked and converted for storage: its values coerced to the table's class, and the parameters
// for every column in property order.
struct EncodedInstance {
  cim::Instance instance;
  SqlParams params;
};

// Errors (nothing is written): WBEM_E_ILLEGAL_NULL for a NULL key property; WBEM_E_TYPE_MISMATCH for a value that
// does not convert to its property's type; WBEM_E_VALUE_OUT_OF_RANGE for a uint64 above INT64_MAX;
// WBEM_E_INVALID_PARAMETER for text that is not valid UTF-8 or holds NUL, and for a NaN real.
Result<EncodedInstance> encode_instance(const TableInfo& table, const cim::Instance& inst);
// The same, keeping `inst`'s values rather than copying them when it is of the table's class. The result is the
// same: no location, no revision.
Result<EncodedInstance> encode_instance(const TableInfo& table, cim::Instance&& inst);

// The key parameters for `key` (key values in key order, coerced to the key properties' types).
// WBEM_E_INVALID_PARAMETER when the count is wrong or a value is NULL.
Result<SqlParams> encode_key(const TableInfo& table, const std::vector<cim::Value>& key);

// One value as a parameter, for a column of type `type`.
Result<SqlParam> encode_value(const cim::Value& v, cim::Type type, std::string_view property);

// A row of select_list back into an instance of table.cls.
Result<cim::Instance> decode_row(const TableInfo& table, const SqlRow& row, const cim::ClassRegistry& registry);

// Text that PostgreSQL's TEXT and SQLite's TEXT both keep byte for byte: valid UTF-8, no NUL.
Status check_text(std::string_view s, std::string_view what);

// The journal's instance columns.
Result<std::string> instance_to_json_text(const cim::Instance& inst);
Result<cim::Instance> instance_from_json_text(std::string_view text, const cim::ClassRegistry& registry);

// The journal's `previous` column of a modification (docs/storage.md, "The journal's previous instance"): the
// properties whose value in `previous` differs from `now`'s, each with its previous value (null for NULL), as a
// JSON object without "__CLASS". Precondition: both are of the same class.
Result<std::string> previous_delta_json_text(const cim::Instance& now, const cim::Instance& previous);
// The previous instance from a stored `previous` column: a whole instance (it has "__CLASS": written by versions
// before the delta) as it is, otherwise `now` with the delta's values put back. A member that is not a property of
// `now`'s class, or a value of the wrong type, is WBEM_E_FAILED (a corrupt journal).
Result<cim::Instance> previous_from_json_text(std::string_view text, const cim::Instance& now,
                                              const cim::ClassRegistry& registry);

}  // namespace pkgcast::store
