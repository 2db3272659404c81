// Content end to end: a real server and real DP agents on loopback, with real faults. Mixed trees of hundreds of
// megabytes arrive entry for entry (type, mode, link target, bytes); an agent killed mid-transfer resumes without
// refetching what it had; a server killed mid-transfer is waited for; a byte flipped on the wire is caught and
// refetched; a full disk is reported and recovered from. Bytes on the wire are counted by a relay between agent and
// server (relay.h), never by the agent's own counters.
//
// The scenarios with hundreds of megabytes (the mixed tree, the agent killed mid-transfer) run on SQLite only: on
// PostgreSQL they would double the binary's run time (minutes on two shared cores) for a content path that does
// not touch the store; the store-facing scenarios (server killed, corrupted chunk, full disk) run on both.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "content/content.h"
#include "relay.h"
#include "server_fixture.h"

namespace pkgcast::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMiB = 1024 * 1024;

// `n` bytes from a seeded generator: incompressible, and the same for the same seed.
std::string random_bytes(std::size_t n, std::mt19937_64& rng) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = rng();
    for (std::size_t k = 0; k < 8 && i + k < n; ++k) s[i + k] = static_cast<char>(v >> (8 * k));
  }
  return s;
}

// A large file written 1 MiB at a time. `mixed`: each MiB is, at random, fresh random bytes (half of them), a
// repeat of one of four random blocks (deduplicated into the same chunks) or compressible text; otherwise every
// MiB is fresh random bytes, so the file is incompressible and has no duplicate chunk.
void write_big_file(const fs::path& p, std::uint64_t mib, std::uint64_t seed, bool mixed) {
  fs::create_directories(p.parent_path());
  std::mt19937_64 rng(seed);
  std::vector<std::string> repeated;
  for (int i = 0; i < 4; ++i) repeated.push_back(random_bytes(kMiB, rng));
  std::ofstream out(p, std::ios::binary);
  for (std::uint64_t i = 0; i < mib; ++i) {
    const std::uint64_t kind = mixed ? rng() % 4 : 0;
    if (kind <= 1) {
      out << random_bytes(kMiB, rng);
    } else if (kind == 2) {
      out << repeated[rng() % repeated.size()];
    } else {
      std::string text;
      while (text.size() < kMiB) text += "block " + std::to_string(i) + " line " + std::to_string(text.size()) + "\n";
      out.write(text.data(), kMiB);
    }
  }
}

// Every entry below `root` (the root itself excluded), by relative path: its type, permission bits, and the
// SHA-256 and size of a file or the target of a link. Files are hashed as they are read, 1 MiB at a time.
std::map<std::string, std::string> digest_tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  std::vector<char> buf(kMiB);
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    // Lexically: fs::relative would resolve a link to where it points and file it under its target's name.
    const std::string rel = it->path().lexically_relative(root).string();
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o ", static_cast<unsigned>(st.st_mode & 07777));
    std::string what = mode;
    if (S_ISLNK(st.st_mode)) {
      what += "link -> " + fs::read_symlink(it->path()).string();
    } else if (S_ISDIR(st.st_mode)) {
      what += "dir";
    } else if (S_ISREG(st.st_mode)) {
      content::Sha256 h;
      std::ifstream in(it->path(), std::ios::binary);
      std::uint64_t size = 0;
      while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto n = static_cast<std::size_t>(in.gcount());
        h.update({reinterpret_cast<const std::uint8_t*>(buf.data()), n});
        size += n;
      }
      what += "file " + std::to_string(size) + " " + h.finish().hex();
    } else {
      what += "other";
    }
    out[rel] = std::move(what);
  }
  return out;
}

// True while the process runs (not yet exited; an exited child not yet waited for is a zombie, "Z").
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const std::size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

// "" when the trees are the same, else the first entry that differs (or is missing on one side).
std::string first_difference(const std::map<std::string, std::string>& want,
                             const std::map<std::string, std::string>& got) {
  for (const auto& [path, what] : want) {
    const auto it = got.find(path);
    if (it == got.end()) return path + ": missing (want " + what + ")";
    if (it->second != what) return path + ": " + it->second + ", want " + what;
  }
  for (const auto& [path, what] : got) {
    if (want.count(path) == 0) return path + ": not in the source (" + what + ")";
  }
  return "";
}

class ContentE2eTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // Fast retries; a stall is declared well after a restarted agent or server has had time to speak again.
    config_ = dir_.path() + "/server.toml";
    write_config(default_retry_count());
    stop_server();
    start_server({"--config", config_});
    ASSERT_EQ(cli({"site", "create", "XYZ", "--name", "Branch", "--parent", "ABC", "--type", "secondary"}).exit_code,
              0);
  }
  void TearDown() override {
    if (HasFailure()) {
      // What the processes said, for the failure report: the agents log each job and failure on stdout (read
      // here up to what they wrote so far), the server on stderr.
      auto tail = [](const std::string& s) { return s.size() > 4000 ? s.substr(s.size() - 4000) : s; };
      for (const auto& [name, agent] : agents_) {
        agent->wait_for_line(std::string(1, '\x01'), std::chrono::milliseconds(200));
        std::cout << "--- agent " << name << ":\n" << tail(agent->output() + agent->error_output());
      }
      if (server_) std::cout << "--- server:\n" << tail(server_->error_output());
    }
    agents_.clear();
    relays_.clear();
    ServerTest::TearDown();
    std::error_code ec;
    if (!scratch_.empty()) fs::remove_all(scratch_, ec);
  }

  // Where the DPs' data directories go: the test's directory, or for the large scenarios a directory in memory
  // (/dev/shm) when there is one. Four DPs holding a 300 MB tree write over a gigabyte;
  // on a file system mounted with `discard` merely deleting them afterwards takes about a minute, and none of
  // these scenarios is about the disk.
  std::string dp_root() {
    if (!in_memory_dps()) return dir_.path();
    if (scratch_.empty()) {
      char tmpl[] = "/dev/shm/pkgcast-e2e-dp-XXXXXX";
      if (::mkdtemp(tmpl) == nullptr) return dir_.path();
      scratch_ = tmpl;
    }
    return scratch_;
  }
  virtual bool in_memory_dps() const { return false; }

  void write_config(int retry_count) {
    std::ofstream(config_) << "distmgr_retry_count = " << retry_count << "\ndistmgr_retry_delay_seconds = 1\n"
                           << "distmgr_stall_seconds = " << stall_seconds() << "\n";
  }
  virtual int stall_seconds() const { return 10; }
  virtual int default_retry_count() const { return 4; }

  int server_port() const { return std::stoi(url_.substr(url_.rfind(':') + 1)); }

  // The server again on the port it had, data directory and database unchanged (the fixture's start_server picks
  // a new port, and the agents know the old one).
  void restart_server_on_same_port(int port) {
    std::vector<std::string> argv = {
        pkgcast_binary(), "server", "--data-dir",  data_dir_,     "--listen", "127.0.0.1:" + std::to_string(port),
        "--site-code",    "ABC",    "--site-name", "Head office", "--config", config_};
    if (!db_url_.empty()) argv.insert(argv.end(), {"--db", db_url_});
    server_ = std::make_unique<Background>(argv, std::vector<std::string>{"PKGCAST_SOURCE_ROOTS=" + dir_.path()});
    ASSERT_TRUE(server_->started());
    ASSERT_NE(server_->wait_for_line("listening on", std::chrono::seconds(60)), "") << "server did not restart:\n"
                                                                                    << server_->error_output();
  }

  struct Dp {
    std::string name, token, data_dir, listen;
  };

  // Registers a DP (its content URL on a free port) and, unless told not to, starts its agent, pointed at
  // `server` (default: the server itself; a relay's URL puts the relay in between).
  void add_dp(const std::string& name, const std::string& site, const std::string& server = "",
              const std::vector<std::string>& extra = {}, bool start = true) {
    Dp dp;
    dp.name = name;
    dp.listen = "127.0.0.1:" + std::to_string(free_port());
    dp.data_dir = dp_root() + "/dp-" + name;
    std::vector<std::string> args = {"--json", "dp", "add", name, "--site", site, "--url", "http://" + dp.listen};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    dp.token = json::parse(r.out, nullptr, false).value("token", "");
    dps_[name] = dp;
    if (start) start_agent(name, server);
  }

  // Starts (or restarts, on the same data directory) a DP's agent. `wrapper` goes before the command: a program
  // that sets up the agent's environment and then execs the rest of its arguments.
  void start_agent(const std::string& name, const std::string& server = "",
                   const std::vector<std::string>& wrapper = {}) {
    const Dp& dp = dps_[name];
    std::vector<std::string> argv = wrapper;
    argv.insert(argv.end(), {pkgcast_binary(), "--server", server.empty() ? url_ : server, "--token", dp.token,
                             "dp-agent", "--name", name, "--data-dir", dp.data_dir, "--listen", dp.listen});
    agents_[name] = std::make_unique<Background>(argv);
    ASSERT_TRUE(agents_[name]->started());
  }

  Relay& add_relay(const std::string& name) {
    relays_[name] = std::make_unique<Relay>(server_port());
    EXPECT_NE(relays_[name]->port(), 0);
    return *relays_[name];
  }

  // The command line with a timeout of its own (the fixture's cli() gives a command 60 seconds).
  RunResult cli_for(std::chrono::seconds timeout, std::vector<std::string> args) {
    args.insert(args.begin(), {pkgcast_binary(), "--server", url_, "--token-file", data_dir_ + "/admin.token"});
    return run(args, {}, timeout);
  }
  json query(const std::string& wql) {
    auto r = cli({"--json", "query", wql});
    EXPECT_EQ(r.exit_code, 0) << wql << ": " << r.err;
    return json::parse(r.out, nullptr, false);
  }
  // Targeted, Installed, Retrying, Failed of a package's Root row.
  std::vector<std::uint64_t> root(const std::string& pkg) {
    json rows = query("SELECT * FROM SMS_PackageStatusRootSummarizer WHERE PackageID = '" + pkg + "'");
    if (!rows.is_array() || rows.size() != 1) return {};
    const json& r = rows[0];
    return {r["Targeted"].get<std::uint64_t>(), r["Installed"].get<std::uint64_t>(), r["Retrying"].get<std::uint64_t>(),
            r["Failed"].get<std::uint64_t>()};
  }
  // The same four counts of a package's Detail row for one site.
  std::vector<std::uint64_t> detail(const std::string& pkg, const std::string& site) {
    json rows = query("SELECT * FROM SMS_PackageStatusDetailSummarizer WHERE PackageID = '" + pkg +
                      "' AND SiteCode = '" + site + "'");
    if (!rows.is_array() || rows.size() != 1) return {};
    const json& r = rows[0];
    return {r["Targeted"].get<std::uint64_t>(), r["Installed"].get<std::uint64_t>(), r["Retrying"].get<std::uint64_t>(),
            r["Failed"].get<std::uint64_t>()};
  }
  json dist_point(const std::string& pkg, const std::string& dp) {
    json rows = query("SELECT * FROM SMS_PackageStatusDistPointsSummarizer WHERE PackageID = '" + pkg + "'");
    for (const auto& r : rows) {
      if (r.value("ServerNALPath", "").find(dp) != std::string::npos) return r;
    }
    return rows;  // not found: every row, for the failure message
  }
  void expect_check_clean() {
    auto r = cli({"admin", "check"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  RunResult wait_distributed(const std::string& pkg, int seconds) {
    return cli_for(std::chrono::seconds(seconds + 30), {"status", pkg, "--wait", "--timeout", std::to_string(seconds)});
  }
  std::string create_package(const std::string& source, int seconds = 60) {
    auto r = cli_for(std::chrono::seconds(seconds), {"package", "create", "--name", "App", "--source", source});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  fs::path installed(const std::string& dp, const std::string& content_id) {
    return fs::path(dps_[dp].data_dir) / "content" / content_id;
  }
  std::string source_dir(const std::string& name) { return (fs::path(dir_.path()) / "sources" / name).string(); }

  // A tree of `mib` MiB of incompressible random bytes in one file, with a few small entries beside it.
  std::string make_random_source(const std::string& name, std::uint64_t mib, std::uint64_t seed) {
    const fs::path src = source_dir(name);
    write_big_file(src / "payload.bin", mib, seed, /*mixed=*/false);
    write_file(src / "bin" / "setup.sh", "#!/bin/sh\necho installing\n", fs::perms(0755));
    write_file(src / "empty.txt", "");
    return src.string();
  }

  std::string config_;
  std::string scratch_;  // the directory in memory of dp_root(), removed by TearDown
  std::map<std::string, Dp> dps_;
  std::map<std::string, std::unique_ptr<Relay>> relays_;
  std::map<std::string, std::unique_ptr<Background>> agents_;
};

// The scenarios of hundreds of megabytes: SQLite only (see the top of the file). The agent reports no progress
// while it assembles a fetched tree, which for 300 MB on two busy cores can outlast a short stall timeout (see
// ATreeThatTakesLongerToAssembleThanTheStallTimeoutStillCompletes): the stall timeout is kept well above the assembly
// time here.
class ContentLargeE2eTest : public ContentE2eTest {
 protected:
  int stall_seconds() const override { return 120; }
  bool in_memory_dps() const override { return ::access("/dev/shm", W_OK) == 0; }
};

TEST_P(ContentLargeE2eTest, FourDpsInTwoSitesHoldAMixedTreeOf300MBEntryForEntry) {
  const auto tstart = Clock::now();
  const fs::path src = source_dir("mixed");
  write_big_file(src / "big" / "disk.img", 300, 2026, /*mixed=*/true);
  write_file(src / "empty.txt", "");
  write_file(src / "deep" / "empty-too", "");
  fs::create_directories(src / "empty-dir");
  fs::create_directories(src / "deep" / "a" / "b" / "c" / "d" / "e" / "empty-leaf");
  write_file(src / "deep" / "a" / "b" / "c" / "d" / "e" / "f" / "g.txt", "seven levels down\n");
  for (int i = 0; i < 2000; ++i) {
    write_file(src / "small" / ("d" + std::to_string(i % 40)) / ("f" + std::to_string(i) + ".txt"),
               std::string(static_cast<std::size_t>(i % 97), static_cast<char>('a' + i % 26)) + std::to_string(i));
  }
  write_file(src / "données" / "résumé.txt", "non-ASCII names survive\n");
  write_file(src / "日本語" / "ファイル名.txt", "UTF-8 in every component\n", fs::perms(0600));
  write_file(src / "emoji-📦" / "ünïcödé ñame.bin", "spaces and accents\n");
  write_file(src / "bin" / "setup.sh", "#!/bin/sh\necho installing\n", fs::perms(0755));
  write_file(src / "bin" / "setuid-tool", "#!/bin/sh\n", fs::perms(04755));
  write_file(src / "conf" / "read-only.conf", "x=1\n", fs::perms(0444));
  write_file(src / "conf" / "owner-only.key", "secret\n", fs::perms(0400));
  write_file(src / "locked" / "inside.txt", "in a directory without write permission\n");
  fs::permissions(src / "locked", fs::perms(0555));
  fs::create_directories(src / "shared-tmp");
  fs::permissions(src / "shared-tmp", fs::perms(01777));
  fs::create_directories(src / "group-dir");
  fs::permissions(src / "group-dir", fs::perms(02750));
  fs::create_symlink("bin/setup.sh", src / "setup-link");
  fs::create_symlink("../../../données/résumé.txt", src / "deep" / "a" / "b" / "up-link");
  fs::create_symlink("small/d3", src / "dir-link");
  const auto tgen = Clock::now();
  const auto want = digest_tree(src);
  ASSERT_GT(want.size(), 2050u);
  std::cout << "[ timing ] generate " << std::chrono::duration<double>(tgen - tstart).count() << " s, digest "
            << std::chrono::duration<double>(Clock::now() - tgen).count() << " s" << std::endl;

  for (auto [name, site] : {std::pair{"dp1", "ABC"}, {"dp2", "ABC"}, {"dp3", "XYZ"}, {"dp4", "XYZ"}}) {
    add_dp(name, site);
  }
  const auto t0 = Clock::now();
  const std::string pkg = create_package(src.string(), 300);
  ASSERT_EQ(pkg.size(), 8u);
  const auto t1 = Clock::now();
  auto d = cli({"distribute", pkg, "--site", "ABC", "--site", "XYZ"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto waited = wait_distributed(pkg, 300);
  ASSERT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  const auto t2 = Clock::now();
  std::cout << "[ timing ] 300 MB ingest " << std::chrono::duration<double>(t1 - t0).count() << " s, to 4 DPs "
            << std::chrono::duration<double>(t2 - t1).count() << " s" << std::endl;
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{4, 4, 0, 0}));
  EXPECT_EQ(detail(pkg, "ABC"), (std::vector<std::uint64_t>{2, 2, 0, 0}));
  EXPECT_EQ(detail(pkg, "XYZ"), (std::vector<std::uint64_t>{2, 2, 0, 0}));
  for (const char* dp : {"dp1", "dp2", "dp3", "dp4"}) {
    EXPECT_EQ(first_difference(want, digest_tree(installed(dp, pkg + ".1"))), "") << dp;
  }
  expect_check_clean();
  std::cout << "[ timing ] compare and check " << std::chrono::duration<double>(Clock::now() - t2).count() << " s"
            << std::endl;
}

// The fair bound on what a restarted agent refetches. With P the bytes the server sends an agent for a clean,
// uninterrupted install (measured the same way, through a relay, by a second DP at the same time) and B the bytes
// it had sent the killed agent, a restart that lost nothing would cost at most P - B: what B carried is either
// kept (verified chunks in the cache, a cut chunk resumed with Range) or was overhead that P also counts (the
// manifest, headers, job events). The restart may add the manifest again, its own job listing, and the chunks in
// flight at the kill; all of that must stay within 10% of B. The payload is incompressible random bytes with no
// repeated chunk, so zstd (if the agent asks for it) changes neither P nor the rest.
TEST_P(ContentLargeE2eTest, AnAgentKilledMidTransferResumesWithoutRefetchingWhatItHad) {
  const std::uint64_t payload = 500 * kMiB;
  const std::string source = make_random_source("big", 500, 77);
  Relay& victim_relay = add_relay("victim");
  Relay& clean_relay = add_relay("clean");
  add_dp("victim", "ABC", victim_relay.url());
  add_dp("clean", "XYZ", clean_relay.url());
  const std::string pkg = create_package(source, 300);
  ASSERT_EQ(pkg.size(), 8u);

  victim_relay.hold_at(payload * 2 / 5);  // the agent gets 40% of the bytes, then the wire goes quiet
  const auto t0 = Clock::now();
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "victim", "--dp", "clean"}).exit_code, 0);
  ASSERT_TRUE(victim_relay.wait_held(std::chrono::seconds(180))) << "the transfer never reached 40%";
  ASSERT_EQ(agents_["victim"]->stop(SIGKILL), -1);
  const std::uint64_t before = victim_relay.bytes_to_client();
  ASSERT_FALSE(fs::exists(installed("victim", pkg + ".1"))) << "killed after the install, not in the middle";
  victim_relay.release();
  start_agent("victim", victim_relay.url());

  auto waited = wait_distributed(pkg, 300);
  ASSERT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  const auto t1 = Clock::now();
  const std::uint64_t after = victim_relay.bytes_to_client() - before;
  const std::uint64_t clean = clean_relay.bytes_to_client();
  std::cout << "[ bytes  ] clean install " << clean << ", killed agent: " << before << " before the kill, " << after
            << " after the restart (" << std::chrono::duration<double>(t1 - t0).count() << " s)" << std::endl;
  ASSERT_GE(clean, payload);
  ASSERT_LT(before, clean);
  EXPECT_LE(after, (clean - before) + before / 10)
      << "the restarted agent refetched " << (after + before - clean) << " bytes of the " << before << " it had";
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{2, 2, 0, 0}));
  const auto want = digest_tree(source);
  EXPECT_EQ(first_difference(want, digest_tree(installed("victim", pkg + ".1"))), "");
  EXPECT_EQ(first_difference(want, digest_tree(installed("clean", pkg + ".1"))), "");
  expect_check_clean();
}

// A final check that outlasts the stall timeout. After its last chunk the agent still hashes every file whole,
// syncs and publishes the tree; if it said nothing meanwhile, the server would take the DP for stalled and issue a
// new generation, which would start the work over, again and again until the retries ran out. The agent goes on
// reporting progress, unchanged, as a heartbeat. Here the stall timeout is 2 s and the tree 32 MiB plus 1,500
// files, whose final check takes longer than that on two shared cores.
class ContentStallE2eTest : public ContentE2eTest {
 protected:
  int stall_seconds() const override { return 2; }
  int default_retry_count() const override { return 1; }
};

TEST_P(ContentStallE2eTest, ATreeThatTakesLongerToAssembleThanTheStallTimeoutStillCompletes) {
  const std::string source = make_random_source("app", 32, 21);
  for (int i = 0; i < 1500; ++i) {
    write_file(fs::path(source) / "small" / ("d" + std::to_string(i % 40)) / ("f" + std::to_string(i)),
               std::to_string(i));
  }
  add_dp("dp1", "ABC");
  const std::string pkg = create_package(source);
  ASSERT_EQ(pkg.size(), 8u);
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1"}).exit_code, 0);
  auto waited = wait_distributed(pkg, 120);
  EXPECT_EQ(waited.exit_code, 0) << waited.out.substr(waited.out.size() > 2000 ? waited.out.size() - 2000 : 0);
  const json job = query("SELECT * FROM PKG_DPJob WHERE PackageID = '" + pkg + "'");
  ASSERT_EQ(job.size(), 1u);
  std::cout << "[ stall  ] generation " << job[0]["Generation"] << ", BytesDone " << job[0]["BytesDone"] << " of "
            << job[0]["BytesTotal"] << ", installed on disk: " << fs::exists(installed("dp1", pkg + ".1")) << std::endl;
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{1, 1, 0, 0}));
  EXPECT_EQ(first_difference(digest_tree(source), digest_tree(installed("dp1", pkg + ".1"))), "");
}

TEST_P(ContentE2eTest, AServerKilledMidTransferIsWaitedForAndEveryDpCompletes) {
  const std::string source = make_random_source("app", 48, 11);
  write_file(fs::path(source) / "docs" / "readme.txt", "a second file\n");
  const int port = server_port();
  // dp1 talks to the server directly, slowed to 8 MiB/s so that it is mid-transfer when the server dies; dp2 goes
  // through a relay that holds the wire at a third of the payload, so the kill finds it mid-transfer too.
  add_dp("dp1", "ABC", "", {"--transfer-rate", "8192"});
  Relay& relay = add_relay("dp2");
  add_dp("dp2", "XYZ", relay.url());
  const std::string pkg = create_package(source);
  ASSERT_EQ(pkg.size(), 8u);
  relay.hold_at(16 * kMiB);
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1", "--dp", "dp2"}).exit_code, 0);
  ASSERT_TRUE(relay.wait_held(std::chrono::seconds(60)));
  ASSERT_EQ(server_->stop(SIGKILL), -1);
  server_.reset();
  ASSERT_FALSE(fs::exists(installed("dp1", pkg + ".1"))) << "dp1 finished before the server died";
  relay.release();
  // Down long enough for both agents to fail their downloads and their reconnects a few times.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_TRUE(running(agents_["dp1"]->pid()) && running(agents_["dp2"]->pid())) << "an agent gave up on its server";
  restart_server_on_same_port(port);

  auto waited = wait_distributed(pkg, 180);
  ASSERT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{2, 2, 0, 0}));
  EXPECT_EQ(detail(pkg, "ABC"), (std::vector<std::uint64_t>{1, 1, 0, 0}));
  EXPECT_EQ(detail(pkg, "XYZ"), (std::vector<std::uint64_t>{1, 1, 0, 0}));
  for (const char* dp : {"dp1", "dp2"}) {
    const json row = dist_point(pkg, dp);
    EXPECT_EQ(row.value("State", -1), 0) << row;  // INSTALLED
  }
  const auto want = digest_tree(source);
  EXPECT_EQ(first_difference(want, digest_tree(installed("dp1", pkg + ".1"))), "");
  EXPECT_EQ(first_difference(want, digest_tree(installed("dp2", pkg + ".1"))), "");
  expect_check_clean();
}

TEST_P(ContentE2eTest, AByteFlippedInAChunkOnTheWireIsCaughtAndTheChunkRefetched) {
  const std::string source = make_random_source("app", 16, 5);
  Relay& relay = add_relay("dp1");
  add_dp("dp1", "ABC", relay.url());
  const std::string pkg = create_package(source);
  ASSERT_EQ(pkg.size(), 8u);
  relay.corrupt_next_chunk_body();
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1"}).exit_code, 0);
  auto waited = wait_distributed(pkg, 120);
  ASSERT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  const std::string corrupted = relay.corrupted_target();
  ASSERT_NE(corrupted, "") << "no chunk answer went through the relay";
  EXPECT_GE(relay.requests_for(corrupted), 2) << corrupted << " was not fetched again";
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{1, 1, 0, 0}));
  EXPECT_EQ(first_difference(digest_tree(source), digest_tree(installed("dp1", pkg + ".1"))), "");
  expect_check_clean();
}

// The agent's data directory on a tmpfs of 8 MiB, mounted in a mount namespace of the agent's own (unshare), so
// nothing outside the agent sees it and it goes away with the agent; without the privileges for that, a file-size
// limit (RLIMIT_FSIZE, with SIGXFSZ ignored so writes fail with EFBIG) stands in; without either, the test skips.
TEST_P(ContentE2eTest, AFullDiskIsReportedAndTheDpCompletesOnceThereIsRoom) {
  std::vector<std::string> wrapper;
  bool tmpfs = false;
  if (run({"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
           "mount -t tmpfs -o size=1m tmpfs /mnt"})
          .exit_code == 0) {
    tmpfs = true;
    wrapper = {"/usr/bin/unshare",
               "--mount",
               "--propagation",
               "private",
               "/bin/sh",
               "-c",
               "mkdir -p \"$0\" && mount -t tmpfs -o size=8m tmpfs \"$0\" && exec \"$@\""};
  } else if (run({"/bin/sh", "-c", "trap '' XFSZ; ulimit -f 4096"}).exit_code == 0) {
    wrapper = {"/bin/sh", "-c", "trap '' XFSZ; ulimit -f 4096 && exec \"$@\"", "sh"};
  } else {
    GTEST_SKIP() << "neither a private tmpfs (unshare --mount) nor a file-size limit (ulimit -f) can be set up";
  }
  // One retry, so that the failure is final quickly.
  write_config(1);
  stop_server();
  start_server({"--config", config_});

  const std::string source = make_random_source("app", 24, 3);
  add_dp("dp1", "ABC", "", {}, /*start=*/false);
  if (tmpfs) wrapper.push_back(dps_["dp1"].data_dir);  // $0 of the wrapper: where the tmpfs goes
  start_agent("dp1", "", wrapper);
  const std::string pkg = create_package(source);
  ASSERT_EQ(pkg.size(), 8u);
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1"}).exit_code, 0);
  auto waited = wait_distributed(pkg, 120);
  EXPECT_EQ(waited.exit_code, 1) << waited.out << waited.err;
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{1, 0, 0, 1}));
  const json row = dist_point(pkg, "dp1");
  EXPECT_EQ(row.value("State", -1), 3) << row;  // INSTALL_FAILED
  const std::string status = row.value("InstallStatus", "");
  std::cout << "[ status ] " << (tmpfs ? "tmpfs of 8 MiB" : "file-size limit") << ": " << status << std::endl;
  if (tmpfs) {
    EXPECT_NE(status.find("WBEM_E_OUT_OF_DISK_SPACE"), std::string::npos) << row;
  } else {
    EXPECT_NE(status, "") << row;
    EXPECT_EQ(status.find("stalled"), std::string::npos) << "the agent's own error never reached the server: " << row;
  }
  expect_check_clean();

  // Room again: the agent without the limit, on the same data directory, and a redistribution.
  ASSERT_EQ(agents_["dp1"]->stop(SIGTERM), 0);
  start_agent("dp1");
  ASSERT_EQ(cli({"redistribute", pkg, "--dp", "dp1"}).exit_code, 0);
  waited = wait_distributed(pkg, 120);
  ASSERT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  EXPECT_EQ(root(pkg), (std::vector<std::uint64_t>{1, 1, 0, 0}));
  EXPECT_EQ(first_difference(digest_tree(source), digest_tree(installed("dp1", pkg + ".1"))), "");
  expect_check_clean();
}

INSTANTIATE_TEST_SUITE_P(Backends, ContentE2eTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, ContentStallE2eTest, ::testing::Values(std::string("sqlite")),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, ContentLargeE2eTest, ::testing::Values(std::string("sqlite")),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pkgcast::testing
