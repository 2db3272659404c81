// `pkgcast demo`: the main job in one command (design.md section 6). A site server on an embedded SQLite database in
// a fresh directory, two sites with two DP agents each as real child processes on loopback, a sample package
// distributed with live progress until every DP has it, then the root and detail summaries. `--keep` leaves it all
// running until Ctrl-C; otherwise every child is stopped and the directory removed.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/verb.h"
#include "core/mutex.h"
#include "core/paths.h"

namespace pkgcast::cli {
namespace {

namespace fs = std::filesystem;
using cim::Json;

// What an interrupted demo must undo, shared by the demo and its signal watcher: the children still running and the
// directory to remove. Whoever cleans up holds the mutex until the process ends, so the two never race.
struct Cleanup {
  Mutex mu;
  std::set<pid_t> children PKG_GUARDED_BY(mu);
  fs::path remove_dir PKG_GUARDED_BY(mu);  // empty: kept (a --dir, or a failed run's logs)
};
// Never destroyed: the signal thread may take it while the process is exiting.
Cleanup& g_cleanup = *new Cleanup;

// A child process of the demo: this binary with other arguments. It dies with the demo (PR_SET_PDEATHSIG), and is
// stopped with SIGTERM (then SIGKILL) when the demo ends. It inherits none of the caller's PKGCAST_* settings (a
// PKGCAST_DB or PKGCAST_CONFIG meant for a real site must not receive the demo's rows), only `env`.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::vector<std::string>& env, const fs::path& log) {
    // Everything the child needs is built before the fork: between fork and exec it only calls the kernel.
    const std::string self = fs::read_symlink("/proc/self/exe").string();
    std::vector<std::string> argv_text = {self};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<std::string> env_text;
    for (char** e = environ; *e != nullptr; ++e) {
      if (!std::string_view(*e).starts_with("PKGCAST_")) env_text.emplace_back(*e);
    }
    env_text.insert(env_text.end(), env.begin(), env.end());
    std::vector<char*> argv, envp;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_text) envp.push_back(e.data());
    envp.push_back(nullptr);
    int out[2];
    if (::pipe(out) != 0) return;
    const pid_t parent = ::getpid();
    MutexLock lock(g_cleanup.mu);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
      // The demo waits for SIGINT and SIGTERM on a thread of its own with them blocked; the child takes them.
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::dup2(out[1], STDOUT_FILENO);
      const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
      // Nothing else of the demo's reaches the child: another child's pipe or a client socket held open by it
      // would keep that peer from seeing the demo end.
      ::close_range(STDERR_FILENO + 1, ~0U, 0);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
    if (pid_ > 0) g_cleanup.children.insert(pid_);
  }
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }

  // The first line of the child's output that contains `needle`, or "" after the timeout or when it exited.
  std::string wait_for_line(std::string_view needle, std::chrono::seconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    std::string buffer;
    while (std::chrono::steady_clock::now() < until) {
      fd_set set;
      FD_ZERO(&set);
      FD_SET(out_, &set);
      timeval tv{0, 100'000};
      if (::select(out_ + 1, &set, nullptr, nullptr, &tv) <= 0) continue;
      char chunk[512];
      const ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer.append(chunk, static_cast<std::size_t>(n));
      for (std::size_t nl; (nl = buffer.find('\n')) != std::string::npos; buffer.erase(0, nl + 1)) {
        const std::string line = buffer.substr(0, nl);
        if (line.find(needle) != std::string::npos) return line;
      }
    }
    return "";
  }

  void stop() {
    if (pid_ <= 0) return;
    {
      MutexLock lock(g_cleanup.mu);
      g_cleanup.children.erase(pid_);
    }
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (out_ >= 0) ::close(out_);
    out_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

int any_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  return ok ? ntohs(addr.sin_port) : 0;
}

// A loopback port free now, and not one this demo handed out before: the kernel may give a port just closed again,
// and two agents told the same port would leave one DP without its agent.
int free_port() {
  static std::set<int> given;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int port = any_free_port();
    if (port == 0) return 0;
    if (given.insert(port).second) return port;
  }
  return 0;
}

// A sample source tree: a few programs and libraries of random bytes, documentation that compresses, many small
// files, an empty directory.
void make_sample(const fs::path& root) {
  std::mt19937_64 rng(2026);
  auto random_file = [&](const fs::path& p, std::size_t size) {
    fs::create_directories(p.parent_path());
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; i += 8) {
      const std::uint64_t v = rng();
      for (std::size_t k = 0; k < 8 && i + k < size; ++k) bytes[i + k] = static_cast<char>(v >> (8 * k));
    }
    std::ofstream(p, std::ios::binary) << bytes;
  };
  random_file(root / "bin" / "sample-app", 24u << 20);
  fs::permissions(root / "bin" / "sample-app", fs::perms(0755));
  random_file(root / "lib" / "libsample.so.1", 12u << 20);
  std::string manual;
  while (manual.size() < (4u << 20)) manual += "Sample application manual, line " + std::to_string(manual.size()) + ".\n";
  fs::create_directories(root / "share" / "doc");
  std::ofstream(root / "share" / "doc" / "manual.txt") << manual;
  for (int i = 0; i < 200; ++i) {
    fs::create_directories(root / "share" / "locale");
    std::ofstream(root / "share" / "locale" / ("messages-" + std::to_string(i) + ".txt")) << "message " << i << "\n";
  }
  fs::create_directories(root / "var" / "empty");
  std::ofstream(root / "install.sh") << "#!/bin/sh\nexec cp -r . /opt/sample\n";
  fs::permissions(root / "install.sh", fs::perms(0755));
}

// SIGINT and SIGTERM, taken by a thread of their own (blocked everywhere else). While the demo runs, one stops every
// child, removes a fresh directory and ends the demo with 130; once `--keep` waits for it, one ends that wait.
std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_keep_waiting{false};

void watch_signals(sigset_t signals) {
  int sig = 0;
  if (::sigwait(&signals, &sig) != 0) return;
  if (g_keep_waiting.load()) {
    g_interrupted.store(true);
    return;
  }
  MutexLock lock(g_cleanup.mu);  // held until the process ends: the demo's own cleanup waits and never runs
  for (const pid_t pid : g_cleanup.children) ::kill(pid, SIGTERM);
  for (int i = 0; i < 100 && !g_cleanup.children.empty(); ++i) {
    for (auto it = g_cleanup.children.begin(); it != g_cleanup.children.end();) {
      it = ::waitpid(*it, nullptr, WNOHANG) == *it ? g_cleanup.children.erase(it) : std::next(it);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (const pid_t pid : g_cleanup.children) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  std::error_code ec;
  if (!g_cleanup.remove_dir.empty()) fs::remove_all(g_cleanup.remove_dir, ec);
  std::cerr << "\ndemo: interrupted; every process stopped" << std::endl;
  std::_Exit(130);  // for SIGTERM too (docs/demo.md): "interrupted", whichever way
}

struct DemoOptions {
  bool keep = false;
  std::string dir;
};

int run_demo(CliContext& ctx, const DemoOptions& o) {
  std::error_code ec;
  // Absolute, for the server's PKGCAST_SOURCE_ROOTS and the agents' data directories.
  const fs::path dir = o.dir.empty() ? fs::temp_directory_path() / ("pkgcast-demo-" + std::to_string(::getpid()))
                                     : fs::absolute(o.dir, ec);
  if (dir.empty()) {
    std::cerr << "demo: cannot resolve --dir " << o.dir << ": " << ec.message() << std::endl;
    return kExitUsage;
  }
  if (fs::exists(dir) && !fs::is_empty(dir, ec)) {
    std::cerr << "demo: " << dir << " is not empty; name a fresh directory with --dir" << std::endl;
    return kExitUsage;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread(watch_signals, signals).detach();
  fs::create_directories(dir / "sources", ec);
  if (o.dir.empty()) {
    MutexLock lock(g_cleanup.mu);
    g_cleanup.remove_dir = dir;
  }
  std::cout << "pkgcast demo in " << dir.string() << std::endl;

  // 1. The site server.
  std::cout << "starting a site server (site DEM, SQLite) ..." << std::endl;
  auto server = std::make_unique<Child>(
      std::vector<std::string>{"server", "--data-dir", (dir / "server").string(), "--listen", "127.0.0.1:0",
                               "--site-code", "DEM", "--site-name", "Demo head office"},
      std::vector<std::string>{"PKGCAST_SOURCE_ROOTS=" + (dir / "sources").string()}, dir / "server.log");
  const std::string listening = server->wait_for_line("listening on", std::chrono::seconds(30));
  if (listening.empty()) {
    std::cerr << "demo: the server did not start; see " << (dir / "server.log").string() << std::endl;
    return kExitError;
  }
  std::string url = listening.substr(listening.find("http"));
  while (!url.empty() && (url.back() == ' ' || url.back() == '\r')) url.pop_back();
  ctx.options.server = url;
  ctx.options.token_file = (dir / "server" / "admin.token").string();
  ctx.options.token.clear();
  auto must = [&](std::string_view method, const std::string& target, const Json& body) -> Result<Json> {
    return ctx.call(method, target, &body);
  };

  // 2. Sites, DPs and their agents.
  std::vector<std::unique_ptr<Child>> agents;
  if (auto r = must("POST", "/api/v1/sites", Json{{"code", "BR1"}, {"name", "Demo branch"}, {"parent", "DEM"},
                                                {"type", "secondary"}});
      !r.ok()) {
    return ctx.fail(r.error());
  }
  for (auto [name, site] : {std::pair{"dem-dp1", "DEM"}, {"dem-dp2", "DEM"}, {"br1-dp1", "BR1"}, {"br1-dp2", "BR1"}}) {
    const std::string agent_url = "127.0.0.1:" + std::to_string(free_port());
    auto dp = must("POST", "/api/v1/dps", Json{{"name", name}, {"site", site}, {"url", "http://" + agent_url}});
    if (!dp.ok()) return ctx.fail(dp.error());
    // The agent's token in a file only its owner reads, not on its command line (which every local user can list).
    const std::filesystem::path token_file = dir / ("dp-" + std::string(name) + ".token");
    if (Status saved = write_file_atomic(token_file.string(), (*dp)["token"].get<std::string>(), 0600); !saved.ok()) {
      return ctx.fail(saved.error());
    }
    const fs::path agent_log = dir / ("dp-" + std::string(name) + ".log");
    agents.push_back(std::make_unique<Child>(
        std::vector<std::string>{"--server", url, "--token-file", token_file.string(), "dp-agent", "--name", name,
                                 "--data-dir", (dir / "dps" / name).string(), "--listen", agent_url},
        std::vector<std::string>{}, agent_log));
    // An agent that could not start (its port taken meanwhile by another program) fails the demo now, with its
    // log, rather than a two-minute wait for a DP that will never answer.
    if (agents.back()->wait_for_line("pkgcast dp-agent", std::chrono::seconds(30)).empty()) {
      std::cerr << "demo: the agent of DP " << name << " did not start; see " << agent_log.string() << std::endl;
      MutexLock lock(g_cleanup.mu);
      g_cleanup.remove_dir.clear();
      return kExitError;
    }
    std::cout << "  DP " << name << " in site " << site << ": agent serving on http://" << agent_url << std::endl;
  }

  // 3. A sample package, a program and an advertisement, distributed to both sites.
  std::cout << "creating a sample package (40 MB) ..." << std::endl;
  make_sample(dir / "sources" / "sample");
  auto pkg = must("POST", "/api/v1/packages",
                  Json{{"name", "Sample App"}, {"version", "1.0"}, {"manufacturer", "pkgcast"},
                       {"source", (dir / "sources" / "sample").string()}});
  if (!pkg.ok()) return ctx.fail(pkg.error());
  const std::string id = (*pkg)["PackageID"].get<std::string>();
  (void)must("POST", "/api/v1/packages/" + id + "/programs",
             Json{{"name", "Install"}, {"command_line", "install.sh"}});
  (void)must("POST", "/api/v1/advertisements",
             Json{{"package_id", id}, {"program", "Install"}, {"collection", "SMS00001"}});
  std::cout << "distributing " << id << " to sites DEM and BR1 ..." << std::endl;
  if (auto r = must("POST", "/api/v1/packages/" + id + "/distribute", Json{{"sites", {"DEM", "BR1"}}}); !r.ok()) {
    return ctx.fail(r.error());
  }

  // 4. Live progress until every DP has it. Not there within two minutes is a failed demo (exit 1, docs/demo.md),
  // whether a DP failed or is still retrying; its directory is kept for the logs.
  const int status = run_package_status(ctx, id, /*wait=*/true, 120.0) == kExitOk ? kExitOk : kExitError;
  if (status != kExitOk) {
    MutexLock lock(g_cleanup.mu);
    g_cleanup.remove_dir.clear();
  }
  std::cout << std::endl;

  // 5. The summaries, as a ConfigMgr script would query them (the root summarizer has no SiteCode).
  const std::vector<std::string> counts = {"SourceVersion", "Targeted", "Installed", "Retrying", "Failed"};
  for (const char* cls : {"SMS_PackageStatusRootSummarizer", "SMS_PackageStatusDetailSummarizer"}) {
    Json body = {{"query", std::string("SELECT * FROM ") + cls + " WHERE PackageID = '" + id + "'"}};
    auto rows = ctx.call("POST", "/api/v1/query", &body);
    if (!rows.ok()) return ctx.fail(rows.error());
    std::cout << cls << ":" << std::endl;
    std::vector<std::string> columns = {"PackageID"};
    if (std::string_view(cls) == "SMS_PackageStatusDetailSummarizer") columns.push_back("SiteCode");
    columns.insert(columns.end(), counts.begin(), counts.end());
    print_table(rows_of((*rows)["instances"]), columns);
  }
  // With --keep, the dashboard's URL signs in from its fragment (which a browser never sends to a server); without,
  // the server stops in a moment and its token is of no use to anyone.
  std::string token;
  if (o.keep) std::getline(std::ifstream(ctx.options.token_file), token);
  const std::string dashboard = url + "/" + (token.empty() ? "" : "#token=" + token);
  // Before the line that says so: whoever reads it may interrupt at once.
  if (o.keep) g_keep_waiting.store(true);
  std::cout << std::endl
            << (status == kExitOk ? "every DP has the package."
                                  : "the distribution did not complete; see the logs in " + dir.string() + " (kept)")
            << std::endl
            << "dashboard: " << dashboard << (o.keep ? "" : "   (stopped with the demo; --keep keeps it up)")
            << std::endl
            << "server: " << url << "   (admin token: " << ctx.options.token_file << ")" << std::endl
            << "try:    pkgcast --server " << url << " --token-file " << ctx.options.token_file
            << " query \"SELECT * FROM SMS_PackageStatusDistPointsSummarizer\"" << std::endl;

  if (o.keep) {
    std::cout << "--keep: the server and its DP agents keep running; Ctrl-C stops them." << std::endl;
    while (!g_interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  agents.clear();
  server.reset();
  MutexLock lock(g_cleanup.mu);
  if (!g_cleanup.remove_dir.empty()) fs::remove_all(g_cleanup.remove_dir, ec);
  return status;
}

}  // namespace

void add_demo_command(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<DemoOptions>();
  auto* demo = app.add_subcommand("demo", "The main job in one command: a server, two sites, four DP agents, a package "
                                          "distributed live");
  demo->add_flag("--keep", o->keep, "keep the server and agents running until Ctrl-C");
  demo->add_option("--dir", o->dir, "an empty directory to work in (kept afterwards); default: a fresh one, removed");
  demo->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_demo(ctx, *o); }; });
}

}  // namespace pkgcast::cli
