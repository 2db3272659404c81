// The summarizer tests' world: a real store (SQLite in a temporary directory, or a fresh PostgreSQL database when
// PKGCAST_TEST_PG_URL is set, as in src/store's conformance suite), with the rows the site layer would create
// written directly (the summarizer may not link src/site, tests included): sites, DPs with their SMS_DPStatusInfo,
// packages with their Root, source-site Detail and ObjectContentExtraInfo rows, advertisements with offers.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "store/store.h"
#include "store/store_test_util.h"
#include "summarizer/summarizer.h"

namespace pkgcast::summarizer::testing {

inline constexpr Micros kT0 = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z

// NAL path of a DP, as src/site/dps.cc builds it.
std::string nal_of(const std::string& dp_name, const std::string& site);

// Writes the rows of the site layer inside a command. Each returns the store's error.
Status put_site(store::WriteTxn& txn, const std::string& code, const std::string& name);
Status put_dp(store::WriteTxn& txn, const std::string& dp_name, const std::string& site);
// A package created at `site` (Root, Detail at `site`, ExtraInfo), with or without source files.
Status put_package(store::WriteTxn& txn, const std::string& id, const std::string& site, bool has_source, Micros now);
// A refresh to `version` taken at `date`, sizes unchanged.
inline Summarizer::NewSource new_source(std::uint32_t version, Micros date) {
  Summarizer::NewSource source;
  source.version = version;
  source.date = date;
  return source;
}
// The site layer's part of RefreshPkgSource: SMS_Package.SourceVersion = version.
Status put_package_version(store::WriteTxn& txn, const std::string& id, std::uint32_t version);
// An advertisement of the package with an offer row per existing Detail row, as advertisements.cc does.
Status put_advertisement(store::WriteTxn& txn, const std::string& ad_id, const std::string& package_id, Micros now);

class SummarizerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  void TearDown() override;

  DpRef ref(const std::string& package_id, const std::string& dp_name, const std::string& site) const;
  Status run(store::WriteCommand command);
  // "Targeted/Installed/Retrying/Failed" of a Root or Detail row; "absent" when there is none.
  std::string root(const std::string& package_id);
  std::string detail(const std::string& package_id, const std::string& site);
  // "State/SourceVersion" of a DistPoints row; "absent" when there is none.
  std::string dist(const std::string& package_id, const std::string& dp_name, const std::string& site);
  // "Targeted/Success/InProgress/Errors/Unknown" of the ExtraInfo row.
  std::string extra(const std::string& package_id);
  // "Installed/InProgress/Errors/Unknown/MessageState" of a DP's SMS_DPStatusInfo.
  std::string dp_status(const std::string& dp_name, const std::string& site);
  // "Offered" of an offer row: "TRUE", "FALSE" or "absent".
  std::string offer(const std::string& ad_id, const std::string& site);
  std::uint64_t last_revision();
  // Every difference check() reports, one per line ("" when none).
  std::string differences();

  ManualClock clock_{kT0};
  std::unique_ptr<store::testing::TestDatabase> db_;
  std::unique_ptr<store::Store> store_;
  Summarizer summarizer_{cim::ClassRegistry::builtin()};
};

#define PKGCAST_SUMMARIZER_BACKENDS(Suite)                                             \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite, ::testing::Values("sqlite", "postgresql"), \
                           [](const ::testing::TestParamInfo<std::string>& i) { return i.param; })

}  // namespace pkgcast::summarizer::testing
