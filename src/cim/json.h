// The JSON form of instances and events (design.md section 6):
//   {"__CLASS": "SMS_Package", "PackageID": "ABC00001", ...}
// Integers are numbers (uint64 too), datetimes ISO-8601 UTC strings, NULL is null, embedded objects nested.
// An event carries "__REVISION" after "__CLASS" when it has one.
#pragma once

#include <nlohmann/json.hpp>

#include "cim/class_def.h"
#include "cim/instance.h"
#include "core/result.h"

namespace pkgcast::cim {

using Json = nlohmann::ordered_json;

Json to_json(const Value& v);
Json to_json(const Instance& inst);

// Decodes an instance. "__CLASS" names a registry class; each other member must be a property of it and convert
// to its type. Properties not given stay NULL. "__REVISION" is kept; other system properties ("__PATH", ...) are
// ignored since they derive from the rest. WBEM_E_INVALID_CLASS / WBEM_E_INVALID_PROPERTY / WBEM_E_TYPE_MISMATCH.
Result<Instance> instance_from_json(const Json& j, const ClassRegistry& registry);
// A value of type `type` from JSON.
Result<Value> value_from_json(const Json& j, Type type, const ClassRegistry& registry);

}  // namespace pkgcast::cim
