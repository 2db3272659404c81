// Packages. Creating one writes, in the same command, every row that must exist from the start: the package, its
// Root summarizer (so a package without source files is visible with Targeted = 0 at once), the Detail summarizer
// of its source site, and its content info. Deleting one removes every row that names it.
#include <filesystem>

#include "core/strings.h"
#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

namespace {

constexpr std::uint32_t kStorageNoSource = 1;
constexpr std::uint32_t kStorageDirect = 2;
constexpr std::uint32_t kUseBinaryDeltaRep = 0x04000000;

Status check_priority(std::uint32_t priority) {
  if (priority < 1 || priority > 3) return invalid("Priority", "must be 1 (high), 2 (normal) or 3 (low)");
  return ok_status();
}

Status check_descriptive(const std::string* name, const std::string* version, const std::string* manufacturer,
                         const std::string* language, const std::string* description) {
  if (name) PKG_TRY(check_text("Name", *name, 1, kMaxPackageName));
  if (version) PKG_TRY(check_text("Version", *version, 0, kMaxShortText));
  if (manufacturer) PKG_TRY(check_text("Manufacturer", *manufacturer, 0, kMaxShortText));
  if (language) PKG_TRY(check_text("Language", *language, 0, kMaxShortText));
  if (description) PKG_TRY(check_text("Description", *description, 0, kMaxDescription, TextKind::kMultiLine));
  return ok_status();
}

// The classes whose rows name a package by PackageID and go with it when it is deleted, package itself last.
constexpr std::string_view kDependentClasses[] = {
    "SMS_Program",
    "SMS_DistributionPoint",
    "PKG_DPJob",
    "SMS_PackageStatusDistPointsSummarizer",
    "SMS_PackageStatusDetailSummarizer",
    "SMS_PackageStatusRootSummarizer",
    "SMS_ObjectContentExtraInfo",
    "SMS_DistributionDPStatus",
};

}  // namespace

Result<cim::Instance> Domain::create_package(const PackageSpec& spec) {
  PKG_TRY(check_descriptive(&spec.name, &spec.version, &spec.manufacturer, &spec.language, &spec.description));
  PKG_TRY(check_priority(spec.priority));
  const bool has_source = !spec.source_path.empty();
  std::uint32_t size_kb = 0;
  std::string source_path;
  std::optional<SourceContent> content;
  // The walk happens before the command, off the writer thread (the writer must never wait on a file system),
  // and on the source walker's threads, not the caller's. Every chunk and the manifest are stored before the
  // command commits, so no package row is ever visible with content that is not completely stored.
  if (has_source) {
    PKG_ASSIGN_OR_RETURN(TakenSource taken, take_source(spec.source_path));
    size_kb = taken.size_kb;
    source_path = taken.dir.string();
    content = std::move(taken.content);
  }

  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    PKG_ASSIGN_OR_RETURN(cim::Instance site, require_site(txn, own_site_));
    PKG_ASSIGN_OR_RETURN(const std::string id, allocate_id(txn, "package", own_site_));
    const Micros now = txn.now();
    const std::uint32_t source_version = 1;
    if (content) PKG_TRY(record_content(txn, id, source_version, *content));
    // When this source version was taken (classes.md), as Configuration Manager dates a source refresh; the
    // manifest's source_date (the tree's newest mtime) says how old the files are, which may be years.
    const Micros source_date = now;
    const std::uint32_t compressed_kb = content ? kb_of(content->compressed_size) : 0;

    cim::Instance pkg = make_instance("SMS_Package");
    set_prop(pkg, "PackageID", str_value(id));
    set_prop(pkg, "Name", str_value(spec.name));
    set_prop(pkg, "Version", str_value(spec.version));
    set_prop(pkg, "Language", str_value(spec.language));
    set_prop(pkg, "Manufacturer", str_value(spec.manufacturer));
    set_prop(pkg, "Description", str_value(spec.description));
    set_prop(pkg, "PkgSourcePath", str_value(source_path));
    set_prop(pkg, "PkgSourceFlag", u32_value(has_source ? kStorageDirect : kStorageNoSource));
    set_prop(pkg, "PackageType", u32_value(0));
    set_prop(pkg, "PackageSize", u32_value(size_kb));
    set_prop(pkg, "SourceVersion", u32_value(source_version));
    set_prop(pkg, "SourceDate", time_value(source_date));
    set_prop(pkg, "SourceSite", str_value(own_site_));
    set_prop(pkg, "Priority", u32_value(spec.priority));
    set_prop(pkg, "PkgFlags", u32_value(kUseBinaryDeltaRep));
    set_prop(pkg, "LastRefreshTime", time_value(now));
    set_prop(pkg, "ActionInProgress", u32_value(0));
    set_prop(pkg, "NumOfPrograms", u32_value(0));
    PKG_TRY(txn.insert(pkg));

    cim::Instance root = make_instance("SMS_PackageStatusRootSummarizer");
    set_prop(root, "PackageID", str_value(id));
    set_prop(root, "Name", str_value(spec.name));
    set_prop(root, "SourceSite", str_value(own_site_));
    set_prop(root, "SourceVersion", u32_value(source_version));
    set_prop(root, "SourceDate", time_value(source_date));
    set_prop(root, "SourceSize", u32_value(size_kb));
    set_prop(root, "SourceCompressedSize", u32_value(compressed_kb));
    for (const char* count : {"Targeted", "Installed", "Retrying", "Failed"}) set_prop(root, count, u32_value(0));
    PKG_TRY(txn.insert(root));

    cim::Instance detail = make_instance("SMS_PackageStatusDetailSummarizer");
    set_prop(detail, "PackageID", str_value(id));
    set_prop(detail, "SiteCode", str_value(own_site_));
    set_prop(detail, "Name", str_value(spec.name));
    set_prop(detail, "SiteName", str_value(get_string(site, "SiteName")));
    set_prop(detail, "SourceVersion", u32_value(source_version));
    set_prop(detail, "SummaryDate", time_value(now));
    for (const char* count : {"Targeted", "Installed", "Retrying", "Failed"}) set_prop(detail, count, u32_value(0));
    PKG_TRY(txn.insert(detail));

    cim::Instance extra = make_instance("SMS_ObjectContentExtraInfo");
    set_prop(extra, "ObjectID", str_value(id));
    set_prop(extra, "PackageID", str_value(id));
    set_prop(extra, "SoftwareName", str_value(spec.name));
    set_prop(extra, "SourceSite", str_value(own_site_));
    set_prop(extra, "SourceSize", u32_value(size_kb));
    set_prop(extra, "SourceVersion", u32_value(source_version));
    for (const char* count : {"Targeted", "NumberSuccess", "NumberInProgress", "NumberErrors", "NumberUnknown"}) {
      set_prop(extra, count, u32_value(0));
    }
    set_prop(extra, "LastUpdateDate", time_value(now));
    set_prop(extra, "DateCreated", time_value(now));
    set_prop(extra, "Description", str_value(spec.description));
    set_prop(extra, "ObjectType", u32_value(0));
    PKG_TRY(txn.insert(extra));
    return pkg;
  });
}

Result<cim::Instance> Domain::get_package(std::string_view package_id) {
  PKG_ASSIGN_OR_RETURN(const std::string id, normalize_object_id("PackageID", package_id));
  PKG_ASSIGN_OR_RETURN(auto pkg, store_.get(class_named("SMS_Package"), {str_value(id)}));
  if (!pkg) return not_found("package '" + id + "' does not exist");
  return std::move(*pkg);
}

Result<cim::Instance> Domain::update_package(std::string_view package_id, const PackageUpdate& u) {
  PKG_ASSIGN_OR_RETURN(const std::string id, normalize_object_id("PackageID", package_id));
  PKG_TRY(check_descriptive(u.name ? &*u.name : nullptr, u.version ? &*u.version : nullptr,
                            u.manufacturer ? &*u.manufacturer : nullptr, u.language ? &*u.language : nullptr,
                            u.description ? &*u.description : nullptr));
  if (u.priority) PKG_TRY(check_priority(*u.priority));

  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    PKG_ASSIGN_OR_RETURN(cim::Instance pkg, require_package(txn, id));
    if (u.name) set_prop(pkg, "Name", str_value(*u.name));
    if (u.version) set_prop(pkg, "Version", str_value(*u.version));
    if (u.manufacturer) set_prop(pkg, "Manufacturer", str_value(*u.manufacturer));
    if (u.language) set_prop(pkg, "Language", str_value(*u.language));
    if (u.description) set_prop(pkg, "Description", str_value(*u.description));
    if (u.priority) set_prop(pkg, "Priority", u32_value(*u.priority));
    PKG_TRY(txn.put(pkg));  // an unchanged package journals nothing
    if (u.name || u.version) PKG_TRY(sync_programs(txn, pkg));
    if (u.name || u.description) PKG_TRY(sync_group_content(txn, pkg));
    const cim::ClassDef& extra_cls = class_named("SMS_ObjectContentExtraInfo");
    PKG_ASSIGN_OR_RETURN(auto extra, txn.get(extra_cls, {str_value(id)}));
    if (extra) {
      if (u.name) set_prop(*extra, "SoftwareName", str_value(*u.name));
      if (u.description) set_prop(*extra, "Description", str_value(*u.description));
      PKG_TRY(txn.put(*extra));
    }
    if (!u.name) return pkg;

    // The summaries carry the name too; keep them in step in the same command.
    for (const char* cls_name : {"SMS_PackageStatusRootSummarizer", "SMS_PackageStatusDetailSummarizer"}) {
      const cim::ClassDef& cls = class_named(cls_name);
      PKG_ASSIGN_OR_RETURN(auto rows, txn_scan(txn, cls, where_string(cls, "PackageID", id)));
      for (auto& row : rows) {
        if (get_string(row, "PackageID") != id) continue;
        set_prop(row, "Name", str_value(*u.name));
        PKG_TRY(txn.put(row));
      }
    }
    return pkg;
  });
}

Result<cim::Instance> Domain::delete_package(std::string_view package_id) {
  PKG_ASSIGN_OR_RETURN(const std::string id, normalize_object_id("PackageID", package_id));
  return commit_returning([&](store::WriteTxn& txn) -> Result<cim::Instance> {
    PKG_ASSIGN_OR_RETURN(cim::Instance pkg, require_package(txn, id));
    const cim::ClassDef& ads_cls = class_named("SMS_Advertisement");
    PKG_ASSIGN_OR_RETURN(auto ads, txn_scan(txn, ads_cls, where_string(ads_cls, "PackageID", id)));
    std::string advertised_by;
    for (const auto& ad : ads) {
      if (get_string(ad, "PackageID") != id) continue;
      advertised_by += (advertised_by.empty() ? "" : ", ") + get_string(ad, "AdvertisementID");
    }
    if (!advertised_by.empty()) {
      return make_error(WbemCode::kInvalidOperation, "package " + id + " is advertised by " + advertised_by);
    }
    if (delete_hook_) PKG_TRY(delete_hook_(txn, id));
    PKG_TRY(drop_package_group_content(txn, id));
    for (std::string_view cls_name : kDependentClasses) {
      const cim::ClassDef& cls = class_named(cls_name);
      PKG_ASSIGN_OR_RETURN(auto rows, txn_scan(txn, cls, where_string(cls, "PackageID", id)));
      for (const auto& row : rows) {
        if (get_string(row, "PackageID") == id) PKG_TRY(txn.remove(cls, store::key_of(row)));
      }
    }
    // Its versions' content records go too, so the content library's garbage collection can free their chunks.
    PKG_ASSIGN_OR_RETURN(auto records, txn.list_meta("content/" + id + "."));
    for (const auto& [key, value] : records) PKG_TRY(txn.remove_meta(key));
    PKG_TRY(txn.remove(pkg.class_def(), {str_value(id)}));
    return pkg;
  });
}

}  // namespace pkgcast::site
