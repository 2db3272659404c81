// `pkgcast demo` end to end (issue 9, design.md section 6): the real command, its server and four DP agents as real
// processes, then what it leaves behind: with no `--keep`, nothing running; with `--keep`, a dashboard and an API
// that answer until Ctrl-C.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "process.h"

namespace pkgcast::testing {
namespace {

namespace fs = std::filesystem;

// Processes whose command line mentions `text` (the demo's directory: every child it starts names it).
std::vector<std::string> processes_naming(const std::string& text) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(text) != std::string::npos) found.push_back(pid + ": " + cmdline);
  }
  return found;
}

// The demo's children may take a moment to be reaped after the demo exits.
std::vector<std::string> processes_left(const std::string& dir) {
  std::vector<std::string> left;
  for (int i = 0; i < 50; ++i) {
    left = processes_naming(dir);
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return left;
}

// Whether some line of `out`, split at spaces, is exactly `words`. (No std::regex: GCC 12 warns inside it at -O1.)
bool has_row(const std::string& out, const std::vector<std::string>& words) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream split(line);
    std::vector<std::string> found;
    for (std::string word; split >> word;) found.push_back(word);
    if (found == words) return true;
  }
  return false;
}

void expect_summaries(const std::string& out) {
  EXPECT_NE(out.find("every DP has the package."), std::string::npos) << out;
  // The last progress line counts every byte: "4/4 installed, ..., 152.6 MiB of 152.6 MiB" (the Root row's event may
  // come before the job rows' that carry the bytes; the view draws its last line from a fresh read).
  const auto last = out.find("4/4 installed");  // the first: no line claims 4/4 with bytes missing
  ASSERT_NE(last, std::string::npos) << out;
  const std::string line = out.substr(last, out.find('\n', last) - last);
  const auto of = line.find(" of ");
  ASSERT_NE(of, std::string::npos) << line;
  const auto done_at = line.rfind(", ", of);
  ASSERT_NE(done_at, std::string::npos) << line;
  EXPECT_EQ(line.substr(done_at + 2, of - done_at - 2), line.substr(of + 4)) << line;
  // Root: PackageID SourceVersion Targeted Installed Retrying Failed; Detail adds SiteCode.
  EXPECT_TRUE(has_row(out, {"DEM00001", "1", "4", "4", "0", "0"})) << out;
  EXPECT_TRUE(has_row(out, {"DEM00001", "BR1", "1", "2", "2", "0", "0"})) << out;
  EXPECT_TRUE(has_row(out, {"DEM00001", "DEM", "1", "2", "2", "0", "0"})) << out;
}

// The URL after "dashboard: " up to the next space, or "".
std::string dashboard_url(const std::string& out) {
  const auto at = out.find("dashboard: ");
  if (at == std::string::npos) return "";
  const auto begin = at + std::string("dashboard: ").size();
  return out.substr(begin, out.find_first_of(" \n", begin) - begin);
}

bool is_loopback_root_url(const std::string& url) {
  const std::string prefix = "http://127.0.0.1:";
  if (url.rfind(prefix, 0) != 0) return false;
  const auto slash = url.find('/', prefix.size());
  if (slash == std::string::npos || slash == prefix.size()) return false;
  return url.find_first_not_of("0123456789", prefix.size()) == slash;
}

TEST(DemoE2eTest, DistributesToEveryDpAndLeavesNothingRunning) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/demo";
  // A relative --dir, and an administrator's PKGCAST_DB in the environment that the demo must leave alone.
  const std::string elsewhere = tmp.path() + "/production.db";
  RunResult r = run({"/bin/sh", "-c", "cd '" + tmp.path() + "' && exec '" + pkgcast_binary() + "' demo --dir demo"},
                    {"PKGCAST_DB=sqlite:" + elsewhere}, std::chrono::seconds(180));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("pkgcast demo in " + dir + "\n"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(elsewhere));
  expect_summaries(r.out);
  // The dashboard's URL is on screen; without --keep it carries no token (the server is gone).
  const std::string url = dashboard_url(r.out);
  EXPECT_TRUE(is_loopback_root_url(url) && url.back() == '/') << r.out;
  const auto after_url = r.out.find("dashboard: " + url) + std::string("dashboard: ").size() + url.size();
  EXPECT_EQ(r.out.find_first_not_of(' ', after_url), r.out.find("(stopped with the demo", after_url)) << r.out;
  EXPECT_EQ(r.out.find("token="), std::string::npos) << r.out;
  EXPECT_TRUE(processes_left(dir).empty());
  // Each DP holds the sample, byte for byte what was ingested (the demo's source tree is kept with --dir).
  for (const char* dp : {"dem-dp1", "dem-dp2", "br1-dp1", "br1-dp2"}) {
    RunResult diff =
        run({"/usr/bin/diff", "-r", dir + "/sources/sample", dir + "/dps/" + dp + "/content/DEM00001.1"});
    EXPECT_EQ(diff.exit_code, 0) << dp << ": " << diff.out << diff.err;
  }
}

TEST(DemoE2eTest, KeepLeavesTheDashboardAndTheApiUpUntilInterrupted) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/demo";
  Background demo({pkgcast_binary(), "demo", "--keep", "--dir", dir});
  ASSERT_TRUE(demo.started());
  const std::string url_line = demo.wait_for_line("dashboard: ", std::chrono::seconds(180));
  ASSERT_FALSE(url_line.empty()) << demo.output() << demo.error_output();
  ASSERT_FALSE(demo.wait_for_line("--keep:", std::chrono::seconds(10)).empty()) << demo.output();
  expect_summaries(demo.output());
  const std::string url = dashboard_url(url_line);
  ASSERT_TRUE(is_loopback_root_url(url)) << url_line;
  const auto fragment = url.find("/#token=pkc_");
  ASSERT_NE(fragment, std::string::npos) << url_line;
  const std::string base = url.substr(0, fragment);
  const std::string token = url.substr(fragment + std::string("/#token=").size());

  RunResult page = run({"/usr/bin/curl", "-s", "-D", "-", base + "/"});
  EXPECT_NE(page.out.find("200"), std::string::npos) << page.out;
  EXPECT_NE(page.out.find("text/html"), std::string::npos) << page.out;
  EXPECT_NE(page.out.find("app.js"), std::string::npos) << page.out;
  RunResult rows = run({"/usr/bin/curl", "-s", "-H", "Authorization: Bearer " + token, "-H",
                        "Content-Type: application/json", "-d",
                        R"({"query": "SELECT Installed, Targeted FROM SMS_PackageStatusRootSummarizer"})",
                        base + "/api/v1/query"});
  EXPECT_NE(rows.out.find(R"("Installed":4)"), std::string::npos) << rows.out;
  EXPECT_NE(rows.out.find(R"("Targeted":4)"), std::string::npos) << rows.out;

  EXPECT_EQ(demo.stop(SIGINT, std::chrono::seconds(30)), 0) << demo.error_output();
  EXPECT_TRUE(processes_left(dir).empty());
}

// Interrupted while it distributes, the demo stops every child and removes its fresh directory (tokens, database
// and all), and exits 130, for SIGTERM as for Ctrl-C (one path; docs/demo.md).
TEST(DemoE2eTest, AnInterruptedDemoStopsEveryChildAndRemovesItsDirectory) {
  Background demo({pkgcast_binary(), "demo"});
  ASSERT_TRUE(demo.started());
  const std::string first = demo.wait_for_line("pkgcast demo in ", std::chrono::seconds(30));
  ASSERT_FALSE(first.empty()) << demo.error_output();
  const std::string dir = first.substr(first.find(" in ") + 4);
  ASSERT_FALSE(demo.wait_for_line("distributing ", std::chrono::seconds(120)).empty()) << demo.output();
  EXPECT_TRUE(fs::exists(dir + "/server/admin.token"));
  EXPECT_FALSE(processes_naming(dir).empty());
  EXPECT_EQ(demo.stop(SIGTERM, std::chrono::seconds(30)), 130) << demo.error_output();
  EXPECT_TRUE(processes_left(dir).empty());
  EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace pkgcast::testing
