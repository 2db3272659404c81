// End-to-end tests of the agent over real HTTP on loopback against FakeSiteServer (test_server.h).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <iostream>
#include <nlohmann/json.hpp>

#include "client/http_client.h"
#include "dp/agent.h"
#include "dp/test_server.h"
#include "dp/test_tree.h"

namespace pkgcast::dp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::BuiltContent;
using testing::FakeSiteServer;
using testing::TempDir;
using testing::write_file;

constexpr char kToken[] = "dp-token-1";

// The tree of the issue: empty file, empty dir, executable, non-ASCII name, a few-MB file, symlinks, a
// read-only directory.
void make_tree(const fs::path& root, std::uint64_t seed = 1) {
  fs::create_directories(root);
  write_file(root / "empty.txt", "");
  fs::create_directories(root / "empty-dir");
  write_file(root / "bin/tool", "#!/bin/sh\necho hi\n", 0755);
  write_file(root / "docs/\xc3\xbc" "ber caf\xc3\xa9.txt", "non-ASCII name\n", 0640);
  write_file(root / "data/big.bin", testing::pseudo_random(3 * 1024 * 1024 + 123, seed));
  fs::create_symlink("../bin/tool", root / "docs/tool-link");
  fs::create_symlink("data/big.bin", root / "latest");
  write_file(root / "ro/readme", "read only\n", 0444);
  ::chmod((root / "ro").c_str(), 0555);
}

json install_job(const std::string& pkg, std::uint32_t version, std::uint32_t generation, const BuiltContent& c,
                 std::vector<std::string> sources, std::uint32_t rate = 0) {
  return {{"PackageID", pkg},
          {"NALPath", "dp1"},
          {"Action", 1},
          {"Generation", generation},
          {"ContentID", pkg + "." + std::to_string(version)},
          {"SourceVersion", version},
          {"ManifestHash", c.manifest_hash},
          {"ContentSize", c.total_size},
          {"Sources", sources},
          {"TransferRate", rate}};
}

json action_job(const std::string& pkg, std::uint32_t version, std::uint32_t generation, int action,
                const std::string& manifest_hash, std::vector<std::string> sources) {
  return {{"PackageID", pkg},         {"NALPath", "dp1"},           {"Action", action},
          {"Generation", generation}, {"SourceVersion", version},   {"ContentID", pkg + "." + std::to_string(version)},
          {"ManifestHash", manifest_hash}, {"Sources", sources}};
}

class AgentTest : public ::testing::Test {
 protected:
  AgentOptions options(const fs::path& data_dir) {
    AgentOptions o;
    o.server = server.url();
    o.token = kToken;
    o.name = "dp1";
    o.data_dir = data_dir;
    o.download_workers = 3;
    o.reconnect_initial = std::chrono::milliseconds(20);
    o.reconnect_max = std::chrono::milliseconds(200);
    o.progress_interval = std::chrono::milliseconds(50);
    o.outbox = {std::chrono::milliseconds(10), std::chrono::milliseconds(100)};
    return o;
  }
  std::unique_ptr<Agent> start_agent(AgentOptions o) {
    auto agent = Agent::create(std::move(o));
    EXPECT_TRUE(agent.ok()) << agent.error().to_string();
    if (!agent.ok()) return nullptr;
    (*agent)->start();
    return std::move(agent).value();
  }
  BuiltContent publish(const fs::path& tree) {
    BuiltContent c = testing::build_content(tree);
    server.add_content(c);
    return c;
  }

  FakeSiteServer server{kToken};
  TempDir tmp;
};

TEST_F(AgentTest, InstallsATreeByteForByteAndAnUpdateMovesOnlyChangedChunks) {
  make_tree(tmp.path() / "src1");
  const BuiltContent v1 = publish(tmp.path() / "src1");
  auto agent = start_agent(options(tmp.path() / "dp"));
  ASSERT_TRUE(agent);
  server.put_job(install_job("ABC00001", 1, 1, v1, {server.content_url()}));
  auto installed = server.wait_status("ABC00001", "installed", 1);
  ASSERT_TRUE(installed) << (server.statuses().empty() ? "" : server.statuses().back().dump());
  const fs::path dir1 = tmp.path() / "dp/content/ABC00001.1";
  EXPECT_EQ(testing::diff_trees(tmp.path() / "src1", dir1), "");
  EXPECT_FALSE(fs::exists(tmp.path() / "dp/staging/ABC00001.1"));
  EXPECT_EQ(agent->state().handled.at("ABC00001"), 1u);

  // Version 2: one file changed. Only its chunk moves; version 1 goes once version 2 is in place.
  fs::copy(tmp.path() / "src1", tmp.path() / "src2", fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  ::chmod((tmp.path() / "src2/ro").c_str(), 0755);
  write_file(tmp.path() / "src2/bin/tool", "#!/bin/sh\necho version 2\n", 0755);
  ::chmod((tmp.path() / "src2/ro").c_str(), 0555);
  const BuiltContent v2 = publish(tmp.path() / "src2");
  const std::uint64_t before = server.chunk_bytes_served();
  server.put_job(install_job("ABC00001", 2, 2, v2, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 2));
  EXPECT_EQ(testing::diff_trees(tmp.path() / "src2", tmp.path() / "dp/content/ABC00001.2"), "");
  EXPECT_FALSE(fs::exists(dir1));
  EXPECT_EQ(server.chunk_bytes_served() - before, std::string("#!/bin/sh\necho version 2\n").size());
  EXPECT_TRUE(agent->wait_outbox_empty(std::chrono::seconds(5)));
  EXPECT_EQ(server.duplicate_statuses(), 0);
}

TEST_F(AgentTest, AFlippedByteIsDetectedAndTheChunkRefetched) {
  make_tree(tmp.path() / "src");
  const BuiltContent c = publish(tmp.path() / "src");
  const std::string victim = c.manifest.entries[2].chunks.empty() ? c.chunks.begin()->first : c.chunks.begin()->first;
  server.corrupt_chunk(victim, 1);
  auto agent = start_agent(options(tmp.path() / "dp"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  EXPECT_EQ(server.chunk_requests(victim), 2);
  EXPECT_EQ(testing::diff_trees(tmp.path() / "src", tmp.path() / "dp/content/ABC00001.1"), "");
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
  EXPECT_EQ(agent->state().handled.at("ABC00001"), 1u);
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

TEST_F(AgentTest, ACutChunkDownloadResumesWithRange) {
  write_file(tmp.path() / "src/one.bin", testing::pseudo_random(60 * 1024, 7));
  const BuiltContent c = publish(tmp.path() / "src");
  server.cut_chunks(20 * 1024, 1);
  auto agent = start_agent(options(tmp.path() / "dp"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  EXPECT_EQ(server.range_requests(), 1);
  EXPECT_EQ(server.chunk_bytes_served(), 60u * 1024);  // 20 KiB, then the other 40 KiB
  EXPECT_EQ(testing::diff_trees(tmp.path() / "src", tmp.path() / "dp/content/ABC00001.1"), "");
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
  full->store(false);  // space is back; the server retries with a new generation
  const std::uint64_t before = server.chunk_bytes_served();
  server.put_job(install_job("ABC00001", 1, 2, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 2));
  EXPECT_EQ(server.chunk_bytes_served(), before);  // the verified chunks were kept
  EXPECT_EQ(testing::diff_trees(tmp.path() / "src", tmp.path() / "dp/content/ABC00001.1"), "");
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

TEST_F(AgentTest, ValidateDetectsAndRepairsACorruptedFile) {
  make_tree(tmp.path() / "src");
  const BuiltContent c = publish(tmp.path() / "src");
  auto agent = start_agent(options(tmp.path() / "dp"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  const fs::path dir = tmp.path() / "dp/content/ABC00001.1";
  {
    std::FILE* f = std::fopen((dir / "data/big.bin").c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 1000000, SEEK_SET);
    std::fputc('X', f);
    std::fclose(f);
  }
  ::chmod((dir / "bin/tool").c_str(), 0600);
  const std::uint64_t before = server.chunk_bytes_served();
  server.put_job(action_job("ABC00001", 1, 2, 3, c.manifest_hash, {server.content_url()}));
  auto bad = server.wait_status("ABC00001", "validation_failed", 2);
  ASSERT_TRUE(bad);
  const std::string text = (*bad)["message"];
  EXPECT_NE(text.find("data/big.bin"), std::string::npos) << text;
  EXPECT_NE(text.find("bin/tool"), std::string::npos) << text;
  EXPECT_EQ(text.find("empty.txt"), std::string::npos) << text;
  ASSERT_TRUE(server.wait_status("ABC00001", "validated", 2));
  EXPECT_EQ(testing::diff_trees(tmp.path() / "src", dir), "");
  EXPECT_EQ(server.chunk_bytes_served(), before);  // the chunk cache had every chunk

  server.put_job(action_job("ABC00001", 1, 3, 3, c.manifest_hash, {server.content_url()}));
  auto clean = server.wait_status("ABC00001", "validated", 3);
  ASSERT_TRUE(clean);
  EXPECT_EQ((*clean)["message"], "");
}

TEST_F(AgentTest, RemoveDeletesTheInstalledVersion) {
  write_file(tmp.path() / "src/a.txt", "hello");
  const BuiltContent c = publish(tmp.path() / "src");
  auto agent = start_agent(options(tmp.path() / "dp"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  server.put_job(action_job("ABC00001", 1, 2, 2, "", {}));
  ASSERT_TRUE(server.wait_status("ABC00001", "removed", 2));
  EXPECT_FALSE(fs::exists(tmp.path() / "dp/content/ABC00001.1"));
  EXPECT_TRUE(fs::is_empty(tmp.path() / "dp/trash"));
}

TEST_F(AgentTest, TransferRateBoundsTheJobsDownloadsTogether) {
  write_file(tmp.path() / "src/a.bin", testing::pseudo_random(1024 * 1024, 11));
  const BuiltContent c = publish(tmp.path() / "src");
  auto agent = start_agent(options(tmp.path() / "dp"));  // 3 workers share one bucket
  const auto start = std::chrono::steady_clock::now();
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}, /*KiB/s*/ 512));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(1500));  // 1 MiB at 512 KiB/s, starting with an empty bucket
  EXPECT_LE(took, std::chrono::milliseconds(6000));
}

TEST_F(AgentTest, CancelStopsTheJobInProgress) {
  write_file(tmp.path() / "src/big.bin", testing::pseudo_random(2 * 1024 * 1024, 3));
  const BuiltContent c = publish(tmp.path() / "src");
  auto agent = start_agent(options(tmp.path() / "dp"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}, /*rate KiB/s*/ 256));
  ASSERT_TRUE(server.wait_status("ABC00001", "progress", 1));
  server.put_job(action_job("ABC00001", 1, 2, 4, "", {}));
  ASSERT_TRUE(server.wait_status("ABC00001", "cancelled", 2, std::chrono::seconds(5)));
  EXPECT_LT(server.chunk_bytes_served(), 2u * 1024 * 1024);
  EXPECT_FALSE(fs::exists(tmp.path() / "dp/content/ABC00001.1"));
  EXPECT_FALSE(server.wait_status("ABC00001", "installed", 0, std::chrono::milliseconds(300)));
}

TEST_F(AgentTest, TheJobStreamResumesFromItsRevisionAndListsAgainWhenCompacted) {
  write_file(tmp.path() / "src/a.txt", "hello");
  const BuiltContent c = publish(tmp.path() / "src");
  auto agent = start_agent(options(tmp.path() / "dp"));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  EXPECT_EQ(server.list_requests(), 1);
  server.drop_streams();
  server.put_job(install_job("ABC00002", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00002", "installed", 1));
  EXPECT_EQ(server.list_requests(), 1);  // resumed, not re-listed
  EXPECT_GE(server.stream_requests(), 2);

  // Compacted while away: 410, then the list shows what changed.
  server.put_job(install_job("ABC00003", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00003", "installed", 1));
  agent->stop();
  agent.reset();
  server.put_job(install_job("ABC00004", 1, 1, c, {server.content_url()}));
  server.compact();
  auto again = start_agent(options(tmp.path() / "dp"));
  ASSERT_TRUE(server.wait_status("ABC00004", "installed", 1));
  EXPECT_EQ(again->state().revision, 4u);
}

TEST_F(AgentTest, ResumesAfterAKillWithoutRefetchingVerifiedChunks) {
  write_file(tmp.path() / "src/big.bin", testing::pseudo_random(4 * 1024 * 1024, 9));
  const BuiltContent c = publish(tmp.path() / "src");
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}, /*rate KiB/s*/ 2048));
  const fs::path data = tmp.path() / "dp";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto agent = Agent::create(options(data));
    if (!agent.ok()) ::_exit(3);
    (*agent)->start();
    for (;;) ::pause();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (server.chunk_bytes_served() < c.total_size / 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  const std::uint64_t served_before = server.chunk_bytes_served();
  ASSERT_GE(served_before, c.total_size / 2);
  ASSERT_LT(served_before, c.total_size);
  EXPECT_FALSE(server.wait_status("ABC00001", "installed", 0, std::chrono::milliseconds(1)));

  // What the killed agent verified is in its chunk cache.
  auto store = content::ChunkStore::open(data / "chunks");
  ASSERT_TRUE(store.ok());
  std::uint64_t verified = 0;
  for (const auto& [hex, bytes] : c.chunks) {
    if ((*store)->contains(*content::Digest::from_hex(hex))) verified += bytes.size();
  }
  ASSERT_GT(verified, 0u);
  store->reset();

  auto agent = start_agent(options(data));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  const std::uint64_t served_after = server.chunk_bytes_served() - served_before;
  const std::uint64_t missing = c.total_size - verified;
  EXPECT_LE(served_after, missing + verified / 10) << "verified " << verified << " missing " << missing;
  EXPECT_EQ(testing::diff_trees(tmp.path() / "src", data / "content/ABC00001.1"), "");
}

// The memory bound: a 96 MiB file moves through a child process whose peak RSS stays under 64 MB, because
// downloads stream into files and files are assembled chunk by chunk. The content is made only after the fork,
// so none of it is in the child's memory to begin with.
TEST_F(AgentTest, PeakRssStaysUnder64MbForAFileLargerThanThat) {
  const fs::path data = tmp.path() / "dp";
  const fs::path report = tmp.path() / "vmhwm";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto agent = Agent::create(options(data));
    if (!agent.ok()) ::_exit(3);
    (*agent)->start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while ((*agent)->state().handled.count("ABC00001") == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    (*agent)->wait_outbox_empty(std::chrono::seconds(10));
    std::string status = testing::read_all("/proc/self/status");
    const auto at = status.find("VmHWM:");
    write_file(report, at == std::string::npos ? "" : status.substr(at + 6, status.find('\n', at) - at - 6));
    ::_exit((*agent)->state().handled.count("ABC00001") ? 0 : 4);
  }
  write_file(tmp.path() / "src/huge.bin", testing::pseudo_random(96u << 20, 5));
  const BuiltContent c = publish(tmp.path() / "src");
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1, std::chrono::seconds(10)));
  const std::string hwm = testing::read_all(report);  // "   12345 kB"
  const long kb = std::strtol(hwm.c_str(), nullptr, 10);
  EXPECT_GT(kb, 0) << hwm;
  RecordProperty("peak_rss_kb", static_cast<int>(kb));
  std::cout << "peak RSS of the agent process: " << kb << " kB" << std::endl;
  EXPECT_LT(kb, 64 * 1024) << "peak RSS " << kb << " kB";
  EXPECT_EQ(testing::read_all(tmp.path() / "src/huge.bin"), testing::read_all(data / "content/ABC00001.1/huge.bin"));
}

// ---- Serving ----------------------------------------------------------------------------------------------------

struct Got {
  unsigned status = 0;
  std::string body;
  std::string content_range;
};

Got http_get(std::uint16_t port, const std::string& target, const std::string& range = {}) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket(ioc);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!range.empty()) req.set(http::field::range, range);
  http::write(socket, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  return {res.result_int(), res.body(), std::string(res[http::field::content_range])};
}

TEST_F(AgentTest, ServesVerifiedContentWithRangeAndAPullDpInstallsFromIt) {
  make_tree(tmp.path() / "src");
  const BuiltContent c = publish(tmp.path() / "src");
  AgentOptions o = options(tmp.path() / "dp");
  o.listen = "127.0.0.1:0";
  auto agent = start_agent(std::move(o));
  server.put_job(install_job("ABC00001", 1, 1, c, {server.content_url()}));
  ASSERT_TRUE(server.wait_status("ABC00001", "installed", 1));
  const std::uint16_t port = agent->content_port();
  ASSERT_NE(port, 0);

  EXPECT_EQ(http_get(port, "/health").status, 200u);
  const auto& [hex, bytes] = *c.chunks.begin();
  Got whole = http_get(port, "/content/chunks/" + hex);
  EXPECT_EQ(whole.status, 200u);
  EXPECT_TRUE(whole.body == bytes);
  Got part = http_get(port, "/content/chunks/" + hex, "bytes=10-19");
  EXPECT_EQ(part.status, 206u);
  EXPECT_EQ(part.body, bytes.substr(10, 10));
  EXPECT_EQ(part.content_range, "bytes 10-19/" + std::to_string(bytes.size()));
  EXPECT_EQ(http_get(port, "/content/chunks/" + hex, "bytes=999999999-").status, 416u);
  Got manifest = http_get(port, "/content/manifests/" + c.manifest_hash);
  EXPECT_EQ(manifest.status, 200u);
  EXPECT_EQ(manifest.body, c.manifest_bytes);
  EXPECT_EQ(http_get(port, "/content/chunks/" + std::string(64, '0')).status, 404u);

  // A pull DP: its first source is the DP above (a dead one before it), the site server last.
  FakeSiteServer server2{kToken};
  AgentOptions o2 = options(tmp.path() / "dp2");
  o2.server = server2.url();
  o2.name = "dp2";
  auto pull = start_agent(std::move(o2));
  const std::uint64_t site_before = server.chunk_bytes_served();
  server2.put_job(install_job("ABC00001", 1, 1, c,
                              {"http://127.0.0.1:1/content", "http://127.0.0.1:" + std::to_string(port) + "/content",
                               server.content_url()}));
  ASSERT_TRUE(server2.wait_status("ABC00001", "installed", 1));
  EXPECT_EQ(server.chunk_bytes_served(), site_before);  // nothing from the site server
  EXPECT_EQ(testing::diff_trees(tmp.path() / "src", tmp.path() / "dp2/content/ABC00001.1"), "");

  // A stored chunk that went bad is not served.
  auto store = content::ChunkStore::open(tmp.path() / "dp/chunks");
  ASSERT_TRUE(store.ok());
  auto located = (*store)->locate(*content::Digest::from_hex(hex));
  ASSERT_TRUE(located.ok());
  {
    std::FILE* f = std::fopen(located->file.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, static_cast<long>(located->stored_size / 2), SEEK_SET);
    const int ch = std::fgetc(f);
    std::fseek(f, static_cast<long>(located->stored_size / 2), SEEK_SET);
    std::fputc(ch ^ 0x20, f);
    std::fclose(f);
  }
  EXPECT_NE(http_get(port, "/content/chunks/" + hex).status, 200u);
}

}  // namespace
}  // namespace pkgcast::dp

namespace pkgcast::dp {
namespace {

// A downloaded chunk reaches the fetcher in large pieces, not 512 bytes per read (each read is a recvmsg, an epoll
// wait and a timer re-arm: at 512 bytes the agent spent most of its CPU there; bench/content).
TEST(HttpClientReads, AChunkArrivesInLargePieces) {
  FakeSiteServer server{kToken};
  const std::string bytes = testing::pseudo_random(256 * 1024, 7);
  const std::string hex(64, 'a');
  server.add_chunk(hex, bytes);
  auto url = client::parse_server_url(server.content_url());
  ASSERT_TRUE(url.ok());
  client::HttpOptions o;
  o.token = kToken;
  auto http = client::HttpClient::create(*url, o);
  ASSERT_TRUE(http.ok());
  const std::string target = "/chunks/" + hex;
  std::string got;
  int pieces = 0;
  client::StreamRequest req;
  req.target = target;
  req.accept = "*/*";
  req.on_data = [&](std::string_view piece) {
    got += piece;
    ++pieces;
    return true;
  };
  auto r = (*http)->stream(req);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(got, bytes);
  EXPECT_LE(pieces, 64) << "256 KiB in " << pieces << " pieces";  // 512-byte reads: 512 pieces
}

}  // namespace
}  // namespace pkgcast::dp
