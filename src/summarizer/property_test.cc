// Property test: random sequences of operations (some in one writer batch, some rolled back by a failing command)
// against the summarizer; after every step check() - the recomputation from scratch - must find no difference,
// and the Root counts must match an independent model of the DP rows kept by this test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <future>
#include <map>
#include <random>

#include "summarizer/test_fixture.h"

namespace pkgcast::summarizer::testing {
namespace {

const std::vector<std::string> kSites = {"ABC", "DEF", "GHI"};
const std::vector<std::string> kPackages = {"ABC00001", "ABC00002", "ABC00003"};

struct Dp {
  std::string name;
  std::string site;
};
const std::vector<Dp> kDps = {{"a1", "ABC"}, {"a2", "ABC"}, {"d1", "DEF"}, {"d2", "DEF"}, {"g1", "GHI"}};

// The test's own model of a DistPoints row, with the rules written out again (not via contribution()).
struct ModelRow {
  std::uint32_t state = 1;
  std::uint32_t version = 1;
};

class PropertyTest : public SummarizerTest {
 protected:
  void SetUp() override {
    SummarizerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(run([&](store::WriteTxn& txn) -> Status {
                  for (const auto& s : kSites) PKG_TRY(put_site(txn, s, "Site " + s));
                  for (const auto& d : kDps) PKG_TRY(put_dp(txn, d.name, d.site));
                  for (const auto& p : kPackages) PKG_TRY(put_package(txn, p, "ABC", true, kT0));
                  PKG_TRY(put_package(txn, "ABC00004", "ABC", false, kT0));
                  PKG_TRY(put_advertisement(txn, "ABC00011", "ABC00001", kT0));
                  PKG_TRY(put_advertisement(txn, "ABC00012", "ABC00001", kT0));
                  return put_advertisement(txn, "ABC00014", "ABC00004", kT0);
                }).ok());
    for (const auto& p : kPackages) versions_[p] = 1;
  }

  // One random operation as a command, and what it does to the model when it commits.
  struct Op {
    store::WriteCommand command;
    std::function<void()> commit;
    std::string text;
  };

  Op random_op(std::mt19937& rng) {
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    const std::string pkg = kPackages[pick(kPackages.size())];
    const Dp dp = kDps[pick(kDps.size())];
    const DpRef r = ref(pkg, dp.name, dp.site);
    const auto key = std::make_pair(pkg, dp.name);
    const int kind = static_cast<int>(pick(20));
    if (kind < 3) {
      return {[this, r](store::WriteTxn& t) { return summarizer_.target(t, r, t.now()); },
              [this, key, pkg] {
                rows_[key] = ModelRow{1, versions_[pkg]};
              },
              "target " + pkg + " " + dp.name};
    }
    if (kind < 4) {
      return {[this, r](store::WriteTxn& t) { return summarizer_.untarget(t, r, t.now()); },
              [this, key] { rows_.erase(key); }, "untarget " + pkg + " " + dp.name};
    }
    const bool forget = pick(4) == 0;  // of the version-wide operations, one in four forgets the package
    if (kind == 4 && !forget) {
      const std::uint32_t v = versions_[pkg] + 1;
      return {[this, pkg, v](store::WriteTxn& t) -> Status {
                PKG_TRY(put_package_version(t, pkg, v));
                return summarizer_.new_source_version(t, pkg, new_source(v, t.now()), t.now());
              },
              [this, pkg, v] {
                versions_[pkg] = v;
                for (auto& [k, row] : rows_) {
                  if (k.first == pkg && (row.state < 4 || row.state > 6)) row = ModelRow{1, v};
                }
              },
              "new version " + pkg + " " + std::to_string(v)};
    }
    if (kind == 4) {
      return {[this, pkg](store::WriteTxn& t) { return summarizer_.forget_package(t, pkg, t.now()); },
              [this, pkg] { std::erase_if(rows_, [&](const auto& kv) { return kv.first.first == pkg; }); },
              "forget " + pkg};
    }
    if (kind < 7) {
      // Several reports in one transition_all(), possibly of one DP twice and of several packages.
      std::vector<Summarizer::Change> changes;
      std::vector<std::pair<std::pair<std::string, std::string>, ModelRow>> effects;
      std::string text = "transition_all";
      for (int n = 0; n < 4 && !rows_.empty(); ++n) {
        // Targeted pairs (per the model), so that the batch usually commits.
        const auto& pair = std::next(rows_.begin(), static_cast<long>(pick(rows_.size())))->first;
        const std::string p = pair.first;
        const Dp x = *std::find_if(kDps.begin(), kDps.end(), [&](const Dp& e) { return e.name == pair.second; });
        const auto s = static_cast<std::uint32_t>(pick(9));
        const std::uint32_t v = versions_[p];
        changes.push_back(
            {ref(p, x.name, x.site), static_cast<DpState>(s), v, "status",
             pick(2) ? std::optional<StatusMessage>(StatusMessage{2301, 2, 0x40000000, {}}) : std::nullopt});
        effects.push_back({{p, x.name}, ModelRow{s, v}});
        text += " " + p + "/" + x.name + "->" + std::to_string(s);
      }
      return {[this, changes](store::WriteTxn& t) { return summarizer_.transition_all(t, changes, t.now()); },
              [this, effects] {
                ++batches_applied_;
                for (const auto& [k, row] : effects) rows_[k] = row;
              },
              text};
    }
    // A transition, mostly towards the states a distribution goes through, with the current or an older version.
    const std::uint32_t state = static_cast<std::uint32_t>(pick(9));
    const std::uint32_t current = versions_[pkg];
    const std::uint32_t version = pick(4) == 0 ? 1 + static_cast<std::uint32_t>(pick(current)) : current;
    std::optional<StatusMessage> message;
    if (pick(3) != 0) message = StatusMessage{2330, 1 + static_cast<std::uint32_t>(pick(3)), 0x40000000, {pkg}};
    return {[this, r, state, version, message](store::WriteTxn& t) {
              return summarizer_.transition(t, r, static_cast<DpState>(state), version, "status", message, t.now());
            },
            [this, key, state, version] {
              rows_[key] = ModelRow{state, version};
            },
            "transition " + pkg + " " + dp.name + " -> " + std::to_string(state) + " v" + std::to_string(version) +
                (message ? " +message" : "")};
  }

  // Root counts from the model: Targeted/Installed/Retrying/Failed.
  std::string model_root(const std::string& pkg) {
    int t = 0, i = 0, r = 0, f = 0;
    for (const auto& [k, row] : rows_) {
      if (k.first != pkg) continue;
      t += row.state < 4 || row.state > 6;
      i += row.state == 0 && row.version == versions_[pkg];
      r += row.state == 2 || row.state == 5;
      f += row.state == 3 || row.state == 6;
    }
    return std::to_string(t) + "/" + std::to_string(i) + "/" + std::to_string(r) + "/" + std::to_string(f);
  }

  void run_seed(unsigned seed, int steps) {
    std::mt19937 rng(seed);
    for (int step = 0; step < steps; ++step) {
      const int shape = std::uniform_int_distribution<int>(0, 9)(rng);
      std::string trace;
      if (shape == 0) {
        // Two or three operations, then a failure: the command rolls back, the model does not move.
        std::vector<Op> ops;
        for (int n = 0; n < 3; ++n) ops.push_back(random_op(rng));
        auto result = store_->execute([&](store::WriteTxn& t) -> Status {
          for (auto& op : ops) (void)op.command(t);
          return make_error(WbemCode::kFailed, "rolled back on purpose");
        });
        ASSERT_FALSE(result.ok());
        trace = "rolled back";
      } else if (shape == 1) {
        // Several commands queued at once: the writer runs them in one batch when it can.
        std::vector<Op> ops;
        std::vector<std::future<Result<store::CommitInfo>>> futures;
        for (int n = 0; n < 6; ++n) ops.push_back(random_op(rng));
        for (auto& op : ops) futures.push_back(store_->submit(op.command));
        for (std::size_t n = 0; n < ops.size(); ++n) {
          if (futures[n].get().ok()) {
            ops[n].commit();
            ++applied_;
          }
          trace += ops[n].text + "; ";
        }
      } else {
        Op op = random_op(rng);
        if (store_->execute(op.command).ok()) {
          op.commit();
          ++applied_;
        }
        trace = op.text;
      }
      ASSERT_EQ(differences(), "") << "seed " << seed << " step " << step << ": " << trace;
      for (const auto& p : kPackages) {
        ASSERT_EQ(root(p), model_root(p)) << "seed " << seed << " step " << step << ": " << trace;
      }
    }
  }

  int applied_ = 0;          // operations that committed (the others were refused: not targeted, ...)
  int batches_applied_ = 0;  // transition_all() commands that committed
  std::map<std::string, std::uint32_t> versions_;
  std::map<std::pair<std::string, std::string>, ModelRow> rows_;
};

TEST_P(PropertyTest, RandomOperationsKeepEverySummaryExact) {
  const int steps = GetParam() == "sqlite" ? 400 : 150;
  for (unsigned seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(seed);
    run_seed(seed, steps);
    if (HasFatalFailure()) return;
  }
  // Most steps must do something, or the property says little.
  EXPECT_GT(applied_, steps * 3 / 2) << "only " << applied_ << " operations committed";
  EXPECT_GT(batches_applied_, 20);
  std::printf("property test: %d operations committed, %d of them transition_all\n", applied_, batches_applied_);
}

PKGCAST_SUMMARIZER_BACKENDS(PropertyTest);

}  // namespace
}  // namespace pkgcast::summarizer::testing
