// A domain over a real SQLite store in a fresh temporary directory, for the site tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "site/site.h"

namespace pkgcast::site {

class DomainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("pkgcast_site_test_" + std::to_string(rd()));
    std::filesystem::create_directories(dir_);
    store::OpenOptions options;
    options.url = "sqlite:" + (dir_ / "site.db").string();
    auto opened = store::Store::open(options);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    store_ = std::move(*opened);
    domain_ = std::make_unique<Domain>(*store_, "ABC", "server1");
    domain_->set_source_policy(SourcePolicy({dir_}));
    SiteSpec own{"ABC", "Head office", SiteType::kPrimary, "", "server1"};
    auto site = domain_->create_site(own);
    ASSERT_TRUE(site.ok()) << site.error().to_string();
  }
  void TearDown() override {
    domain_.reset();
    if (store_) store_->close();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::uint64_t revision() {
    auto r = store_->last_revision();
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : 0;
  }

  // Runs `verb`, expects it to fail with `code`, and checks that nothing was journaled.
  template <typename F>
  void expect_refused(WbemCode code, F&& verb, std::string_view message_part = {}) {
    const std::uint64_t before = revision();
    auto r = verb();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, code) << r.error().to_string();
    if (!message_part.empty()) {
      EXPECT_NE(r.error().message.find(message_part), std::string::npos) << r.error().message;
    }
    EXPECT_EQ(revision(), before) << "a refused verb changed the store";
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Domain> domain_;
};

// A property as display text (strings as they are, numbers in decimal, booleans TRUE/FALSE); "" when NULL.
inline std::string str(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  return v == nullptr || v->is_null() ? std::string() : v->to_display();
}
inline std::uint64_t num(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  return v == nullptr || v->is_null() ? 0 : v->as_uint();
}

}  // namespace pkgcast::site
