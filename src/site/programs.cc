// Programs: command lines that install a package. A program belongs to one package (keys PackageID, ProgramName);
// names are unique within the package without regard to case, and the package's NumOfPrograms is kept in step in
// the same command.
#include "core/strings.h"
#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

namespace {

Result<std::optional<cim::Instance>> find_program(store::WriteTxn& txn, const std::string& package_id,
                                                  std::string_view name) {
  const cim::ClassDef& cls = class_named("SMS_Program");
  PKG_ASSIGN_OR_RETURN(auto rows, txn_scan(txn, cls, where_string(cls, "PackageID", package_id)));
  for (auto& row : rows) {
    if (get_string(row, "PackageID") == package_id && iequals(get_string(row, "ProgramName"), name)) {
      return std::optional<cim::Instance>(std::move(row));
    }
  }
  return std::optional<cim::Instance>();
}

// What SMS_Program repeats of its package.
void copy_package_facts(const cim::Instance& pkg, cim::Instance& program) {
  set_prop(program, "PackageName", str_value(get_string(pkg, "Name")));
  set_prop(program, "PackageType", u32_value(get_uint(pkg, "PackageType")));
  set_prop(program, "PackageVersion", str_value(get_string(pkg, "Version")));
}

Status set_program_count(store::WriteTxn& txn, cim::Instance& pkg, std::int64_t delta) {
  const auto count = static_cast<std::int64_t>(get_uint(pkg, "NumOfPrograms")) + delta;
  set_prop(pkg, "NumOfPrograms", u32_value(static_cast<std::uint64_t>(std::max<std::int64_t>(count, 0))));
  return txn.put(pkg);
}

}  // namespace

Status internal::sync_programs(store::WriteTxn& txn, const cim::Instance& pkg) {
  const std::string id = get_string(pkg, "PackageID");
  const cim::ClassDef& cls = class_named("SMS_Program");
  PKG_ASSIGN_OR_RETURN(auto rows, txn_scan(txn, cls, where_string(cls, "PackageID", id)));
  for (auto& row : rows) {
    if (get_string(row, "PackageID") != id) continue;
    copy_package_facts(pkg, row);
    PKG_TRY(txn.put(row));
  }
  return ok_status();
}

Result<cim::Instance> Domain::create_program(const ProgramSpec& spec) {
  PKG_ASSIGN_OR_RETURN(const std::string package_id, normalize_object_id("PackageID", spec.package_id));
  PKG_TRY(check_text("ProgramName", spec.name, 1, kMaxProgramName));
  PKG_TRY(check_text("CommandLine", spec.command_line, 1, kMaxCommandLine));
  PKG_TRY(check_text("WorkingDirectory", spec.working_directory, 0, kMaxPath));
  PKG_TRY(check_text("Comment", spec.comment, 0, kMaxDescription, TextKind::kMultiLine));
  PKG_TRY(check_text("DiskSpaceReq", spec.disk_space_req, 0, kMaxShortText));

  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    PKG_ASSIGN_OR_RETURN(cim::Instance pkg, require_package(txn, package_id));
    PKG_ASSIGN_OR_RETURN(auto existing, find_program(txn, package_id, spec.name));
    if (existing) {
      return make_error(WbemCode::kAlreadyExists, "package " + package_id + " already has a program named '" +
                                                      get_string(*existing, "ProgramName") + "'");
    }
    cim::Instance program = make_instance("SMS_Program");
    set_prop(program, "PackageID", str_value(package_id));
    set_prop(program, "ProgramName", str_value(spec.name));
    set_prop(program, "CommandLine", str_value(spec.command_line));
    set_prop(program, "WorkingDirectory", str_value(spec.working_directory));
    set_prop(program, "Comment", str_value(spec.comment));
    set_prop(program, "ProgramFlags", u32_value(spec.flags));
    set_prop(program, "Duration", u32_value(spec.duration));
    set_prop(program, "DiskSpaceReq", str_value(spec.disk_space_req));
    copy_package_facts(pkg, program);
    PKG_TRY(txn.insert(program));
    PKG_TRY(set_program_count(txn, pkg, +1));
    return program;
  });
}

Result<std::vector<cim::Instance>> Domain::list_programs(std::string_view package_id) {
  PKG_ASSIGN_OR_RETURN(const cim::Instance pkg, get_package(package_id));
  const std::string id = get_string(pkg, "PackageID");
  const cim::ClassDef& cls = class_named("SMS_Program");
  PKG_ASSIGN_OR_RETURN(auto rows, scan_all(cls.name(), where_string(cls, "PackageID", id)));
  std::erase_if(rows, [&](const cim::Instance& row) { return get_string(row, "PackageID") != id; });
  return rows;
}

Result<cim::Instance> Domain::delete_program(std::string_view package_id, std::string_view program_name) {
  PKG_ASSIGN_OR_RETURN(const std::string id, normalize_object_id("PackageID", package_id));
  PKG_TRY(check_text("ProgramName", program_name, 1, kMaxProgramName));
  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    PKG_ASSIGN_OR_RETURN(cim::Instance pkg, require_package(txn, id));
    PKG_ASSIGN_OR_RETURN(auto program, find_program(txn, id, program_name));
    if (!program) {
      return not_found("package " + id + " has no program named '" + std::string(program_name) + "'");
    }
    const std::string name = get_string(*program, "ProgramName");
    const cim::ClassDef& ads_cls = class_named("SMS_Advertisement");
    PKG_ASSIGN_OR_RETURN(auto ads, txn_scan(txn, ads_cls, where_string(ads_cls, "PackageID", id)));
    for (const auto& ad : ads) {
      if (get_string(ad, "PackageID") == id && iequals(get_string(ad, "ProgramName"), name)) {
        return make_error(WbemCode::kInvalidOperation, "program '" + name + "' of package " + id +
                                                           " is advertised by " + get_string(ad, "AdvertisementID"));
      }
    }
    PKG_TRY(txn.remove(program->class_def(), store::key_of(*program)));
    PKG_TRY(set_program_count(txn, pkg, -1));
    return std::move(*program);
  });
}

}  // namespace pkgcast::site
