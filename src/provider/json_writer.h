// A streaming writer for the JSON form of instances (cim/json.h), for the query path: it appends straight to a
// byte buffer instead of building an nlohmann tree per row, which is most of the cost of a large result.
// The output parses to the same JSON as cim::to_json(inst) (same members, same order, same values), except that
// bytes that are not valid UTF-8 are written as U+FFFD where nlohmann would refuse to serialize.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cim/cim.h"
#include "provider/provider.h"

namespace pkgcast::provider {

// Appends the instance as one JSON object.
void append_instance_json(std::string& out, const cim::Instance& inst);
// As above, leaving out the properties whose indices `omitted` lists (ascending): a projected query's answer
// carries only what was selected, and the keys.
void append_instance_json(std::string& out, const cim::Instance& inst, const std::vector<std::size_t>& omitted);
// A row of a query's answer: the instance as above, less the properties the step's projection clears, with the
// system properties the query names (`SELECT __PATH, Name`) after __CLASS, in query order. `step` may be nullptr
// (no projection: the whole instance).
void append_row_json(std::string& out, const cim::Instance& inst, const ScanStep* step);
// Appends a JSON string literal (quoted, escaped).
void append_json_string(std::string& out, std::string_view s);

}  // namespace pkgcast::provider
