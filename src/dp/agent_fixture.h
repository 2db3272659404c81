// What the agent's end-to-end tests share: a FakeSiteServer (test_server.h), an agent on a temporary data
// directory with short back-offs, the sample tree, and job instances. Test-only.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "dp/agent.h"
#include "dp/test_server.h"
#include "dp/test_tree.h"

namespace pkgcast::dp::agent_testing {

namespace fs = std::filesystem;
using nlohmann::json;
using ::pkgcast::dp::testing::BuiltContent;
using ::pkgcast::dp::testing::FakeSiteServer;
using ::pkgcast::dp::testing::TempDir;
using ::pkgcast::dp::testing::write_file;

inline constexpr char kToken[] = "dp-token-1";

// The tree of the issue: empty file, empty dir, executable, non-ASCII name, a few-MB file, symlinks, a
// read-only directory.
inline void make_tree(const fs::path& root, std::uint64_t seed = 1) {
  fs::create_directories(root);
  write_file(root / "empty.txt", "");
  fs::create_directories(root / "empty-dir");
  write_file(root / "bin/tool", "#!/bin/sh\necho hi\n", 0755);
  write_file(root / "docs/\xc3\xbc" "ber caf\xc3\xa9.txt", "non-ASCII name\n", 0640);
  write_file(root / "data/big.bin", ::pkgcast::dp::testing::pseudo_random(3 * 1024 * 1024 + 123, seed));
  fs::create_symlink("../bin/tool", root / "docs/tool-link");
  fs::create_symlink("data/big.bin", root / "latest");
  write_file(root / "ro/readme", "read only\n", 0444);
  ::chmod((root / "ro").c_str(), 0555);
}

inline json install_job(const std::string& pkg, std::uint32_t version, std::uint32_t generation, const BuiltContent& c,
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

inline json action_job(const std::string& pkg, std::uint32_t version, std::uint32_t generation, int action,
                const std::string& manifest_hash, std::vector<std::string> sources) {
  return {{"PackageID", pkg},         {"NALPath", "dp1"},           {"Action", action},
          {"Generation", generation}, {"SourceVersion", version},   {"ContentID", pkg + "." + std::to_string(version)},
          {"ManifestHash", manifest_hash}, {"Sources", sources}};
}

// The generation the agent recorded as handled for a package, once it reaches `generation` (it records it just
// after the outcome is in the outbox, which may already have delivered it).
inline std::uint32_t wait_handled(const Agent& agent, const std::string& pkg, std::uint32_t generation) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    const auto state = agent.state();
    auto it = state.handled.find(pkg);
    const std::uint32_t got = it == state.handled.end() ? 0 : it->second;
    if (got >= generation || std::chrono::steady_clock::now() > deadline) return got;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
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
    BuiltContent c = ::pkgcast::dp::testing::build_content(tree);
    server.add_content(c);
    return c;
  }
  // The tree at src/ published and installed as ABC00001.1 (generation 1) by an agent left running, as the
  // validation tests start.
  struct Installed {
    std::unique_ptr<Agent> agent;
    BuiltContent content;
    fs::path dir;  // the installed version
  };
  Installed install_src_as_version_1() {
    Installed in;
    in.content = publish(tmp.path() / "src");
    in.agent = start_agent(options(tmp.path() / "dp"));
    server.put_job(install_job("ABC00001", 1, 1, in.content, {server.content_url()}));
    EXPECT_TRUE(server.wait_status("ABC00001", "installed", 1));
    in.dir = tmp.path() / "dp/content/ABC00001.1";
    return in;
  }
  // `bytes` as src1/big.bin, published through the ingest and installed as ABC00001.1 (generation 1) by an agent
  // left running, as the update tests start; nullptr (and a failure) when it did not install.
  std::unique_ptr<Agent> install_big_file_as_version_1(const std::string& bytes) {
    write_file(tmp.path() / "src1/big.bin", bytes);
    const BuiltContent v1 = publish_ingested(tmp.path() / "src1");
    auto agent = start_agent(options(tmp.path() / "dp"));
    server.put_job(install_job("ABC00001", 1, 1, v1, {server.content_url()}));
    if (!server.wait_status("ABC00001", "installed", 1)) {
      ADD_FAILURE() << "ABC00001.1 was not installed";
      return nullptr;
    }
    return agent;
  }
  // Version 2 of the update tests: `bytes` with their last 100 bytes changed (in place), as src2/big.bin,
  // published; every chunk but the last is in version 1.
  BuiltContent publish_last_bytes_changed(std::string& bytes) {
    bytes.replace(bytes.size() - 100, 100, std::string(100, 'v'));
    write_file(tmp.path() / "src2/big.bin", bytes);
    return publish_ingested(tmp.path() / "src2");
  }
  // As the site server would: through the content library's ingest.
  BuiltContent publish_ingested(const fs::path& tree) {
    BuiltContent c = ::pkgcast::dp::testing::ingest_content(tree, tmp.path() / "library");
    EXPECT_FALSE(c.manifest_hash.empty());
    server.add_content(c);
    return c;
  }

  FakeSiteServer server{kToken};
  TempDir tmp;
};

}  // namespace pkgcast::dp::agent_testing
