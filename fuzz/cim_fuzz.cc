// Fuzzes the object model's parsers. The first byte picks the parser; the rest is its input.
// Invariants checked: nothing crashes; a parsed object path prints to text that parses back to the same path;
// a parsed datetime prints to ISO-8601 that parses back to the same instant; a decoded instance encodes to JSON
// that decodes back to an equal instance.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cim/cim.h"

using namespace pkgcast::cim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      auto path = ObjectPath::parse(text);
      if (path.ok()) {
        auto again = ObjectPath::parse(path->to_string());
        if (!again.ok() || !(again.value() == path.value())) std::abort();
      }
      break;
    }
    case 1: {
      auto dt = DateTime::parse(text);
      if (dt.ok()) {
        auto again = DateTime::parse(dt->to_iso8601());
        if (!again.ok() || again.value() != dt.value()) std::abort();
        auto dmtf = DateTime::parse(dt->to_dmtf());
        if (!dmtf.ok() || dmtf.value() != dt.value()) std::abort();
      }
      break;
    }
    default: {
      auto j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) break;
      auto inst = instance_from_json(j, ClassRegistry::builtin());
      if (inst.ok()) {
        auto again = instance_from_json(Json::parse(to_json(inst.value()).dump()), ClassRegistry::builtin());
        if (!again.ok() || !(again.value() == inst.value())) std::abort();
      }
      break;
    }
  }
  return 0;
}
