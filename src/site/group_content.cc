// SMS_DPGroupContentInfo: which packages are assigned to which DP group. A package is assigned when it is distributed
// to the group, in the distribution's own command, and the assignment goes with the package (or when it is taken
// off the group). The group's ContentCount counts the assignments; both are written together, so they never
// disagree (admin check verifies it).
#include "core/strings.h"
#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

namespace {

// What the row repeats of its package.
void copy_package_facts(const cim::Instance& pkg, cim::Instance& row) {
  set_prop(row, "Name", str_value(get_string(pkg, "Name")));
  set_prop(row, "Description", str_value(get_string(pkg, "Description")));
  set_prop(row, "ObjectType", u32_value(get_uint(pkg, "PackageType")));
  set_prop(row, "SourceSize", u32_value(get_uint(pkg, "PackageSize")));
}

Status count_content(store::WriteTxn& txn, cim::Instance group, int delta) {
  const auto count = static_cast<std::int64_t>(get_uint(group, "ContentCount")) + delta;
  set_prop(group, "ContentCount", u32_value(static_cast<std::uint64_t>(std::max<std::int64_t>(count, 0))));
  set_prop(group, "ModifiedOn", time_value(txn.now()));
  return txn.put(group);
}

Result<std::vector<cim::Instance>> content_rows_of(store::WriteTxn& txn, std::string_view property,
                                                   std::string_view value) {
  const cim::ClassDef& cls = class_named("SMS_DPGroupContentInfo");
  PKG_ASSIGN_OR_RETURN(auto rows, txn_scan(txn, cls, where_string(cls, property, value)));
  std::erase_if(rows, [&](const cim::Instance& row) { return !iequals(get_string(row, property), value); });
  return rows;
}

}  // namespace

Result<std::vector<std::string>> assign_group_content(store::WriteTxn& txn, std::string_view group,
                                                      const cim::Instance& package) {
  PKG_TRY(check_text("GroupID", group, 1, kMaxShortText));
  PKG_ASSIGN_OR_RETURN(cim::Instance row, require_group(txn, group));
  const std::string group_id = get_string(row, "GroupID");
  const std::string package_id = get_string(package, "PackageID");
  const cim::ClassDef& cls = class_named("SMS_DPGroupContentInfo");
  PKG_ASSIGN_OR_RETURN(auto existing, txn.get(cls, {str_value(group_id), str_value(package_id)}));
  if (!existing) {
    cim::Instance content(cls);
    set_prop(content, "GroupID", str_value(group_id));
    set_prop(content, "PackageID", str_value(package_id));
    set_prop(content, "ObjectID", str_value(package_id));
    copy_package_facts(package, content);
    PKG_TRY(txn.insert(content));
    PKG_TRY(count_content(txn, row, +1));
  }
  return find_group_members(txn, group_id);
}

Result<std::vector<std::string>> unassign_group_content(store::WriteTxn& txn, std::string_view group,
                                                        std::string_view package_id) {
  PKG_TRY(check_text("GroupID", group, 1, kMaxShortText));
  PKG_ASSIGN_OR_RETURN(cim::Instance row, require_group(txn, group));
  const std::string group_id = get_string(row, "GroupID");
  const cim::ClassDef& cls = class_named("SMS_DPGroupContentInfo");
  const std::vector<cim::Value> key{str_value(group_id), str_value(to_upper(package_id))};
  PKG_ASSIGN_OR_RETURN(auto existing, txn.get(cls, key));
  if (!existing) {
    return invalid("GroupID", "package " + to_upper(package_id) + " is not assigned to DP group '" +
                                  get_string(row, "Name") + "'");
  }
  PKG_TRY(txn.remove(cls, key));
  PKG_TRY(count_content(txn, row, -1));
  return find_group_members(txn, group_id);
}

Status sync_group_content(store::WriteTxn& txn, const cim::Instance& pkg) {
  PKG_ASSIGN_OR_RETURN(auto rows, content_rows_of(txn, "PackageID", get_string(pkg, "PackageID")));
  for (auto& row : rows) {
    copy_package_facts(pkg, row);
    PKG_TRY(txn.put(row));  // a row already in step journals nothing
  }
  return ok_status();
}

Status internal::drop_package_group_content(store::WriteTxn& txn, std::string_view package_id) {
  PKG_ASSIGN_OR_RETURN(auto rows, content_rows_of(txn, "PackageID", package_id));
  for (const auto& row : rows) {
    PKG_TRY(txn.remove(row.class_def(), store::key_of(row)));
    PKG_ASSIGN_OR_RETURN(auto group, txn.get(class_named("SMS_DistributionPointGroup"),
                                             {str_value(get_string(row, "GroupID"))}));
    if (group) PKG_TRY(count_content(txn, std::move(*group), -1));
  }
  return ok_status();
}

}  // namespace pkgcast::site
