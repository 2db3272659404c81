// System properties (internal): their names, types, and values read from an instance.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cim/instance.h"
#include "cim/types.h"
#include "wql/bound.h"
#include "wql/scalar.h"

namespace pkgcast::wql {

// Case-insensitive; nullopt for a name that is not a system property pkgcast knows.
std::optional<SystemProperty> find_system_property(std::string_view name);
cim::Type system_property_type(SystemProperty p);

// The value of p on inst. Allocates only for __PATH and __RELPATH, which are built into scratch; the returned
// view may point into scratch or into inst. __DERIVATION, an array, views as kOther.
Scalar system_scalar(SystemProperty p, const cim::Instance& inst, std::string& scratch);

}  // namespace pkgcast::wql
