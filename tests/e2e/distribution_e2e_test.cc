// Distribution end to end, on both backends: a real server, real DP agents in two sites, real source trees. Each
// scenario checks the exact Targeted/Installed/Retrying/Failed of the summaries, the trees on the DPs byte for byte
// (modes included), and that `admin check` finds the incremental summaries equal to their recomputation.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "client/http_client.h"
#include "server_fixture.h"

namespace pkgcast::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = rng();
    for (std::size_t k = 0; k < 8 && i + k < n; ++k) s[i + k] = static_cast<char>(v >> (8 * k));
  }
  return s;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Every entry of a tree: type, permission bits, and content (or link target), by relative path.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> out;
  if (!fs::exists(root)) return out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    const std::string rel = it->path().lexically_relative(root).string();
    std::string what = std::to_string(st.st_mode & 07777) + ":";
    if (S_ISLNK(st.st_mode)) {
      what += "link:" + fs::read_symlink(it->path()).string();
    } else if (S_ISDIR(st.st_mode)) {
      what += "dir";
    } else {
      what += "file:" + read_all(it->path());
    }
    out[rel] = std::move(what);
  }
  return out;
}

class DistributionE2eTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // Fast retries and stall detection for the fault scenarios, set before the first start.
    config_ = dir_.path() + "/server.toml";
    std::ofstream(config_) << "distmgr_retry_count = 2\ndistmgr_retry_delay_seconds = 1\ndistmgr_stall_seconds = 4\n";
    stop_server();
    start_server({"--config", config_});
    ASSERT_EQ(cli({"site", "create", "XYZ", "--name", "Branch", "--parent", "ABC", "--type", "secondary"}).exit_code, 0);
  }
  void TearDown() override {
    agents_.clear();
    ServerTest::TearDown();
  }

  struct Dp {
    std::string name, token, data_dir, url;
  };

  // Registers a DP (its agent URL on a free port) and, unless told not to, starts its agent.
  Dp& add_dp(const std::string& name, const std::string& site, bool start = true,
             const std::vector<std::string>& extra = {}) {
    Dp dp;
    dp.name = name;
    dp.url = "http://127.0.0.1:" + std::to_string(free_port());
    dp.data_dir = dir_.path() + "/dp-" + name;
    std::vector<std::string> args = {"--json", "dp", "add", name, "--site", site, "--url", dp.url};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    dp.token = json::parse(r.out, nullptr, false).value("token", "");
    dps_[name] = dp;
    if (start) start_agent(name);
    return dps_[name];
  }

  void start_agent(const std::string& name) {
    const Dp& dp = dps_[name];
    agents_[name] = std::make_unique<Background>(std::vector<std::string>{
        pkgcast_binary(), "--server", url_, "--token", dp.token, "dp-agent", "--name", name, "--data-dir",
        dp.data_dir, "--listen", dp.url.substr(std::string("http://").size())});
    ASSERT_TRUE(agents_[name]->started());
  }

  json query(const std::string& wql) {
    auto r = cli({"--json", "query", wql});
    EXPECT_EQ(r.exit_code, 0) << wql << ": " << r.err;
    return json::parse(r.out, nullptr, false);
  }
  // Targeted, Installed, Retrying, Failed of a package's Root row.
  std::vector<std::uint64_t> root(const std::string& pkg) {
    json rows = query("SELECT * FROM SMS_PackageStatusRootSummarizer WHERE PackageID = '" + pkg + "'");
    if (!rows.is_array() || rows.size() != 1) return {};
    const json& r = rows[0];
    return {r["Targeted"].get<std::uint64_t>(), r["Installed"].get<std::uint64_t>(),
            r["Retrying"].get<std::uint64_t>(), r["Failed"].get<std::uint64_t>()};
  }
  std::vector<std::uint64_t> detail(const std::string& pkg, const std::string& site) {
    json rows = query("SELECT * FROM SMS_PackageStatusDetailSummarizer WHERE PackageID = '" + pkg +
                      "' AND SiteCode = '" + site + "'");
    if (!rows.is_array() || rows.size() != 1) return {};
    const json& r = rows[0];
    return {r["Targeted"].get<std::uint64_t>(), r["Installed"].get<std::uint64_t>(),
            r["Retrying"].get<std::uint64_t>(), r["Failed"].get<std::uint64_t>()};
  }
  void expect_check_clean() {
    auto r = cli({"admin", "check"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  RunResult wait_distributed(const std::string& pkg, int seconds = 120) {
    return cli({"status", pkg, "--wait", "--timeout", std::to_string(seconds)});
  }
  fs::path installed(const std::string& dp, const std::string& content_id) {
    return fs::path(dps_[dp].data_dir) / "content" / content_id;
  }

  // A source tree of mixed entries under the server's source roots.
  std::string make_source(const std::string& name) {
    const fs::path src = fs::path(dir_.path()) / "sources" / name;
    write_file(src / "empty.txt", "");
    fs::create_directories(src / "empty-dir");
    write_file(src / "bin" / "setup.sh", "#!/bin/sh\necho installing\n", fs::perms(0755));
    write_file(src / "données" / "résumé.txt", "non-ASCII names survive\n");
    write_file(src / "big.bin", random_bytes(6 * 1024 * 1024, 7));
    std::string text;
    while (text.size() < 2 * 1024 * 1024) text += "line " + std::to_string(text.size()) + " of compressible text\n";
    write_file(src / "docs" / "manual.txt", text);
    for (int i = 0; i < 300; ++i) write_file(src / "small" / ("f" + std::to_string(i)), std::to_string(i * 7919));
    fs::create_symlink("bin/setup.sh", src / "setup-link");
    return src.string();
  }

  std::string create_package(const std::string& source) {
    auto r = cli({"package", "create", "--name", "App", "--source", source});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string id = r.out.substr(0, r.out.find('\n'));
    return id;
  }

  std::string config_;
  std::map<std::string, Dp> dps_;
  std::map<std::string, std::unique_ptr<Background>> agents_;
};

TEST_P(DistributionE2eTest, FourDpsInTwoSitesGetTheTreeByteForByteThenAnUpdate) {
  const std::string source = make_source("app");
  for (auto [name, site] : {std::pair{"dp1", "ABC"}, {"dp2", "ABC"}, {"dp3", "XYZ"}, {"dp4", "XYZ"}}) {
    add_dp(name, site);
  }
  const std::string pkg = create_package(source);
  ASSERT_EQ(pkg.size(), 8u);
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{0, 0, 0, 0}));
  auto d = cli({"distribute", pkg, "--site", "ABC", "--site", "XYZ"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(root(pkg)[0], 4u);
  auto waited = cli({"--json", "status", pkg, "--wait", "--timeout", "120"});
  ASSERT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{4, 4, 0, 0}));
  // Every view `status` drew is one state of the package: once a DP's job is known, a DP counted installed counts
  // its bytes as done (the Root row and the DistPoints rows of a change are drawn together).
  std::vector<json> views;
  std::istringstream lines(waited.out);
  for (std::string line; std::getline(lines, line);) views.push_back(json::parse(line, nullptr, false));
  ASSERT_FALSE(views.empty());
  const std::uint64_t per_dp = views.back().value("bytes_total", std::uint64_t{0}) / 4;
  ASSERT_GT(per_dp, 6u * 1024 * 1024) << waited.out;
  for (const json& v : views) {
    ASSERT_TRUE(v.is_object()) << waited.out;
    if (v["bytes_total"].get<std::uint64_t>() != 4 * per_dp) continue;  // not every job known yet
    EXPECT_GE(v["bytes_done"].get<std::uint64_t>(), v["installed"].get<std::uint64_t>() * per_dp) << v.dump();
  }
  EXPECT_EQ(detail(pkg, "ABC"), (std::vector<std::uint64_t>{2, 2, 0, 0}));
  EXPECT_EQ(detail(pkg, "XYZ"), (std::vector<std::uint64_t>{2, 2, 0, 0}));
  const auto expected = snapshot(source);
  for (const char* dp : {"dp1", "dp2", "dp3", "dp4"}) {
    EXPECT_TRUE(snapshot(installed(dp, pkg + ".1")) == expected) << dp << " does not hold the source tree";
  }
  expect_check_clean();

  // An update that changes a little of one file: only the chunks around the change move.
  std::string big = read_all(fs::path(source) / "big.bin");
  for (std::size_t i = 3'000'000; i < 3'000'000 + 40'000; ++i) big[i] = static_cast<char>(big[i] ^ 0x5a);
  write_file(fs::path(source) / "big.bin", big);
  // What dp1 received, as its content server's /health reports it.
  const auto received = [&] {
    auto c = client::HttpClient::create(*client::parse_server_url(dps_["dp1"].url), {});
    auto r = c.ok() ? (*c)->request("GET", "/health") : Result<client::HttpResponse>(c.error());
    return r.ok() ? json::parse(r->body, nullptr, false).value("content_bytes_received", std::uint64_t{0})
                  : std::uint64_t{0};
  };
  const std::uint64_t received_before = received();
  ASSERT_GT(received_before, 6u * 1024 * 1024);
  auto u = cli({"package", "update", pkg});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  waited = wait_distributed(pkg);
  ASSERT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{4, 4, 0, 0}));
  const auto updated = snapshot(source);
  for (const char* dp : {"dp1", "dp2", "dp3", "dp4"}) {
    EXPECT_TRUE(snapshot(installed(dp, pkg + ".2")) == updated) << dp;
    // The previous version goes right after the new one is reported installed.
    for (int i = 0; i < 500 && fs::exists(installed(dp, pkg + ".1")); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_FALSE(fs::exists(installed(dp, pkg + ".1"))) << dp << " kept the previous version";
  }
  // A few chunks of at most 256 KiB, and the manifest: not the 6 MiB file.
  EXPECT_LE(received() - received_before, 4u * 256 * 1024) << "an edit of 40 KB should move a few chunks";
  expect_check_clean();
}

// A DP the package was removed from gets it again when it is distributed there again (a new job, whose generations
// start again from 1), and deleting the package leaves nothing of it on the DP.
TEST_P(DistributionE2eTest, RemovedThenDistributedAgainThenDeletedLeavesNothingOnTheDp) {
  const std::string source = make_source("app");
  add_dp("dp1", "ABC");
  const std::string pkg = create_package(source);
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1"}).exit_code, 0);
  auto waited = wait_distributed(pkg);
  ASSERT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  ASSERT_EQ(cli({"remove", pkg, "--dp", "dp1"}).exit_code, 0);
  const std::string rows = "SELECT * FROM SMS_PackageStatusDistPointsSummarizer WHERE PackageID = '" + pkg + "'";
  for (int i = 0; i < 300 && !query(rows).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(query(rows).empty()) << query(rows);
  EXPECT_FALSE(fs::exists(installed("dp1", pkg + ".1")));

  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1"}).exit_code, 0);
  waited = wait_distributed(pkg, 30);
  ASSERT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  EXPECT_TRUE(snapshot(installed("dp1", pkg + ".1")) == snapshot(source));
  expect_check_clean();

  ASSERT_EQ(cli({"package", "delete", pkg}).exit_code, 0);
  const fs::path version_record = fs::path(dps_["dp1"].data_dir) / "versions" / (pkg + ".1");
  for (int i = 0; i < 300 && (fs::exists(installed("dp1", pkg + ".1")) || fs::exists(version_record)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(fs::exists(installed("dp1", pkg + ".1"))) << "a deleted package stayed on the DP";
  EXPECT_FALSE(fs::exists(version_record));
  expect_check_clean();
}

TEST_P(DistributionE2eTest, ADpThatIsDownRetriesThenFailsAndOthersAreUnaffected) {
  const std::string source = make_source("app");
  add_dp("dp1", "ABC");
  add_dp("down", "XYZ", /*start=*/false);
  const std::string pkg = create_package(source);
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1", "--dp", "down"}).exit_code, 0);
  // dp1 installs; the DP without an agent stalls, retries twice, then fails: `status --wait` exits 1.
  auto waited = wait_distributed(pkg, 90);
  EXPECT_EQ(waited.exit_code, 1) << waited.out << waited.err;
  // Like every exit 1, one error line: the failed DP and its error.
  EXPECT_EQ(waited.err.find("error: WBEM_E_FAILED: " + pkg + " version 1: 1 of 2 DPs failed; down: "), 0u)
      << waited.err;
  EXPECT_EQ(std::count(waited.err.begin(), waited.err.end(), '\n'), 1) << waited.err;
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{2, 1, 0, 1}));
  json row = query("SELECT * FROM SMS_PackageStatusDistPointsSummarizer WHERE PackageID = '" + pkg +
                   "' AND SiteCode = 'XYZ'");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0]["State"], 3);  // INSTALL_FAILED
  EXPECT_NE(row[0]["InstallStatus"].get<std::string>().find("stalled"), std::string::npos) << row[0];
  expect_check_clean();

  // Once its agent runs, a redistribution gets it there.
  start_agent("down");
  ASSERT_EQ(cli({"redistribute", pkg, "--dp", "down"}).exit_code, 0);
  waited = wait_distributed(pkg);
  EXPECT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{2, 2, 0, 0}));
  expect_check_clean();

  // Removed while its agent is down again, the removal stalls, retries and fails in turn. That DP is no longer a
  // target: the package is distributed on dp1, and `status --wait` ends 0 with the failed removal among its failures.
  agents_.erase("down");
  ASSERT_EQ(cli({"remove", pkg, "--dp", "down"}).exit_code, 0);
  auto down_state = [&]() -> std::int64_t {
    json rows = query("SELECT State FROM SMS_PackageStatusDistPointsSummarizer WHERE PackageID = '" + pkg +
                      "' AND SiteCode = 'XYZ'");
    return rows.is_array() && rows.size() == 1 ? rows[0]["State"].get<std::int64_t>() : -1;
  };
  for (int i = 0; i < 240 && down_state() != 6; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  ASSERT_EQ(down_state(), 6);  // REMOVAL_FAILED
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{1, 1, 0, 1}));
  waited = cli({"--json", "status", pkg, "--wait", "--timeout", "30"});
  EXPECT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  EXPECT_NE(waited.out.find(R"("name":"down")"), std::string::npos) << waited.out;
  EXPECT_NE(waited.out.find(R"("state":"REMOVAL_FAILED")"), std::string::npos) << waited.out;
  // With its agent back, `remove` tries the removal again and the row goes.
  start_agent("down");
  ASSERT_EQ(cli({"remove", pkg, "--dp", "down"}).exit_code, 0);
  for (int i = 0; i < 240 && down_state() != -1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_EQ(down_state(), -1);
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{1, 1, 0, 0}));
  EXPECT_FALSE(fs::exists(installed("down", pkg + ".1")));
  expect_check_clean();
}

TEST_P(DistributionE2eTest, RemoveCancelValidateAndAnAdvertisementOfferedOnlyWithContent) {
  const std::string source = make_source("app");
  add_dp("dp1", "ABC");
  add_dp("dp2", "ABC");
  const std::string pkg = create_package(source);
  ASSERT_EQ(cli({"program", "create", pkg, "--name", "Install", "--command-line", "setup.sh"}).exit_code, 0);
  auto adv = cli({"--json", "advertisement", "create", pkg, "--program", "Install", "--collection", "SMS00001"});
  ASSERT_EQ(adv.exit_code, 0) << adv.err;
  const std::string adv_id = json::parse(adv.out)["AdvertisementID"];
  auto offered = [&] {
    json rows = query("SELECT * FROM PKG_AdvertisementOffer WHERE AdvertisementID = '" + adv_id + "' AND SiteCode = 'ABC'");
    return rows.size() == 1 && rows[0]["Offered"] == true;
  };
  EXPECT_FALSE(offered()) << "a package with source files is offered only once distributed";
  // Targeted nowhere yet: a package with source files is not distributed (Installed == Targeted > 0), so --wait
  // waits; one without source files has nothing to wait for.
  EXPECT_EQ(cli({"status", pkg, "--wait", "--timeout", "1"}).exit_code, 3);
  auto plain = cli({"--json", "package", "create", "--name", "NoFiles"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(cli({"status", json::parse(plain.out)["PackageID"].get<std::string>(), "--wait", "--timeout", "5"}).exit_code,
            0);
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1", "--dp", "dp2"}).exit_code, 0);
  ASSERT_EQ(wait_distributed(pkg).exit_code, 0);
  EXPECT_TRUE(offered());

  // Validation finds a damaged file and repairs it.
  const fs::path damaged = installed("dp1", pkg + ".1") / "docs" / "manual.txt";
  fs::permissions(damaged, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(damaged, std::ios::binary | std::ios::in | std::ios::out) << "XXXX";
  ASSERT_EQ(cli({"validate", pkg, "--dp", "dp1"}).exit_code, 0);
  ASSERT_EQ(wait_distributed(pkg).exit_code, 0);
  EXPECT_TRUE(snapshot(installed("dp1", pkg + ".1")) == snapshot(source));
  // Repaired by the validation itself, not by a failed job's retry.
  json jobs = query("SELECT * FROM PKG_DPJob WHERE PackageID = '" + pkg + "' AND NALPath LIKE '%dp1%'");
  ASSERT_EQ(jobs.size(), 1u) << jobs.dump();
  EXPECT_EQ(jobs[0]["Action"], 3) << jobs.dump();
  EXPECT_EQ(jobs[0]["Attempts"], 0) << jobs.dump();
  json row = query("SELECT InstallStatus FROM SMS_PackageStatusDistPointsSummarizer WHERE PackageID = '" + pkg +
                   "' AND ServerNALPath LIKE '%dp1%'");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_NE(row[0]["InstallStatus"].get<std::string>().find("repaired: docs/manual.txt"), std::string::npos)
      << row.dump();

  // Removal: no longer targeted, the content gone from the DP.
  ASSERT_EQ(cli({"remove", pkg, "--dp", "dp2"}).exit_code, 0);
  for (int i = 0; i < 300 && fs::exists(installed("dp2", pkg + ".1")); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(fs::exists(installed("dp2", pkg + ".1")));
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{1, 1, 0, 0}));  // no longer targeted from the request on
  // The row goes once the agent reports the content removed.
  const std::string rows_of_pkg = "SELECT * FROM SMS_PackageStatusDistPointsSummarizer WHERE PackageID = '" + pkg + "'";
  for (int i = 0; i < 100 && query(rows_of_pkg).size() != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(query(rows_of_pkg).size(), 1u);
  expect_check_clean();

  // Cancel: a distribution held back by a slow DP is stopped and reported failed "cancelled".
  add_dp("slow", "ABC", true, {"--transfer-rate", "64"});
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "slow"}).exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto c = cli({"--json", "cancel", pkg, "--dp", "slow"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(json::parse(c.out)["InstallStatus"], "cancelled");
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{2, 1, 0, 1}));
  expect_check_clean();
}

// A package deleted while `status --wait` follows it will never be distributed: the wait ends at once with an error
// (exit 1, WBEM_E_NOT_FOUND), instead of waiting for the timeout (or for ever without one).
TEST_P(DistributionE2eTest, StatusWaitEndsWhenThePackageIsDeleted) {
  add_dp("idle", "ABC", /*start=*/false);  // no agent: the package stays pending
  const std::string pkg = create_package(make_source("gone"));
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "idle"}).exit_code, 0);
  Background wait({pkgcast_binary(), "--server", url_, "--token-file", data_dir_ + "/admin.token", "--json", "status",
                   pkg, "--wait"});
  ASSERT_TRUE(wait.started());
  ASSERT_NE(wait.wait_for_line("\"targeted\":1", std::chrono::seconds(30)), "") << wait.error_output();
  ASSERT_EQ(cli({"package", "delete", pkg}).exit_code, 0);
  EXPECT_NE(wait.wait_for_line("\"error\":\"WBEM_E_NOT_FOUND\"", std::chrono::seconds(20)), "") << wait.output();
  EXPECT_EQ(wait.stop(0, std::chrono::seconds(20)), 1) << wait.output() << wait.error_output();
  EXPECT_NE(wait.error_output().find("error: WBEM_E_NOT_FOUND: package " + pkg + " was deleted"), std::string::npos)
      << wait.error_output();
}

// `status` follows a package with four event streams. When the token is at its stream quota (several waits side
// by side), it waits for streams to be given back instead of failing: here the quota admits one `status` at a time,
// and the second one, started while the first holds four of five streams, finishes once the first has ended.
TEST_P(DistributionE2eTest, StatusWaitsForAFreeStreamWhenTheTokenIsAtItsQuota) {
  stop_server();
  // Heartbeats every second: the server notices the streams of a killed client within two of them.
  std::ofstream(config_, std::ios::app) << "max_streams_per_token = 5\nevent_heartbeat_seconds = 1\n";
  start_server({"--config", config_});
  add_dp("idle", "ABC", /*start=*/false);
  const std::string pending = create_package(make_source("pending"));
  ASSERT_EQ(cli({"distribute", pending, "--dp", "idle"}).exit_code, 0);
  auto plain = cli({"--json", "package", "create", "--name", "NoFiles"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const std::string no_files = json::parse(plain.out)["PackageID"].get<std::string>();

  Background first({pkgcast_binary(), "--server", url_, "--token-file", data_dir_ + "/admin.token", "--json", "status",
                    pending, "--wait"});
  ASSERT_TRUE(first.started());
  ASSERT_NE(first.wait_for_line("\"targeted\":1", std::chrono::seconds(30)), "") << first.error_output();
  Background second({pkgcast_binary(), "--server", url_, "--token-file", data_dir_ + "/admin.token", "--json",
                     "status", no_files, "--wait", "--timeout", "60"});
  ASSERT_TRUE(second.started());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(second.stop(0, std::chrono::milliseconds(10)), -2) << "it waits while the quota is taken: "
                                                                 << second.error_output();
  EXPECT_EQ(first.stop(SIGKILL), -1);  // killed by the signal: its streams are given back when they close
  EXPECT_EQ(second.stop(0, std::chrono::seconds(30)), 0) << second.error_output();
  EXPECT_NE(second.error_output().find("waiting for the server to admit more event streams"), std::string::npos)
      << second.error_output();
}

TEST_P(DistributionE2eTest, APullDpTakesContentFromItsSourceDp) {
  const std::string source = make_source("app");
  add_dp("dp1", "ABC");
  add_dp("pull1", "XYZ", true, {"--pull", "--source-dp", "dp1"});
  const std::string pkg = create_package(source);
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "pull1"}).exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  json job = query("SELECT * FROM PKG_DPJob WHERE PackageID = '" + pkg + "'");
  ASSERT_EQ(job.size(), 1u);
  EXPECT_EQ(job[0]["JobState"], 0) << "no source DP holds the version yet";
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1"}).exit_code, 0);
  ASSERT_EQ(wait_distributed(pkg).exit_code, 0);
  EXPECT_TRUE(snapshot(installed("pull1", pkg + ".1")) == snapshot(source));
  json row = query("SELECT * FROM PKG_DPJob WHERE DPName = 'pull1'");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0]["Sources"][0], dps_["dp1"].url + "/content");
  expect_check_clean();
}

// WMI's PutInstance of SMS_DistributionPoint with RefreshNow = TRUE (as a script does: read the row, set the
// property, put it back) redistributes to that DP; anything else a put tries is refused and changes nothing.
TEST_P(DistributionE2eTest, PuttingRefreshNowRedistributesAndOtherPutsAreRefused) {
  const std::string source = make_source("app");
  add_dp("dp1", "ABC");
  const std::string pkg = create_package(source);
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1"}).exit_code, 0);
  ASSERT_EQ(wait_distributed(pkg).exit_code, 0);
  json rows = query("SELECT * FROM SMS_DistributionPoint WHERE PackageID = '" + pkg + "'");
  ASSERT_EQ(rows.size(), 1u);
  json row = rows[0];
  EXPECT_EQ(row["RefreshNow"], false);
  auto admin = http(admin_token());
  auto put = [&](const json& instance) {
    return admin->request("PUT", "/api/v1/instances", json{{"instance", instance}}.dump());
  };
  auto code_of = [](const Result<client::HttpResponse>& r) {
    return r.ok() ? json::parse(r->body, nullptr, false).value("error", std::string()) : std::string("transport");
  };
  const json jobs_before = query("SELECT * FROM PKG_DPJob WHERE PackageID = '" + pkg + "'");
  ASSERT_EQ(jobs_before.size(), 1u);

  // Refused: a read-only property changed, an unknown property, a missing key, an unknown row, another class, a
  // read-only token. None changes the job.
  json changed = row;
  changed["RefreshNow"] = true;
  changed["Status"] = 3;
  EXPECT_EQ(code_of(put(changed)), "WBEM_E_READ_ONLY");
  json unknown = row;
  unknown["NoSuchProperty"] = 1;
  EXPECT_EQ(code_of(put(unknown)), "WBEM_E_INVALID_PROPERTY");
  json keyless = row;
  keyless.erase("ServerNALPath");
  keyless["RefreshNow"] = true;
  EXPECT_EQ(code_of(put(keyless)), "WBEM_E_INVALID_OBJECT_PATH");
  json elsewhere = row;
  elsewhere["PackageID"] = "ABC0FFFF";
  elsewhere["RefreshNow"] = true;
  EXPECT_EQ(code_of(put(elsewhere)), "WBEM_E_NOT_FOUND");
  json package = query("SELECT * FROM SMS_Package WHERE PackageID = '" + pkg + "'")[0];
  package["Name"] = "renamed";
  EXPECT_EQ(code_of(put(package)), "WBEM_E_NOT_SUPPORTED");
  auto reader_token = cli({"token", "create", "--role", "read-only"});
  ASSERT_EQ(reader_token.exit_code, 0) << reader_token.err;
  auto reader = http(reader_token.out.substr(0, reader_token.out.find('\n')));
  json refresh = row;
  refresh["RefreshNow"] = true;
  auto denied = reader->request("PUT", "/api/v1/instances", json{{"instance", refresh}}.dump());
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, 403u);
  EXPECT_EQ(query("SELECT * FROM PKG_DPJob WHERE PackageID = '" + pkg + "'"), jobs_before);

  // Accepted: the job is issued again (a new generation), the DP installs the version again, RefreshNow reads FALSE.
  auto accepted = put(refresh);
  ASSERT_TRUE(accepted.ok());
  ASSERT_EQ(accepted->status, 200u) << accepted->body;
  EXPECT_EQ(json::parse(accepted->body, nullptr, false).value("RefreshNow", true), false);
  const json jobs_after = query("SELECT * FROM PKG_DPJob WHERE PackageID = '" + pkg + "'");
  ASSERT_EQ(jobs_after.size(), 1u);
  EXPECT_GT(jobs_after[0]["Generation"].get<std::uint64_t>(), jobs_before[0]["Generation"].get<std::uint64_t>());
  ASSERT_EQ(wait_distributed(pkg).exit_code, 0);
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{1, 1, 0, 0}));
  expect_check_clean();
}

TEST_P(DistributionE2eTest, BadContentRequestsAndStatusMessagesAreRefusedAndChangeNothing) {
  const std::string source = make_source("app");
  Dp& dp = add_dp("dp1", "ABC", /*start=*/false);
  const std::string pkg = create_package(source);
  auto admin = http(admin_token());
  auto agent = http(dp.token);
  auto status_of = [](const Result<client::HttpResponse>& r) { return r.ok() ? r->status : 0u; };
  // Content: a malformed hash, an unknown hash, an unknown content ID, a range past the end.
  EXPECT_EQ(status_of(agent->request("GET", "/api/v1/content/chunks/zz")), 400u);
  EXPECT_EQ(status_of(agent->request("GET", "/api/v1/content/chunks/" + std::string(64, 'a'))), 404u);
  EXPECT_EQ(status_of(agent->request("GET", "/api/v1/content/manifests/" + pkg + ".9")), 404u);
  EXPECT_EQ(status_of(http("")->request("GET", "/api/v1/content/manifests/" + pkg + ".1")), 401u);
  auto manifest = agent->request("GET", "/api/v1/content/manifests/" + pkg + ".1");
  ASSERT_EQ(status_of(manifest), 200u);
  json m = json::parse(manifest->body);
  // A token limited to another site does not learn the package's files by its content ID; by hash, content is
  // anyone's.
  auto other_site = cli({"token", "create", "--role", "read-only", "--site", "XYZ"});
  ASSERT_EQ(other_site.exit_code, 0) << other_site.err;
  auto elsewhere = http(other_site.out.substr(0, other_site.out.find('\n')));
  auto by_id = elsewhere->request("GET", "/api/v1/content/manifests/" + pkg + ".1");
  EXPECT_EQ(status_of(by_id), 404u);
  EXPECT_NE(by_id->body.find("content " + pkg + ".1 does not exist"), std::string::npos) << by_id->body;
  std::string etag;
  for (const auto& [name, value] : manifest->headers) {
    if (name == "etag" || name == "ETag") etag = value;
  }
  ASSERT_GE(etag.size(), 66u);
  EXPECT_EQ(status_of(elsewhere->request("GET", "/api/v1/content/manifests/" + etag.substr(1, 64))), 200u);
  std::string chunk;
  for (const auto& e : m["entries"]) {
    if (e.contains("chunks") && !e["chunks"].empty()) chunk = e["chunks"][0]["sha256"];
  }
  ASSERT_FALSE(chunk.empty());
  client::StreamRequest past_end;
  const std::string target = "/api/v1/content/chunks/" + chunk;
  past_end.target = target;
  past_end.accept = "*/*";
  past_end.headers = {{"Range", "bytes=99999999-"}};
  past_end.on_data = [](std::string_view) { return true; };
  EXPECT_EQ(status_of(agent->stream(past_end)), 416u);

  // A DP's token reaches its own endpoints only; a status message that is malformed or names no job of this DP
  // changes nothing (stale generations: distmgr_test). Nothing is distributed, so nothing else writes meanwhile.
  EXPECT_EQ(status_of(agent->request("GET", "/api/v1/packages")), 403u);
  const std::uint64_t before = json::parse(admin->request("GET", "/api/v1/dp/jobs?dp=dp1")->body)["revision"];
  for (const std::string& body :
       {std::string("{"), std::string(R"({"key":"k","package_id":")") + pkg + R"(","generation":1,"state":"exploded"})",
        std::string(R"({"key":"bad key!","package_id":")") + pkg + R"(","generation":1,"state":"failed"})",
        std::string(R"({"key":"k","package_id":")") + pkg + R"(","state":"failed"})",
        std::string(R"({"key":"k","package_id":")") + pkg + R"(","generation":1,"state":"failed","extra":1})"}) {
    EXPECT_EQ(status_of(agent->request("POST", "/api/v1/dp/status", body)), 400u) << body;
  }
  auto stale = agent->request("POST", "/api/v1/dp/status",
                              std::string(R"({"key":"k1","package_id":")") + pkg + R"(","generation":999,"state":"failed"})");
  ASSERT_EQ(status_of(stale), 200u);
  EXPECT_EQ(json::parse(stale->body)["applied"], false);
  auto other = agent->request("POST", "/api/v1/dp/status",
                              R"({"key":"k2","package_id":"ABC0FFFF","generation":1,"state":"installed"})");
  ASSERT_EQ(status_of(other), 200u);
  EXPECT_EQ(json::parse(other->body)["applied"], false);
  const std::uint64_t after = json::parse(admin->request("GET", "/api/v1/dp/jobs?dp=dp1")->body)["revision"];
  EXPECT_EQ(after, before) << "refused status messages changed the store";
  expect_check_clean();
}

TEST_P(DistributionE2eTest, AnAgentWhoseTokenIsRefusedExitsWithTheReason) {
  TempDir data;
  const std::vector<std::pair<std::string, std::string>> tokens = {
      {"unknown", "pkc_not_a_token"}, {"admin", admin_token()}};
  for (const auto& [what, token] : tokens) {
    const RunResult r = run({pkgcast_binary(), "--server", url_, "--token", token, "dp-agent", "--name", "dp9",
                             "--data-dir", data.path() + "/" + what},
                            {}, std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 1) << what << ": " << r.err;
    EXPECT_NE(r.err.find("error: WBEM_E_"), std::string::npos) << what << ": " << r.err;
    EXPECT_NE(r.err.find("the server refused this DP: "), std::string::npos) << what << ": " << r.err;
  }
  // A DP's token with another DP's name: refused with both names, never followed under the wrong one.
  add_dp("dp1", "ABC", /*start=*/false);
  add_dp("dp2", "ABC", /*start=*/false);
  const RunResult r = run({pkgcast_binary(), "--server", url_, "--token", dps_["dp1"].token, "dp-agent", "--name",
                           "dp2", "--data-dir", data.path() + "/swapped"},
                          {}, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("('dp1', not 'dp2')"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Backends, DistributionE2eTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pkgcast::testing
