// A streaming writer for the JSON form of instances (cim/json.h), for the query path: it appends straight to a
// byte buffer instead of building an nlohmann tree per row, which is most of the cost of a large result.
// The output parses to the same JSON as cim::to_json(inst) (same members, same order, same values), except that
// bytes that are not valid UTF-8 are written as U+FFFD where nlohmann would refuse to serialize.
#pragma once

#include <memory>
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
// (no projection: the whole instance). `embedded` (may be nullptr; PreparedQuery::embedded_steps) projects the
// objects a join's __Generic row embeds: the object in property i is written as a row, by the step of
// (*embedded)[i] whose class is the object's.
// The JSON text of the embedded objects a stream of rows wrote last, by identity: a joined answer repeats an outer
// row's object in each of its joined rows (a package with three programs), and the cache writes its text once.
// One entry per top-level property of the rows (a handful for a join's __Generic rows); each holds its object, so
// an address it compares with cannot be reused while remembered. Not thread-safe: one per answer stream.
class EmbeddedJsonCache {
 public:
  // Appends the JSON of `object` (top-level property `slot` of a row), projected by `projection` (nullptr: whole),
  // written anew unless that slot last held it. A slot's projection is the same for every row of a stream.
  void append(std::string& out, std::size_t slot, const std::shared_ptr<const cim::Instance>& object,
              const ScanStep* projection = nullptr);

 private:
  struct Entry {
    std::shared_ptr<const cim::Instance> object;
    std::string json;
  };
  std::vector<Entry> entries_;
};

// `cache` (may be nullptr) serves the row's embedded objects (not those inside arrays).
void append_row_json(std::string& out, const cim::Instance& inst, const ScanStep* step,
                     EmbeddedJsonCache* cache = nullptr,
                     const std::vector<std::vector<ScanStep>>* embedded = nullptr);
// Appends a JSON string literal (quoted, escaped).
void append_json_string(std::string& out, std::string_view s);

}  // namespace pkgcast::provider
