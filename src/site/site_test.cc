// Sites, DPs, DP groups and tokens through the real store.
#include <gtest/gtest.h>

#include <condition_variable>
#include <latch>
#include <mutex>
#include <thread>

#include "core/strings.h"
#include "site/test_fixture.h"

namespace pkgcast::site {
namespace {

// Forwards to a real store and tells when a command has been queued, so that a test can put several domain verbs
// into one writer batch.
class QueueWatchingStore final : public store::Store {
 public:
  explicit QueueWatchingStore(store::Store& inner) : inner_(inner) {}

  std::string_view backend_name() const override { return inner_.backend_name(); }
  const cim::ClassRegistry& registry() const override { return inner_.registry(); }
  Result<std::optional<cim::Instance>> get(const cim::ClassDef& cls, const std::vector<cim::Value>& key) override {
    return inner_.get(cls, key);
  }
  Status scan(const cim::ClassDef& cls, const store::Predicate& filter, const store::RowSink& sink,
              const store::ScanOptions& options) override {
    return inner_.scan(cls, filter, sink, options);
  }
  Result<std::optional<std::string>> get_meta(std::string_view key) override { return inner_.get_meta(key); }
  Result<std::vector<std::pair<std::string, std::string>>> list_meta(std::string_view prefix) override {
    return inner_.list_meta(prefix);
  }
  std::future<Result<store::CommitInfo>> submit(store::WriteCommand command) override {
    auto future = inner_.submit(std::move(command));
    {
      std::lock_guard lock(mu_);
      ++submitted_;
    }
    cv_.notify_all();
    return future;
  }
  Result<std::uint64_t> last_revision() override { return inner_.last_revision(); }
  Result<std::uint64_t> first_revision() override { return inner_.first_revision(); }
  Status read_journal(std::uint64_t after, std::size_t limit,
                      const std::function<bool(store::JournalEntry&&)>& sink) override {
    return inner_.read_journal(after, limit, sink);
  }
  Result<std::uint64_t> compact_journal() override { return inner_.compact_journal(); }
  void add_commit_listener(CommitListener listener) override { inner_.add_commit_listener(std::move(listener)); }
  void close() override {}

  // False when fewer than `n` commands were queued within a generous bound.
  bool wait_for_submits(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return submitted_ >= n; });
  }

 private:
  store::Store& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  int submitted_ = 0;
};

TEST_F(DomainTest, CreatesSitesInAHierarchy) {
  auto cas = domain_->create_site({"cas", "Central", SiteType::kCentral, "", ""});
  // ABC is already the (standalone primary) top, so a second parentless site is refused.
  ASSERT_FALSE(cas.ok());
  EXPECT_EQ(cas.error().code, WbemCode::kInvalidOperation);

  auto sec = domain_->create_site({"s01", "Branch", SiteType::kSecondary, "abc", ""});
  ASSERT_TRUE(sec.ok()) << sec.error().to_string();
  EXPECT_EQ(str(*sec, "SiteCode"), "S01");
  EXPECT_EQ(str(*sec, "ReportingSiteCode"), "ABC");
  EXPECT_EQ(num(*sec, "Type"), 1u);
  EXPECT_EQ(num(*sec, "Status"), 1u);
  EXPECT_EQ(str(*sec, "Version"), "0.1.0");

  auto list = domain_->list_sites();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  auto got = domain_->get_site("s01");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(str(*got, "SiteName"), "Branch");
}

TEST_F(DomainTest, RefusesBadSitesAndChangesNothing) {
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_site({"AB", "x", SiteType::kSecondary, "ABC", ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_site({"A-C", "x", SiteType::kSecondary, "ABC", ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_site({"XYZ", "", SiteType::kSecondary, "ABC", ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_site({"XYZ", std::string(129, 'n'), SiteType::kSecondary, "ABC", ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_site({"XYZ", "a\x01", SiteType::kSecondary, "ABC", ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_site({"XYZ", "\xC3\x28", SiteType::kSecondary, "ABC", ""});
  });
  expect_refused(WbemCode::kAlreadyExists, [&] {
    return domain_->create_site({"abc", "dup", SiteType::kPrimary, "", ""});
  });
  expect_refused(WbemCode::kNotFound, [&] {
    return domain_->create_site({"XYZ", "x", SiteType::kSecondary, "QQQ", ""});
  });
  // A secondary needs a primary parent; a primary's parent must be a central; a central has no parent.
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_site({"XYZ", "x", SiteType::kSecondary, "", ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_site({"XYZ", "x", SiteType::kPrimary, "ABC", ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_site({"XYZ", "x", SiteType::kCentral, "ABC", ""});
  });
  ASSERT_TRUE(domain_->create_site({"S01", "Branch", SiteType::kSecondary, "ABC", ""}).ok());
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_site({"S02", "x", SiteType::kSecondary, "S01", ""});
  });
  expect_refused(WbemCode::kNotFound, [&] { return domain_->get_site("ZZZ"); });
}

TEST_F(DomainTest, AddsADpWithItsNalPathStatusRowAndToken) {
  auto dp = domain_->create_dp({"DP1", "abc", "http://127.0.0.1:9000", "first", false, {}, 0, ""});
  ASSERT_TRUE(dp.ok()) << dp.error().to_string();
  EXPECT_EQ(str(dp->dp, "NALPath"), R"(["Display=\\DP1\"]MSWNET:["SMS_SITE=ABC"]\\DP1\)");
  EXPECT_EQ(str(dp->dp, "SiteCode"), "ABC");
  EXPECT_EQ(str(dp->dp, "SiteName"), "Head office");
  EXPECT_EQ(dp->dp.find("IsPullDP")->as_bool(), false);
  EXPECT_EQ(dp->token.rfind("pkc_", 0), 0u);

  auto record = lookup_token(*store_, dp->token);
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->role, Role::kDp);
  EXPECT_EQ((*record)->dp_name, "DP1");
  EXPECT_EQ((*record)->sites, std::vector<std::string>{"ABC"});

  auto status = store_->get(*store_->registry().find("SMS_DPStatusInfo"), {cim::Value::string(str(dp->dp, "NALPath"))});
  ASSERT_TRUE(status.ok() && status->has_value());
  EXPECT_EQ(num(**status, "NumberInstalled"), 0u);

  auto view = domain_->get_dp("dp1");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->url, "http://127.0.0.1:9000");
  auto all = domain_->list_dps();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().url, "http://127.0.0.1:9000");
}

TEST_F(DomainTest, RefusesBadDpsAndChangesNothing) {
  ASSERT_TRUE(domain_->create_dp({"dp1", "ABC", "", "", false, {}, 0, ""}).ok());
  expect_refused(WbemCode::kAlreadyExists, [&] { return domain_->create_dp({"DP1", "ABC", "", "", false, {}, 0, ""}); });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_dp({"bad name", "ABC", "", "", false, {}, 0, ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->create_dp({"-dp", "ABC", "", "", false, {}, 0, ""}); });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_dp({"a..b", "ABC", "", "", false, {}, 0, ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_dp({std::string(64, 'a'), "ABC", "", "", false, {}, 0, ""});
  });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_dp({"dp2", "ABC", "ftp://x", "", false, {}, 0, ""});
  });
  expect_refused(WbemCode::kNotFound, [&] { return domain_->create_dp({"dp2", "QQQ", "", "", false, {}, 0, ""}); });
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->create_dp({"dp2", "ABC", "", "", true, {}, 0, ""}); });
  expect_refused(WbemCode::kInvalidParameter, [&] {
    return domain_->create_dp({"dp2", "ABC", "", "", false, {"dp1"}, 0, ""});
  });
  expect_refused(WbemCode::kNotFound, [&] { return domain_->create_dp({"dp2", "ABC", "", "", true, {"nope"}, 0, ""}); });
  expect_refused(WbemCode::kNotFound, [&] { return domain_->remove_dp("nope"); });
}

TEST_F(DomainTest, PullDpsNameTheirSourcesAndProtectThem) {
  ASSERT_TRUE(domain_->create_dp({"dp1", "ABC", "", "", false, {}, 0, ""}).ok());
  auto pull = domain_->create_dp({"pull1", "ABC", "", "", true, {"DP1"}, 100, ""});
  ASSERT_TRUE(pull.ok()) << pull.error().to_string();
  const cim::Value* sources = pull->dp.find("SourceDPs");
  ASSERT_TRUE(sources && sources->is_array());
  EXPECT_EQ(sources->as_array().front().as_string(), "dp1");
  expect_refused(
      WbemCode::kInvalidOperation, [&] { return domain_->remove_dp("dp1"); }, "pull1");
}

// The removal reads the tokens through its own transaction, so a DP added earlier in the same batch (its token
// not yet committed) loses its token too.
TEST_F(DomainTest, ADpAddedAndRemovedInOneBatchKeepsNoToken) {
  QueueWatchingStore watched(*store_);
  Domain domain(watched, "ABC", "server1");
  std::latch started(1);
  std::latch release(1);
  auto blocker = store_->submit([&](store::WriteTxn&) {
    started.count_down();
    release.wait();
    return ok_status();
  });
  started.wait();  // the writer is busy: the two verbs queue into its next batch, in order
  std::optional<Result<CreatedDp>> created;
  std::optional<Result<cim::Instance>> removed;
  std::thread add([&] { created = domain.create_dp({"dp9", "ABC", "", "", false, {}, 0, ""}); });
  const bool add_queued = watched.wait_for_submits(1);
  std::thread remove([&] { removed = domain.remove_dp("DP9"); });
  const bool remove_queued = watched.wait_for_submits(2);
  release.count_down();
  add.join();
  remove.join();
  ASSERT_TRUE(add_queued && remove_queued);
  ASSERT_TRUE(blocker.get().ok());
  ASSERT_TRUE(created->ok()) << created->error().to_string();
  ASSERT_TRUE(removed->ok()) << removed->error().to_string();

  auto token = lookup_token(*store_, (*created)->token);
  ASSERT_TRUE(token.ok());
  EXPECT_FALSE(token->has_value()) << "the removed DP's token still authenticates";
  auto tokens = list_tokens(*store_);
  ASSERT_TRUE(tokens.ok());
  // The record stays, revoked, for the audit trail.
  for (const auto& t : *tokens) EXPECT_FALSE(t.role == Role::kDp && iequals(t.dp_name, "dp9") && t.revoked == 0);
  EXPECT_FALSE(domain_->get_dp("dp9").ok());
}

TEST_F(DomainTest, RemovingADpRevokesItsTokensAndLeavesItsGroups) {
  auto dp = domain_->create_dp({"dp1", "ABC", "", "", false, {}, 0, ""});
  ASSERT_TRUE(dp.ok());
  auto group = domain_->create_group({"Europe", "all of it"});
  ASSERT_TRUE(group.ok());
  ASSERT_TRUE(domain_->add_group_members("europe", {"DP1"}).ok());

  auto removed = domain_->remove_dp("DP1");
  ASSERT_TRUE(removed.ok()) << removed.error().to_string();
  auto token = lookup_token(*store_, dp->token);
  ASSERT_TRUE(token.ok());
  EXPECT_FALSE(token->has_value());
  auto after = domain_->get_group(str(*group, "GroupID"));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(num(*after, "MemberCount"), 0u);
  EXPECT_EQ(domain_->get_dp("dp1").error().code, WbemCode::kNotFound);
}

TEST_F(DomainTest, RefusesToRemoveADpWithTargetedPackages) {
  auto dp = domain_->create_dp({"dp1", "ABC", "", "", false, {}, 0, ""});
  ASSERT_TRUE(dp.ok());
  // A target row as the distribution manager would write it.
  ASSERT_TRUE(store_
                  ->execute([&](store::WriteTxn& txn) {
                    cim::Instance t(*store_->registry().find("SMS_DistributionPoint"));
                    EXPECT_TRUE(t.set("PackageID", cim::Value::string("ABC00001")).ok());
                    EXPECT_TRUE(t.set("ServerNALPath", cim::Value::string(str(dp->dp, "NALPath"))).ok());
                    EXPECT_TRUE(t.set("SiteCode", cim::Value::string("ABC")).ok());
                    return txn.put(t);
                  })
                  .ok());
  expect_refused(
      WbemCode::kInvalidOperation, [&] { return domain_->remove_dp("dp1"); }, "ABC00001");
}

TEST_F(DomainTest, GroupsKeepTheirMemberCount) {
  ASSERT_TRUE(domain_->create_dp({"dp1", "ABC", "", "", false, {}, 0, ""}).ok());
  ASSERT_TRUE(domain_->create_dp({"dp2", "ABC", "", "", false, {}, 0, ""}).ok());
  auto group = domain_->create_group({"West", ""});
  ASSERT_TRUE(group.ok()) << group.error().to_string();
  const std::string id = str(*group, "GroupID");
  EXPECT_EQ(id.size(), 38u);
  EXPECT_EQ(id.front(), '{');
  auto added = domain_->add_group_members(id, {"dp1", "DP2"});
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  EXPECT_EQ(num(*added, "MemberCount"), 2u);
  auto members = domain_->group_members("west");
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(*members, (std::vector<std::string>{"dp1", "dp2"}));

  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->add_group_members(id, {"dp1"}); });
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->add_group_members(id, {"dp3", "DP3"}); });
  expect_refused(WbemCode::kNotFound, [&] { return domain_->add_group_members(id, {"dp9"}); });
  expect_refused(WbemCode::kNotFound, [&] { return domain_->add_group_members("nope", {"dp1"}); });
  expect_refused(WbemCode::kAlreadyExists, [&] { return domain_->create_group({"WEST", ""}); });
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->create_group({"", ""}); });

  auto removed = domain_->remove_group_members(id, {"DP1"});
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(num(*removed, "MemberCount"), 1u);
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->remove_group_members(id, {"dp1"}); });
}

TEST_F(DomainTest, IssuesTokensForExistingSitesOnly) {
  auto t = domain_->create_token({Role::kReadOnly, {"abc"}, "reader", 0});
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  auto record = lookup_token(*store_, t->token);
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->sites, std::vector<std::string>{"ABC"});
  EXPECT_EQ((*record)->id, t->record.id);
  expect_refused(WbemCode::kNotFound, [&] { return domain_->create_token({Role::kReadOnly, {"QQQ"}, "", 0}); });
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->create_token({Role::kDp, {}, "", 0}); });
}

TEST_F(DomainTest, OnlyGeneratedTokensAreWellFormed) {
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(is_well_formed_token(*generate_token()));
  const std::string good = *generate_token();
  EXPECT_FALSE(is_well_formed_token("pkc_attacker-chosen-token"));
  EXPECT_FALSE(is_well_formed_token(good + "A"));
  EXPECT_FALSE(is_well_formed_token(good.substr(0, good.size() - 1)));
  EXPECT_FALSE(is_well_formed_token("pkd_" + good.substr(4)));
  EXPECT_FALSE(is_well_formed_token(good.substr(0, 10) + "=" + good.substr(11)));
  EXPECT_FALSE(is_well_formed_token(good.substr(0, good.size() - 1) + "B"));  // spare bits set: never generated
  EXPECT_FALSE(is_well_formed_token(""));
}

TEST_F(DomainTest, RevokedTokensAreRefusedAndJournaled) {
  auto t = domain_->create_token({Role::kPackageAdmin, {}, "build machine", 0});
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  const cim::ClassDef& cls = *store_->registry().find("PKG_Token");
  auto inst = store_->get(cls, {cim::Value::string(t->record.id)});
  ASSERT_TRUE(inst.ok() && inst->has_value()) << "issuing writes the audit instance";
  EXPECT_EQ((*inst)->find("Role")->as_string(), "package-admin");
  EXPECT_TRUE((*inst)->find("Revoked")->is_null());

  const auto before = revision();
  auto revoked = domain_->revoke_token(t->record.id);
  ASSERT_TRUE(revoked.ok()) << revoked.error().to_string();
  EXPECT_NE(revoked->revoked, 0);
  EXPECT_GT(revision(), before) << "the revocation is journaled";
  auto looked = lookup_token(*store_, t->token);
  ASSERT_TRUE(looked.ok());
  EXPECT_FALSE(looked->has_value());
  inst = store_->get(cls, {cim::Value::string(t->record.id)});
  ASSERT_TRUE(inst.ok() && inst->has_value());
  EXPECT_FALSE((*inst)->find("Revoked")->is_null());
  // Listed still, with its revocation time.
  auto all = list_tokens(*store_);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].revoked, revoked->revoked);

  // Again: nothing changes. Unknown and malformed ids: not found.
  const auto after = revision();
  auto again = domain_->revoke_token(to_upper(t->record.id));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->revoked, revoked->revoked);
  EXPECT_EQ(revision(), after);
  expect_refused(WbemCode::kNotFound, [&] { return domain_->revoke_token("000000000000"); });
  expect_refused(WbemCode::kNotFound, [&] { return domain_->revoke_token("'; DROP"); });
  expect_refused(WbemCode::kNotFound, [&] { return domain_->revoke_token(""); });
}

TEST_F(DomainTest, TokensExpire) {
  auto now = Clock::system().now_micros();
  auto t = domain_->create_token({Role::kReadOnly, {}, "", now + 3'600'000'000LL});
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  auto live = lookup_token(*store_, t->token, now);
  ASSERT_TRUE(live.ok() && live->has_value());
  auto dead = lookup_token(*store_, t->token, now + 3'600'000'000LL);
  ASSERT_TRUE(dead.ok());
  EXPECT_FALSE(dead->has_value());
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->create_token({Role::kReadOnly, {}, "", 1}); });
  expect_refused(WbemCode::kInvalidParameter, [&] { return domain_->create_token({Role::kReadOnly, {}, "", -5}); });
}

}  // namespace
}  // namespace pkgcast::site
