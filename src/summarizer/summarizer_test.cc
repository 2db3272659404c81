// Scenario tests: exact counts of every summary after each step, and check() clean after each.
#include <gtest/gtest.h>

#include <set>

#include "summarizer/test_fixture.h"

namespace pkgcast::summarizer::testing {
namespace {

constexpr const char* kPkg = "ABC00001";
constexpr const char* kNoSource = "ABC00002";
constexpr const char* kAd = "ABC00010";

StatusMessage msg(std::uint32_t id, std::uint32_t state) {
  return StatusMessage{id, state, state == kMessageError ? 0xC0000000u : 0x40000000u, {"dp", "ABC00001"}};
}

class ScenarioTest : public SummarizerTest {
 protected:
  void SetUp() override {
    SummarizerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(run([&](store::WriteTxn& txn) -> Status {
                  PKG_TRY(put_site(txn, "ABC", "Head office"));
                  PKG_TRY(put_site(txn, "DEF", "Branch"));
                  PKG_TRY(put_dp(txn, "dp1", "ABC"));
                  PKG_TRY(put_dp(txn, "dp2", "ABC"));
                  PKG_TRY(put_dp(txn, "dp3", "DEF"));
                  PKG_TRY(put_package(txn, kPkg, "ABC", true, kT0));
                  PKG_TRY(put_package(txn, kNoSource, "ABC", false, kT0));
                  return put_advertisement(txn, kAd, kPkg, kT0);
                }).ok());
  }

  Status move(const std::string& dp, const std::string& site, DpState s, std::uint32_t version,
              std::optional<StatusMessage> m = std::nullopt) {
    return run([&, m](store::WriteTxn& txn) {
      return summarizer_.transition(txn, ref(kPkg, dp, site), s, version, dp_state_name(s), m, txn.now());
    });
  }

  // MessageID of every SMS_DistributionDPStatus row, comma-separated.
  std::string messages() {
    std::string out;
    const cim::ClassDef& cls = *cim::ClassRegistry::builtin().find("SMS_DistributionDPStatus");
    EXPECT_TRUE(store_
                    ->scan(cls, store::Predicate::always(),
                           [&](cim::Instance&& m) {
                             out += (out.empty() ? "" : ",") + m.find("MessageID")->to_display();
                             return true;
                           })
                    .ok());
    return out;
  }

  // The classes journaled after `revision`, "Class:kind" each, sorted.
  std::multiset<std::string> journaled_after(std::uint64_t revision) {
    std::multiset<std::string> out;
    EXPECT_TRUE(store_
                    ->read_journal(revision, 1000,
                                   [&](store::JournalEntry&& e) {
                                     out.insert(e.class_name + ":" + std::string(store::change_kind_name(e.kind)));
                                     return true;
                                   })
                    .ok());
    return out;
  }
};

TEST_P(ScenarioTest, DistributeUpdateRetryFailRemove) {
  // Target three DPs at two sites in one command.
  ASSERT_TRUE(run([&](store::WriteTxn& txn) -> Status {
                PKG_TRY(summarizer_.target(txn, ref(kPkg, "dp1", "ABC"), txn.now()));
                PKG_TRY(summarizer_.target(txn, ref(kPkg, "dp2", "ABC"), txn.now()));
                return summarizer_.target(txn, ref(kPkg, "dp3", "DEF"), txn.now());
              }).ok());
  EXPECT_EQ(root(kPkg), "3/0/0/0");
  EXPECT_EQ(detail(kPkg, "ABC"), "2/0/0/0");
  EXPECT_EQ(detail(kPkg, "DEF"), "1/0/0/0");  // created for the second site
  EXPECT_EQ(dist(kPkg, "dp1", "ABC"), "1/0");  // pending, holding no version yet (SourceVersion 0)
  EXPECT_EQ(extra(kPkg), "3/0/3/0/3");  // every DP pending, none heard from
  EXPECT_EQ(dp_status("dp1", "ABC"), "0/1/0/1/2");
  EXPECT_EQ(offer(kAd, "ABC"), "FALSE");
  EXPECT_EQ(offer(kAd, "DEF"), "FALSE");  // the new site's offer row
  EXPECT_EQ(differences(), "");

  // Progress: heard from, still in progress.
  const std::uint64_t before_progress = last_revision();
  ASSERT_TRUE(move("dp1", "ABC", DpState::kContentUpdating, 1, msg(2301, kMessageInProgress)).ok());
  EXPECT_EQ(root(kPkg), "3/0/0/0");
  EXPECT_EQ(extra(kPkg), "3/0/3/0/2");
  EXPECT_EQ(dp_status("dp1", "ABC"), "0/1/0/0/2");
  // Only the rows that changed are journaled: no Root or Detail entry for a move that leaves their counts.
  EXPECT_EQ(
      journaled_after(before_progress),
      (std::multiset<std::string>{"SMS_PackageStatusDistPointsSummarizer:modified", "SMS_DistributionDPStatus:created",
                                  "SMS_ObjectContentExtraInfo:modified", "SMS_DPStatusInfo:modified"}));
  EXPECT_EQ(differences(), "");

  // Installed on both DPs of ABC: the site is distributed and its offer flips.
  ASSERT_TRUE(move("dp1", "ABC", DpState::kInstalled, 1, msg(2330, kMessageSuccess)).ok());
  EXPECT_EQ(root(kPkg), "3/1/0/0");
  EXPECT_EQ(detail(kPkg, "ABC"), "2/1/0/0");
  EXPECT_EQ(offer(kAd, "ABC"), "FALSE");
  EXPECT_EQ(dp_status("dp1", "ABC"), "1/0/0/0/1");
  ASSERT_TRUE(move("dp2", "ABC", DpState::kInstalled, 1, msg(2330, kMessageSuccess)).ok());
  EXPECT_EQ(detail(kPkg, "ABC"), "2/2/0/0");
  EXPECT_EQ(offer(kAd, "ABC"), "TRUE");
  EXPECT_EQ(offer(kAd, "DEF"), "FALSE");
  EXPECT_EQ(extra(kPkg), "3/2/1/0/1");
  EXPECT_EQ(differences(), "");

  // dp3 retries, then fails.
  ASSERT_TRUE(move("dp3", "DEF", DpState::kInstallRetrying, 1, msg(9001, kMessageError)).ok());
  EXPECT_EQ(root(kPkg), "3/2/1/0");
  EXPECT_EQ(detail(kPkg, "DEF"), "1/0/1/0");
  ASSERT_TRUE(move("dp3", "DEF", DpState::kInstallFailed, 1, msg(9002, kMessageError)).ok());
  EXPECT_EQ(root(kPkg), "3/2/0/1");
  EXPECT_EQ(detail(kPkg, "DEF"), "1/0/0/1");
  EXPECT_EQ(dp_status("dp3", "DEF"), "0/0/1/0/3");
  EXPECT_EQ(extra(kPkg), "3/2/0/1/0");
  EXPECT_EQ(differences(), "");

  // A new source version: every targeted DP back to pending, Installed drops, the offer is withdrawn. Its date
  // (the tree's newest mtime, older than the refresh) and sizes go on Root and ExtraInfo in one write each.
  const std::uint64_t before_refresh = last_revision();
  Summarizer::NewSource v2 = new_source(2, kT0 - 86'400'000'000);
  v2.size_kb = 4321;
  v2.compressed_size_kb = 1234;
  ASSERT_TRUE(run([&](store::WriteTxn& txn) -> Status {
                PKG_TRY(put_package_version(txn, kPkg, 2));
                return summarizer_.new_source_version(txn, kPkg, v2, txn.now());
              }).ok());
  EXPECT_EQ(root(kPkg), "3/0/0/0");
  auto root_row = store_->get(*cim::ClassRegistry::builtin().find("SMS_PackageStatusRootSummarizer"), {cim::Value::string(kPkg)});
  ASSERT_TRUE(root_row.ok() && root_row->has_value());
  EXPECT_EQ((*root_row)->find("SourceDate")->as_datetime().unix_micros(), kT0 - 86'400'000'000);
  EXPECT_EQ((*root_row)->find("SourceSize")->as_uint(), 4321u);
  EXPECT_EQ((*root_row)->find("SourceCompressedSize")->as_uint(), 1234u);
  auto extra_row = store_->get(*cim::ClassRegistry::builtin().find("SMS_ObjectContentExtraInfo"), {cim::Value::string(kPkg)});
  ASSERT_TRUE(extra_row.ok() && extra_row->has_value());
  EXPECT_EQ((*extra_row)->find("SourceSize")->as_uint(), 4321u);
  const auto refreshed = journaled_after(before_refresh);
  EXPECT_EQ(refreshed.count("SMS_PackageStatusRootSummarizer:modified"), 1u);
  EXPECT_EQ(refreshed.count("SMS_ObjectContentExtraInfo:modified"), 1u);
  EXPECT_EQ(detail(kPkg, "ABC"), "2/0/0/0");
  EXPECT_EQ(detail(kPkg, "DEF"), "1/0/0/0");
  EXPECT_EQ(dist(kPkg, "dp1", "ABC"), "1/1");  // pending for version 2, still holding version 1
  EXPECT_EQ(dist(kPkg, "dp3", "DEF"), "1/0");  // it never installed one
  EXPECT_EQ(extra(kPkg), "3/0/3/0/3");
  EXPECT_EQ(dp_status("dp1", "ABC"), "0/1/0/1/2");
  EXPECT_EQ(offer(kAd, "ABC"), "FALSE");
  // The distribution manager may still move each DP to pending itself: harmless.
  ASSERT_TRUE(move("dp1", "ABC", DpState::kInstallPending, 2).ok());
  EXPECT_EQ(root(kPkg), "3/0/0/0");
  EXPECT_EQ(dist(kPkg, "dp1", "ABC"), "1/1");
  ASSERT_TRUE(move("dp1", "ABC", DpState::kContentUpdating, 2).ok());
  EXPECT_EQ(dist(kPkg, "dp1", "ABC"), "7/1");
  EXPECT_EQ(differences(), "");

  // Installed climbs again; a late report of the old version does not count.
  ASSERT_TRUE(move("dp1", "ABC", DpState::kInstalled, 2, msg(2330, kMessageSuccess)).ok());
  ASSERT_TRUE(move("dp2", "ABC", DpState::kInstalled, 2, msg(2330, kMessageSuccess)).ok());
  ASSERT_TRUE(move("dp3", "DEF", DpState::kInstalled, 1, msg(2330, kMessageSuccess)).ok());
  EXPECT_EQ(root(kPkg), "3/2/0/0");
  EXPECT_EQ(detail(kPkg, "ABC"), "2/2/0/0");
  EXPECT_EQ(detail(kPkg, "DEF"), "1/0/0/0");
  EXPECT_EQ(offer(kAd, "ABC"), "TRUE");
  EXPECT_EQ(differences(), "");

  // Removal: pending, retrying, then removed.
  ASSERT_TRUE(move("dp2", "ABC", DpState::kRemovalPending, 2).ok());
  EXPECT_EQ(root(kPkg), "2/1/0/0");
  EXPECT_EQ(detail(kPkg, "ABC"), "1/1/0/0");
  EXPECT_EQ(offer(kAd, "ABC"), "TRUE");  // still on every DP that stays targeted
  ASSERT_TRUE(move("dp2", "ABC", DpState::kRemovalRetrying, 2, msg(9003, kMessageError)).ok());
  EXPECT_EQ(dist(kPkg, "dp2", "ABC"), "5/2");  // still holding version 2 while it is being removed
  EXPECT_EQ(root(kPkg), "2/1/1/0");
  EXPECT_EQ(extra(kPkg), "2/1/1/0/0");
  ASSERT_TRUE(
      run([&](store::WriteTxn& txn) { return summarizer_.untarget(txn, ref(kPkg, "dp2", "ABC"), txn.now()); }).ok());
  EXPECT_EQ(root(kPkg), "2/1/0/0");
  EXPECT_EQ(detail(kPkg, "ABC"), "1/1/0/0");
  EXPECT_EQ(dist(kPkg, "dp2", "ABC"), "absent");
  EXPECT_EQ(dp_status("dp2", "ABC"), "0/0/0/0/1");
  EXPECT_EQ(differences(), "");

  // The last DP of ABC leaves: Targeted 0 is not distributed.
  ASSERT_TRUE(move("dp1", "ABC", DpState::kRemovalPending, 2).ok());
  EXPECT_EQ(detail(kPkg, "ABC"), "0/0/0/0");
  EXPECT_EQ(offer(kAd, "ABC"), "FALSE");
  EXPECT_EQ(differences(), "");

  // The last DP of DEF is removed: DEF's Detail row and its offer go (a Detail row is for the source site and for
  // each site with a DP targeted); ABC, the source site, keeps its own when its last DP goes.
  ASSERT_TRUE(move("dp3", "DEF", DpState::kRemovalPending, 1).ok());
  EXPECT_EQ(detail(kPkg, "DEF"), "0/0/0/0");  // still being removed
  ASSERT_TRUE(
      run([&](store::WriteTxn& txn) { return summarizer_.untarget(txn, ref(kPkg, "dp3", "DEF"), txn.now()); }).ok());
  EXPECT_EQ(detail(kPkg, "DEF"), "absent");
  EXPECT_EQ(offer(kAd, "DEF"), "absent");
  ASSERT_TRUE(
      run([&](store::WriteTxn& txn) { return summarizer_.untarget(txn, ref(kPkg, "dp1", "ABC"), txn.now()); }).ok());
  EXPECT_EQ(detail(kPkg, "ABC"), "0/0/0/0");
  EXPECT_EQ(offer(kAd, "ABC"), "FALSE");
  EXPECT_EQ(differences(), "");
  // Targeted there again: the row and its offer come back.
  ASSERT_TRUE(
      run([&](store::WriteTxn& txn) { return summarizer_.target(txn, ref(kPkg, "dp3", "DEF"), txn.now()); }).ok());
  EXPECT_EQ(detail(kPkg, "DEF"), "1/0/0/0");
  EXPECT_EQ(offer(kAd, "DEF"), "FALSE");
  EXPECT_EQ(differences(), "");
}

TEST_P(ScenarioTest, RefusalsChangeNothing) {
  ASSERT_TRUE(
      run([&](store::WriteTxn& txn) { return summarizer_.target(txn, ref(kPkg, "dp1", "ABC"), txn.now()); }).ok());
  const std::uint64_t rev = last_revision();
  auto code = [](const Status& s) { return s.ok() ? WbemCode::kOk : s.error().code; };
  // A version that does not exist yet.
  EXPECT_EQ(code(move("dp1", "ABC", DpState::kInstalled, 2)), WbemCode::kInvalidParameter);
  // A DP that is not targeted.
  EXPECT_EQ(code(move("dp2", "ABC", DpState::kInstalled, 1)), WbemCode::kNotFound);
  // A package without source files has no content to distribute.
  EXPECT_EQ(
      code(run([&](store::WriteTxn& txn) { return summarizer_.target(txn, ref(kNoSource, "dp1", "ABC"), txn.now()); })),
      WbemCode::kInvalidOperation);
  // A DP without its SMS_DPStatusInfo row (it does not exist).
  EXPECT_EQ(
      code(run([&](store::WriteTxn& txn) { return summarizer_.target(txn, ref(kPkg, "nodp", "ABC"), txn.now()); })),
      WbemCode::kNotFound);
  // A version going back.
  EXPECT_EQ(code(run([&](store::WriteTxn& txn) { return summarizer_.new_source_version(txn, kPkg, new_source(0, txn.now()), txn.now()); })),
            WbemCode::kInvalidParameter);
  EXPECT_EQ(code(move("dp1", "ABC", DpState::kInstalled, 1, StatusMessage{1, 7, 0, {}})), WbemCode::kInvalidParameter);
  EXPECT_EQ(last_revision(), rev);
  EXPECT_EQ(root(kPkg), "1/0/0/0");
  EXPECT_EQ(differences(), "");
}

TEST_P(ScenarioTest, RolledBackCommandLeavesCountsUnchanged) {
  ASSERT_TRUE(run([&](store::WriteTxn& txn) -> Status {
                PKG_TRY(summarizer_.target(txn, ref(kPkg, "dp1", "ABC"), txn.now()));
                return summarizer_.target(txn, ref(kPkg, "dp2", "ABC"), txn.now());
              }).ok());
  ASSERT_TRUE(move("dp1", "ABC", DpState::kInstalled, 1, msg(2330, kMessageSuccess)).ok());
  const std::uint64_t rev = last_revision();
  // The whole distribution completes, then the command fails: nothing of it may stay.
  auto failed = run([&](store::WriteTxn& txn) -> Status {
    PKG_TRY(summarizer_.transition(txn, ref(kPkg, "dp2", "ABC"), DpState::kInstalled, 1, "done",
                                   msg(2330, kMessageSuccess), txn.now()));
    PKG_TRY(put_package_version(txn, kPkg, 2));
    PKG_TRY(summarizer_.new_source_version(txn, kPkg, new_source(2, txn.now()), txn.now()));
    PKG_TRY(summarizer_.target(txn, ref(kPkg, "dp3", "DEF"), txn.now()));
    return make_error(WbemCode::kFailed, "the caller gave up");
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(last_revision(), rev);
  EXPECT_EQ(root(kPkg), "2/1/0/0");
  EXPECT_EQ(detail(kPkg, "ABC"), "2/1/0/0");
  EXPECT_EQ(detail(kPkg, "DEF"), "absent");
  EXPECT_EQ(dist(kPkg, "dp2", "ABC"), "1/0");
  EXPECT_EQ(offer(kAd, "ABC"), "FALSE");
  // And the next command sees the rolled-back state: the message counter and mappings went back too.
  ASSERT_TRUE(move("dp2", "ABC", DpState::kInstalled, 1, msg(2330, kMessageSuccess)).ok());
  EXPECT_EQ(root(kPkg), "2/2/0/0");
  EXPECT_EQ(offer(kAd, "ABC"), "TRUE");
  EXPECT_EQ(differences(), "");
}

TEST_P(ScenarioTest, UnknownUntilTheDpReportsAndTheLastMessageStays) {
  ASSERT_TRUE(
      run([&](store::WriteTxn& txn) { return summarizer_.target(txn, ref(kPkg, "dp1", "ABC"), txn.now()); }).ok());
  EXPECT_EQ(extra(kPkg), "1/0/1/0/1");
  // The server's own message while the job waits (no source DP yet): the DP is still not heard from.
  ASSERT_TRUE(move("dp1", "ABC", DpState::kInstallPending, 1, msg(8212, kMessageInProgress)).ok());
  EXPECT_EQ(extra(kPkg), "1/0/1/0/1");
  EXPECT_EQ(messages(), "8212");
  // The DP reports: known.
  ASSERT_TRUE(move("dp1", "ABC", DpState::kContentUpdating, 1, msg(2301, kMessageInProgress)).ok());
  EXPECT_EQ(extra(kPkg), "1/0/1/0/0");
  EXPECT_EQ(dp_status("dp1", "ABC"), "0/1/0/0/2");
  // A failure, then the retry re-sends the job: unknown again, and the last message is still the failure's.
  ASSERT_TRUE(move("dp1", "ABC", DpState::kInstallRetrying, 1, msg(9001, kMessageError)).ok());
  ASSERT_TRUE(move("dp1", "ABC", DpState::kInstallPending, 1).ok());
  EXPECT_EQ(extra(kPkg), "1/0/1/0/1");
  EXPECT_EQ(dp_status("dp1", "ABC"), "0/1/0/1/2");
  EXPECT_EQ(messages(), "9001");
  // Targeting it again is the same; untargeting drops the message.
  ASSERT_TRUE(move("dp1", "ABC", DpState::kContentUpdating, 1, msg(2301, kMessageInProgress)).ok());
  ASSERT_TRUE(
      run([&](store::WriteTxn& txn) { return summarizer_.target(txn, ref(kPkg, "dp1", "ABC"), txn.now()); }).ok());
  EXPECT_EQ(extra(kPkg), "1/0/1/0/1");
  EXPECT_EQ(root(kPkg), "1/0/0/0");
  EXPECT_EQ(messages(), "2301");
  ASSERT_TRUE(
      run([&](store::WriteTxn& txn) { return summarizer_.untarget(txn, ref(kPkg, "dp1", "ABC"), txn.now()); }).ok());
  EXPECT_EQ(messages(), "");
  EXPECT_EQ(differences(), "");
}

TEST_P(ScenarioTest, ForgetPackageGivesBackEveryDpsCounts) {
  ASSERT_TRUE(run([&](store::WriteTxn& txn) -> Status {
                PKG_TRY(summarizer_.target(txn, ref(kPkg, "dp1", "ABC"), txn.now()));
                PKG_TRY(summarizer_.target(txn, ref(kPkg, "dp3", "DEF"), txn.now()));
                return summarizer_.transition(txn, ref(kPkg, "dp1", "ABC"), DpState::kInstalled, 1, "done",
                                              msg(2330, kMessageSuccess), txn.now());
              }).ok());
  EXPECT_EQ(dp_status("dp1", "ABC"), "1/0/0/0/1");
  ASSERT_TRUE(run([&](store::WriteTxn& txn) { return summarizer_.forget_package(txn, kPkg, txn.now()); }).ok());
  EXPECT_EQ(root(kPkg), "0/0/0/0");
  EXPECT_EQ(dist(kPkg, "dp1", "ABC"), "absent");
  EXPECT_EQ(dp_status("dp1", "ABC"), "0/0/0/0/1");
  EXPECT_EQ(dp_status("dp3", "DEF"), "0/0/0/0/1");
  EXPECT_EQ(differences(), "");
}

TEST_P(ScenarioTest, CheckNamesATamperedCount) {
  ASSERT_TRUE(
      run([&](store::WriteTxn& txn) { return summarizer_.target(txn, ref(kPkg, "dp1", "ABC"), txn.now()); }).ok());
  ASSERT_TRUE(run([&](store::WriteTxn& txn) -> Status {
                const cim::ClassDef& cls = *cim::ClassRegistry::builtin().find("SMS_PackageStatusRootSummarizer");
                auto row = txn.get(cls, {cim::Value::string(kPkg)});
                if (!row.ok()) return std::move(row).error();
                PKG_TRY((*row)->set("Installed", cim::Value::uint32(5)));
                return txn.put(**row);
              }).ok());
  EXPECT_EQ(differences(), "SMS_PackageStatusRootSummarizer.PackageID=\"ABC00001\" Installed: expected 0, found 5\n");
}

PKGCAST_SUMMARIZER_BACKENDS(ScenarioTest);

}  // namespace
}  // namespace pkgcast::summarizer::testing
