// The CIM object model: types, values, class definitions and registry, instances, object paths, JSON.
#pragma once

#include "cim/class_def.h"    // IWYU pragma: export
#include "cim/datetime.h"     // IWYU pragma: export
#include "cim/instance.h"     // IWYU pragma: export
#include "cim/json.h"         // IWYU pragma: export
#include "cim/object_path.h"  // IWYU pragma: export
#include "cim/types.h"        // IWYU pragma: export
#include "cim/value.h"        // IWYU pragma: export
