// Helpers shared by the domain's files: field validation, instance building, id allocation. Not part of the
// public API (site.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cim/cim.h"
#include "core/result.h"
#include "store/store.h"

namespace pkgcast::site::internal {

// ---- validation.cc --------------------------------------------------------------------------------------------

// Limits (docs/domain.md).
inline constexpr std::size_t kMaxSiteName = 128;
inline constexpr std::size_t kMaxPackageName = 255;
inline constexpr std::size_t kMaxShortText = 255;     // Version, Language, Manufacturer, names of groups
inline constexpr std::size_t kMaxDescription = 2048;  // Description, Comment
inline constexpr std::size_t kMaxProgramName = 100;
inline constexpr std::size_t kMaxCommandLine = 1024;
inline constexpr std::size_t kMaxPath = 4096;
inline constexpr std::size_t kMaxCollectionId = 64;
inline constexpr std::size_t kMaxSourceDps = 16;

enum class TextKind : std::uint8_t {
  kLine,       // no control characters at all
  kMultiLine,  // tab, LF and CR allowed
};

// `field` must be valid UTF-8, min..max bytes, without control characters (per kind).
// WBEM_E_INVALID_PARAMETER naming the field otherwise.
Status check_text(std::string_view field, std::string_view value, std::size_t min, std::size_t max,
                  TextKind kind = TextKind::kLine);
// Exactly 3 characters [A-Za-z0-9]; returns the upper-case code.
Result<std::string> normalize_site_code(std::string_view field, std::string_view value);
// A host-name-like DP name: dot-separated labels of 1..63 letters, digits and '-', not starting or ending with
// '-', 253 bytes at most.
Status check_dp_name(std::string_view field, std::string_view value);
// Site code + 5 hex digits (any case); returns the upper-case id.
Result<std::string> normalize_object_id(std::string_view field, std::string_view value);
// An http:// or https:// URL without spaces or control characters, up to kMaxPath bytes.
Status check_url(std::string_view field, std::string_view value);

Error invalid(std::string_view field, std::string_view why);
Error not_found(std::string what);

// ---- ids.cc ---------------------------------------------------------------------------------------------------

// The next id of `kind` ("package", "advertisement") for `site`: the site code and 5 upper-case hex digits, in
// sequence from 00001, never reused. The counter lives in the meta area, so allocation is part of the caller's
// write command. WBEM_E_QUOTA_VIOLATION after FFFFF.
Result<std::string> allocate_id(store::WriteTxn& txn, std::string_view kind, std::string_view site);
// A new DP group id: `{8-4-4-4-12}` upper-case hex from the CSPRNG.
Result<std::string> new_group_id();

// ---- instances ------------------------------------------------------------------------------------------------

const cim::ClassDef& class_named(std::string_view name);  // a builtin class; precondition: it exists
cim::Instance make_instance(std::string_view class_name);
// Sets a declared property. Precondition: the property exists and v is NULL or of its type.
void set_prop(cim::Instance& inst, std::string_view name, cim::Value v);
std::string get_string(const cim::Instance& inst, std::string_view name);  // "" when NULL
std::uint64_t get_uint(const cim::Instance& inst, std::string_view name);  // 0 when NULL
bool get_bool(const cim::Instance& inst, std::string_view name);           // false when NULL
std::optional<cim::DateTime> get_datetime(const cim::Instance& inst, std::string_view name);

// Bytes as whole KB, rounded up, saturating at the largest uint32 (PackageSize, SourceSize are KB in uint32).
inline std::uint32_t kb_of(std::uint64_t bytes) {
  const std::uint64_t kb = bytes / 1024 + (bytes % 1024 != 0 ? 1 : 0);
  return kb > 0xFFFFFFFFull ? 0xFFFFFFFFu : static_cast<std::uint32_t>(kb);
}

inline cim::Value str_value(std::string s) { return cim::Value::string(std::move(s)); }
inline cim::Value u32_value(std::uint64_t v) { return cim::Value::uint32(static_cast<std::uint32_t>(v)); }
inline cim::Value time_value(Micros t) { return cim::Value::datetime(cim::DateTime::from_unix_micros(t)); }

// Equality on one string property (case-insensitive in the store), for scans.
store::Predicate where_string(const cim::ClassDef& cls, std::string_view property, std::string_view value);

// Every instance of `cls` matching `filter`, read inside a write command.
Result<std::vector<cim::Instance>> txn_scan(store::WriteTxn& txn, const cim::ClassDef& cls,
                                            const store::Predicate& filter);
// The single instance of `cls` whose `property` equals `value` case-insensitively, or nullopt.
Result<std::optional<cim::Instance>> txn_find(store::WriteTxn& txn, std::string_view class_name,
                                              std::string_view property, std::string_view value);

// A site row inside a command; WBEM_E_NOT_FOUND "site 'XYZ' does not exist" when absent.
Result<cim::Instance> require_site(store::WriteTxn& txn, std::string_view code);
// A package row inside a command; WBEM_E_NOT_FOUND when absent.
Result<cim::Instance> require_package(store::WriteTxn& txn, std::string_view package_id);

// ---- advertisements.cc ------------------------------------------------------------------------------------------

// A site's offer rows for every advertisement of a package without source files (offered there at once): those it
// lacks are inserted (a new site; a database from before such advertisements were offered at every site).
Status offer_no_source_advertisements(store::WriteTxn& txn, std::string_view site_code);

// ---- programs.cc ----------------------------------------------------------------------------------------------

// Writes again, in the caller's command, what each program of `pkg` repeats of it (PackageName, PackageType,
// PackageVersion); a program already in step journals nothing.
Status sync_programs(store::WriteTxn& txn, const cim::Instance& pkg);

// ---- system_resources.cc -------------------------------------------------------------------------------------

// SMS_SystemResourceList.RoleName of pkgcast's roles.
inline constexpr std::string_view kRoleSiteServer = "SMS Site Server";
inline constexpr std::string_view kRoleProvider = "SMS Provider";
inline constexpr std::string_view kRoleDistributionPoint = "SMS Distribution Point";
// Every server that holds a role also has this one (Configuration Manager's; scripts count site systems by it).
inline constexpr std::string_view kRoleSiteSystem = "SMS Site System";

// The role rows of a site (its server, named `fallback_server` when the site row names none) and of a DP.
std::vector<cim::Instance> site_role_rows(const cim::Instance& site, std::string_view fallback_server);
cim::Instance dp_role_row(const cim::Instance& dp, std::string_view agent_url);
// The DP's server as a site system. Put, not inserted: a DP named as its site's server shares the site server's row.
cim::Instance dp_site_system_row(const cim::Instance& dp);
Status put_rows(store::WriteTxn& txn, const std::vector<cim::Instance>& rows);

// ---- group_content.cc -----------------------------------------------------------------------------------------

// Removes a package's group assignments (it is being deleted), keeping each group's ContentCount right.
Status drop_package_group_content(store::WriteTxn& txn, std::string_view package_id);

// ---- groups.cc ------------------------------------------------------------------------------------------------

// A group by GroupID (`{...}`) or by Name; WBEM_E_NOT_FOUND when there is none.
Result<cim::Instance> require_group(store::WriteTxn& txn, std::string_view id);
// Takes `dp_name` out of every group that lists it (when the DP is removed), keeping MemberCount right.
Status remove_dp_from_groups(store::WriteTxn& txn, std::string_view dp_name);

}  // namespace pkgcast::site::internal
