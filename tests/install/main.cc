// Uses the installed pkgcast client library: builds a query, decodes an event, and asks a server that is not
// there (a transport failure, reported through both error forms).
#include <pkgcast/pkgcast.h>

#include <chrono>
#include <iostream>

int main() {
  using namespace std::chrono_literals;
  const pkgcast::WqlEventQuery q{.event_class_name = "__InstanceModificationEvent",
                                 .within = 120s,
                                 .condition = "TargetInstance isa 'SMS_PackageStatusRootSummarizer'"};
  std::cout << q.query_string() << "\n";

  auto e = pkgcast::Instance::from_json(
      R"({"__CLASS":"__InstanceModificationEvent","__REVISION":7,"TargetInstance":{"Name":"Office","Installed":2}})");
  if (!e.ok()) return 1;
  std::cout << (*e)["TargetInstance"]["Name"].as_string() << " " << (*e)["TargetInstance"]["Installed"].as_uint32()
            << " " << e->revision().value_or(0) << "\n";

  // Port 1 on loopback: nothing listens there.
  pkgcast::ManagementScope scope("http://127.0.0.1:1", R"(root\sms\site_ABC)", {.token = "none", .timeout = 5s});
  auto rows = scope.try_exec_query("SELECT * FROM SMS_Package");
  if (rows.ok()) return 1;
  std::cout << pkgcast::wbem_name(rows.error().code) << "\n";
  try {
    pkgcast::EventWatcher watcher(scope, q);
    watcher.start();
    return 1;
  } catch (const pkgcast::ManagementError& err) {
    std::cout << err.code_name() << "\n";
  }
  return 0;
}
