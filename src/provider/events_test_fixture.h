// The event engine over a real SQLite store in a fresh temporary directory, on a manual clock shared by the store
// (commit times) and the engine (GROUP WITHIN windows).
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "cim/json.h"
#include "provider/event_build.h"
#include "provider/events.h"
#include "store/store.h"

namespace pkgcast::provider::testing {

inline constexpr Micros kStart = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z

// Counts wake calls; a test waits for one with wait_for_wake() (a condition, not a sleep).
class WakeCounter {
 public:
  WakeFn fn() {
    return [this] {
      std::lock_guard lock(mu_);
      ++count_;
      cv_.notify_all();
    };
  }
  int count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  // True when count() reaches n within 10 s.
  bool wait_for(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return count_ >= n; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void TearDown() override { close(); }

  // `before_engine` runs on the opened store before the engine is made (a commit listener it adds runs before the
  // engine's).
  void open(EventOptions options = {}, const cim::ClassRegistry* registry = &cim::ClassRegistry::builtin(),
            store::JournalRetention retention = {}, const std::function<void(store::Store&)>& before_engine = {}) {
    close();
    dir_ = std::filesystem::temp_directory_path() / ("pkgcast_events_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    store::OpenOptions so;
    so.url = "sqlite:" + (dir_ / "e.db").string();
    so.clock = &clock_;
    so.registry = registry;
    so.retention = retention;
    auto opened = store::Store::open(so);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    store_ = std::move(*opened);
    if (before_engine) before_engine(*store_);
    provider_ = std::make_unique<Provider>(*store_, "ABC", "server1");
    options.clock = &clock_;
    auto engine = EventEngine::create(*store_, *provider_, options);
    ASSERT_TRUE(engine.ok()) << engine.error().to_string();
    engine_ = std::move(*engine);
    admin_.role = site::Role::kFullAdmin;
  }
  void close() {
    engine_.reset();
    provider_.reset();
    if (store_) store_->close();
    store_.reset();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  const cim::ClassDef& cls(std::string_view name) const { return *store_->registry().find(name); }

  cim::Instance package(const std::string& id, const std::string& name, const std::string& site = "ABC",
                        std::uint32_t priority = 2) const {
    cim::Instance p(cls("SMS_Package"));
    EXPECT_TRUE(p.set("PackageID", cim::Value::string(id)).ok());
    EXPECT_TRUE(p.set("Name", cim::Value::string(name)).ok());
    EXPECT_TRUE(p.set("SourceSite", cim::Value::string(site)).ok());
    EXPECT_TRUE(p.set("Priority", cim::Value::uint32(priority)).ok());
    return p;
  }

  // Commits the instances in one transaction; returns its last revision.
  std::uint64_t put(std::vector<cim::Instance> instances) {
    auto r = store_->execute([instances = std::move(instances)](store::WriteTxn& txn) -> Status {
      for (const auto& inst : instances) PKG_TRY(txn.put(inst));
      return ok_status();
    });
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? r->revision : 0;
  }
  std::uint64_t put(const cim::Instance& inst) { return put(std::vector<cim::Instance>{inst}); }
  std::uint64_t remove(std::string_view class_name, std::vector<cim::Value> key) {
    const cim::ClassDef* c = &cls(class_name);
    auto r = store_->execute([c, key = std::move(key)](store::WriteTxn& txn) { return txn.remove(*c, key); });
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? r->revision : 0;
  }

  std::unique_ptr<Subscription> subscribe(std::string_view query, std::optional<std::uint64_t> since = std::nullopt,
                                          const site::TokenRecord* caller = nullptr, WakeFn wake = {}) {
    auto sub = engine_->subscribe("", query, caller ? *caller : admin_, since, std::move(wake));
    EXPECT_TRUE(sub.ok()) << query << ": " << (sub.ok() ? "" : sub.error().to_string());
    return sub.ok() ? std::move(*sub) : nullptr;
  }

  // Everything the subscription has to give until it goes idle (the dispatcher having caught up first), parsed.
  std::vector<cim::Json> drain(Subscription& sub, std::size_t max_per_poll = 64) {
    engine_->wait_dispatched_for_test();
    std::vector<cim::Json> out;
    for (int guard = 0; guard < 1'000'000; ++guard) {
      PollResult r = sub.poll(max_per_poll);
      for (const Event& e : r.events) {
        cim::Json j = cim::Json::parse(*e.json);
        EXPECT_EQ(j["__REVISION"].get<std::uint64_t>(), e.revision);
        out.push_back(std::move(j));
      }
      if (r.state == PollState::kIdle) break;
      if (r.state == PollState::kEnded) {
        ADD_FAILURE() << "subscription ended: " << r.error.error().to_string();
        break;
      }
    }
    return out;
  }

  static std::vector<std::uint64_t> revisions(const std::vector<cim::Json>& events) {
    std::vector<std::uint64_t> r;
    for (const auto& e : events) r.push_back(e["__REVISION"].get<std::uint64_t>());
    return r;
  }

  ManualClock clock_{kStart};
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Provider> provider_;
  std::unique_ptr<EventEngine> engine_;
  site::TokenRecord admin_;
};

}  // namespace pkgcast::provider::testing
