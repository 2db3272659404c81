// An event query built from its parts, with exactly the text .NET's System.Management.WqlEventQuery builds:
//   WqlEventQuery{.event_class_name = "__InstanceModificationEvent", .within = 120s,
//                 .condition = "TargetInstance isa 'SMS_PackageStatusRootSummarizer'"}.query_string()
//   == "select * from __InstanceModificationEvent within 120 where TargetInstance isa 'SMS_PackageStatusRootSummarizer'"
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace pkgcast {

struct WqlEventQuery {
  std::string event_class_name{};
  // Zero = no WITHIN clause. Fractions of a second are kept (within 0.5).
  std::chrono::duration<double> within{0};
  std::string condition{};  // without the WHERE keyword; empty = none
  // Zero = no GROUP clause; then group_by and having are ignored, as in .NET.
  std::chrono::duration<double> group_within{0};
  std::vector<std::string> group_by{};
  std::string having{};  // without the HAVING keyword; empty = none

  // "select * from <class>[ within <s>][ where <condition>][ group within <s>[ by p1,p2][ having <having>]]";
  // seconds are written as .NET writes a double (shortest round-trip form, invariant culture). Empty when
  // event_class_name is empty.
  std::string query_string() const;
};

}  // namespace pkgcast
