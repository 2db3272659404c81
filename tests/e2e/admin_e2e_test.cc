// The administrative command line against a real server process, on both backends.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/paths.h"
#include "server_fixture.h"

namespace pkgcast::testing {
namespace {

using nlohmann::json;

json parse_out(const RunResult& r) {
  auto j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out << r.err;
  return j;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

class AdminE2eTest : public ServerTest {};

TEST_P(AdminE2eTest, FirstStartWritesAPrivateAdminToken) {
  struct stat st {};
  ASSERT_EQ(stat((data_dir_ + "/admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(admin_token().rfind("pkc_", 0), 0u);
  auto health = http("")->request("GET", "/api/v1/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200u);
  auto no_token = http("")->request("GET", "/api/v1/packages");
  ASSERT_TRUE(no_token.ok());
  EXPECT_EQ(no_token->status, 401u);
}

TEST_P(AdminE2eTest, TheWholeAdministrativeJob) {
  // Hierarchy and DPs.
  auto central = cli({"site", "create", "CEN", "--name", "Central", "--type", "central"});
  EXPECT_EQ(central.exit_code, 1) << "ABC is already the top of the hierarchy: " << central.out << central.err;
  auto branch = cli({"site", "create", "XYZ", "--name", "Branch", "--parent", "ABC", "--type", "secondary"});
  ASSERT_EQ(branch.exit_code, 0) << branch.err;
  auto dp = cli({"--json", "dp", "add", "dp1.example", "--site", "ABC", "--url", "http://127.0.0.1:9999"});
  ASSERT_EQ(dp.exit_code, 0) << dp.err;
  json dp_json = parse_out(dp);
  EXPECT_EQ(dp_json["__CLASS"], "SMS_DistributionPointInfo");
  EXPECT_EQ(dp_json["NALPath"], R"(["Display=\\dp1.example\"]MSWNET:["SMS_SITE=ABC"]\\dp1.example\)");
  EXPECT_EQ(dp_json["token"].get<std::string>().rfind("pkc_", 0), 0u);
  auto plain_dp = cli({"dp", "add", "dp2.example", "--site", "XYZ"});
  ASSERT_EQ(plain_dp.exit_code, 0) << plain_dp.err;
  EXPECT_EQ(first_line(plain_dp.out).rfind("pkc_", 0), 0u) << "dp add prints the DP's token";

  // A package with source files, a program, an advertisement.
  const std::string source = dir_.path() + "/src";
  std::filesystem::create_directories(source + "/bin");
  std::ofstream(source + "/setup.sh") << "#!/bin/sh\necho installing\n";
  std::ofstream(source + "/bin/tool") << std::string(5000, 'x');
  auto pkg = cli({"--json", "package", "create", "--name", "Office", "--version", "16", "--manufacturer",
                  "Contoso", "--source", source});
  ASSERT_EQ(pkg.exit_code, 0) << pkg.err;
  json pkg_json = parse_out(pkg);
  EXPECT_EQ(pkg_json["__CLASS"], "SMS_Package");
  EXPECT_EQ(pkg_json["PackageID"], "ABC00001");
  EXPECT_EQ(pkg_json["SourceVersion"], 1);
  EXPECT_EQ(pkg_json["PkgSourceFlag"], 2);
  auto bare = cli({"package", "create", "--name", "Settings only"});
  ASSERT_EQ(bare.exit_code, 0) << bare.err;
  EXPECT_EQ(first_line(bare.out), "ABC00002");

  ASSERT_EQ(cli({"program", "create", "ABC00001", "--name", "Install", "--command-line", "setup.sh --quiet"}).exit_code, 0);
  auto ad = cli({"advertisement", "create", "ABC00001", "--program", "Install", "--collection", "SMS00001"});
  ASSERT_EQ(ad.exit_code, 0) << ad.err;
  EXPECT_EQ(first_line(ad.out).substr(0, 3), "ABC");

  // Lists and queries.
  auto list = cli({"--json", "package", "list"});
  ASSERT_EQ(list.exit_code, 0);
  EXPECT_EQ(parse_out(list).size(), 2u);
  auto table = cli({"package", "list"});
  EXPECT_NE(table.out.find("Office"), std::string::npos);
  auto root = cli({"--json", "query", "SELECT * FROM SMS_PackageStatusRootSummarizer WHERE PackageID = 'abc00001'"});
  ASSERT_EQ(root.exit_code, 0) << root.err;
  json rows = parse_out(root);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["Targeted"], 0);
  EXPECT_EQ(rows[0]["Name"], "Office");
  auto detail = cli({"--json", "query", "select PackageID, SiteCode from SMS_PackageStatusDetailSummarizer"});
  ASSERT_EQ(detail.exit_code, 0);
  EXPECT_EQ(parse_out(detail).size(), 2u);
  // A join's table shows each class's properties as columns "Alias.Property", not its objects' class names.
  auto joined = cli({"query",
                     "SELECT P.Name, D.SiteCode FROM SMS_Package AS P JOIN SMS_PackageStatusDetailSummarizer "
                     "AS D ON P.PackageID = D.PackageID WHERE P.PackageID = 'ABC00001'"});
  ASSERT_EQ(joined.exit_code, 0) << joined.err;
  EXPECT_NE(joined.out.find("P.Name"), std::string::npos) << joined.out;
  EXPECT_NE(joined.out.find("D.SiteCode"), std::string::npos) << joined.out;
  EXPECT_NE(joined.out.find("Office"), std::string::npos) << joined.out;
  EXPECT_EQ(joined.out.find("<SMS_Package>"), std::string::npos) << joined.out;
  auto offers = cli({"--json", "advertisement", "list", "--site", "ABC"});
  ASSERT_EQ(offers.exit_code, 0) << offers.err;

  // A package that is advertised cannot be deleted; the other can.
  auto refused = cli({"package", "delete", "ABC00001"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err.rfind("error: WBEM_E_INVALID_OPERATION: ", 0), 0u) << refused.err;
  EXPECT_EQ(cli({"package", "delete", "ABC00002"}).exit_code, 0);
  EXPECT_EQ(cli({"package", "show", "ABC00002"}).exit_code, 1);
}

TEST_P(AdminE2eTest, RolesAreEnforced) {
  auto ro = cli({"token", "create", "--role", "read-only"});
  ASSERT_EQ(ro.exit_code, 0) << ro.err;
  const std::string reader = first_line(ro.out);
  auto pa = cli({"token", "create", "--role", "package-admin"});
  const std::string packager = first_line(pa.out);

  EXPECT_EQ(cli_with_token(reader, {"query", "SELECT * FROM SMS_Site"}).exit_code, 0);
  auto denied = cli_with_token(reader, {"package", "create", "--name", "X"});
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_EQ(denied.err.rfind("error: WBEM_E_ACCESS_DENIED", 0), 0u) << denied.err;
  EXPECT_EQ(cli_with_token(packager, {"package", "create", "--name", "X"}).exit_code, 0);
  EXPECT_EQ(cli_with_token(packager, {"site", "create", "QQQ", "--name", "Q", "--parent", "ABC"}).exit_code, 1);
  EXPECT_EQ(cli_with_token(packager, {"token", "create", "--role", "full-admin"}).exit_code, 1);
  auto unknown = cli_with_token("pkc_not-a-token", {"query", "SELECT * FROM SMS_Site"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("WBEM_E_ACCESS_DENIED"), std::string::npos);

  // A site-limited reader sees only its site.
  ASSERT_EQ(cli({"site", "create", "XYZ", "--name", "Branch", "--parent", "ABC", "--type", "secondary"}).exit_code, 0);
  const std::string limited = first_line(cli({"token", "create", "--role", "read-only", "--site", "XYZ"}).out);
  auto sites = cli_with_token(limited, {"--json", "query", "SELECT SiteCode FROM SMS_Site"});
  ASSERT_EQ(sites.exit_code, 0) << sites.err;
  json rows = parse_out(sites);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["SiteCode"], "XYZ");
  EXPECT_FALSE(rows[0].contains("SiteName")) << "a projected row carries only what was selected, and the keys";
}

TEST_P(AdminE2eTest, ErrorsAndUsage) {
  auto usage = cli({"package", "create"});
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
  auto unknown = cli({"no-such-command"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("'pkgcast' has no command 'no-such-command'"), std::string::npos) << unknown.err;
  EXPECT_EQ(cli({"token", "create", "--role", "bogus"}).exit_code, 2);
  auto bad_query = cli({"query", "SELECT * SMS_Package"});
  EXPECT_EQ(bad_query.exit_code, 1);
  EXPECT_EQ(first_line(bad_query.err), "error: WBEM_E_INVALID_QUERY: expected FROM at 1:10");
  auto bad_class = cli({"--json", "query", "SELECT * FROM SMS_Nope"});
  EXPECT_EQ(bad_class.exit_code, 1);
  json err = parse_out(bad_class);
  EXPECT_EQ(err["error"], "WBEM_E_INVALID_CLASS");
  EXPECT_EQ(err["hresult"], "0x80041010");
  auto bad_ns = cli({"--namespace", R"(root\sms\site_ZZZ)", "query", "SELECT * FROM SMS_Site"});
  EXPECT_EQ(bad_ns.exit_code, 1);
  EXPECT_NE(bad_ns.err.find("WBEM_E_INVALID_NAMESPACE"), std::string::npos);
  // The other commands send no namespace, so the CLI checks it against the server's before acting.
  auto bad_ns_create = cli({"--namespace", R"(root\sms\site_ZZZ)", "package", "create", "--name", "Elsewhere"});
  EXPECT_EQ(bad_ns_create.exit_code, 1);
  EXPECT_NE(bad_ns_create.err.find("WBEM_E_INVALID_NAMESPACE"), std::string::npos) << bad_ns_create.err;
  EXPECT_EQ(cli({"query", "SELECT * FROM SMS_Package WHERE Name = 'Elsewhere'"}).out.find("Elsewhere"),
            std::string::npos);
  auto own_ns = cli({"--namespace", "root/SMS/site_abc", "site", "list"});
  EXPECT_EQ(own_ns.exit_code, 0) << own_ns.err;
  // A Configuration Manager script's first step: find the site's namespace in root\sms.
  auto located = cli({"--json", "--namespace", R"(root\sms)", "query",
                      "SELECT * FROM SMS_ProviderLocation WHERE ProviderForLocalSite = TRUE"});
  ASSERT_EQ(located.exit_code, 0) << located.err;
  json location = parse_out(located);
  ASSERT_EQ(location.size(), 1u) << located.out;
  EXPECT_EQ(location[0]["SiteCode"], "ABC");
  const std::string path = location[0]["NamespacePath"].get<std::string>();
  EXPECT_TRUE(path.starts_with("\\\\") && path.ends_with(R"(\root\sms\site_ABC)")) << path;
  auto in_site = cli({"--namespace", path, "query", "SELECT * FROM SMS_Site"});
  EXPECT_EQ(in_site.exit_code, 0) << in_site.err;
  auto not_there = cli({"--namespace", R"(root\sms)", "query", "SELECT * FROM SMS_Package"});
  EXPECT_EQ(not_there.exit_code, 1);
  EXPECT_NE(not_there.err.find("WBEM_E_INVALID_CLASS"), std::string::npos) << not_there.err;
  auto act_there = cli({"--namespace", R"(root\sms)", "package", "list"});
  EXPECT_EQ(act_there.exit_code, 1);
  EXPECT_NE(act_there.err.find("WBEM_E_INVALID_NAMESPACE"), std::string::npos) << act_there.err;
  auto no_source = cli({"package", "create", "--name", "X", "--source", dir_.path() + "/missing"});
  EXPECT_EQ(no_source.exit_code, 1);
  EXPECT_NE(no_source.err.find("WBEM_E_INVALID_PARAMETER"), std::string::npos);
  auto down = run({pkgcast_binary(), "--server", "http://127.0.0.1:1", "query", "SELECT * FROM SMS_Site"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.err.find("WBEM_E_TRANSPORT_FAILURE"), std::string::npos);
  auto no_target = cli({"distribute", "ABC00001"});
  EXPECT_EQ(no_target.exit_code, 2);
  EXPECT_EQ(first_line(no_target.err), "usage error: distribute needs at least one --dp, --site or --group");
}

// Flags before variables: an explicit --token-file wins over an inherited PKGCAST_TOKEN; a token file that cannot be
// one token is said to be so.
// A server that accepts connections and never answers (hung, or a wrong port that some other service holds):
// `status --wait --timeout` and `watch --count --timeout` still end at their timeout, with its exit code 3.
TEST(SilentServerE2eTest, TimeoutsHoldWhenTheServerNeverAnswers) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);  // connections complete in the backlog; nothing is ever read or written
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"status", "ABC00001", "--wait", "--timeout", "2"},
        std::vector<std::string>{"watch",
                                 "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'",
                                 "--count", "1", "--timeout", "2"}}) {
    std::vector<std::string> argv = {pkgcast_binary(), "--server", url, "--token", "pkc_x"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto started = std::chrono::steady_clock::now();
    const RunResult r = run(argv, {}, std::chrono::seconds(40));
    EXPECT_EQ(r.exit_code, 3) << args[0] << ": " << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20)) << args[0];
  }
  ::close(fd);
}

TEST_P(AdminE2eTest, TokenFlagsComeBeforeTheEnvironmentAndBadTokenFilesAreNamed) {
  const std::string token_file = data_dir_ + "/admin.token";
  auto flag_wins = run({pkgcast_binary(), "--server", url_, "--token-file", token_file, "site", "list"},
                       {"PKGCAST_TOKEN=not-a-token"});
  EXPECT_EQ(flag_wins.exit_code, 0) << flag_wins.err;
  auto env_file = run({pkgcast_binary(), "--server", url_, "site", "list"}, {"PKGCAST_TOKEN_FILE=" + token_file});
  EXPECT_EQ(env_file.exit_code, 0) << env_file.err;
  auto env_token_wins = run({pkgcast_binary(), "--server", url_, "site", "list"},
                            {"PKGCAST_TOKEN=not-a-token", "PKGCAST_TOKEN_FILE=" + token_file});
  EXPECT_EQ(env_token_wins.exit_code, 1);
  EXPECT_NE(env_token_wins.err.find("WBEM_E_ACCESS_DENIED"), std::string::npos) << env_token_wins.err;

  const std::string empty = dir_.path() + "/empty.token";
  const std::string two = dir_.path() + "/two.token";
  ASSERT_TRUE(write_file_atomic(empty, "\n", 0600).ok());
  ASSERT_TRUE(write_file_atomic(two, "one\ntwo\n", 0600).ok());
  const std::pair<std::string, std::string> bad[] = {{dir_.path(), "is not a regular file"},
                                                     {empty, "is empty"},
                                                     {two, "holds more than one token"}};
  for (const auto& [file, why] : bad) {
    auto r = run({pkgcast_binary(), "--server", url_, "--token-file", file, "site", "list"});
    EXPECT_EQ(r.exit_code, 1) << file;
    EXPECT_EQ(first_line(r.err), "error: WBEM_E_INVALID_PARAMETER: token file '" + file + "' " + why);
  }
}

TEST_P(AdminE2eTest, HostileRequestsChangeNothing) {
  auto admin = http(admin_token());
  ASSERT_EQ(cli({"package", "create", "--name", "Office"}).exit_code, 0);
  auto before = admin->call("POST", "/api/v1/query", R"({"query": "SELECT * FROM SMS_Package"})");
  ASSERT_TRUE(before.ok());

  struct Case {
    const char* method;
    const char* target;
    std::string body;
    unsigned status;
  };
  const std::vector<Case> cases = {
      {"POST", "/api/v1/packages", "{not json", 400},
      {"POST", "/api/v1/packages", R"({"name": "A", "bogus": 1})", 400},
      {"POST", "/api/v1/packages", R"({"name": 5})", 400},
      {"POST", "/api/v1/packages", "[]", 400},
      {"POST", "/api/v1/packages", R"({"name": ")" + std::string(2 * 1024 * 1024, 'a') + R"("})", 413},
      {"POST", "/api/v1/query", R"({"query": "SELECT * FROM SMS_Package WHERE Name = 'x\\'; DROP TABLE SMS_Package; --'"})", 200},
      {"POST", "/api/v1/query", R"({"query": "SELECT * FROM SMS_Package WHERE Name = 'x''; DROP TABLE SMS_Package; --'"})", 400},
      {"POST", "/api/v1/query", R"({"query": "SELECT * FROM SMS_Package; DROP TABLE SMS_Package"})", 400},
      {"POST", "/api/v1/query", R"({"query": "SELECT * FROM \"SMS_Package\""})", 400},
      {"POST", "/api/v1/query", R"({"namespace": "root\\sms\\site_QQQ", "query": "SELECT * FROM SMS_Site"})", 404},
      {"DELETE", "/api/v1/packages/ABC00001%27%3B%20DROP%20TABLE%20x", "", 400},
      {"DELETE", "/api/v1/packages/ABC0FFFF", "", 404},
      {"GET", "/api/v1/../../etc/passwd", "", 404},
  };
  for (const auto& c : cases) {
    auto r = admin->request(c.method, c.target, c.body);
    ASSERT_TRUE(r.ok()) << c.target << ": " << r.error().to_string();
    EXPECT_EQ(r->status, c.status) << c.method << " " << c.target << " " << c.body.substr(0, 80) << " -> " << r->body;
    if (c.status >= 400) {
      auto j = json::parse(r->body, nullptr, false);
      EXPECT_TRUE(j.is_object() && j.contains("error") && j.contains("hresult")) << r->body;
    }
    admin = http(admin_token());  // a refused request may close its connection
  }
  auto after = admin->call("POST", "/api/v1/query", R"({"query": "SELECT * FROM SMS_Package"})");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after.value(), before.value());
}

TEST_P(AdminE2eTest, SurvivesRestartWithItsDataAndToken) {
  ASSERT_EQ(cli({"package", "create", "--name", "Office"}).exit_code, 0);
  const std::string token = admin_token();
  EXPECT_EQ(stop_server(), 0) << "SIGTERM is a clean shutdown";
  start_server();
  EXPECT_EQ(admin_token(), token);
  auto list = cli({"--json", "package", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(parse_out(list).size(), 1u);
  auto next = cli({"package", "create", "--name", "Second"});
  EXPECT_EQ(first_line(next.out), "ABC00002") << "ids continue after a restart";
}

// Transfer windows set from the command line (`dp add --transfer-window`, `dp set`, which is PATCH /dps/{name}):
// stored as 168 hours, a bad rule or an unknown DP refused with nothing changed, a read-only token refused, and a
// closed window holding a distribution pending with its reason.
TEST_P(AdminE2eTest, TransferWindowsAreSetAndRefusedAndHoldADistribution) {
  auto window_of = [&](const std::string& dp) {
    auto r = cli({"--json", "query", "SELECT TransferWindow, Description FROM SMS_DistributionPointInfo WHERE "
                                     "ServerName = '" + dp + "'"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json rows = parse_out(r);
    return rows.is_array() && rows.size() == 1 ? rows[0] : json();
  };
  ASSERT_EQ(cli({"dp", "add", "dp1.example", "--site", "ABC", "--transfer-window", "Mon-Sun * closed"}).exit_code, 0);
  EXPECT_EQ(window_of("dp1.example")["TransferWindow"], std::string(168, 'C'));
  ASSERT_EQ(cli({"dp", "add", "dp2.example", "--site", "ABC"}).exit_code, 0);
  EXPECT_EQ(window_of("dp2.example")["TransferWindow"], "") << "no window: open at every hour";

  // Refusals change nothing.
  auto bad = cli({"dp", "set", "dp1.example", "--transfer-window", "Mon-Fri 08-25 closed", "--description", "x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("WBEM_E_INVALID_PARAMETER"), std::string::npos) << bad.err;
  EXPECT_EQ(window_of("dp1.example")["TransferWindow"], std::string(168, 'C'));
  EXPECT_NE(window_of("dp1.example")["Description"], "x");
  auto unknown = cli({"dp", "set", "nowhere.example", "--transfer-window", "Mon closed"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("WBEM_E_NOT_FOUND"), std::string::npos) << unknown.err;
  const std::string reader = first_line(cli({"token", "create", "--role", "read-only"}).out);
  auto denied = cli_with_token(reader, {"dp", "set", "dp2.example", "--transfer-window", "Mon-Sun * closed"});
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_EQ(window_of("dp2.example")["TransferWindow"], "");
  auto bad_add = cli({"dp", "add", "dp3.example", "--site", "ABC", "--transfer-window", "Someday * closed"});
  EXPECT_EQ(bad_add.exit_code, 1);
  EXPECT_EQ(parse_out(cli({"--json", "query", "SELECT * FROM SMS_DistributionPointInfo WHERE ServerName = "
                                             "'dp3.example'"})),
            json::array());

  // A window that is closed at every hour holds the install queued, with the reason, not failed.
  const std::string source = dir_.path() + "/src";
  write_file(source + "/setup.sh", "#!/bin/sh\n");
  const std::string pkg = first_line(cli({"package", "create", "--name", "Held", "--source", source}).out);
  ASSERT_EQ(cli({"distribute", pkg, "--dp", "dp1.example"}).exit_code, 0);
  json status;
  for (int i = 0; i < 100; ++i) {
    auto rows = parse_out(cli({"--json", "query", "SELECT State, InstallStatus FROM "
                                                   "SMS_PackageStatusDistPointsSummarizer WHERE PackageID = '" + pkg +
                                                   "'"}));
    if (rows.is_array() && rows.size() == 1 &&
        rows[0]["InstallStatus"].get<std::string>().find("transfer window closed") != std::string::npos) {
      status = rows[0];
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(status.is_object()) << "the DistPoints row never named the closed window";
  EXPECT_EQ(status["State"], 1) << "INSTALL_PENDING";

  // `dp set` opens it (and prints the name; --json the DP as it now is).
  auto open = cli({"--json", "dp", "set", "dp1.example", "--transfer-window", "Mon-Sun * all", "--description",
                   "branch office"});
  ASSERT_EQ(open.exit_code, 0) << open.err;
  EXPECT_EQ(parse_out(open)["TransferWindow"], "") << "open at every hour is stored as no window";
  EXPECT_EQ(window_of("dp1.example")["Description"], "branch office");
  EXPECT_EQ(cli({"admin", "check"}).exit_code, 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, AdminE2eTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pkgcast::testing
