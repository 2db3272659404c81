// The Distribution Manager over a real SQLite store, with DP agents played by the test through apply_status (the
// agents themselves are tested in src/dp and end to end). Time is a manual clock, shared by store and manager.
#include "distmgr/distmgr.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <random>
#include <thread>

#include "site/site.h"
#include "site/test_fixture.h"  // str, num
#include "summarizer/summarizer.h"

namespace pkgcast::distmgr {
namespace {

using site::num;
using site::str;

namespace fs = std::filesystem;
constexpr Micros kStart = 1'800'000'000'000'000;
constexpr Micros kSecond = 1'000'000;


class DistMgrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("pkgcast_distmgr_test_" + std::to_string(rd()));
    fs::create_directories(dir_ / "src" / "app");
    store::OpenOptions options;
    options.url = "sqlite:" + (dir_ / "site.db").string();
    options.clock = &clock_;
    auto opened = store::Store::open(options);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    store_ = std::move(*opened);
    domain_ = std::make_unique<site::Domain>(*store_, "ABC", "server1");
    domain_->set_source_policy(site::SourcePolicy({dir_ / "src"}));
    // The content library is not this layer's: an ingest that records a version per call stands in for it.
    domain_->set_source_ingest(
        [this](const fs::path&, std::chrono::steady_clock::time_point) -> Result<site::SourceContent> {
          ++ingests_;
          site::SourceContent c;
          c.manifest_hash = std::string(63, '0') + std::to_string(ingests_ % 10);
          c.size = 10'000 * static_cast<std::uint64_t>(ingests_);
          c.compressed_size = c.size / 2;
          c.source_date = kStart - kSecond;
          return c;
        },
        std::chrono::seconds(60));
    ASSERT_TRUE(domain_->create_site({"ABC", "Head office", site::SiteType::kPrimary, "", "server1"}).ok());
    ASSERT_TRUE(domain_->create_site({"XYZ", "Branch", site::SiteType::kSecondary, "ABC", "server2"}).ok());
    for (auto [name, site] : {std::pair{"dp1", "ABC"}, {"dp2", "ABC"}, {"dp3", "XYZ"}}) {
      site::DpSpec spec;
      spec.name = name;
      spec.site_code = site;
      spec.url = std::string("http://") + name + ".example:8751";
      ASSERT_TRUE(domain_->create_dp(spec).ok());
    }
    make_manager(manager_options());
  }
  // The tests' manager: the manual clock, 3 retries 10 s apart, a 60 s stall timeout, a fixed jitter.
  DistOptions manager_options() {
    DistOptions o;
    o.clock = &clock_;
    o.retry_count = 3;
    o.retry_delay = std::chrono::seconds(10);
    o.stall_timeout = std::chrono::seconds(60);
    o.jitter_seed = 42;
    return o;
  }
  void TearDown() override {
    dm_.reset();
    domain_.reset();
    if (store_) store_->close();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void make_manager(DistOptions o) {
    dm_.reset();
    dm_ = std::make_unique<DistributionManager>(*store_, *domain_, o);
  }

  std::string package(std::string name = "App", bool source = true) {
    site::PackageSpec spec;
    spec.name = std::move(name);
    if (source) spec.source_path = (dir_ / "src" / "app").string();
    auto pkg = domain_->create_package(spec);
    EXPECT_TRUE(pkg.ok()) << pkg.error().to_string();
    return pkg.ok() ? str(*pkg, "PackageID") : std::string();
  }

  // A pull DP of site XYZ that takes its content from dp3.
  void add_pull_dp(std::string name) {
    site::DpSpec spec;
    spec.name = std::move(name);
    spec.site_code = "XYZ";
    spec.pull = true;
    spec.source_dps = {"dp3"};
    ASSERT_TRUE(domain_->create_dp(spec).ok());
  }

  cim::Instance get(std::string_view cls, std::vector<cim::Value> key) {
    auto row = store_->get(*store_->registry().find(cls), key);
    EXPECT_TRUE(row.ok() && row->has_value()) << cls;
    return row.ok() && row->has_value() ? **row : cim::Instance(*store_->registry().find(cls));
  }
  std::string nal(std::string_view dp) {
    auto view = domain_->get_dp(dp);
    return view.ok() ? str(view->dp, "NALPath") : std::string();
  }
  std::string site_of(std::string_view dp) { return dp == "dp3" ? "XYZ" : "ABC"; }
  cim::Instance job(const std::string& pkg, std::string_view dp) {
    return get("PKG_DPJob", {cim::Value::string(pkg), cim::Value::string(nal(dp))});
  }
  cim::Instance dist_points(const std::string& pkg, std::string_view dp) {
    return get("SMS_PackageStatusDistPointsSummarizer",
               {cim::Value::string(pkg), cim::Value::string(nal(dp)), cim::Value::string(site_of(dp))});
  }
  std::vector<std::uint64_t> root_counts(const std::string& pkg) {
    cim::Instance root = get("SMS_PackageStatusRootSummarizer", {cim::Value::string(pkg)});
    return {num(root, "Targeted"), num(root, "Installed"), num(root, "Retrying"), num(root, "Failed")};
  }
  void expect_consistent() {
    auto diffs = summarizer::check(*store_);
    ASSERT_TRUE(diffs.ok()) << diffs.error().to_string();
    for (const auto& d : *diffs) ADD_FAILURE() << d.to_string();
  }

  StatusOutcome report(std::string_view dp, const std::string& pkg, std::string state, std::uint64_t done = 0,
                       std::uint64_t total = 0, std::string message = {}) {
    DpStatus s;
    s.key = "k" + std::to_string(++keys_);
    s.package_id = pkg;
    s.generation = static_cast<std::uint32_t>(num(job(pkg, dp), "Generation"));
    s.state = std::move(state);
    s.bytes_done = done;
    s.bytes_total = total;
    s.message = std::move(message);
    auto r = dm_->apply_status(dp, s);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? *r : StatusOutcome{};
  }
  void advance(Micros us) { clock_.advance(std::chrono::microseconds(us)); }
  void schedule() { ASSERT_TRUE(dm_->schedule_once_for_test().ok()); }

  ManualClock clock_{kStart};
  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<site::Domain> domain_;
  std::unique_ptr<DistributionManager> dm_;
  int ingests_ = 0;
  int keys_ = 0;
};

TEST_F(DistMgrTest, DistributesToTwoSitesAndCountsEveryStep) {
  const std::string pkg = package();
  auto rows = dm_->distribute(pkg, Targets{{"dp1"}, {"XYZ"}, {}});
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(rows->size(), 2u);
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{2, 0, 0, 0}));
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 1u);  // INSTALL_PENDING
  EXPECT_EQ(num(job(pkg, "dp1"), "JobState"), 0u);        // QUEUED until scheduled
  expect_consistent();

  schedule();
  cim::Instance sent = job(pkg, "dp1");
  EXPECT_EQ(num(sent, "JobState"), 1u);
  EXPECT_EQ(str(sent, "ContentID"), pkg + ".1");
  EXPECT_EQ(num(sent, "ContentSize"), 10'000u);
  ASSERT_TRUE(sent.find("Sources")->is_array());
  EXPECT_EQ(sent.find("Sources")->as_array().at(0).as_string(), "server");

  EXPECT_TRUE(report("dp1", pkg, "progress", 5'000, 10'000).applied);
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 7u);  // CONTENT_UPDATING
  EXPECT_EQ(num(job(pkg, "dp1"), "BytesDone"), 5'000u);
  // The text is written once and never claims figures that later reports move (it used to stay at "5000 of 10000").
  EXPECT_TRUE(report("dp1", pkg, "progress", 9'000, 10'000).applied);
  EXPECT_EQ(num(job(pkg, "dp1"), "BytesDone"), 9'000u);
  EXPECT_EQ(str(dist_points(pkg, "dp1"), "InstallStatus"),
            "Transferring content: 10000 bytes (progress in PKG_DPJob.BytesDone)");
  EXPECT_TRUE(report("dp1", pkg, "installed").applied);
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 0u);
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{2, 1, 0, 0}));
  EXPECT_TRUE(report("dp3", pkg, "installed").applied);
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{2, 2, 0, 0}));
  cim::Instance detail = get("SMS_PackageStatusDetailSummarizer", {cim::Value::string(pkg), cim::Value::string("XYZ")});
  EXPECT_EQ(num(detail, "Installed"), 1u);
  expect_consistent();
}

TEST_F(DistMgrTest, AMessageAppliesOnceAndOnlyToItsGeneration) {
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1"}, {}, {}}).ok());
  schedule();
  const auto generation = static_cast<std::uint32_t>(num(job(pkg, "dp1"), "Generation"));
  DpStatus s{"done-1", pkg, generation, "installed", 0, 0, ""};
  ASSERT_TRUE(dm_->apply_status("dp1", s)->applied);
  const std::uint64_t rev = *store_->last_revision();
  auto again = dm_->apply_status("dp1", s);  // the outbox sent it twice
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->applied);
  EXPECT_EQ(*store_->last_revision(), rev);
  s.key = "old";
  s.generation = generation - 1;
  s.state = "failed";
  EXPECT_FALSE(dm_->apply_status("dp1", s)->applied);
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{1, 1, 0, 0}));
  // Bad messages are refused with nothing changed.
  s.key = "bad key!";
  EXPECT_EQ(dm_->apply_status("dp1", s).error().code, WbemCode::kInvalidParameter);
  s.key = "ok";
  s.state = "exploded";
  EXPECT_EQ(dm_->apply_status("dp1", s).error().code, WbemCode::kInvalidParameter);
  EXPECT_EQ(*store_->last_revision(), rev);
  expect_consistent();
}

TEST_F(DistMgrTest, SlotsLimitPackagesAndDpsInFlight) {
  DistOptions o;
  o.clock = &clock_;
  o.max_packages = 1;
  o.max_threads_per_package = 2;
  make_manager(o);
  const std::string a = package("A");
  const std::string b = package("B");
  ASSERT_TRUE(dm_->distribute(a, Targets{{"dp1", "dp2", "dp3"}, {}, {}}).ok());
  ASSERT_TRUE(dm_->distribute(b, Targets{{"dp1"}, {}, {}}).ok());
  schedule();
  EXPECT_EQ(num(job(a, "dp1"), "JobState"), 1u);
  EXPECT_EQ(num(job(a, "dp2"), "JobState"), 1u);
  EXPECT_EQ(num(job(a, "dp3"), "JobState"), 0u);
  EXPECT_NE(str(job(a, "dp3"), "WaitReason").find("max_threads_per_package"), std::string::npos);
  EXPECT_EQ(num(job(b, "dp1"), "JobState"), 0u);
  EXPECT_NE(str(job(b, "dp1"), "WaitReason").find("max_packages"), std::string::npos);
  report("dp1", a, "installed");
  schedule();
  EXPECT_EQ(num(job(a, "dp3"), "JobState"), 1u);
  EXPECT_EQ(num(job(b, "dp1"), "JobState"), 0u);  // package A still holds the one package slot
  report("dp2", a, "installed");
  report("dp3", a, "installed");
  schedule();
  EXPECT_EQ(num(job(b, "dp1"), "JobState"), 1u);
  expect_consistent();
}

TEST_F(DistMgrTest, FailuresRetryWithBackOffThenFail) {
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1"}, {}, {}}).ok());
  Micros last_wait = 0;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    schedule();
    ASSERT_EQ(num(job(pkg, "dp1"), "JobState"), 1u) << attempt;
    // Sent (again): not heard from since, as NumberUnknown counts it; the back-off before was INSTALL_RETRYING.
    cim::Instance sent = dist_points(pkg, "dp1");
    EXPECT_EQ(num(sent, "State"), 1u) << attempt;
    if (attempt > 1) {
      EXPECT_EQ(str(sent, "InstallStatus"),
                "Retry " + std::to_string(attempt - 1) + " of 3 sent: waiting for the distribution point");
    }
    EXPECT_EQ(num(get("SMS_ObjectContentExtraInfo", {cim::Value::string(pkg)}), "NumberUnknown"), 1u) << attempt;
    EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{1, 0, 0, 0})) << attempt;
    EXPECT_TRUE(report("dp1", pkg, "failed", 0, 0, "disk full").applied);
    cim::Instance j = job(pkg, "dp1");
    EXPECT_EQ(num(j, "JobState"), 0u);
    EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 2u);  // INSTALL_RETRYING
    EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{1, 0, 1, 0}));
    const Micros wait = j.find("NextAttemptTime")->as_datetime().unix_micros() - clock_.now_micros();
    // 10 s, 20 s, 40 s, each within 20 % jitter.
    const double base = 10.0 * kSecond * (1 << (attempt - 1));
    EXPECT_GE(wait, static_cast<Micros>(base * 0.8)) << attempt;
    EXPECT_LE(wait, static_cast<Micros>(base * 1.2)) << attempt;
    EXPECT_GT(wait, last_wait / 2);
    last_wait = wait;
    schedule();  // not yet due
    EXPECT_EQ(num(job(pkg, "dp1"), "JobState"), 0u);
    advance(wait + 1);
    expect_consistent();
  }
  schedule();
  EXPECT_TRUE(report("dp1", pkg, "failed", 0, 0, "disk full").applied);
  EXPECT_EQ(num(job(pkg, "dp1"), "JobState"), 3u);  // FAILED
  cim::Instance row = dist_points(pkg, "dp1");
  EXPECT_EQ(num(row, "State"), 3u);  // INSTALL_FAILED
  EXPECT_NE(str(row, "InstallStatus").find("disk full"), std::string::npos);
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{1, 0, 0, 1}));
  expect_consistent();
}

TEST_F(DistMgrTest, AStalledJobIsRetried) {
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1"}, {}, {}}).ok());
  schedule();
  advance(30 * kSecond);
  report("dp1", pkg, "progress", 10, 100);
  advance(59 * kSecond);
  schedule();
  EXPECT_EQ(num(job(pkg, "dp1"), "JobState"), 1u);  // progress 59 s ago: not stalled
  advance(2 * kSecond);
  schedule();
  cim::Instance j = job(pkg, "dp1");
  EXPECT_EQ(num(j, "JobState"), 0u);
  EXPECT_NE(str(j, "LastError").find("stalled"), std::string::npos);
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 2u);
  expect_consistent();
}

// An agent works on one job at a time: a job it has not started yet (no report of its own since it was sent) is
// not stalled while the DP reports on its other jobs; once the DP goes silent, it is.
TEST_F(DistMgrTest, AJobWaitingBehindTheAgentsOtherJobsIsNotStalled) {
  const std::string a = package("A");
  const std::string b = package("B");
  ASSERT_TRUE(dm_->distribute(a, Targets{{"dp1"}, {}, {}}).ok());
  ASSERT_TRUE(dm_->distribute(b, Targets{{"dp1"}, {}, {}}).ok());
  schedule();
  ASSERT_EQ(num(job(b, "dp1"), "JobState"), 1u);  // both sent
  for (int i = 1; i <= 4; ++i) {
    advance(40 * kSecond);
    report("dp1", a, "progress", static_cast<std::uint64_t>(i) * 10, 100);
    schedule();
    EXPECT_EQ(num(job(b, "dp1"), "JobState"), 1u) << "after " << i * 40 << " s";
  }
  advance(61 * kSecond);  // the DP went silent
  schedule();
  EXPECT_EQ(num(job(a, "dp1"), "JobState"), 0u);
  EXPECT_EQ(num(job(b, "dp1"), "JobState"), 0u);
  EXPECT_NE(str(job(b, "dp1"), "LastError").find("stalled"), std::string::npos);
  expect_consistent();
}

// The server that was down heard nothing: a job's silence counts from the later of its last report and the
// server's start, so a restart longer than the stall timeout does not fail the transfers in progress.
TEST_F(DistMgrTest, SilenceCountsFromTheServersStart) {
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1"}, {}, {}}).ok());
  schedule();
  report("dp1", pkg, "progress", 10, 100);
  dm_.reset();
  advance(10 * 60 * kSecond);  // down for ten minutes
  make_manager(manager_options());
  schedule();
  EXPECT_EQ(num(job(pkg, "dp1"), "JobState"), 1u);  // still in progress
  advance(30 * kSecond);
  report("dp1", pkg, "installed");
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 0u);
  expect_consistent();
}

// Transfer windows: a closed hour holds an install pending with the reason (never failed) and takes no slot; it
// goes when the window opens. A high-only hour lets a high-priority package through and holds the rest. kStart is
// a Friday, 08:00 UTC.
TEST_F(DistMgrTest, AClosedTransferWindowHoldsTheJobPendingUntilItOpens) {
  ASSERT_TRUE(domain_->update_dp("dp1", site::DpChange{{}, {}, "Fri 08-10 closed; Fri 10-12 high"}).ok());
  site::DpChange bad;
  bad.transfer_window = "Fri 08-10 shut";
  EXPECT_FALSE(domain_->update_dp("dp1", bad).ok());
  EXPECT_EQ(str(domain_->get_dp("dp1")->dp, "TransferWindow").size(), 168u);  // the good one stayed

  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1", "dp2"}, {}, {}}).ok());
  schedule();
  EXPECT_EQ(num(job(pkg, "dp2"), "JobState"), 1u);  // dp2 has no window
  cim::Instance held = job(pkg, "dp1");
  EXPECT_EQ(num(held, "JobState"), 0u);
  EXPECT_EQ(str(held, "WaitReason"), "transfer window closed for priority 2 until 2027-01-15T12:00:00Z");
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 1u);  // INSTALL_PENDING, not failed
  EXPECT_EQ(str(dist_points(pkg, "dp1"), "InstallStatus"), str(held, "WaitReason"));

  advance(3 * 3600 * kSecond);  // 11:00: high only
  schedule();
  EXPECT_EQ(num(job(pkg, "dp1"), "JobState"), 0u);
  site::PackageSpec urgent;
  urgent.name = "Urgent";
  urgent.source_path = (dir_ / "src" / "app").string();
  urgent.priority = 1;
  auto high = domain_->create_package(urgent);
  ASSERT_TRUE(high.ok()) << high.error().to_string();
  const std::string hot = str(*high, "PackageID");
  ASSERT_TRUE(dm_->distribute(hot, Targets{{"dp1"}, {}, {}}).ok());
  schedule();
  EXPECT_EQ(num(job(hot, "dp1"), "JobState"), 1u);

  advance(3600 * kSecond);  // 12:00: open
  schedule();
  cim::Instance sent = job(pkg, "dp1");
  EXPECT_EQ(num(sent, "JobState"), 1u);
  EXPECT_EQ(str(sent, "WaitReason"), "");
  expect_consistent();
}

TEST_F(DistMgrTest, APullDpWaitsForASourceThatHoldsTheVersion) {
  add_pull_dp("pull1");
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"pull1"}, {}, {}}).ok());
  schedule();
  cim::Instance waiting = get("PKG_DPJob", {cim::Value::string(pkg), cim::Value::string(nal("pull1"))});
  EXPECT_EQ(num(waiting, "JobState"), 0u);
  EXPECT_NE(str(waiting, "WaitReason").find("no source DP"), std::string::npos);
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp3"}, {}, {}}).ok());
  schedule();
  report("dp3", pkg, "installed");
  schedule();
  cim::Instance sent = get("PKG_DPJob", {cim::Value::string(pkg), cim::Value::string(nal("pull1"))});
  ASSERT_EQ(num(sent, "JobState"), 1u);
  const auto& sources = sent.find("Sources")->as_array();
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].as_string(), "http://dp3.example:8751/content");
  EXPECT_EQ(sources[1].as_string(), "server");
  // SourceNALPath: the pull DP's source DP; a standard DP holds the files itself (administrators' scripts find a
  // DP's rows with SourceNALPath LIKE '%dp3%'), through every state its row goes.
  const auto source_nal = [&](const std::string& dp) {
    return str(get("SMS_PackageStatusDistPointsSummarizer",
                   {cim::Value::string(pkg), cim::Value::string(nal(dp)), cim::Value::string("XYZ")}),
               "SourceNALPath");
  };
  EXPECT_EQ(source_nal("pull1"), nal("dp3"));
  EXPECT_EQ(source_nal("dp3"), nal("dp3"));
  report("pull1", pkg, "installed");
  EXPECT_EQ(source_nal("pull1"), nal("dp3"));
  expect_consistent();
}

// A pull DP's install that no source can serve yet takes no slot: other packages go on being sent.
TEST_F(DistMgrTest, APullDpWaitingForItsSourceHoldsNoSlot) {
  DistOptions o;
  o.clock = &clock_;
  o.max_packages = 1;
  make_manager(o);
  add_pull_dp("pull1");
  const std::string waiting = package("Waiting");
  const std::string other = package("Other");
  ASSERT_TRUE(dm_->distribute(waiting, Targets{{"pull1"}, {}, {}}).ok());
  ASSERT_TRUE(dm_->distribute(other, Targets{{"dp1"}, {}, {}}).ok());
  schedule();
  EXPECT_EQ(num(job(waiting, "pull1"), "JobState"), 0u);
  EXPECT_NE(str(job(waiting, "pull1"), "WaitReason").find("no source DP"), std::string::npos);
  EXPECT_EQ(num(job(other, "dp1"), "JobState"), 1u) << str(job(other, "dp1"), "WaitReason");
  schedule();  // and again: the waiting job still takes nothing
  EXPECT_EQ(num(job(other, "dp1"), "JobState"), 1u);
  expect_consistent();
}

TEST_F(DistMgrTest, AnUpdateSendsTheNewVersionEverywhere) {
  const std::string pkg = package();
  auto action = [&] { return num(get("SMS_Package", {cim::Value::string(pkg)}), "ActionInProgress"); };
  EXPECT_EQ(action(), 0u);
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1", "dp3"}, {}, {}}).ok());
  EXPECT_EQ(action(), 2u);  // ADD, while a DP is in progress
  schedule();
  report("dp1", pkg, "installed");
  EXPECT_EQ(action(), 2u);
  report("dp3", pkg, "installed");
  EXPECT_EQ(action(), 0u);  // the last DP is done
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{2, 2, 0, 0}));
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1"}, {}, {}}).ok());  // already there: nothing in progress
  EXPECT_EQ(action(), 0u);
  advance(3600 * kSecond);
  auto updated = dm_->refresh_source(pkg);
  ASSERT_TRUE(updated.ok()) << updated.error().to_string();
  EXPECT_EQ(num(*updated, "SourceVersion"), 2u);
  EXPECT_EQ(num(*updated, "ActionInProgress"), 1u);  // UPDATE
  EXPECT_EQ(action(), 1u);
  // SourceDate: when the version was taken, not the files' times (the source's are a second before kStart).
  EXPECT_EQ(updated->find("SourceDate")->as_datetime().unix_micros(), clock_.now_micros());
  EXPECT_EQ(
      get("SMS_PackageStatusRootSummarizer", {cim::Value::string(pkg)}).find("SourceDate")->as_datetime().unix_micros(),
      clock_.now_micros());
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{2, 0, 0, 0}));
  cim::Instance j = job(pkg, "dp1");
  EXPECT_EQ(str(j, "ContentID"), pkg + ".2");
  EXPECT_EQ(num(j, "ContentSize"), 20'000u);
  EXPECT_EQ(num(j, "JobState"), 0u);
  expect_consistent();
  schedule();
  report("dp1", pkg, "installed");
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{2, 1, 0, 0}));
  EXPECT_EQ(action(), 1u);
  expect_consistent();
  auto live = dm_->live_manifests();
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->size(), 2u);  // versions 1 and 2 are both recorded
  ASSERT_TRUE(dm_->refresh_source(pkg).ok());
  live = dm_->live_manifests();
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->size(), 2u);  // 2 and 3: version 1's content may go
  expect_consistent();
}

TEST_F(DistMgrTest, RemoveValidateCancelAndRedistribute) {
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1", "dp2"}, {}, {}}).ok());
  schedule();
  report("dp1", pkg, "installed");

  auto validated = dm_->validate(pkg, "dp1");
  ASSERT_TRUE(validated.ok()) << validated.error().to_string();
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 8u);  // CONTENT_MONITORING
  schedule();
  EXPECT_TRUE(report("dp1", pkg, "validated").applied);
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 0u);
  EXPECT_EQ(dm_->validate(pkg, "dp2").error().code, WbemCode::kInvalidOperation);  // nothing installed there

  // A validation that finds damage: the agent repairs as it goes, and the job waits for its outcome (no retry).
  ASSERT_TRUE(dm_->validate(pkg, "dp1").ok());
  schedule();
  EXPECT_TRUE(report("dp1", pkg, "repairing", 0, 0, "mismatch: a.txt").applied);
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 7u);  // CONTENT_UPDATING: not counted as Installed meanwhile
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{2, 0, 0, 0}));
  EXPECT_EQ(num(job(pkg, "dp1"), "JobState"), 1u);  // SENT
  EXPECT_EQ(num(job(pkg, "dp1"), "Attempts"), 0u);
  EXPECT_TRUE(report("dp1", pkg, "repairing", 0, 0, "mismatch: a.txt").applied);  // a repeat changes nothing
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 7u);
  EXPECT_TRUE(report("dp1", pkg, "validated", 0, 0, "repaired: a.txt").applied);
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 0u);
  EXPECT_EQ(num(job(pkg, "dp1"), "Action"), 3u);  // still the validation, finished: no install was queued
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{2, 1, 0, 0}));
  expect_consistent();

  auto cancelled = dm_->cancel(pkg, "dp2");
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().to_string();
  EXPECT_EQ(num(*cancelled, "State"), 3u);
  EXPECT_EQ(str(*cancelled, "InstallStatus"), "cancelled");
  EXPECT_EQ(num(job(pkg, "dp2"), "Action"), 4u);
  EXPECT_TRUE(report("dp2", pkg, "cancelled").applied);
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{2, 1, 0, 1}));

  ASSERT_TRUE(dm_->redistribute(pkg, "dp2").ok());
  EXPECT_EQ(num(dist_points(pkg, "dp2"), "State"), 1u);
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{2, 1, 0, 0}));

  auto removing = dm_->remove(pkg, "dp1");
  ASSERT_TRUE(removing.ok()) << removing.error().to_string();
  EXPECT_EQ(num(*removing, "State"), 4u);  // REMOVAL_PENDING
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{1, 0, 0, 0}));
  schedule();
  EXPECT_TRUE(report("dp1", pkg, "removed").applied);
  auto gone = store_->get(*store_->registry().find("PKG_DPJob"), {cim::Value::string(pkg), cim::Value::string(nal("dp1"))});
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{1, 0, 0, 0}));
  expect_consistent();
}

// Configuration Manager's methods name a DP by its NAL path (AddDistributionPoints, VerifyPackage,
// CancelDistribution): every verb takes one where it takes a DP's name.
TEST_F(DistMgrTest, VerbsTakeADpsNalPathForItsName) {
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{nal("dp1")}, {}, {}}).ok());
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{1, 0, 0, 0}));
  schedule();
  report("dp1", pkg, "installed");
  auto validated = dm_->validate(pkg, nal("dp1"));
  ASSERT_TRUE(validated.ok()) << validated.error().to_string();
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 8u);
  auto unknown = dm_->remove(pkg, R"(["Display=\\nowhere\"]MSWNET:["SMS_SITE=ABC"]\\nowhere\)");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, WbemCode::kNotFound);
  expect_consistent();
}

// A removal that failed to its limit is tried again by `remove` (a fresh job, retries counted afresh); a removal
// still pending or retrying is left to run.
TEST_F(DistMgrTest, RemoveTriesAFailedRemovalAgain) {
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1"}, {}, {}}).ok());
  schedule();
  report("dp1", pkg, "installed");
  ASSERT_TRUE(dm_->remove(pkg, "dp1").ok());
  for (int attempt = 1; attempt <= 4; ++attempt) {
    schedule();
    ASSERT_EQ(num(job(pkg, "dp1"), "JobState"), 1u) << attempt;
    EXPECT_TRUE(report("dp1", pkg, "remove_failed", 0, 0, "device busy").applied);
    if (attempt < 4) {
      EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 5u);  // REMOVAL_RETRYING
      const auto generation = num(job(pkg, "dp1"), "Generation");
      auto again = dm_->remove(pkg, "dp1");  // in progress: unchanged
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(num(*again, "State"), 5u);
      EXPECT_EQ(num(job(pkg, "dp1"), "Generation"), generation);
      advance(200 * kSecond);
    }
  }
  EXPECT_EQ(num(dist_points(pkg, "dp1"), "State"), 6u);  // REMOVAL_FAILED
  EXPECT_EQ(num(job(pkg, "dp1"), "JobState"), 3u);
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{0, 0, 0, 1}));
  const auto failed_generation = num(job(pkg, "dp1"), "Generation");

  auto retried = dm_->remove(pkg, "dp1");
  ASSERT_TRUE(retried.ok()) << retried.error().to_string();
  EXPECT_EQ(num(*retried, "State"), 4u);  // REMOVAL_PENDING
  EXPECT_EQ(str(*retried, "InstallStatus"), "Removal requested again");
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{0, 0, 0, 0}));
  cim::Instance j = job(pkg, "dp1");
  EXPECT_GT(num(j, "Generation"), failed_generation);
  EXPECT_EQ(num(j, "Attempts"), 0u);
  EXPECT_EQ(num(j, "Action"), 2u);  // REMOVE
  schedule();
  EXPECT_TRUE(report("dp1", pkg, "removed").applied);
  auto gone = store_->get(*store_->registry().find("SMS_PackageStatusDistPointsSummarizer"),
                          {cim::Value::string(pkg), cim::Value::string(nal("dp1")), cim::Value::string("ABC")});
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  expect_consistent();
}

// A DP agent that was offline while its job was removed and issued again sees only the new job: its generation
// must be one the agent has never handled, although the job row was deleted in between.
TEST_F(DistMgrTest, AJobIssuedAgainAfterItsDeletionNeverRepeatsAGeneration) {
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1"}, {}, {}}).ok());
  schedule();
  report("dp1", pkg, "installed");
  ASSERT_TRUE(dm_->remove(pkg, "dp1").ok());
  schedule();
  const std::uint64_t last_handled = num(job(pkg, "dp1"), "Generation");
  EXPECT_TRUE(report("dp1", pkg, "removed").applied);
  auto gone = store_->get(*store_->registry().find("PKG_DPJob"), {cim::Value::string(pkg), cim::Value::string(nal("dp1"))});
  ASSERT_TRUE(gone.ok());
  ASSERT_FALSE(gone->has_value());

  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1"}, {}, {}}).ok());
  EXPECT_GT(num(job(pkg, "dp1"), "Generation"), last_handled);
  schedule();
  EXPECT_GT(num(job(pkg, "dp1"), "Generation"), last_handled + 1);
  EXPECT_TRUE(report("dp1", pkg, "installed").applied);
  EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{1, 1, 0, 0}));
  expect_consistent();
}

TEST_F(DistMgrTest, RefusesWhatCannotBeDistributedAndChangesNothing) {
  const std::string plain = package("NoSource", false);
  const std::string pkg = package();
  const std::uint64_t before = *store_->last_revision();
  EXPECT_EQ(dm_->distribute(plain, Targets{{"dp1"}, {}, {}}).error().code, WbemCode::kInvalidOperation);
  EXPECT_EQ(dm_->distribute(pkg, Targets{{"nosuchdp"}, {}, {}}).error().code, WbemCode::kNotFound);
  EXPECT_EQ(dm_->distribute(pkg, Targets{{"dp1"}, {"QQQ"}, {}}).error().code, WbemCode::kNotFound);
  EXPECT_EQ(dm_->distribute(pkg, Targets{{}, {}, {"nogroup"}}).error().code, WbemCode::kNotFound);
  EXPECT_EQ(dm_->distribute(pkg, Targets{}).error().code, WbemCode::kInvalidParameter);
  EXPECT_EQ(dm_->distribute("ABC0FFFF", Targets{{"dp1"}, {}, {}}).error().code, WbemCode::kNotFound);
  EXPECT_EQ(dm_->remove(pkg, "dp1").error().code, WbemCode::kInvalidOperation);
  EXPECT_EQ(dm_->cancel(pkg, "dp1").error().code, WbemCode::kInvalidOperation);
  EXPECT_EQ(*store_->last_revision(), before);
}

TEST_F(DistMgrTest, DeletingADistributedPackageGivesBackEveryDpsCounts) {
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1", "dp3"}, {}, {}}).ok());
  schedule();
  report("dp1", pkg, "installed");
  ASSERT_TRUE(domain_->delete_package(pkg).ok());
  auto jobs = dm_->jobs_of("dp1");
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->jobs.empty());
  cim::Instance info = get("SMS_DPStatusInfo", {cim::Value::string(nal("dp1"))});
  EXPECT_EQ(num(info, "NumberInstalled"), 0u);
  expect_consistent();
}

TEST_F(DistMgrTest, TheSchedulerThreadSendsJobsWhenWoken) {
  dm_->start();
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1"}, {}, {}}).ok());
  for (int i = 0; i < 500 && num(job(pkg, "dp1"), "JobState") != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(num(job(pkg, "dp1"), "JobState"), 1u);
  auto jobs = dm_->jobs_of("DP1");
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->jobs.size(), 1u);
  EXPECT_GT(jobs->revision, 0u);
}

// Reports that arrive while the store is busy are applied in one command: each with the outcome it would have had
// alone, and the summary rows they share (each package's Root) moved and journaled once for the group. A group
// holding a report that fails (an unknown DP) is applied again report by report: only that one fails.
TEST_F(DistMgrTest, ReportsThatArriveTogetherAreAppliedAsOneGroup) {
  const std::vector<std::string> pkgs = {package("A"), package("B"), package("C")};
  const std::vector<std::string> dps = {"dp1", "dp2", "dp3"};
  for (const auto& pkg : pkgs) ASSERT_TRUE(dm_->distribute(pkg, Targets{dps, {}, {}}).ok());
  schedule();
  struct Sent {
    std::string dp;
    DpStatus status;
  };
  auto reports_of = [&](const std::string& state) {
    std::vector<Sent> out;
    for (const auto& pkg : pkgs) {
      for (const auto& dp : dps) {
        const auto generation = static_cast<std::uint32_t>(num(job(pkg, dp), "Generation"));
        out.push_back({dp, DpStatus{"k-" + state + "-" + pkg + "-" + dp, pkg, generation, state, 0, 0, ""}});
      }
    }
    return out;
  };
  // Holds the store's writer until every report of a round is queued, then lets them go.
  auto round = [&](const std::vector<Sent>& sent) {
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    auto blocker = store_->submit([released](store::WriteTxn&) -> Status {
      released.wait();
      return ok_status();
    });
    std::vector<std::future<Result<StatusOutcome>>> answers;
    for (const auto& s : sent) {
      answers.push_back(std::async(std::launch::async, [&, s] { return dm_->apply_status(s.dp, s.status); }));
    }
    // The first caller leads a group command, queued behind the blocker; the others wait with their reports.
    for (int i = 0; i < 2000 && dm_->queued_reports_for_test() < sent.size(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(dm_->queued_reports_for_test(), sent.size());
    release.set_value();
    EXPECT_TRUE(blocker.get().ok());
    std::vector<Result<StatusOutcome>> out;
    for (auto& a : answers) out.push_back(a.get());
    return out;
  };
  auto root_entries_after = [&](std::uint64_t after) {
    int n = 0;
    EXPECT_TRUE(store_
                    ->read_journal(after, 100'000,
                                   [&](const store::JournalEntry& e) {
                                     if (e.class_name == "SMS_PackageStatusRootSummarizer") ++n;
                                     return true;
                                   })
                    .ok());
    return n;
  };

  // Nine reports of INSTALLED, one group: each package's Root moves 0 -> 3 Installed in one journal entry.
  const std::uint64_t before = *store_->last_revision();
  for (const auto& r : round(reports_of("installed"))) {
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_TRUE(r->applied) << r->reason;
  }
  for (const auto& pkg : pkgs) EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{3, 3, 0, 0}));
  EXPECT_EQ(root_entries_after(before), 3);
  expect_consistent();

  // The same reports again (an outbox resending them) and one from a DP that does not exist, together: the group
  // fails, then each runs alone: the copies are not applied, the stranger's is refused, nothing moves.
  auto again = reports_of("installed");
  again.insert(again.begin() + 4, Sent{"nodp", DpStatus{"k-stranger", pkgs[0], 1, "installed", 0, 0, ""}});
  const std::uint64_t before_again = *store_->last_revision();
  auto answers = round(again);
  ASSERT_EQ(answers.size(), again.size());
  for (std::size_t i = 0; i < answers.size(); ++i) {
    if (again[i].dp == "nodp") {
      ASSERT_FALSE(answers[i].ok());
      EXPECT_EQ(answers[i].error().code, WbemCode::kNotFound);
    } else {
      ASSERT_TRUE(answers[i].ok()) << answers[i].error().to_string();
      EXPECT_FALSE(answers[i]->applied);
    }
  }
  EXPECT_EQ(*store_->last_revision(), before_again);
  for (const auto& pkg : pkgs) EXPECT_EQ(root_counts(pkg), (std::vector<std::uint64_t>{3, 3, 0, 0}));
  expect_consistent();
}

// A report the store refuses (it is closing) is answered with the store's error and leaves nothing queued, so no
// caller waits for a group that will never run.
TEST_F(DistMgrTest, AReportTheClosingStoreRefusesIsAnsweredAndNotKept) {
  const std::string pkg = package();
  ASSERT_TRUE(dm_->distribute(pkg, Targets{{"dp1"}, {}, {}}).ok());
  schedule();
  const auto generation = static_cast<std::uint32_t>(num(job(pkg, "dp1"), "Generation"));
  store_->close();
  std::vector<std::future<Result<StatusOutcome>>> answers;
  for (int i = 0; i < 4; ++i) {
    answers.push_back(std::async(std::launch::async, [&, i] {
      return dm_->apply_status("dp1", DpStatus{"closing-" + std::to_string(i), pkg, generation, "installed", 0, 0, ""});
    }));
  }
  for (auto& a : answers) {
    auto r = a.get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, WbemCode::kShuttingDown) << r.error().to_string();
  }
  EXPECT_EQ(dm_->queued_reports_for_test(), 0u);
}

}  // namespace
}  // namespace pkgcast::distmgr
