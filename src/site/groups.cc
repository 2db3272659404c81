// DP groups. SMS_DistributionPointGroup has no member list property, so membership is kept in the meta area as one
// JSON array per group ("group/<GroupID>"), read and written inside the same command as the group row whose
// MemberCount it determines: the two never disagree.
#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

namespace {

std::string members_key(std::string_view group_id) { return "group/" + std::string(group_id); }

Result<std::vector<std::string>> decode_members(const std::optional<std::string>& text) {
  std::vector<std::string> out;
  if (!text) return out;
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return make_error(WbemCode::kFailed, "corrupt DP group membership record");
  for (const auto& m : j) {
    if (m.is_string()) out.push_back(m.get<std::string>());
  }
  return out;
}

std::string encode_members(const std::vector<std::string>& members) { return nlohmann::json(members).dump(); }

}  // namespace

Result<cim::Instance> internal::require_group(store::WriteTxn& txn, std::string_view id) {
  if (!id.empty() && id.front() == '{') {
    PKG_ASSIGN_OR_RETURN(auto row, txn.get(class_named("SMS_DistributionPointGroup"), {str_value(to_upper(id))}));
    if (row) return std::move(*row);
  } else {
    PKG_ASSIGN_OR_RETURN(auto row, txn_find(txn, "SMS_DistributionPointGroup", "Name", id));
    if (row) return std::move(*row);
  }
  return not_found("DP group '" + std::string(id) + "' does not exist");
}

namespace {

bool contains_icase(const std::vector<std::string>& names, std::string_view name) {
  for (const auto& n : names) {
    if (iequals(n, name)) return true;
  }
  return false;
}

Status check_member_names(const std::vector<std::string>& names) {
  if (names.empty()) return invalid("members", "must name at least one DP");
  for (std::size_t i = 0; i < names.size(); ++i) {
    PKG_TRY(check_dp_name("members", names[i]));
    for (std::size_t j = 0; j < i; ++j) {
      if (iequals(names[i], names[j])) return invalid("members", "name DP '" + names[i] + "' twice");
    }
  }
  return ok_status();
}

// Stores a group's member list with what the group row says of it (MemberCount, HasMember, ModifiedOn), in the
// caller's command.
Status store_members(store::WriteTxn& txn, cim::Instance& group, const std::vector<std::string>& members) {
  PKG_TRY(txn.put_meta(members_key(get_string(group, "GroupID")), encode_members(members)));
  set_prop(group, "MemberCount", u32_value(members.size()));
  set_prop(group, "HasMember", cim::Value::boolean(!members.empty()));
  set_prop(group, "ModifiedOn", time_value(txn.now()));
  return txn.put(group);
}

// SMS_DistributionPointInfo.GroupCount of a DP that joined (+1) or left (-1) a group.
Status count_group_of(store::WriteTxn& txn, cim::Instance dp, int delta) {
  const auto count = static_cast<std::int64_t>(get_uint(dp, "GroupCount")) + delta;
  set_prop(dp, "GroupCount", u32_value(static_cast<std::uint64_t>(std::max<std::int64_t>(count, 0))));
  return txn.put(dp);
}

}  // namespace

Status internal::remove_dp_from_groups(store::WriteTxn& txn, std::string_view dp_name) {
  const cim::ClassDef& cls = class_named("SMS_DistributionPointGroup");
  PKG_ASSIGN_OR_RETURN(auto groups, txn_scan(txn, cls, store::Predicate::always()));
  for (auto& group : groups) {
    const std::string id = get_string(group, "GroupID");
    PKG_ASSIGN_OR_RETURN(auto text, txn.get_meta(members_key(id)));
    PKG_ASSIGN_OR_RETURN(auto members, decode_members(text));
    const auto before = members.size();
    std::erase_if(members, [&](const std::string& m) { return iequals(m, dp_name); });
    if (members.size() == before) continue;
    PKG_TRY(store_members(txn, group, members));
  }
  return ok_status();
}

Result<cim::Instance> Domain::create_group(const GroupSpec& spec) {
  PKG_TRY(check_text("Name", spec.name, 1, kMaxShortText));
  PKG_TRY(check_text("Description", spec.description, 0, kMaxDescription, TextKind::kMultiLine));
  if (spec.name.front() == '{') return invalid("Name", "must not start with '{' (that form is a GroupID)");
  PKG_ASSIGN_OR_RETURN(const std::string id, new_group_id());
  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    PKG_ASSIGN_OR_RETURN(auto existing, txn_find(txn, "SMS_DistributionPointGroup", "Name", spec.name));
    if (existing) {
      return make_error(WbemCode::kAlreadyExists, "DP group '" + get_string(*existing, "Name") + "' already exists");
    }
    cim::Instance group = make_instance("SMS_DistributionPointGroup");
    set_prop(group, "GroupID", str_value(id));
    set_prop(group, "Name", str_value(spec.name));
    set_prop(group, "Description", str_value(spec.description));
    set_prop(group, "MemberCount", u32_value(0));
    set_prop(group, "ContentCount", u32_value(0));
    set_prop(group, "SourceSite", str_value(own_site_));
    set_prop(group, "CreatedOn", time_value(txn.now()));
    set_prop(group, "ModifiedOn", time_value(txn.now()));
    PKG_TRY(txn.insert(group));
    PKG_TRY(txn.put_meta(members_key(id), "[]"));
    return group;
  });
}

Result<cim::Instance> Domain::get_group(std::string_view id) {
  PKG_TRY(check_text("GroupID", id, 1, kMaxShortText));
  const cim::ClassDef& cls = class_named("SMS_DistributionPointGroup");
  if (id.front() == '{') {
    PKG_ASSIGN_OR_RETURN(auto row, store_.get(cls, {str_value(to_upper(id))}));
    if (row) return std::move(*row);
  } else {
    PKG_ASSIGN_OR_RETURN(auto rows, scan_all(cls.name(), where_string(cls, "Name", id)));
    for (auto& row : rows) {
      if (iequals(get_string(row, "Name"), id)) return std::move(row);
    }
  }
  return not_found("DP group '" + std::string(id) + "' does not exist");
}

Result<std::vector<std::string>> find_group_members(store::WriteTxn& txn, std::string_view group) {
  PKG_TRY(check_text("GroupID", group, 1, kMaxShortText));
  PKG_ASSIGN_OR_RETURN(cim::Instance row, require_group(txn, group));
  PKG_ASSIGN_OR_RETURN(auto text, txn.get_meta(members_key(get_string(row, "GroupID"))));
  return decode_members(text);
}

Result<std::vector<std::string>> Domain::group_members(std::string_view id) {
  PKG_ASSIGN_OR_RETURN(cim::Instance group, get_group(id));
  PKG_ASSIGN_OR_RETURN(auto text, store_.get_meta(members_key(get_string(group, "GroupID"))));
  return decode_members(text);
}

Result<cim::Instance> Domain::add_group_members(std::string_view id, const std::vector<std::string>& dp_names) {
  return change_group_members(id, dp_names, /*add=*/true);
}

Result<cim::Instance> Domain::remove_group_members(std::string_view id, const std::vector<std::string>& dp_names) {
  return change_group_members(id, dp_names, /*add=*/false);
}

Result<cim::Instance> Domain::change_group_members(std::string_view id, const std::vector<std::string>& dp_names,
                                                   bool add) {
  PKG_TRY(check_text("GroupID", id, 1, kMaxShortText));
  PKG_TRY(check_member_names(dp_names));
  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    PKG_ASSIGN_OR_RETURN(cim::Instance group, require_group(txn, id));
    const std::string group_id = get_string(group, "GroupID");
    PKG_ASSIGN_OR_RETURN(auto text, txn.get_meta(members_key(group_id)));
    PKG_ASSIGN_OR_RETURN(auto members, decode_members(text));
    for (const auto& name : dp_names) {
      if (add) {
        PKG_ASSIGN_OR_RETURN(auto dp, txn_find(txn, "SMS_DistributionPointInfo", "Name", name));
        if (!dp) return not_found("DP '" + name + "' does not exist");
        if (contains_icase(members, name)) {
          return invalid("members", "DP '" + name + "' is already in group '" + get_string(group, "Name") + "'");
        }
        members.push_back(get_string(*dp, "Name"));
        PKG_TRY(count_group_of(txn, std::move(*dp), +1));
      } else {
        if (!contains_icase(members, name)) {
          return invalid("members", "DP '" + name + "' is not in group '" + get_string(group, "Name") + "'");
        }
        std::erase_if(members, [&](const std::string& m) { return iequals(m, name); });
        PKG_ASSIGN_OR_RETURN(auto dp, txn_find(txn, "SMS_DistributionPointInfo", "Name", name));
        if (dp) PKG_TRY(count_group_of(txn, std::move(*dp), -1));
      }
    }
    PKG_TRY(store_members(txn, group, members));
    return group;
  });
}

}  // namespace pkgcast::site
