// Unit tests of the agent's parts that need no server: job parsing, state, outbox, ranges, path rules, pacing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>

#include "dp/content_server.h"
#include "dp/job.h"
#include "dp/outbox.h"
#include "dp/pool.h"
#include "dp/state.h"
#include "dp/test_tree.h"
#include "dp/tree.h"
#include "dp/version_record.h"

namespace pkgcast::dp {
namespace {

using nlohmann::json;
using testing::TempDir;

json job_json() {
  return {{"PackageID", "ABC00001"}, {"NALPath", "[\"Display=\\\\dp1\\\"]"}, {"Action", 1}, {"Generation", 3},
          {"ContentID", "ABC00001.2"}, {"SourceVersion", 2}, {"ManifestHash", std::string(64, 'a')},
          {"ContentSize", "1234"}, {"Sources", {"http://dp2:8751/content", "http://site:8750/api/v1/content"}},
          {"TransferRate", 100}};
}

TEST(Job, Parses) {
  auto job = parse_job(job_json().dump());
  ASSERT_TRUE(job.ok()) << job.error().to_string();
  EXPECT_EQ(job->package_id, "ABC00001");
  EXPECT_EQ(job->action, JobAction::kInstall);
  EXPECT_EQ(job->generation, 3u);
  EXPECT_EQ(job->content_size, 1234u);
  EXPECT_EQ(job->sources.size(), 2u);
  EXPECT_EQ(job->transfer_rate_kib, 100u);
}

TEST(Job, OnlyASentJobIsActedOn) {
  json queued = job_json();
  queued["JobState"] = 0;
  queued["Sources"] = json::array();  // the server names sources when it sends the job
  auto job = parse_job(queued.dump());
  ASSERT_TRUE(job.ok()) << job.error().to_string();
  EXPECT_FALSE(job->sent);
  queued["JobState"] = 1;
  EXPECT_FALSE(parse_job(queued.dump()).ok()) << "a sent install names where to take the content from";
  json done = job_json();
  done["JobState"] = 2;
  EXPECT_FALSE(parse_job(done.dump())->sent);
  EXPECT_TRUE(parse_job(job_json().dump())->sent);
}

TEST(Job, RefusesWhatWouldNameAnotherDirectory) {
  for (auto [key, value] : std::vector<std::pair<std::string, json>>{{"PackageID", "../x"},
                                                                       {"PackageID", "A/B"},
                                                                       {"ContentID", "ABC00001.2/../../x"},
                                                                       {"ManifestHash", "zz"},
                                                                       {"Action", 9},
                                                                       {"Generation", "x"}}) {
    json j = job_json();
    j[key] = value;
    auto job = parse_job(j.dump());
    EXPECT_FALSE(job.ok()) << key;
    if (!job.ok()) {
      EXPECT_EQ(job.error().code, WbemCode::kInvalidParameter);
    }
  }
}

// What the agent verified of a version is written with it and read back the same; a record of the hash alone (an
// older agent's) trusts nothing; a line that does not parse, or names no entry of the manifest, is ignored (its
// file is then read and verified), and a first line that is not a hash refuses the record.
TEST(VersionRecord, RoundTripsAndIgnoresWhatItCannotRead) {
  const content::Digest hash = content::sha256("manifest");
  std::vector<FileFingerprint> fps(4);
  fps[0] = FileFingerprint{11, 100, 1'700'000'000'123'456'789, true, true};
  fps[2] = FileFingerprint{13, 0, -5, true, false};
  const std::string text = serialize_version_record(hash, fps);
  auto back = parse_version_record(text, 4);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->manifest_hash, hash);
  ASSERT_EQ(back->fingerprints.size(), 4u);
  EXPECT_TRUE(back->fingerprints[0].same_state(fps[0]));
  EXPECT_TRUE(back->fingerprints[0].whole);
  EXPECT_FALSE(back->fingerprints[1].known);
  EXPECT_TRUE(back->fingerprints[2].same_state(fps[2]));
  EXPECT_FALSE(back->fingerprints[2].whole);
  EXPECT_FALSE(back->fingerprints[3].known);
  EXPECT_EQ(first_line_digest(text), hash);

  auto old = parse_version_record(hash.hex(), 4);  // an older agent's record: the hash alone, no newline
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->manifest_hash, hash);
  for (const auto& f : old->fingerprints) EXPECT_FALSE(f.known);
  EXPECT_EQ(first_line_digest(hash.hex() + " \r\n"), hash);

  const std::string bad = hash.hex() + "\n" +
                          "1 5 6 7\n"            // a field missing
                          "1 5 6 7 1 9\n"        // one too many
                          "1 5 6 7 2\n"          // whole is 0 or 1
                          "4 5 6 7 1\n"          // no entry 4 of 4
                          "-1 5 6 7 1\n"         // not an entry
                          "1 5 x 7 1\n"          // not a number
                          "1 99999999999999999999 6 7 1\n"  // out of range
                          "\n"
                          "3 21 22 23 1";         // good, without a final newline
  auto parsed = parse_version_record(bad, 4);
  ASSERT_TRUE(parsed.has_value());
  for (std::size_t i = 0; i < 3; ++i) EXPECT_FALSE(parsed->fingerprints[i].known) << i;
  EXPECT_TRUE(parsed->fingerprints[3].same_state(FileFingerprint{21, 22, 23, true, true}));

  EXPECT_FALSE(parse_version_record("", 4).has_value());
  EXPECT_FALSE(parse_version_record("not a hash\n1 2 3 4 1\n", 4).has_value());
  EXPECT_FALSE(parse_version_record(hash.hex().substr(1) + "\n", 4).has_value());
}

TEST(State, RoundTripsAndStartsEmpty) {
  TempDir dir;
  auto empty = load_state(dir.path() / "state.json");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, AgentState{});
  AgentState s{42, {{"ABC00001", 3}, {"ABC00002", 1}}, "dp1"};
  ASSERT_TRUE(save_state(dir.path() / "state.json", s).ok());
  auto back = load_state(dir.path() / "state.json");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, s);
}

StatusMessage message(std::string pkg, std::string state, std::uint64_t done = 0) {
  StatusMessage m;
  m.package_id = pkg;
  m.generation = 1;
  m.state = state;
  m.bytes_done = done;
  m.key = "dp1:" + pkg + ":1:" + state + (state == "progress" ? ":" + std::to_string(done) : "");
  return m;
}

TEST(Outbox, MessagesSurviveARestartAndAreSentInOrderOnce) {
  TempDir dir;
  {
    auto box = Outbox::open(dir.path(), [](const StatusMessage&) -> Status {
      return make_error(WbemCode::kTransportFailure, "down");
    }, {std::chrono::milliseconds(5), std::chrono::milliseconds(20)});
    ASSERT_TRUE(box.ok());
    (*box)->start();
    ASSERT_TRUE((*box)->put(message("A", "progress", 10)).ok());
    ASSERT_TRUE((*box)->put(message("A", "progress", 20)).ok());  // replaces the first
    ASSERT_TRUE((*box)->put(message("B", "removed")).ok());
    ASSERT_TRUE((*box)->put(message("A", "installed")).ok());  // drops A's progress
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ((*box)->pending(), 2u);
  }  // "crash": nothing was acknowledged
  std::vector<std::string> sent;
  Mutex mu;
  auto box = Outbox::open(dir.path(), [&](const StatusMessage& m) -> Status {
    MutexLock lock(mu);
    sent.push_back(m.key);
    return ok_status();
  });
  ASSERT_TRUE(box.ok());
  EXPECT_EQ((*box)->pending(), 2u);
  (*box)->start();
  ASSERT_TRUE((*box)->wait_empty(std::chrono::seconds(5)));
  MutexLock lock(mu);
  EXPECT_EQ(sent, (std::vector<std::string>{"dp1:B:1:removed", "dp1:A:1:installed"}));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(Outbox, RetriesUntilAcknowledged) {
  TempDir dir;
  std::atomic<int> calls{0};
  auto box = Outbox::open(dir.path(), [&](const StatusMessage&) -> Status {
    if (++calls < 4) return make_error(WbemCode::kServerTooBusy, "503");
    return ok_status();
  }, {std::chrono::milliseconds(5), std::chrono::milliseconds(20)});
  ASSERT_TRUE(box.ok());
  (*box)->start();
  ASSERT_TRUE((*box)->put(message("A", "failed")).ok());
  ASSERT_TRUE((*box)->wait_empty(std::chrono::seconds(5)));
  EXPECT_EQ(calls.load(), 4);
}

// A final message whose file cannot be written (a full disk) is still sent, from memory; put() says it is not
// durable. A progress message that cannot be written is dropped.
TEST(Outbox, AFinalMessageThatCannotBeWrittenIsStillSent) {
  TempDir dir;
  std::vector<std::string> sent;
  Mutex mu;
  auto box = Outbox::open(dir.path() / "outbox", [&](const StatusMessage& m) -> Status {
    MutexLock lock(mu);
    sent.push_back(m.key);
    return ok_status();
  }, {std::chrono::milliseconds(5), std::chrono::milliseconds(20)});
  ASSERT_TRUE(box.ok());
  std::filesystem::remove_all(dir.path() / "outbox");  // nothing can be written there any more
  EXPECT_FALSE((*box)->put(message("A", "progress", 10)).ok());
  EXPECT_FALSE((*box)->put(message("A", "failed")).ok());
  EXPECT_EQ((*box)->pending(), 1u);
  (*box)->start();
  ASSERT_TRUE((*box)->wait_empty(std::chrono::seconds(5)));
  MutexLock lock(mu);
  EXPECT_EQ(sent, (std::vector<std::string>{"dp1:A:1:failed"}));
}

TEST(Range, Parses) {
  auto r = parse_range("bytes=10-19", 100);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 10u);
  EXPECT_EQ(r->last, 19u);
  r = parse_range("bytes=90-", 100);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last, 99u);
  r = parse_range("bytes=-5", 100);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 95u);
  r = parse_range("bytes=100-", 100);
  ASSERT_TRUE(r);
  EXPECT_GT(r->first, r->last);  // unsatisfiable
  EXPECT_FALSE(parse_range("items=1-2", 100));
  EXPECT_FALSE(parse_range("bytes=1-2,5-6", 100));
  // The unit in any case; a last position past 2^64 is the end; a last position that is not a number is refused.
  r = parse_range("Bytes=0-4", 100);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last, 4u);
  r = parse_range("bytes=3-99999999999999999999999", 12);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 3u);
  EXPECT_EQ(r->last, 11u);
  EXPECT_FALSE(parse_range("bytes=3-x", 12));
  EXPECT_FALSE(parse_range("bytes=5-3", 12));
}

TEST(TreeRules, RefusesEscapes) {
  content::ManifestLimits limits;
  EXPECT_TRUE(recheck_path("a/b/c", limits).ok());
  EXPECT_FALSE(recheck_path("../../etc/x", limits).ok());
  EXPECT_FALSE(recheck_path("/etc/x", limits).ok());
  EXPECT_FALSE(recheck_path("a/./b", limits).ok());
  EXPECT_TRUE(check_link_target("a/b/link", "../c").ok());
  EXPECT_TRUE(check_link_target("a/link", "../c").ok());
  EXPECT_FALSE(check_link_target("link", "../c").ok());
  EXPECT_FALSE(check_link_target("a/link", "../../c").ok());
  EXPECT_FALSE(check_link_target("a/link", "/etc/passwd").ok());
}

TEST(WorkerPool, RunsEveryTaskOnItsFixedThreads) {
  WorkerPool pool(3);
  std::atomic<int> sum{0};
  std::atomic<std::size_t> max_worker{0};
  pool.run(100, [&](std::size_t i, std::size_t w) {
    sum += static_cast<int>(i);
    std::size_t m = max_worker.load();
    while (w > m && !max_worker.compare_exchange_weak(m, w)) {
    }
  });
  EXPECT_EQ(sum.load(), 4950);
  EXPECT_LT(max_worker.load(), 3u);
}

TEST(TokenBucket, PacesToTheRate) {
  TokenBucket bucket(200 * 1024);  // 200 KiB/s, burst 200 KiB
  std::atomic<bool> cancel{false};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(bucket.consume(40 * 1024, cancel));  // 400 KiB
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(1500));
  EXPECT_LE(took, std::chrono::milliseconds(4000));
}

}  // namespace
}  // namespace pkgcast::dp
