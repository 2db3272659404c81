// TokenCache over a stand-in lookup: what is remembered, until when, and what never is.
#include "server/token_cache.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>

#include "site/tokens.h"

namespace pkgcast::server {
namespace {
using namespace std::chrono_literals;

class TokenCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    token_ = *site::generate_token();
    site::TokenRecord r;
    r.id = "abc";
    r.role = site::Role::kDp;
    records_[token_] = r;
  }

  TokenCache::Lookup counting_lookup() {
    return [this](std::string_view token) -> Result<std::optional<site::TokenRecord>> {
      ++lookups_;
      if (on_lookup_) on_lookup_();
      auto it = records_.find(std::string(token));
      if (it == records_.end() || !it->second.active(clock_.now_micros())) return std::optional<site::TokenRecord>();
      return std::optional<site::TokenRecord>(it->second);
    };
  }

  ManualClock clock_{1'000'000};
  std::string token_;
  std::map<std::string, site::TokenRecord> records_;
  int lookups_ = 0;
  std::function<void()> on_lookup_;
};

TEST_F(TokenCacheTest, AKnownTokenIsLookedUpOnceUntilTheNextCommit) {
  TokenCache cache(counting_lookup(), clock_);
  for (int i = 0; i < 3; ++i) {
    auto r = cache.lookup(token_);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->id, "abc");
  }
  EXPECT_EQ(lookups_, 1);
  EXPECT_EQ(cache.hits_for_test(), 2u);
  cache.invalidate();
  ASSERT_TRUE(cache.lookup(token_)->has_value());
  EXPECT_EQ(lookups_, 2);
}

TEST_F(TokenCacheTest, ARevocationIsSeenAfterTheCommitThatMadeIt) {
  TokenCache cache(counting_lookup(), clock_);
  ASSERT_TRUE(cache.lookup(token_)->has_value());
  records_[token_].revoked = clock_.now_micros();
  cache.invalidate();  // what the store's commit listener does
  EXPECT_FALSE(cache.lookup(token_)->has_value());
}

TEST_F(TokenCacheTest, ALookupThatRacedWithACommitIsNotKept) {
  TokenCache cache(counting_lookup(), clock_);
  on_lookup_ = [&] { cache.invalidate(); };  // a commit lands while the store is read
  ASSERT_TRUE(cache.lookup(token_)->has_value());
  on_lookup_ = {};
  ASSERT_TRUE(cache.lookup(token_)->has_value());
  EXPECT_EQ(lookups_, 2);
  EXPECT_EQ(cache.hits_for_test(), 0u);
}

TEST_F(TokenCacheTest, ExpiryIsCheckedAtEachUse) {
  records_[token_].expires = clock_.now_micros() + 1'000'000;
  TokenCache cache(counting_lookup(), clock_);
  ASSERT_TRUE(cache.lookup(token_)->has_value());
  clock_.advance(2s);
  EXPECT_FALSE(cache.lookup(token_)->has_value());
  EXPECT_EQ(lookups_, 1);
}

TEST_F(TokenCacheTest, UnknownAndMalformedTokensAreNeverRemembered) {
  TokenCache cache(counting_lookup(), clock_);
  const std::string unknown = *site::generate_token();
  for (int i = 0; i < 2; ++i) {
    EXPECT_FALSE(cache.lookup(unknown)->has_value());
    EXPECT_FALSE(cache.lookup("not-a-token")->has_value());
  }
  EXPECT_EQ(lookups_, 4);
  EXPECT_EQ(cache.hits_for_test(), 0u);
}

TEST_F(TokenCacheTest, RememberedAnswersFromMemoryOnlyAndNeverAnExpiredOrStaleRecord) {
  TokenCache cache(counting_lookup(), clock_);
  EXPECT_FALSE(cache.remembered(token_));  // never looked up: only the store could tell
  EXPECT_FALSE(cache.remembered("not a token"));
  EXPECT_EQ(lookups_, 0);
  ASSERT_TRUE(cache.lookup(token_)->has_value());
  const auto known = cache.remembered(token_);
  ASSERT_TRUE(known);
  EXPECT_EQ(known->id, "abc");
  EXPECT_EQ(lookups_, 1);
  cache.invalidate();  // a commit: what was remembered may have changed
  EXPECT_FALSE(cache.remembered(token_));
  records_[token_].expires = clock_.now_micros() + 1'000'000;
  ASSERT_TRUE(cache.lookup(token_)->has_value());
  EXPECT_TRUE(cache.remembered(token_));
  clock_.advance(2s);
  EXPECT_FALSE(cache.remembered(token_));
  EXPECT_EQ(lookups_, 2);
}

}  // namespace
}  // namespace pkgcast::server
