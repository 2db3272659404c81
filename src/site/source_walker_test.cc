// The source walker's bounds and the source roots, without a store.
#include "site/source_walker.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <fstream>
#include <random>
#include <thread>

namespace pkgcast::site {
namespace {
namespace fs = std::filesystem;

class SourceWalkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("pkgcast_walker_test_" + std::to_string(rd()));
    fs::create_directories(dir_ / "root" / "pkg" / "sub");
    std::ofstream(dir_ / "root" / "pkg" / "a") << std::string(1500, 'a');
    std::ofstream(dir_ / "root" / "pkg" / "sub" / "b") << std::string(600, 'b');
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(SourceWalkerTest, MeasuresOnItsOwnThreads) {
  SourceWalkerOptions options;
  options.threads = 2;
  options.queue = 2;
  SourceWalker walker(options);
  auto kb = walker.measure(dir_ / "root" / "pkg");
  ASSERT_TRUE(kb.ok()) << kb.error().to_string();
  EXPECT_EQ(*kb, 3u);  // 2100 bytes -> 3 KB
}

TEST_F(SourceWalkerTest, RefusesBeyondItsThreadsAndQueue) {
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, release = false;
  SourceWalkerOptions options;
  options.threads = 1;
  options.queue = 0;
  bool hold = true;
  options.before_walk_for_test = [&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!hold) return;
    started = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  SourceWalker walker(options);
  const fs::path pkg = dir_ / "root" / "pkg";
  std::thread running([&] { EXPECT_TRUE(walker.measure(pkg).ok()); });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return started; });  // the one thread is busy and the queue holds none
  }
  auto refused = walker.measure(pkg);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, WbemCode::kServerTooBusy);
  EXPECT_NE(refused.error().message.find("source_walk_queue"), std::string::npos) << refused.error().message;
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
    hold = false;
  }
  cv.notify_all();
  running.join();
  EXPECT_TRUE(walker.measure(pkg).ok());  // room again
}

TEST_F(SourceWalkerTest, StopsAtItsDeadline) {
  fs::create_directories(dir_ / "root" / "many");
  for (int i = 0; i < 3000; ++i) std::ofstream(dir_ / "root" / "many" / std::to_string(i)) << "x";
  auto r = SourceWalker::measure_here(dir_ / "root" / "many", std::chrono::steady_clock::now());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kTimedOut);
}

TEST_F(SourceWalkerTest, PolicyJudgesTheCanonicalPath) {
  SourcePolicy policy({dir_ / "root"});
  auto ok = policy.resolve((dir_ / "root" / "pkg").string());
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_EQ(*ok, fs::canonical(dir_ / "root" / "pkg"));
  // A trailing separator or a detour that stays inside is fine.
  EXPECT_TRUE(policy.resolve((dir_ / "root" / "pkg" / "sub" / "..").string()).ok());
  EXPECT_TRUE(policy.resolve((dir_ / "root").string() + "/").ok());
  // A sibling whose name merely starts with the root's is outside.
  fs::create_directories(dir_ / "rootless");
  EXPECT_EQ(policy.resolve((dir_ / "rootless").string()).error().code, WbemCode::kAccessDenied);
  // `..` out, a link out, and a path elsewhere.
  EXPECT_EQ(policy.resolve((dir_ / "root" / "..").string()).error().code, WbemCode::kAccessDenied);
  fs::create_directory_symlink(dir_, dir_ / "root" / "up");
  EXPECT_EQ(policy.resolve((dir_ / "root" / "up" / "rootless").string()).error().code, WbemCode::kAccessDenied);
  auto root = policy.resolve("/root");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.error().code, WbemCode::kAccessDenied);
  EXPECT_NE(root.error().message.find((dir_ / "root").string()), std::string::npos) << root.error().message;
  EXPECT_EQ(policy.resolve("relative").error().code, WbemCode::kInvalidParameter);
}

TEST_F(SourceWalkerTest, NoRootsAdmitNothing) {
  SourcePolicy none;
  auto r = none.resolve((dir_ / "root" / "pkg").string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kAccessDenied);
  EXPECT_NE(r.error().message.find("none configured"), std::string::npos);
}

}  // namespace
}  // namespace pkgcast::site
