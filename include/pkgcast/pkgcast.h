// The pkgcast client library: WQL queries and pushed events from a pkgcast server, with the API of the
// Configuration Manager SDK's samples (ManagementScope, EventWatcher, WqlEventQuery). Link pkgcast::client:
//   find_package(pkgcast REQUIRED)
//   target_link_libraries(app PRIVATE pkgcast::client)
#pragma once

#include "pkgcast/connection_options.h"
#include "pkgcast/error.h"
#include "pkgcast/event_sink.h"
#include "pkgcast/event_watcher.h"
#include "pkgcast/instance.h"
#include "pkgcast/management_scope.h"
#include "pkgcast/wql_event_query.h"
