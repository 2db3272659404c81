// End-to-end: what the agent refuses (bad chunks, hostile or oversized manifests), a full disk, and status
// delivery through the outbox.
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "dp/agent_fixture.h"

namespace pkgcast::dp {
namespace {

using namespace agent_testing;  // NOLINT(google-build-using-namespace): the shared fixture of these tests
namespace tt = ::pkgcast::dp::testing;

TEST_F(AgentTest, AFlippedByteIsDetectedAndTheChunkRefetched) {
  make_tree(tmp.path() / "src");
  const BuiltContent c = publish(tmp.path() / "src");
  const std::string victim = c.manifest.entries[2].chunks.empty() ? c.chunks.begin()->first : c.chunks.begin()->first;
  server.corrupt_chunk(victim, 1);
  auto agent = start_agent(options(tmp.path() / "dp"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  EXPECT_EQ(server.chunk_requests(victim), 2);
  EXPECT_EQ(tt::diff_trees(tmp.path() / "src", tmp.path() / "dp/content/ABC00001.1"), "");
}

TEST_F(AgentTest, AChunkThatNeverVerifiesFailsTheJobAndChangesNothingInstalled) {
  write_file(tmp.path() / "src/a.txt", "hello");
  const BuiltContent c = publish(tmp.path() / "src");
  server.corrupt_chunk(c.chunks.begin()->first, 1000);
  auto agent = start_agent(options(tmp.path() / "dp"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  auto failed = server.wait_status("ABC00001", "failed", 1);
  ASSERT_TRUE(failed);
  EXPECT_NE((*failed)["message"].get<std::string>().find("failed verification"), std::string::npos) << *failed;
  EXPECT_LE(server.chunk_requests(c.chunks.begin()->first), 2);  // bounded
  EXPECT_FALSE(fs::exists(tmp.path() / "dp/content/ABC00001.1"));
  EXPECT_EQ(wait_handled(*agent, "ABC00001", 1), 1u);
}

TEST_F(AgentTest, AChunkLargerThanAnnouncedIsRefused) {
  write_file(tmp.path() / "src/a.txt", "hello");
  const BuiltContent c = publish(tmp.path() / "src");
  server.add_chunk(c.chunks.begin()->first, c.chunks.begin()->second + " and more");
  auto agent = start_agent(options(tmp.path() / "dp"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  auto failed = server.wait_status("ABC00001", "failed", 1);
  ASSERT_TRUE(failed);
  EXPECT_NE((*failed)["message"].get<std::string>().find("larger than announced"), std::string::npos) << *failed;
  EXPECT_FALSE(fs::exists(tmp.path() / "dp/content/ABC00001.1"));
}

TEST_F(AgentTest, MaliciousManifestsAreRefusedAndNothingIsWrittenOutside) {
  auto agent = start_agent(options(tmp.path() / "dp"));
  const std::string payload = "owned";
  const auto chunk = content::sha256(payload);
  server.add_chunk(chunk.hex(), payload);
  auto file_entry = [&](std::string path) {
    content::ManifestEntry e;
    e.path = std::move(path);
    e.mode = 0644;
    e.size = payload.size();
    e.sha256 = chunk;
    e.chunks = {{chunk, static_cast<std::uint32_t>(payload.size())}};
    return e;
  };
  std::vector<content::Manifest> bad(4);
  bad[0].entries = {file_entry("../../etc/x")};
  bad[1].entries = {file_entry(tmp.path().string() + "/abs-x")};
  content::ManifestEntry link;
  link.path = "out";
  link.type = content::EntryType::kSymlink;
  link.target = "../../../..";
  bad[2].entries = {link, file_entry("out/x")};
  content::ManifestEntry dir;
  dir.path = "d";
  dir.type = content::EntryType::kDirectory;
  dir.mode = 0755;
  content::ManifestEntry abs_link = link;
  abs_link.path = "d/l";
  abs_link.target = tmp.path().string();
  bad[3].entries = {dir, abs_link};
  std::uint32_t generation = 0;
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const std::string bytes = content::serialize_manifest(bad[i]);
    BuiltContent c;
    c.manifest_bytes = bytes;
    c.manifest_hash = content::sha256(bytes).hex();
    server.add_manifest(c.manifest_hash, bytes);
    const std::string pkg = "BAD0000" + std::to_string(i);
    server.put_job(install_job(pkg, 1, ++generation, c, {server.content_url()}));
    auto failed = server.wait_status(pkg, "failed");
    ASSERT_TRUE(failed) << i;
    EXPECT_NE((*failed)["message"].get<std::string>().find("WBEM_E_INVALID_PARAMETER"), std::string::npos)
        << *failed;
    EXPECT_FALSE(fs::exists(tmp.path() / "dp/content" / (pkg + ".1")));
  }
  EXPECT_FALSE(fs::exists(tmp.path() / "abs-x"));
  EXPECT_FALSE(fs::exists("/etc/x"));
  EXPECT_FALSE(fs::exists(tmp.path() / "x"));
  EXPECT_FALSE(server.wait_status("BAD00000", "installed", 0, std::chrono::milliseconds(10)));
}

TEST_F(AgentTest, AManifestBeyondTheLimitsIsRefused) {
  make_tree(tmp.path() / "src");
  const BuiltContent c = publish(tmp.path() / "src");
  AgentOptions o = options(tmp.path() / "dp");
  o.limits.max_entries = 3;
  auto agent = start_agent(std::move(o));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  auto failed = server.wait_status("ABC00001", "failed", 1);
  ASSERT_TRUE(failed);
  EXPECT_NE((*failed)["message"].get<std::string>().find("WBEM_E_QUOTA_VIOLATION"), std::string::npos) << *failed;
}

TEST_F(AgentTest, OutOfDiskSpaceIsAClearFailureAndTheNextGenerationRecovers) {
  make_tree(tmp.path() / "src");
  const BuiltContent c = publish(tmp.path() / "src");
  auto full = std::make_shared<std::atomic<bool>>(true);
  AgentOptions o = options(tmp.path() / "dp");
  o.write_fault_for_test = [full](const fs::path& p) {
    return full->load() && p.string().find("/staging/") != std::string::npos ? ENOSPC : 0;
  };
  auto agent = start_agent(std::move(o));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  auto failed = server.wait_status("ABC00001", "failed", 1);
  ASSERT_TRUE(failed);
  EXPECT_NE((*failed)["message"].get<std::string>().find("WBEM_E_OUT_OF_DISK_SPACE"), std::string::npos) << *failed;
  EXPECT_FALSE(fs::exists(tmp.path() / "dp/content/ABC00001.1"));
  // The staged tree was dropped to give the space back.
  EXPECT_FALSE(fs::exists(tmp.path() / "dp/staging/ABC00001.1"));
  full->store(false);  // space is back; the server retries with a new generation
  server.put_job(install_job("ABC00001", 1, 2, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 2));
  EXPECT_EQ(tt::diff_trees(tmp.path() / "src", tmp.path() / "dp/content/ABC00001.1"), "");
}

// The same with a real full disk: the data directory on a 3 MiB tmpfs (needs root; skipped otherwise).
TEST_F(AgentTest, ARealFullDiskFailsTheJobAndTheAgentRecoversWhenSpaceIsBack) {
  const fs::path data = tmp.path() / "dp";
  fs::create_directories(data);
  if (::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=3m") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{data};
  write_file(tmp.path() / "src/a.bin", tt::pseudo_random(4 * 1024 * 1024, 13));  // incompressible
  const BuiltContent c = publish(tmp.path() / "src");
  auto agent = start_agent(options(data));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  auto failed = server.wait_status("ABC00001", "failed", 1);
  ASSERT_TRUE(failed);
  EXPECT_NE((*failed)["message"].get<std::string>().find("WBEM_E_OUT_OF_DISK_SPACE"), std::string::npos) << *failed;
  EXPECT_FALSE(fs::exists(data / "content/ABC00001.1"));
  ASSERT_EQ(::mount("tmpfs", data.c_str(), "tmpfs", MS_REMOUNT, "size=32m"), 0);  // space is back
  server.put_job(install_job("ABC00001", 1, 2, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 2));
  EXPECT_EQ(tt::diff_trees(tmp.path() / "src", data / "content/ABC00001.1"), "");
  agent->stop();
}

// A disk so full that not even the status file can be written: the outcome still reaches the server (from the
// agent's memory) at once, rather than when the server finds the job stalled minutes later.
TEST_F(AgentTest, AFullDiskThatRefusesTheOutboxStillReportsTheFailure) {
  const fs::path data = tmp.path() / "dp";
  fs::create_directories(data);
  if (::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=1m") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{data};
  write_file(tmp.path() / "src/a.txt", "hello");
  const BuiltContent c = publish(tmp.path() / "src");
  auto agent = start_agent(options(data));
  ASSERT_TRUE(agent);
  {
    std::FILE* f = std::fopen((data / "filler").c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string block(4096, 'x');
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size() && std::fflush(f) == 0) {
    }
    std::fclose(f);
  }
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  auto failed = server.wait_status("ABC00001", "failed", 1, std::chrono::seconds(10));
  ASSERT_TRUE(failed);
  EXPECT_NE((*failed)["message"].get<std::string>().find("WBEM_E_OUT_OF_DISK_SPACE"), std::string::npos) << *failed;
  fs::remove(data / "filler");  // space is back
  server.put_job(install_job("ABC00001", 1, 2, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 2));
  EXPECT_EQ(tt::diff_trees(tmp.path() / "src", data / "content/ABC00001.1"), "");
  agent->stop();
}

// Two agents on one data directory would stage, rename and delete under each other: the second is refused, naming
// the first one's process, and the directory is usable again once the first has stopped.
TEST_F(AgentTest, ASecondAgentOnTheSameDataDirectoryIsRefused) {
  write_file(tmp.path() / "src/a.txt", "hello");
  const BuiltContent c = publish(tmp.path() / "src");
  {
    auto first = start_agent(options(tmp.path() / "dp"));
    ASSERT_TRUE(first);
    auto second = Agent::create(options(tmp.path() / "dp"));
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, WbemCode::kInvalidOperation);
    EXPECT_NE(second.error().message.find("in use by another dp-agent (process " + std::to_string(::getpid()) + ")"),
              std::string::npos)
        << second.error().message;
    // The refused agent changed nothing: the first still installs.
    server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
    ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  }
  auto again = Agent::create(options(tmp.path() / "dp"));
  ASSERT_TRUE(again.ok()) << again.error().to_string();
}

// A damaged state.json (it is written atomically, so a disk fault or a hand edit) does not keep the agent from
// running: it is set aside as state.json.bad and the agent starts afresh, listing its jobs as at every start.
TEST_F(AgentTest, ADamagedStateFileIsSetAsideAndTheAgentRuns) {
  write_file(tmp.path() / "src/a.txt", "hello");
  const BuiltContent c = publish(tmp.path() / "src");
  write_file(tmp.path() / "dp/state.json", "{\"handled\":{\"ABC0");
  auto agent = start_agent(options(tmp.path() / "dp"));
  ASSERT_TRUE(agent);
  EXPECT_EQ(tt::read_all(tmp.path() / "dp/state.json.bad"), "{\"handled\":{\"ABC0");
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  EXPECT_EQ(wait_handled(*agent, "ABC00001", 1), 1u);
  auto saved = load_state(tmp.path() / "dp/state.json");
  ASSERT_TRUE(saved.ok()) << saved.error().to_string();
}

// A data directory copied from another DP: its state.json (whose generations would hide this DP's jobs) is set
// aside, and its outbox messages are not sent with this DP's token.
TEST_F(AgentTest, AnotherDpsStateAndOutboxAreNotUsed) {
  write_file(tmp.path() / "src/a.txt", "hello");
  const BuiltContent c = publish(tmp.path() / "src");
  write_file(tmp.path() / "dp/state.json", R"({"name":"dp9","revision":0,"handled":{"ABC00001":7}})");
  write_file(tmp.path() / "dp/outbox/m-00000000000000000001.json",
             R"({"key":"dp9:ABC00001:1:installed","package_id":"ABC00001","generation":1,"state":"installed",)"
             R"("bytes_done":5,"bytes_total":5,"message":"","seq":1})");
  auto agent = start_agent(options(tmp.path() / "dp"));
  ASSERT_TRUE(agent);
  EXPECT_TRUE(fs::exists(tmp.path() / "dp/state.json.bad"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  auto installed = server.wait_status("ABC00001", "installed", 1);
  ASSERT_TRUE(installed);
  EXPECT_EQ((*installed)["key"], "dp1:ABC00001:1:installed");
  ASSERT_TRUE(agent->wait_outbox_empty(std::chrono::seconds(5)));
  for (const auto& s : server.statuses()) EXPECT_FALSE(s["key"].get<std::string>().starts_with("dp9:")) << s;
  auto saved = load_state(tmp.path() / "dp/state.json");
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->name, "dp1");
}

TEST_F(AgentTest, StatusesAreRetriedOnServerErrorsAndADuplicateKeyIsAppliedOnce) {
  write_file(tmp.path() / "src/a.txt", "hello");
  const BuiltContent c = publish(tmp.path() / "src");
  server.fail_status(3);
  {
    auto agent = start_agent(options(tmp.path() / "dp"));
    server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
    ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
    ASSERT_TRUE(agent->wait_outbox_empty(std::chrono::seconds(5)));
  }
  // A crash between the server's answer and the outbox delete: the same message again, on restart.
  StatusMessage m;
  m.key = "dp1:ABC00001:1:installed";
  m.package_id = "ABC00001";
  m.generation = 1;
  m.state = "installed";
  {
    auto box = Outbox::open(tmp.path() / "dp/outbox", [](const StatusMessage&) -> Status {
      return make_error(WbemCode::kTransportFailure, "down");
    });
    ASSERT_TRUE(box.ok());
    ASSERT_TRUE((*box)->put(m).ok());
  }
  auto agent = start_agent(options(tmp.path() / "dp"));
  ASSERT_TRUE(agent->wait_outbox_empty(std::chrono::seconds(5)));
  EXPECT_EQ(server.duplicate_statuses(), 1);
  int installed = 0;
  for (const auto& s : server.statuses()) installed += s["state"] == "installed";
  EXPECT_EQ(installed, 1);
}

TEST_F(AgentTest, ARefusedTokenStopsTheAgentWithTheServersAnswer) {
  std::atomic<int> calls{0};
  AgentOptions o = options(tmp.path() / "dp");
  o.token = "not-this-dps-token";
  o.on_refused = [&calls](const Error& e) {
    EXPECT_EQ(e.code, WbemCode::kAccessDenied);
    ++calls;
  };
  auto agent = start_agent(std::move(o));
  ASSERT_TRUE(agent);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!agent->refused() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto refused = agent->refused();
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->message.find("the server refused this DP: "), std::string::npos) << refused->to_string();
  EXPECT_NE(refused->message.find("bad token"), std::string::npos) << refused->to_string();
  // No retry loop: the agent asked once and stopped asking.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // longer than the fixture's 200 ms back-off
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(server.refused_requests(), 1);
}

}  // namespace
}  // namespace pkgcast::dp
