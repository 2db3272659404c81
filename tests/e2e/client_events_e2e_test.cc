// The client library's event subscriptions against a real server (GET /api/v1/events), on both backends: the
// ported SDK sample while packages change, resume across a server restart, and sinks that do not stall each other.
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "pkgcast/pkgcast.h"
#include "server_fixture.h"

namespace pkgcast::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kNamespace = R"(root\sms\site_ABC)";
constexpr const char* kRootCreations =
    "SELECT * FROM __InstanceCreationEvent WITHIN 120 WHERE TargetInstance ISA 'SMS_PackageStatusRootSummarizer'";

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string example_binary() {
  const char* dir = std::getenv("PKGCAST_BINARY_DIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : PKGCAST_BINARY_DIR_DEFAULT) + "/examples/package_status";
}

// Records events (by the PackageID of their target) and the end, with bounded waits.
class Recorder : public EventSink {
 public:
  void on_object_ready(const Instance& e) override {
    std::unique_lock lock(mu_);
    packages_.push_back(e["TargetInstance"]["PackageID"].as_string());
    revisions_.push_back(e.revision().value_or(0));
    cv_.notify_all();
    if (block_) cv_.wait(lock, [&] { return !block_; });
  }
  void on_completed(const Status& s) override {
    std::lock_guard lock(mu_);
    completed_ = s.ok() ? WbemCode::kOk : s.error().code;
    cv_.notify_all();
  }
  bool wait_for(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 60s, [&] { return packages_.size() >= n; });
  }
  void set_blocking(bool b) {
    std::lock_guard lock(mu_);
    block_ = b;
    cv_.notify_all();
  }
  std::vector<std::string> packages() {
    std::lock_guard lock(mu_);
    return packages_;
  }
  std::vector<std::uint64_t> revisions() {
    std::lock_guard lock(mu_);
    return revisions_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> packages_;
  std::vector<std::uint64_t> revisions_;
  std::optional<WbemCode> completed_;
  bool block_ = false;
};

class ClientEventsE2eTest : public ServerTest {
 protected:
  ConnectionOptions options() const {
    return {.token = admin_token(), .reconnect_initial_delay = 50ms, .reconnect_max_delay = 500ms};
  }
  std::string create_package(const std::string& name) {
    auto r = cli({"package", "create", "--name", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return first_line(r.out);
  }
};

TEST_P(ClientEventsE2eTest, ThePortedSamplePrintsEachChangeOfThePackageStatus) {
  Background sample({example_binary(), "--server", url_, "--token-file", data_dir_ + "/admin.token", "--namespace",
                     kNamespace, "--count", "1000", "--timeout", "300"});
  ASSERT_TRUE(sample.started());
  ASSERT_EQ(cli({"dp", "add", "dp1.example", "--site", "ABC"}).exit_code, 0);
  const std::string source = dir_.path() + "/src";
  std::filesystem::create_directories(source);
  std::ofstream(source + "/setup.sh") << "#!/bin/sh\n";
  // Subscriptions are made before the sample prints anything; give it a change to see until it does.
  std::string line;
  std::string pkg;
  for (int i = 0; i < 50 && line.empty(); ++i) {
    auto r = cli({"package", "create", "--name", "Office " + std::to_string(i), "--source", source});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    pkg = first_line(r.out);
    line = sample.wait_for_line("Name: ", 2s);
  }
  ASSERT_NE(line, "") << sample.error_output();
  EXPECT_NE(line.find("Targeted: 0  Installed: 0  (__InstanceCreationEvent"), std::string::npos) << line;
  // Targeting a DP modifies the Root row: Targeted 1.
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1.example"}).exit_code, 0);
  // Ingesting the source may modify the row first (its sizes); the targeting shows as Targeted: 1.
  std::string modified;
  for (int i = 0; i < 20 && modified.find("Targeted: 1") == std::string::npos; ++i) {
    modified = sample.wait_for_line("__InstanceModificationEvent of " + pkg, 60s);
    ASSERT_NE(modified, "") << sample.output() << sample.error_output();
  }
  EXPECT_NE(modified.find("Name: Office"), std::string::npos) << modified;
  EXPECT_NE(modified.find("Targeted: 1  Installed: 0"), std::string::npos) << modified;
}

TEST_P(ClientEventsE2eTest, ResumesAcrossAServerRestartWithoutLossOrDuplicate) {
  // The restarted server listens on the same port, so the subscription's URL stays valid.
  const std::string port = url_.substr(url_.rfind(':') + 1);
  ManagementScope scope(url_, kNamespace, options());
  EventEnumerator events = scope.exec_notification_query(kRootCreations);

  std::vector<std::string> created;
  for (int i = 0; i < 3; ++i) created.push_back(create_package("Before " + std::to_string(i)));
  std::vector<std::string> seen;
  std::vector<std::uint64_t> revisions;
  auto take = [&](std::size_t n) {
    while (seen.size() < n) {
      auto e = events.next_event(60s);
      ASSERT_TRUE(e.has_value()) << "after " << seen.size() << " events";
      seen.push_back((*e)["TargetInstance"]["PackageID"].as_string());
      revisions.push_back(e->revision().value_or(0));
    }
  };
  take(3);

  EXPECT_EQ(stop_server(), 0);
  start_server({"--listen", "127.0.0.1:" + port});
  // Changes right after the restart, while the client may still be waiting to reconnect: caught up by resume.
  for (int i = 0; i < 3; ++i) created.push_back(create_package("After " + std::to_string(i)));
  take(6);
  EXPECT_EQ(seen, created);
  for (std::size_t i = 1; i < revisions.size(); ++i) EXPECT_LT(revisions[i - 1], revisions[i]);
  // Nothing more: no duplicate arrives later.
  EXPECT_EQ(events.next_event(500ms), std::nullopt);
}

TEST_P(ClientEventsE2eTest, ABlockedSinkDoesNotStallAnotherSubscription) {
  ManagementScope scope(url_, kNamespace, options());
  Recorder slow;
  Recorder fast;
  slow.set_blocking(true);
  Subscription a = scope.exec_notification_query_async(slow, kRootCreations);
  Subscription b = scope.exec_notification_query_async(fast, kRootCreations);
  std::vector<std::string> created;
  for (int i = 0; i < 20; ++i) created.push_back(create_package("P" + std::to_string(i)));
  ASSERT_TRUE(fast.wait_for(20));
  EXPECT_EQ(fast.packages(), created);
  EXPECT_EQ(slow.packages().size(), 1u) << "the slow sink is still inside its first event";
  slow.set_blocking(false);
  ASSERT_TRUE(slow.wait_for(20));
  EXPECT_EQ(slow.packages(), created);
  EXPECT_EQ(slow.revisions(), fast.revisions());
}

TEST_P(ClientEventsE2eTest, RefusedSubscriptionsAreTheCallsError) {
  ManagementScope scope(url_, kNamespace, options());
  auto code_of = [&](std::string_view wql) {
    auto r = scope.try_exec_notification_query(wql);
    return r.ok() ? WbemCode::kOk : r.error().code;
  };
  EXPECT_EQ(code_of("SELECT * FROM __InstanceCreationEvent WHERE"), WbemCode::kInvalidQuery);
  EXPECT_EQ(code_of("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Nope'"),
            WbemCode::kInvalidClass);
  EXPECT_EQ(code_of("SELECT * FROM SMS_Package"), WbemCode::kInvalidQueryType);
  ManagementScope bad_token(url_, kNamespace, {.token = "pkc_not_a_token"});
  auto denied = bad_token.try_exec_notification_query(kRootCreations);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, WbemCode::kAccessDenied);
}

INSTANTIATE_TEST_SUITE_P(Backends, ClientEventsE2eTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pkgcast::testing
