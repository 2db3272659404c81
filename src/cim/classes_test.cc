// The builtin classes against Configuration Manager's documented MOFs (the "<Class> server WMI class" reference
// pages): every documented property is present, with its type and its key / lazy qualifiers. The MOFs are written
// out here independently of classes.cc, as the pages give them, so that a property dropped or mistyped there fails.
#include <gtest/gtest.h>

#include <sstream>

#include "cim/class_def.h"
#include "cim/instance.h"

namespace pkgcast::cim {
namespace {

struct Mof {
  const char* cls;
  // "type Name" entries separated by ';' as the pages print them; embedded classes (SMS_ScheduleToken, ...) are
  // written `object`. A trailing " key" or " lazy" is the qualifier the page gives.
  const char* properties;
};

const Mof kMofs[] = {
    {"SMS_Site",
     "uint32 BuildNumber; string Features; string InstallDir; uint32 Mode; string ReportingSiteCode; "
     "uint32 RequestedStatus; uint32 SecondarySiteCMUpdateStatus; string ServerName; string SiteCode key; "
     "string SiteName; uint32 Status; string TimeZoneInfo; uint32 Type; string Version"},
    {"SMS_DistributionPointInfo",
     "boolean AddressScheduleEnabled; string BindExcept; boolean BindPolicy; boolean BitsEnabled; "
     "boolean CertificateType; uint32 Communication; string Description; uint32 DPFlags; string Drive; "
     "uint32 GroupCount; boolean HasRelationship; boolean HealthCheckEnabled; uint32 HealthCheckPriority; "
     "string HealthCheckSchedule; uint32 ID; string IdentityGUID; boolean InternetFacing; boolean IsActive; "
     "boolean IsMulticast; boolean IsPeerDP; boolean IsProtected; boolean IsPullDP; boolean IsPXE; "
     "string NALPath key; string Name; string OperatingSystem; uint32 Priority; boolean PreStagingAllowed; "
     "string PXEPassword; boolean RateLimitsEnabled; uint32 Region; string ResourceType; uint32 ResponseDelay; "
     "string ServerName; string ServiceType; string ShareName; string SiteCode; string SiteName; "
     "boolean SupportUnknownMachines; uint32 TransferRate; uint32 UdaSetting"},
    {"SMS_DistributionPointGroup",
     "uint32 CollectionCount; uint32 ContentCount; boolean ContentInSync; string CreatedBy; datetime CreatedOn; "
     "string Description; string GroupID key; boolean HasMember; boolean HasRelationship; uint32 MemberCount; "
     "string ModifiedBy; datetime ModifiedOn; string Name; uint32 OutOfSyncContentCount; string SourceSite"},
    {"SMS_DPGroupContentInfo",
     "string Description; string GroupID key; boolean IsPredefinedPackage; string Name; string ObjectID; "
     "uint32 ObjectType; uint32 ObjectTypeID; string PackageID key; uint32 SourceSize"},
    {"SMS_SystemResourceList",
     "boolean InternetEnabled; boolean InternetShared; string NALPath key; string ResourceType key; "
     "string RoleName key; string ServerName; string ServerRemoteName; string SiteCode key; uint32 SslState"},
    {"SMS_Package",
     "uint32 ActionInProgress; string AlternateContentProviders; sint32 DefaultImageFlags; string Description; "
     "uint8[] ExtendedData lazy; uint32 ExtendedDataSize; uint32 ForcedDisconnectDelay; "
     "boolean ForcedDisconnectEnabled; uint32 ForcedDisconnectNumRetries; uint8[] Icon lazy; uint32 IconSize; "
     "boolean IgnoreAddressSchedule; boolean IsPredefinedPackage; uint8[] ISVData lazy; uint32 ISVDataSize; "
     "string Language; datetime LastRefreshTime; string[] LocalizedCategoryInstanceNames; string Manufacturer; "
     "string MIFFilename; string MIFName; string MIFPublisher; string MIFVersion; string Name; "
     "uint32 NumOfPrograms; string ObjectPath; string PackageID key; uint32 PackageSize; uint32 PackageType; "
     "uint32 PkgFlags; uint32 PkgSourceFlag; string PkgSourcePath; string PreferredAddressType; uint32 Priority; "
     "boolean RefreshPkgSourceFlag; object[] RefreshSchedule lazy; string[] SecuredScopeNames lazy; "
     "string SedoObjectVersion; string ShareName; uint32 ShareType; datetime SourceDate; string SourceSite; "
     "uint32 SourceVersion; string StoredPkgPath; uint32 StoredPkgVersion; datetime TransformAnalysisDate; "
     "uint32 TransformReadiness; string Version"},
    {"SMS_PackageBaseclass",
     "uint32 ActionInProgress; string AlternateContentProviders; string Description; uint8[] ExtendedData lazy; "
     "uint32 ExtendedDataSize; uint32 ForcedDisconnectDelay; boolean ForcedDisconnectEnabled; "
     "uint32 ForcedDisconnectNumRetries; uint8[] Icon lazy; uint32 IconSize; boolean IgnoreAddressSchedule; "
     "uint8[] ISVData lazy; uint32 ISVDataSize; string ISVString; string Language; datetime LastRefreshTime; "
     "string[] LocalizedCategoryInstanceNames; string Manufacturer; string MIFFilename; string MIFName; "
     "string MIFPublisher; string MIFVersion; string Name; uint32 NumOfPrograms; string PackageID key; "
     "uint32 PackageSize; uint32 PackageType; uint32 PkgFlags; uint32 PkgSourceFlag; string PkgSourcePath; "
     "string PreferredAddressType; uint32 Priority; boolean RefreshPkgSourceFlag; object[] RefreshSchedule lazy; "
     "string[] SecuredScopeNames lazy; string SedoObjectVersion; string ShareName; uint32 ShareType; "
     "datetime SourceDate; string SourceSite; uint32 SourceVersion; string StoredPkgPath; uint32 StoredPkgVersion; "
     "string Version"},
    {"SMS_Program",
     "uint32 ActionInProgress; string ApplicationHierarchy; string CommandLine; string Comment; "
     "string DependentProgram; string Description; uint32 DeviceFlags; string DiskSpaceReq; string DriveLetter; "
     "uint32 Duration; uint8[] ExtendedData lazy; uint32 ExtendedDataSize; uint8[] Icon lazy; uint32 IconSize; "
     "uint8[] ISVData lazy; uint32 ISVDataSize; string ISVString; string MSIFilePath; string MSIProductID; "
     "string PackageID key; string PackageName; uint32 PackageType; string PackageVersion; uint32 ProgramFlags; "
     "string ProgramName key; string RemovalKey; string Requirements; uint32 SecuredTypeID; "
     "object[] SupportedOperatingSystems lazy; uint32 TransformReadiness; datetime TransformAnalysisDate; "
     "string TransformDtID; string WorkingDirectory"},
    {"SMS_Advertisement",
     "uint32 ActionInProgress; uint32 AdvertFlags; string AdvertisementID key; string AdvertisementName; "
     "object[] AssignedSchedule lazy; boolean AssignedScheduleEnabled; boolean AssignedScheduleIsGMT; "
     "uint32 AssignmentID; string CollectionID; string Comment; uint32 DeviceFlags; datetime ExpirationTime; "
     "boolean ExpirationTimeEnabled; boolean ExpirationTimeIsGMT; string HierarchyPath; "
     "boolean IncludeSubCollection; uint8[] ISVData lazy; uint32 ISVDataSize; string ISVString; "
     "uint32 MandatoryCountdown; uint32 OfferType; string PackageID; datetime PresentTime; "
     "boolean PresentTimeEnabled; boolean PresentTimeIsGMT; uint32 Priority; string ProgramName; "
     "uint32 RemoteClientFlags; string SourceSite; uint32 TimeFlags"},
    {"SMS_DistributionPoint",
     "boolean BitsEnabled; boolean IsPeerDP; boolean IsProtected; uint8[] ISVData lazy; uint32 ISVDataSize lazy; "
     "string ISVString; datetime LastRefreshTime; uint32 ObjectTypeID; string PackageID key; uint32 PackageType; "
     "boolean RefreshNow; string ResourceType; string SecureObjectID; string ServerNALPath key; "
     "string SiteCode key; string SiteName; string SourceSite; uint32 Status"},
    {"SMS_PackageStatusDistPointsSummarizer",
     "datetime LastCopied; string PackageID key; uint32 PackageType; uint32 SecuredTypeID; string SecureObjectID; "
     "string ServerNALPath key; string SiteCode key; string SourceNALPath; uint32 SourceVersion; uint32 State; "
     "datetime SummaryDate"},
    {"SMS_PackageStatusDetailSummarizer",
     "uint32 Failed; uint32 Installed; string Name; string PackageID key; uint32 Retrying; string SiteCode key; "
     "string SiteName; uint32 SourceVersion; datetime SummaryDate; uint32 Targeted"},
    {"SMS_PackageStatusRootSummarizer",
     "uint32 Failed; uint32 Installed; string Name; string PackageID key; uint32 Retrying; "
     "uint32 SourceCompressedSize; datetime SourceDate; string SourceSite; uint32 SourceSize; "
     "uint32 SourceVersion; uint32 Targeted"},
    {"SMS_ObjectContentExtraInfo",
     "datetime DateCreated; string Description; uint32 FeatureType; datetime LastUpdateDate; uint32 NumberErrors; "
     "uint32 NumberInProgress; uint32 NumberSuccess; uint32 NumberUnknown; string ObjectID key; uint32 ObjectType; "
     "uint32 ObjectTypeID; string PackageID; string SoftwareName; string SourceSite; uint32 SourceSize; "
     "uint32 SourceVersion; uint32 Targeted"},
    {"SMS_DistributionDPStatus",
     "uint32 GroupCount; uint64 ID key; string InsString1; string InsString10; string InsString2; "
     "string InsString3; string InsString4; string InsString5; string InsString6; string InsString7; "
     "string InsString8; string InsString9; boolean IsPeerDP; uint64 LastStatusID; datetime LastUpdateDate; "
     "uint32 MessageCategory; uint32 MessageFullID; uint32 MessageID; uint32 MessageSeverity; "
     "uint32 MessageState; string NalPath; string Name; string ObjectID; uint32 ObjectTypeID; string PackageID; "
     "string ResourceType; string SiteCode"},
    {"SMS_DPStatusInfo",
     "boolean IsDPMonEnabled; boolean IsMulticast; boolean IsPullDP; boolean IsPXE; datetime LastStatusTime; "
     "uint32 MessageCount; uint32 MessageState; string NALPath key; string Name; uint32 NumberErrors; "
     "uint32 NumberInProgress; uint32 NumberInstalled; uint32 NumberUnknown; string Version"},
};

TEST(BuiltinClassesTest, EveryDocumentedPropertyWithItsTypeAndQualifiers) {
  const auto& reg = ClassRegistry::builtin();
  std::size_t checked = 0;
  for (const Mof& mof : kMofs) {
    SCOPED_TRACE(mof.cls);
    const ClassDef* cls = reg.find(mof.cls);
    ASSERT_NE(cls, nullptr);
    std::size_t keys = 0;
    std::stringstream entries(mof.properties);
    std::string entry;
    while (std::getline(entries, entry, ';')) {
      std::stringstream words(entry);
      std::string type_text, name, qualifier;
      words >> type_text >> name >> qualifier;
      SCOPED_TRACE(name);
      const auto type = parse_type_name(type_text);
      ASSERT_TRUE(type.has_value()) << type_text;
      const auto index = cls->find_property(name);
      ASSERT_TRUE(index.has_value()) << "missing";
      const PropertyDef& p = cls->property(*index);
      EXPECT_EQ(type_name(p.type), type_name(*type));
      EXPECT_EQ(p.key, qualifier == "key");
      EXPECT_EQ(p.lazy, qualifier == "lazy");
      keys += qualifier == "key" ? 1 : 0;
      ++checked;
    }
    EXPECT_EQ(cls->key_indices().size(), keys);
  }
  EXPECT_GT(checked, 300u);
}

TEST(BuiltinClassesTest, DefaultsAreOfTheirTypeAndNewInstancesStartAtThem) {
  for (const ClassDef* cls : ClassRegistry::builtin().all()) {
    const Instance fresh(*cls);
    for (std::size_t i = 0; i < cls->properties().size(); ++i) {
      const PropertyDef& p = cls->property(i);
      SCOPED_TRACE(cls->name() + "." + p.name);
      EXPECT_EQ(fresh.get(i), p.default_value);
      if (!p.default_value.is_null()) {
        EXPECT_EQ(p.default_value.type(), p.type);
      }
      // A key is always given by whoever writes the row; a default there would hide a forgotten one.
      if (p.key) {
        EXPECT_TRUE(p.default_value.is_null());
      }
    }
  }
  const ClassDef& pkg = *ClassRegistry::builtin().find("SMS_Package");
  const Instance package(pkg);
  EXPECT_EQ(*package.find("ShareType"), Value::uint32(1));
  EXPECT_EQ(*package.find("ObjectPath"), Value::string("/"));
  EXPECT_TRUE(package.find("Icon")->is_null());
  EXPECT_TRUE(package.find("Name")->is_null());  // a property with meaning and no default
  EXPECT_TRUE(pkg.property(*pkg.find_property("MIFName")).at_default);
  EXPECT_FALSE(pkg.property(*pkg.find_property("ObjectPath")).at_default);
}

// As Configuration Manager's: SMS_Package derives from the abstract SMS_PackageBaseclass, which declares exactly the
// MOF's properties (SMS_Package adds its own after them), so a query bound against the base reads a package by the
// same indices.
TEST(BuiltinClassesTest, SmsPackageDerivesFromSmsPackageBaseclass) {
  const auto& reg = ClassRegistry::builtin();
  const ClassDef* base = reg.find("sms_packagebaseclass");
  const ClassDef* pkg = reg.find("SMS_Package");
  ASSERT_NE(base, nullptr);
  ASSERT_NE(pkg, nullptr);
  EXPECT_EQ(base->name(), "SMS_PackageBaseclass");
  EXPECT_TRUE(base->abstract());
  EXPECT_EQ(pkg->superclass(), base);
  EXPECT_EQ(pkg->derivation(), (std::vector<std::string>{"SMS_PackageBaseclass", "SMS_BaseClass"}));
  EXPECT_EQ(base->derivation(), (std::vector<std::string>{"SMS_BaseClass"}));
  EXPECT_EQ(base->properties().size(), 44u);
  for (std::size_t i = 0; i < base->properties().size(); ++i) {
    EXPECT_EQ(pkg->property(i).name, base->property(i).name);
  }
  EXPECT_EQ(pkg->key_indices(), base->key_indices());
  std::vector<std::string> own;
  for (std::size_t i = base->properties().size(); i < pkg->properties().size(); ++i) own.push_back(pkg->property(i).name);
  EXPECT_EQ(own, (std::vector<std::string>{"DefaultImageFlags", "IsPredefinedPackage", "ObjectPath",
                                           "TransformAnalysisDate", "TransformReadiness"}));
  EXPECT_EQ(reg.subclasses_of(*base), (std::vector<const ClassDef*>{base, pkg}));
}

TEST(BuiltinClassesTest, ADefaultOfAnotherTypeIsRefused) {
  PropertyDef p{"X", Type{CimType::kUint32, false}, false, false, "", false, Value::string("0"), true};
  auto reg = ClassRegistry::build({{"C", "", {p}, false, ""}});
  ASSERT_FALSE(reg.ok());
  EXPECT_EQ(reg.error().code, WbemCode::kTypeMismatch);
  PropertyDef q{"Y", Type{CimType::kUint32, false}, false, false, "", false, {}, true};
  EXPECT_FALSE(ClassRegistry::build({{"D", "", {q}, false, ""}}).ok());
}

}  // namespace
}  // namespace pkgcast::cim
