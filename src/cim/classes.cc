// The provider's classes (shared/classes.md), defined once. The store schema, the provider and docs/classes.md
// derive from this table; change a class here and everything follows.
#include <string>
#include <vector>

#include "cim/class_def.h"

namespace pkgcast::cim {
namespace {

constexpr Type kString{CimType::kString, false};
constexpr Type kStrings{CimType::kString, true};
constexpr Type kUint32{CimType::kUint32, false};
constexpr Type kSint32{CimType::kSint32, false};
constexpr Type kUint64{CimType::kUint64, false};
constexpr Type kBool{CimType::kBoolean, false};
constexpr Type kDate{CimType::kDateTime, false};
constexpr Type kObject{CimType::kObject, false};
constexpr Type kObjects{CimType::kObject, true};
constexpr Type kBytes{CimType::kUint8, true};

PropertyDef key(std::string name, Type type, std::string doc = {}) {
  return {std::move(name), type, /*key=*/true, /*read_only=*/false, std::move(doc), false, {}, false};
}
PropertyDef read_key(std::string name, Type type, std::string doc = {}) {
  return {std::move(name), type, /*key=*/true, /*read_only=*/true, std::move(doc), false, {}, false};
}
PropertyDef rw(std::string name, Type type, std::string doc = {}) {
  return {std::move(name), type, false, false, std::move(doc), false, {}, false};
}
PropertyDef ro(std::string name, Type type, std::string doc = {}) {
  return {std::move(name), type, false, true, std::move(doc), false, {}, false};
}

// The documented defaults of the types Configuration Manager's MOFs give one ("" / 0 / FALSE); datetimes, arrays
// and embedded objects have none and stay NULL.
Value documented_default(Type type) {
  if (type.array) return {};
  switch (type.base) {
    case CimType::kString: return Value::string("");
    case CimType::kBoolean: return Value::boolean(false);
    case CimType::kUint32: return Value::uint32(0);
    case CimType::kSint32: return Value::sint(CimType::kSint32, 0);
    default: return {};
  }
}

// A property pkgcast gives meaning to, written by the domain, which starts at `dflt` (the type's documented
// default when not given) so that a row written before the property existed reads sensibly.
PropertyDef with_default(PropertyDef p, Value dflt = {}) {
  p.default_value = dflt.is_null() ? documented_default(p.type) : std::move(dflt);
  return p;
}

// A documented property pkgcast gives no meaning: it holds its documented default, always.
PropertyDef unused(std::string name, Type type, Value dflt = {}) {
  PropertyDef p = with_default(rw(std::move(name), type), std::move(dflt));
  p.at_default = true;
  return p;
}
PropertyDef unused_ro(std::string name, Type type, Value dflt = {}) {
  PropertyDef p = unused(std::move(name), type, std::move(dflt));
  p.read_only = true;
  return p;
}
PropertyDef lazy(PropertyDef p) {
  p.lazy = true;
  return p;
}

// Marks every property of a read-only class as read-only.
ClassSpec read_only_class(ClassSpec spec) {
  for (auto& p : spec.properties) p.read_only = true;
  return spec;
}

std::vector<ClassSpec> builtin_specs() {
  std::vector<ClassSpec> s;
  s.push_back({"SMS_BaseClass", "", {}, true, "Root of every Configuration Manager class."});

  s.push_back({"SMS_Site", "SMS_BaseClass",
               {key("SiteCode", kString, "3 characters, [A-Z0-9]"), rw("SiteName", kString),
                rw("Type", kUint32, "1 SECONDARY, 2 PRIMARY, 4 CENTRAL"),
                rw("ReportingSiteCode", kString, "the parent site; empty at the top"), rw("ServerName", kString),
                ro("Status", kUint32, "1 ACTIVE, 2 PENDING, 3 FAILED, 4 DELETED"), ro("Version", kString),
                unused_ro("BuildNumber", kUint32), unused_ro("Features", kString), unused_ro("InstallDir", kString),
                unused_ro("Mode", kUint32), unused_ro("RequestedStatus", kUint32),
                unused_ro("SecondarySiteCMUpdateStatus", kUint32), unused_ro("TimeZoneInfo", kString)},
               false, "A site of the hierarchy."});

  // In `root\sms` (and, for convenience, in the site's namespace too): where Configuration Manager's scripts look up
  // their site's namespace (`SELECT * FROM SMS_ProviderLocation WHERE ProviderForLocalSite = TRUE`).
  s.push_back(read_only_class({"SMS_ProviderLocation", "",
                               {rw("Machine", kString, "the site server's host name"),
                                rw("NamespacePath", kString, "`\\\\<Machine>\\root\\sms\\site_<SiteCode>`"),
                                rw("ProviderForLocalSite", kBool, "TRUE: the site this server serves"),
                                key("SiteCode", kString)},
                               false,
                               "The SMS Provider of a site: the namespace that serves it. In `root\\sms` (where "
                               "it is the only class) and in the site's namespace."}));

  s.push_back({"SMS_DistributionPointInfo", "SMS_BaseClass",
               {read_key("NALPath", kString), rw("Name", kString), rw("ServerName", kString), rw("SiteCode", kString),
                ro("SiteName", kString), rw("Description", kString), rw("IsPullDP", kBool),
                rw("SourceDPs", kStrings, "the DPs a pull DP takes content from, in priority order"),
                rw("TransferRate", kUint32, "KiB/s, 0 = unlimited"), ro("LastContactTime", kDate),
                rw("TransferWindow", kString,
                   "168 hours from Sunday 00:00 UTC: A all priorities, M medium and high, H high only, C closed; "
                   "empty: always open"),
                unused("AddressScheduleEnabled", kBool), unused("BindExcept", kString), unused("BindPolicy", kBool),
                unused("BitsEnabled", kBool), unused("CertificateType", kBool), unused("Communication", kUint32),
                unused("DPFlags", kUint32), unused("Drive", kString),
                with_default(ro("GroupCount", kUint32, "the DP groups the DP is a member of")),
                unused("HasRelationship", kBool), unused("HealthCheckEnabled", kBool),
                unused("HealthCheckPriority", kUint32), unused("HealthCheckSchedule", kString),
                unused("ID", kUint32), unused("IdentityGUID", kString), unused("InternetFacing", kBool),
                with_default(ro("IsActive", kBool, "TRUE: every DP pkgcast knows is in service"), Value::boolean(true)),
                unused("IsMulticast", kBool), unused("IsPeerDP", kBool), unused("IsProtected", kBool),
                unused("IsPXE", kBool), unused("OperatingSystem", kString), unused("Priority", kUint32),
                unused("PreStagingAllowed", kBool), unused("PXEPassword", kString),
                with_default(ro("RateLimitsEnabled", kBool, "TransferRate is not 0")), unused("Region", kUint32),
                with_default(ro("ResourceType", kString, "always 'Windows NT Server', as Configuration Manager's DPs"),
                             Value::string("Windows NT Server")),
                unused("ResponseDelay", kUint32), unused("ServiceType", kString), unused("ShareName", kString),
                unused("SupportUnknownMachines", kBool), unused("UdaSetting", kUint32)},
               false, "One row per distribution point."});

  s.push_back({"SMS_DistributionPointGroup", "SMS_BaseClass",
               {read_key("GroupID", kString), rw("Name", kString, "unique"), rw("Description", kString),
                ro("MemberCount", kUint32), ro("ContentCount", kUint32, "packages assigned to the group"),
                unused_ro("CollectionCount", kUint32), unused_ro("ContentInSync", kBool),
                unused_ro("CreatedBy", kString), ro("CreatedOn", kDate),
                with_default(ro("HasMember", kBool, "MemberCount > 0")), unused_ro("HasRelationship", kBool),
                unused_ro("ModifiedBy", kString), ro("ModifiedOn", kDate, "last change of name, members or content"),
                unused_ro("OutOfSyncContentCount", kUint32),
                with_default(ro("SourceSite", kString, "the site whose server created the group"))},
               false, "A named group of distribution points."});

  s.push_back(read_only_class(
      {"SMS_DPGroupContentInfo", "SMS_BaseClass",
       {key("GroupID", kString), key("PackageID", kString), rw("Name", kString, "the package's Name"),
        rw("Description", kString, "the package's Description"), rw("ObjectID", kString, "= PackageID"),
        with_default(rw("ObjectType", kUint32, "the package's PackageType (0 REGULAR)")),
        with_default(rw("ObjectTypeID", kUint32, "2 SMS_Package"), Value::uint32(2)),
        rw("SourceSize", kUint32, "KB of the package's current source"), unused("IsPredefinedPackage", kBool)},
       false,
       "A package assigned to a DP group (distributed to the group): created by the distribution, gone when the "
       "package is deleted."}));

  s.push_back(read_only_class(
      {"SMS_SystemResourceList", "SMS_BaseClass",
       {key("NALPath", kString), key("ResourceType", kString, "'Windows NT Server'"),
        key("RoleName", kString, "'SMS Site Server' (one per site) or 'SMS Distribution Point' (one per DP)"),
        key("SiteCode", kString), rw("ServerName", kString), rw("ServerRemoteName", kString, "= ServerName"),
        unused("InternetEnabled", kBool), unused("InternetShared", kBool),
        with_default(rw("SslState", kUint32, "0 HTTP, 1 HTTPS: how a DP agent serves content; 2 for other roles"))},
       false, "One row per site system role, kept with the site or DP it describes."}));

  // Configuration Manager's abstract base of every package class (SMS_Package, and its SMS_DriverPackage,
  // SMS_BootImagePackage, ... which pkgcast has not): the properties its MOF declares. A query of it answers
  // SMS_Package instances; ISVString is declared here, so SMS_Package has it too.
  s.push_back({"SMS_PackageBaseclass", "SMS_BaseClass",
               {read_key("PackageID", kString, "site code + 5 upper-case hex digits"), rw("Name", kString),
                rw("Version", kString), rw("Language", kString), rw("Manufacturer", kString),
                rw("Description", kString), rw("PkgSourcePath", kString),
                rw("PkgSourceFlag", kUint32, "1 STORAGE_NO_SOURCE, 2 STORAGE_DIRECT"),
                rw("PackageType", kUint32, "0 REGULAR"), ro("PackageSize", kUint32, "KB of source"),
                ro("SourceVersion", kUint32), ro("SourceDate", kDate), ro("SourceSite", kString),
                rw("Priority", kUint32, "1 HIGH, 2 NORMAL, 3 LOW"), rw("PkgFlags", kUint32),
                ro("LastRefreshTime", kDate), ro("ActionInProgress", kUint32, "0 NONE, 1 UPDATE, 2 ADD, 3 DELETE"),
                ro("NumOfPrograms", kUint32),
                unused("AlternateContentProviders", kString),
                lazy(unused("ExtendedData", kBytes)), unused("ExtendedDataSize", kUint32),
                unused("ForcedDisconnectDelay", kUint32, Value::uint32(5)), unused("ForcedDisconnectEnabled", kBool),
                unused("ForcedDisconnectNumRetries", kUint32, Value::uint32(2)), lazy(unused("Icon", kBytes)),
                unused("IconSize", kUint32), unused("IgnoreAddressSchedule", kBool),
                lazy(unused("ISVData", kBytes)), unused("ISVDataSize", kUint32), unused("ISVString", kString),
                unused("LocalizedCategoryInstanceNames", kStrings),
                unused("MIFFilename", kString), unused("MIFName", kString), unused("MIFPublisher", kString),
                unused("MIFVersion", kString), unused("PreferredAddressType", kString),
                unused("RefreshPkgSourceFlag", kBool), lazy(unused("RefreshSchedule", kObjects)),
                lazy(unused_ro("SecuredScopeNames", kStrings)), unused_ro("SedoObjectVersion", kString),
                unused("ShareName", kString), unused("ShareType", kUint32, Value::uint32(1)),
                unused("StoredPkgPath", kString), unused("StoredPkgVersion", kUint32)},
               true,
               "The base of every package class. A query of it answers the packages, as instances of "
               "SMS_Package."});

  s.push_back({"SMS_Package", "SMS_PackageBaseclass",
               {unused("DefaultImageFlags", kSint32), unused_ro("IsPredefinedPackage", kBool),
                with_default(ro("ObjectPath", kString, "the console folder: always '/', pkgcast has no folders"),
                             Value::string("/")),
                unused_ro("TransformAnalysisDate", kDate), unused_ro("TransformReadiness", kUint32)},
               false, "A software package, with or without source files."});

  s.push_back({"SMS_Program", "SMS_BaseClass",
               {key("PackageID", kString), key("ProgramName", kString), rw("CommandLine", kString),
                rw("WorkingDirectory", kString), rw("Comment", kString), rw("ProgramFlags", kUint32),
                rw("Duration", kUint32, "minutes"), rw("DiskSpaceReq", kString),
                with_default(ro("ActionInProgress", kUint32, "0 NONE")), unused("ApplicationHierarchy", kString),
                unused("DependentProgram", kString), unused("Description", kString), unused("DeviceFlags", kUint32),
                unused("DriveLetter", kString), lazy(unused("ExtendedData", kBytes)),
                unused("ExtendedDataSize", kUint32), lazy(unused("Icon", kBytes)), unused("IconSize", kUint32),
                lazy(unused("ISVData", kBytes)), unused("ISVDataSize", kUint32), unused("ISVString", kString),
                unused("MSIFilePath", kString), unused("MSIProductID", kString),
                with_default(ro("PackageName", kString, "the package's Name")),
                with_default(ro("PackageType", kUint32, "the package's PackageType")),
                with_default(ro("PackageVersion", kString, "the package's Version")), unused("RemovalKey", kString),
                unused("Requirements", kString), unused_ro("SecuredTypeID", kUint32),
                lazy(unused("SupportedOperatingSystems", kObjects)), unused_ro("TransformAnalysisDate", kDate),
                unused_ro("TransformDtID", kString), unused_ro("TransformReadiness", kUint32)},
               false, "A command line that installs a package."});

  s.push_back({"SMS_Advertisement", "SMS_BaseClass",
               {read_key("AdvertisementID", kString), rw("AdvertisementName", kString), rw("CollectionID", kString),
                rw("PackageID", kString), rw("ProgramName", kString), rw("PresentTime", kDate),
                rw("ExpirationTime", kDate), rw("ExpirationTimeEnabled", kBool),
                rw("OfferType", kUint32, "0 REQUIRED, 2 AVAILABLE"), rw("AdvertFlags", kUint32),
                ro("SourceSite", kString), rw("Comment", kString),
                with_default(ro("ActionInProgress", kUint32, "0 NONE")), lazy(unused("AssignedSchedule", kObjects)),
                unused("AssignedScheduleEnabled", kBool), unused("AssignedScheduleIsGMT", kBool),
                unused_ro("AssignmentID", kUint32), unused("DeviceFlags", kUint32),
                unused("ExpirationTimeIsGMT", kBool), unused_ro("HierarchyPath", kString),
                unused("IncludeSubCollection", kBool, Value::boolean(true)), lazy(unused("ISVData", kBytes)),
                unused("ISVDataSize", kUint32), unused("ISVString", kString), unused("MandatoryCountdown", kUint32),
                with_default(ro("PresentTimeEnabled", kBool, "TRUE: the offer starts at PresentTime"),
                             Value::boolean(true)),
                with_default(ro("PresentTimeIsGMT", kBool, "TRUE: pkgcast's times are UTC"), Value::boolean(true)),
                unused("Priority", kUint32, Value::uint32(2)),
                unused("RemoteClientFlags", kUint32), unused("TimeFlags", kUint32)},
               false, "A program offered to a collection."});

  s.push_back(read_only_class({"PKG_AdvertisementOffer", "SMS_BaseClass",
                               {key("AdvertisementID", kString), key("SiteCode", kString), rw("PackageID", kString),
                                rw("Offered", kBool, "content distributed at the site, or no source files"),
                                rw("OfferedTime", kDate)},
                               false, "Whether an advertisement is offered to the clients of a site."}));

  s.push_back({"SMS_DistributionPoint", "SMS_BaseClass",
               {key("PackageID", kString), key("ServerNALPath", kString), key("SiteCode", kString),
                ro("SiteName", kString), ro("SourceSite", kString),
                ro("Status", kUint32, "0 NONE, 1 UPDATED, 2 ADDED, 3 DELETED"), ro("LastRefreshTime", kDate),
                rw("RefreshNow", kBool, "TRUE redistributes to this DP only"), unused_ro("BitsEnabled", kBool),
                unused_ro("IsPeerDP", kBool), unused_ro("IsProtected", kBool), lazy(unused("ISVData", kBytes)),
                lazy(unused("ISVDataSize", kUint32)), unused("ISVString", kString),
                with_default(ro("ObjectTypeID", kUint32, "2 SMS_Package"), Value::uint32(2)),
                with_default(ro("PackageType", kUint32, "the package's PackageType")),
                with_default(ro("ResourceType", kString, "the DP's ResourceType"), Value::string("Windows NT Server")),
                with_default(ro("SecureObjectID", kString, "= PackageID"))},
               false, "A package targeted at a distribution point."});

  s.push_back(read_only_class(
      {"SMS_PackageStatusDistPointsSummarizer", "SMS_BaseClass",
       {key("PackageID", kString), key("ServerNALPath", kString), key("SiteCode", kString),
        rw("SourceNALPath", kString,
           "where the DP's files are taken from: a standard DP's own NAL path (it holds them; as Configuration "
           "Manager shows it), a pull DP's first source DP"),
        rw("SourceVersion", kUint32),
        rw("State", kUint32,
           "0 INSTALLED, 1 INSTALL_PENDING, 2 INSTALL_RETRYING, 3 INSTALL_FAILED, 4 REMOVAL_PENDING, "
           "5 REMOVAL_RETRYING, 6 REMOVAL_FAILED, 7 CONTENT_UPDATING, 8 CONTENT_MONITORING"),
        rw("LastCopied", kDate), rw("SummaryDate", kDate), rw("PackageType", kUint32), rw("InstallStatus", kString),
        with_default(rw("SecureObjectID", kString, "= PackageID")),
        with_default(rw("SecuredTypeID", kUint32, "2 SMS_Package"), Value::uint32(2))},
       false, "One row per package per distribution point."}));

  const std::vector<PropertyDef> counts{rw("Targeted", kUint32), rw("Installed", kUint32), rw("Retrying", kUint32),
                                        rw("Failed", kUint32)};
  ClassSpec detail{"SMS_PackageStatusDetailSummarizer", "SMS_BaseClass",
                   {key("PackageID", kString), key("SiteCode", kString), rw("Name", kString), rw("SiteName", kString),
                    rw("SourceVersion", kUint32), rw("SummaryDate", kDate)},
                   false, "Package status per site."};
  detail.properties.insert(detail.properties.end(), counts.begin(), counts.end());
  s.push_back(read_only_class(std::move(detail)));

  ClassSpec root{"SMS_PackageStatusRootSummarizer", "SMS_BaseClass",
                 {key("PackageID", kString), rw("Name", kString), rw("SourceSite", kString),
                  rw("SourceVersion", kUint32), rw("SourceDate", kDate), rw("SourceSize", kUint32, "KB"),
                  rw("SourceCompressedSize", kUint32, "KB")},
                 false, "Package status over every site."};
  root.properties.insert(root.properties.end(), counts.begin(), counts.end());
  s.push_back(read_only_class(std::move(root)));

  s.push_back(read_only_class(
      {"SMS_ObjectContentExtraInfo", "SMS_BaseClass",
       {key("ObjectID", kString), rw("PackageID", kString), rw("SoftwareName", kString), rw("SourceSite", kString),
        rw("SourceSize", kUint32), rw("SourceVersion", kUint32), rw("Targeted", kUint32),
        rw("NumberSuccess", kUint32), rw("NumberInProgress", kUint32), rw("NumberErrors", kUint32),
        rw("NumberUnknown", kUint32), rw("LastUpdateDate", kDate), rw("DateCreated", kDate, "the package's creation"),
        with_default(rw("Description", kString, "the package's Description")),
        unused("FeatureType", kUint32, Value::uint32(8)),
        with_default(rw("ObjectType", kUint32, "the package's PackageType")),
        with_default(rw("ObjectTypeID", kUint32, "2 SMS_Package"), Value::uint32(2))},
       false, "Content status of a package, as `pkgcast status` shows it."}));

  ClassSpec dp_status{"SMS_DistributionDPStatus", "SMS_BaseClass",
                      {key("ID", kUint64), rw("PackageID", kString), rw("NALPath", kString), rw("Name", kString),
                       rw("SiteCode", kString), rw("MessageID", kUint32),
                       rw("MessageState", kUint32, "1 SUCCESS, 2 IN_PROGRESS, 3 ERROR"),
                       rw("MessageSeverity", kUint32), rw("InsStrings", kStrings), rw("LastUpdateDate", kDate),
                       unused("GroupCount", kUint32)},
                      false, "The last status message per package per distribution point."};
  // InsString1..10 (documented) are the message's insertion strings one by one; pkgcast keeps them as InsStrings.
  for (int i = 1; i <= 10; ++i) dp_status.properties.push_back(unused("InsString" + std::to_string(i), kString));
  for (PropertyDef p : {unused("IsPeerDP", kBool), unused("LastStatusID", kUint64, Value::uint64(0)),
                        unused("MessageCategory", kUint32), unused("MessageFullID", kUint32),
                        with_default(rw("ObjectID", kString, "= PackageID")),
                        with_default(rw("ObjectTypeID", kUint32, "2 SMS_Package"), Value::uint32(2)),
                        with_default(rw("ResourceType", kString, "the DP's ResourceType"),
                                     Value::string("Windows NT Server"))}) {
    dp_status.properties.push_back(std::move(p));
  }
  s.push_back(read_only_class(std::move(dp_status)));

  s.push_back(read_only_class(
      {"SMS_DPStatusInfo", "SMS_BaseClass",
       {key("NALPath", kString), rw("Name", kString), rw("SiteCode", kString), rw("IsPullDP", kBool),
        rw("NumberInstalled", kUint32), rw("NumberInProgress", kUint32), rw("NumberErrors", kUint32),
        rw("NumberUnknown", kUint32), rw("MessageState", kUint32), rw("LastStatusTime", kDate),
        unused("IsDPMonEnabled", kBool), unused("IsMulticast", kBool), unused("IsPXE", kBool),
        unused("MessageCount", kUint32), unused("Version", kString)},
       false, "Health of a distribution point."}));

  s.push_back(read_only_class(
      {"PKG_Token", "SMS_BaseClass",
       {key("TokenID", kString, "the token's public id: the first 12 hex digits of its SHA-256"),
        rw("Role", kString, "full-admin, package-admin, read-only or dp"),
        rw("Sites", kStrings, "the sites the token is limited to; empty = every site"),
        rw("DPName", kString, "dp tokens: the DP the token belongs to"), rw("Description", kString),
        rw("Created", kDate), rw("Expires", kDate, "NULL = never"),
        rw("Revoked", kDate, "NULL = not revoked; else when it was")},
       false,
       "An API token (never its secret), for the audit trail: issuing and revoking one are journaled. Visible to "
       "unrestricted full-admin tokens only."}));

  s.push_back(read_only_class(
      {"PKG_DPJob", "SMS_BaseClass",
       {key("PackageID", kString), key("NALPath", kString), rw("DPName", kString), rw("SiteCode", kString),
        rw("Action", kUint32, "1 INSTALL, 2 REMOVE, 3 VALIDATE, 4 CANCEL"),
        rw("Generation", kUint32,
           "grows each time the job is issued or sent again and never repeats for a package on a DP (a job deleted "
           "and issued again starts above every generation issued before); older generations' status is ignored"),
        rw("JobState", kUint32,
           "0 QUEUED (waiting: for a slot, a retry time, a source or a transfer window), 1 SENT (the DP agent "
           "acts on it), 2 DONE, 3 FAILED"),
        rw("ContentID", kString, "<PackageID>.<SourceVersion>"), rw("SourceVersion", kUint32),
        rw("ManifestHash", kString, "SHA-256 of the version's manifest"),
        rw("ContentSize", kUint64, "bytes of the version's files"),
        rw("Sources", kStrings, "content base URLs in the order the DP tries them"),
        rw("TransferRate", kUint32, "KiB/s, 0 = unlimited"), rw("Priority", kUint32, "1 HIGH, 2 NORMAL, 3 LOW"),
        rw("Attempts", kUint32, "failed attempts of this generation"),
        rw("NextAttemptTime", kDate, "a retry waits until then"), rw("WaitReason", kString),
        rw("IssuedTime", kDate), rw("SentTime", kDate), rw("LastProgressTime", kDate),
        rw("BytesDone", kUint64), rw("BytesTotal", kUint64), rw("LastError", kString)},
       false,
       "What the Distribution Manager wants one distribution point to do for one package (docs/dp-protocol.md). "
       "DP agents follow their own jobs through the event API."}));

  // Intrinsic events. TIME_CREATED is WMI's: 100-ns intervals since 1601-01-01 UTC.
  s.push_back({"__Event", "", {ro("TIME_CREATED", kUint64)}, true, "Root of the event classes."});
  s.push_back({"__InstanceOperationEvent", "__Event", {ro("TargetInstance", kObject)}, true,
               "A change to an instance."});
  s.push_back({"__InstanceCreationEvent", "__InstanceOperationEvent", {}, false, "An instance was created."});
  s.push_back({"__InstanceDeletionEvent", "__InstanceOperationEvent", {}, false, "An instance was deleted."});
  s.push_back({"__InstanceModificationEvent", "__InstanceOperationEvent", {ro("PreviousInstance", kObject)}, false,
               "An instance was modified."});
  s.push_back({"__AggregateEvent", "__Event",
               {ro("NumberOfEvents", kUint32), ro("Representative", kObject)}, false,
               "Events grouped by GROUP WITHIN."});
  // WMI's class and namespace events: standard classes that scripts name, known here so that a query of them is
  // refused as not supported (pkgcast's classes change only with its version; its one namespace per site is made
  // with the site) rather than as an unknown class. Never delivered.
  s.push_back({"__ClassOperationEvent", "__Event", {ro("TargetClass", kObject)}, true,
               "A change to a class definition. Never delivered: pkgcast's classes change only with its version."});
  s.push_back({"__ClassCreationEvent", "__ClassOperationEvent", {}, false, "A class was created. Never delivered."});
  s.push_back({"__ClassDeletionEvent", "__ClassOperationEvent", {}, false, "A class was deleted. Never delivered."});
  s.push_back({"__ClassModificationEvent", "__ClassOperationEvent", {ro("PreviousClass", kObject)}, false,
               "A class was modified. Never delivered."});
  s.push_back({"__NamespaceOperationEvent", "__Event", {ro("TargetNamespace", kObject)}, true,
               "A change to a namespace. Never delivered: each site's namespace is made with the site."});
  s.push_back({"__NamespaceCreationEvent", "__NamespaceOperationEvent", {}, false,
               "A namespace was created. Never delivered."});
  s.push_back({"__NamespaceDeletionEvent", "__NamespaceOperationEvent", {}, false,
               "A namespace was deleted. Never delivered."});
  s.push_back({"__NamespaceModificationEvent", "__NamespaceOperationEvent", {ro("PreviousNamespace", kObject)}, false,
               "A namespace was modified. Never delivered."});
  return s;
}

}  // namespace

const ClassRegistry& ClassRegistry::builtin() {
  // Built once; a failure here is a programming error in the table above, caught by class_def_test.
  static const ClassRegistry registry = std::move(ClassRegistry::build(builtin_specs())).value();
  return registry;
}

}  // namespace pkgcast::cim
