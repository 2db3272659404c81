// The provider's tests share this start: a temporary SQLite store holding the sites ABC (primary, on server1) and
// S01 (its secondary). A test's provider_ is dropped before the store closes.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "provider/provider.h"
#include "site/site.h"
#include "store/store.h"

namespace pkgcast::provider {

class ProviderStoreTest : public ::testing::Test {
 protected:
  void open_store() {
    dir_ = std::filesystem::temp_directory_path() / ("pkgcast_provider_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    store::OpenOptions options;
    options.url = "sqlite:" + (dir_ / "p.db").string();
    auto opened = store::Store::open(options);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    store_ = std::move(*opened);
    site::Domain domain(*store_, "ABC", "server1");
    ASSERT_TRUE(domain.create_site({"ABC", "Head", site::SiteType::kPrimary, "", "server1"}).ok());
    ASSERT_TRUE(domain.create_site({"S01", "Branch", site::SiteType::kSecondary, "ABC", ""}).ok());
  }
  void TearDown() override {
    provider_.reset();
    if (store_) store_->close();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Provider> provider_;
};

}  // namespace pkgcast::provider
