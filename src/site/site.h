// The domain of a site server: sites, distribution points, DP groups, packages, programs and advertisements
// (docs/domain.md lists every rule). Each verb validates its input, then runs as ONE store::WriteCommand: the
// checks that depend on the database (references exist, names are unique) and every row it writes happen in that
// one transaction, so a verb either applies entirely, journaled, or changes nothing. Verbs return the instance
// they created or changed, as committed.
//
// Errors: WBEM_E_INVALID_PARAMETER (bad field, with the field named), WBEM_E_NOT_FOUND (a referenced object is
// missing), WBEM_E_ALREADY_EXISTS, WBEM_E_INVALID_OPERATION (the object is in use), WBEM_E_QUOTA_VIOLATION (an id
// space is exhausted).
//
// Thread safety: every method may be called from any thread; the store's single writer serializes the commands,
// which is what makes id allocation and uniqueness checks race-free.
// Lifetime: the Domain keeps a reference to the store, which must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cim/cim.h"
#include "core/clock.h"
#include "core/result.h"
#include "site/identity.h"  // SiteType, site_type_name, parse_site_type
#include "site/source_walker.h"
#include "site/tokens.h"
#include "store/store.h"

namespace pkgcast::site {

struct SiteSpec {
  std::string code;  // upper-cased on input
  std::string name;
  SiteType type = SiteType::kPrimary;
  std::string parent;       // empty: no parent
  std::string server_name;  // empty: the domain's server name
};

struct DpSpec {
  std::string name;
  std::string site_code;
  std::string url;  // where the DP agent listens; optional
  std::string description;
  bool pull = false;
  std::vector<std::string> source_dps;  // pull DPs only: names of existing DPs, in priority order
  std::uint32_t transfer_rate = 0;      // KiB/s, 0 = unlimited
  std::string transfer_window;          // as parse_transfer_window takes it; empty: always open
};

// A change to a DP's settings: each field set is changed, the others are kept.
struct DpChange {
  std::optional<std::string> description;
  std::optional<std::uint32_t> transfer_rate;
  std::optional<std::string> transfer_window;
};

// A new DP and its `dp` role token. The token text exists only here: the store keeps its hash.
struct CreatedDp {
  cim::Instance dp;  // SMS_DistributionPointInfo
  std::string url;
  std::string token;
  TokenRecord token_record;
};

// A DP as listed: its instance and the agent URL kept beside it.
struct DpView {
  cim::Instance dp;
  std::string url;
};

struct GroupSpec {
  std::string name;
  std::string description;
};

// A package version's content as the content library recorded it (docs/content.md): kept in the store's meta
// area under `content/<PackageID>.<SourceVersion>`, written in the same command as the version it describes.
struct SourceContent {
  std::string manifest_hash;  // hex SHA-256 of the version's manifest
  std::uint64_t size = 0;     // bytes of the files
  std::uint64_t compressed_size = 0;
  Micros source_date = 0;  // newest modification time in the tree
};

// Reads a source directory into the content library. Runs on a source walker thread and must give up at the
// deadline (WBEM_E_TIMED_OUT). The server wires the content library's ingest here; without one, a source is only
// measured and no content is recorded.
using SourceIngest = std::function<Result<SourceContent>(const std::filesystem::path& dir,
                                                         std::chrono::steady_clock::time_point deadline)>;

// What a source directory yielded: its canonical path, its size, and its content when an ingest is wired.
struct TakenSource {
  std::filesystem::path dir;
  std::uint32_t size_kb = 0;
  std::optional<SourceContent> content;
};

struct PackageSpec {
  std::string name;
  std::string version;
  std::string manufacturer;
  std::string language;
  std::string description;
  std::string source_path;  // empty: a package without source files; else under a source root (SourcePolicy)
  std::uint32_t priority = 2;
};

// PATCH: only the fields that are set change.
struct PackageUpdate {
  std::optional<std::string> name;
  std::optional<std::string> version;
  std::optional<std::string> manufacturer;
  std::optional<std::string> language;
  std::optional<std::string> description;
  std::optional<std::uint32_t> priority;
};

struct ProgramSpec {
  std::string package_id;
  std::string name;
  std::string command_line;
  std::string working_directory;
  std::string comment;
  std::uint32_t flags = 0;
  std::uint32_t duration = 0;  // minutes
  std::string disk_space_req;
};

struct AdvertisementSpec {
  std::string package_id;
  std::string program_name;
  std::string collection_id;
  std::string name;                           // empty: "<package name> - <program name>"
  std::optional<cim::DateTime> present_time;  // default: now
  std::optional<cim::DateTime> expiration_time;
  std::uint32_t offer_type = 2;  // 0 REQUIRED, 2 AVAILABLE
  std::uint32_t flags = 0;
  std::string comment;
};

// An advertisement as seen from one site.
struct OfferView {
  cim::Instance advertisement;  // SMS_Advertisement
  bool offered = false;
  std::optional<cim::DateTime> offered_time;
};

struct TokenSpec {
  Role role = Role::kReadOnly;  // kDp tokens are issued only with their DP (create_dp)
  std::vector<std::string> sites;
  std::string description;
  Micros expires = 0;  // 0 = never; else an instant after the commit
};

struct CreatedToken {
  std::string token;
  TokenRecord record;
};

class Domain {
 public:
  // own_site_code: the site this server is (SourceSite of what it creates). server_name: SMS_Site.ServerName.
  Domain(store::Store& store, std::string own_site_code, std::string server_name);

  // Where package sources may come from and what walks them. A Domain starts with no source roots: every source
  // is refused until this is called (before the Domain is shared between threads).
  void set_source_policy(SourcePolicy policy) { sources_ = std::move(policy); }
  // Where sources are read into; set before the Domain is shared between threads.
  void set_source_ingest(SourceIngest ingest, std::chrono::seconds timeout) {
    ingest_ = std::move(ingest);
    ingest_timeout_ = timeout;
  }
  // Runs inside delete_package's command, after its checks and before any row goes (the Distribution Manager
  // gives back the package's per-DP counts here). Set before the Domain is shared between threads.
  void set_package_delete_hook(std::function<Status(store::WriteTxn&, const std::string& package_id)> hook) {
    delete_hook_ = std::move(hook);
  }
  // Resolves `path` under the source roots and ingests it (or measures it, without an ingest) on the source
  // walker. The errors of SourcePolicy::resolve, SourceWalker::run and the ingest.
  Result<TakenSource> take_source(std::string_view path);

  const std::string& own_site_code() const { return own_site_; }
  const std::string& server_name() const { return server_name_; }
  store::Store& store() { return store_; }

  // Sites (sites.cc). At most one site has no parent: the top of the hierarchy.
  Result<cim::Instance> create_site(const SiteSpec& spec);
  Result<std::vector<cim::Instance>> list_sites();
  Result<cim::Instance> get_site(std::string_view code);

  // Distribution points (dps.cc).
  Result<CreatedDp> create_dp(const DpSpec& spec);
  Result<std::vector<DpView>> list_dps();
  Result<DpView> get_dp(std::string_view name);
  // `dp` (an SMS_DistributionPointInfo row) with its agent's URL.
  Result<DpView> dp_view(cim::Instance dp);
  // Returns the DP as committed. A bad transfer window is WBEM_E_INVALID_PARAMETER and changes nothing.
  Result<cim::Instance> update_dp(std::string_view name, const DpChange& change);
  // SMS_DistributionPointInfo.LastContactTime = now: the DP's agent reached the server (the caller decides how
  // often this is worth a write).
  Status note_dp_contact(std::string_view name);
  // Refused (WBEM_E_INVALID_OPERATION, naming them) while packages are targeted at the DP or pull DPs take content
  // from it. Removes the DP from its groups and revokes its tokens.
  Result<cim::Instance> remove_dp(std::string_view name);

  // DP groups (groups.cc). `id` is the GroupID; the Name is accepted too (case-insensitive).
  Result<cim::Instance> create_group(const GroupSpec& spec);
  Result<cim::Instance> get_group(std::string_view id);
  // Member DP names, in the order they were added.
  Result<std::vector<std::string>> group_members(std::string_view id);
  // Adding a DP already in the group, or removing one that is not, is WBEM_E_INVALID_PARAMETER naming it.
  Result<cim::Instance> add_group_members(std::string_view id, const std::vector<std::string>& dp_names);
  Result<cim::Instance> remove_group_members(std::string_view id, const std::vector<std::string>& dp_names);

  // Packages (packages.cc). A source must lie under a source root (WBEM_E_ACCESS_DENIED naming them); its
  // canonical path is recorded as PkgSourcePath. The walk can be WBEM_E_SERVER_TOO_BUSY or WBEM_E_TIMED_OUT.
  Result<cim::Instance> create_package(const PackageSpec& spec);
  Result<cim::Instance> get_package(std::string_view package_id);
  Result<cim::Instance> update_package(std::string_view package_id, const PackageUpdate& update);
  // Refused while an advertisement references the package. Removes its programs, summarizer rows, DP targets,
  // status messages and content info. Returns the package as it was.
  Result<cim::Instance> delete_package(std::string_view package_id);

  // Programs (programs.cc).
  Result<cim::Instance> create_program(const ProgramSpec& spec);
  Result<std::vector<cim::Instance>> list_programs(std::string_view package_id);
  Result<cim::Instance> delete_program(std::string_view package_id, std::string_view program_name);

  // Advertisements (advertisements.cc).
  Result<cim::Instance> create_advertisement(const AdvertisementSpec& spec);
  // The advertisements that have an offer row at `site_code`, with their Offered flag.
  Result<std::vector<OfferView>> list_offers(std::string_view site_code);

  // Brings rows written by an older pkgcast to what this one writes (upgrade.cc): the derived properties added since
  // (each program's package facts, each DP's GroupCount and RateLimitsEnabled, each group's HasMember and
  // SourceSite) and the SMS_SystemResourceList rows of every site and DP, in one journaled command. Runs once per
  // database (a meta entry records it); answers whether it ran. The server calls it on start.
  Result<bool> upgrade_rows();

  // Tokens (token_admin.cc): a random token for `spec`, stored hashed; every listed site must exist; an expiry
  // that is not after the commit is WBEM_E_INVALID_PARAMETER.
  Result<CreatedToken> create_token(const TokenSpec& spec);
  // Revokes the token whose public id is `id`: its record and PKG_Token instance get the revocation time, and it is
  // refused from the commit on. WBEM_E_NOT_FOUND when no token has that id. Revoking a revoked token changes
  // nothing and returns its record.
  Result<TokenRecord> revoke_token(std::string_view id);

 private:
  Result<std::vector<cim::Instance>> scan_all(std::string_view class_name, const store::Predicate& filter = {});
  Result<cim::Instance> commit_returning(const std::function<Result<cim::Instance>(store::WriteTxn&)>& body);
  // add_group_members / remove_group_members: one command that edits the member list and MemberCount.
  Result<cim::Instance> change_group_members(std::string_view id, const std::vector<std::string>& dp_names, bool add);

  store::Store& store_;
  const cim::ClassRegistry& registry_;
  std::string own_site_;
  std::string server_name_;
  SourcePolicy sources_;
  SourceIngest ingest_;
  std::chrono::seconds ingest_timeout_{3600};
  std::function<Status(store::WriteTxn&, const std::string&)> delete_hook_;
};

// Lookups inside a command, for the layers above that write in the same transaction (the Distribution Manager).
// A DP by name (case-insensitive; WBEM_E_NOT_FOUND "DP 'x' does not exist"), or by its NAL path when `dp_name` is
// one (`["Display=\\DP1\"]MSWNET:...`), as Configuration Manager's methods name DPs.
Result<cim::Instance> find_dp(store::WriteTxn& txn, std::string_view dp_name);
// The DP (SMS_DistributionPointInfo) whose NALPath is `nal_path` exactly; WBEM_E_NOT_FOUND when none.
Result<cim::Instance> find_dp_by_nal_path(store::WriteTxn& txn, std::string_view nal_path);
// Every DP of a site (WBEM_E_NOT_FOUND when the site does not exist).
Result<std::vector<cim::Instance>> find_site_dps(store::WriteTxn& txn, std::string_view site_code);
// The member DP names of a group, by GroupID or Name (WBEM_E_NOT_FOUND when there is no such group).
Result<std::vector<std::string>> find_group_members(store::WriteTxn& txn, std::string_view group);
// DP group content (SMS_DPGroupContentInfo, group_content.cc), inside the distribution's command. Assigning records
// that `package` is distributed to the group (once; the group's ContentCount counts it) and answers the member DP
// names; unassigning takes it off the group (WBEM_E_INVALID_PARAMETER when it is not assigned) and answers them too.
// WBEM_E_NOT_FOUND for an unknown group.
Result<std::vector<std::string>> assign_group_content(store::WriteTxn& txn, std::string_view group,
                                                      const cim::Instance& package);
Result<std::vector<std::string>> unassign_group_content(store::WriteTxn& txn, std::string_view group,
                                                        std::string_view package_id);
// Writes again what the package's group assignments repeat of it (Name, Description, type, size), after it changed.
Status sync_group_content(store::WriteTxn& txn, const cim::Instance& package);
// The URL a DP's agent serves content on ("" when none was given).
Result<std::string> dp_agent_url(store::WriteTxn& txn, std::string_view dp_name);

// The content recorded for one package version (see SourceContent), inside a command or from committed data.
Status record_content(store::WriteTxn& txn, std::string_view package_id, std::uint32_t version,
                      const SourceContent& content);
Result<std::optional<SourceContent>> recorded_content(store::WriteTxn& txn, std::string_view content_id);
Result<std::optional<SourceContent>> recorded_content(store::Store& store, std::string_view content_id);
// "ABC00001.3"
std::string content_id(std::string_view package_id, std::uint32_t version);

// The NAL path of a DP: `["Display=\\<name>\"]MSWNET:["SMS_SITE=<site>"]\\<name>\`.
std::string dp_nal_path(std::string_view dp_name, std::string_view site_code);

}  // namespace pkgcast::site
