// Trust and scope, against a real `pkgcast server`: a planted data directory or token file is refused, tokens are
// revoked and expire, a site-limited token cannot learn what exists outside its sites, package sources stay under
// the configured roots, and a request body means one thing.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "raw_socket.h"
#include "server_fixture.h"

namespace pkgcast::testing {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::string_view kPlanted = "pkc_attacker-chosen-token";

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

void write(const fs::path& file, std::string_view text, mode_t mode) {
  std::ofstream(file) << text;
  ::chmod(file.c_str(), mode);
}

// Runs `pkgcast server` on `data_dir` expecting it to refuse to start; returns its result.
RunResult start_refused(const fs::path& data_dir) {
  return run({pkgcast_binary(), "server", "--data-dir", data_dir.string(), "--listen", "127.0.0.1:0"}, {},
             std::chrono::seconds(30));
}

// ---- a planted data directory ----------------------------------------------------------------------------------

TEST(PlantedDataDirTest, WorldWritableDirectoryWithAChosenTokenIsRefused) {
  TempDir tmp;
  const fs::path data = fs::path(tmp.path()) / "data";
  fs::create_directory(data);
  ::chmod(data.c_str(), 0777);
  write(data / "admin.token", std::string(kPlanted) + "\n", 0600);
  auto r = start_refused(data);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("WBEM_E_ACCESS_DENIED"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(data.string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("every user can write the data directory"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(data / "pkgcast.db")) << "nothing is created in a directory that is refused";

  // Made private, the directory is trusted, but the chosen string is still not a token the server makes.
  ::chmod(data.c_str(), 0700);
  r = start_refused(data);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;  // WBEM_E_INVALID_PARAMETER at start-up: docs/configuration.md
  EXPECT_NE(r.err.find("does not hold a pkgcast token"), std::string::npos) << r.err;
}

TEST(PlantedDataDirTest, TokenFileOthersCanWriteOrOwnIsRefused) {
  TempDir tmp;
  const fs::path data = fs::path(tmp.path()) / "data";
  fs::create_directory(data);
  ::chmod(data.c_str(), 0700);
  // A well-formed token in a file others may write: whoever wrote it may hold it.
  const std::string token = "pkc_" + std::string(42, 'A') + "E";
  write(data / "admin.token", token + "\n", 0666);
  auto r = start_refused(data);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("admin.token"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("0666"), std::string::npos) << r.err;

  ::chmod((data / "admin.token").c_str(), 0600);
  if (::geteuid() == 0) {
    // Owned by another user (root can make it so).
    ASSERT_EQ(::chown((data / "admin.token").c_str(), 65534, 65534), 0);
    r = start_refused(data);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("belongs to another user"), std::string::npos) << r.err;
  }
  // A link in place of the file.
  fs::remove(data / "admin.token");
  write(fs::path(tmp.path()) / "elsewhere", token + "\n", 0600);
  fs::create_symlink(fs::path(tmp.path()) / "elsewhere", data / "admin.token");
  r = start_refused(data);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
}

TEST(PlantedDataDirTest, AParentOthersCanWriteWithoutTheStickyBitIsRefused) {
  TempDir tmp;
  const fs::path parent = fs::path(tmp.path()) / "shared";
  fs::create_directory(parent);
  ::chmod(parent.c_str(), 0777);  // anyone could rename data/ away and put their own in its place
  auto r = start_refused(parent / "data");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(parent.string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sticky"), std::string::npos) << r.err;
  ::chmod(parent.c_str(), 01777);  // as /tmp: fine
  Background server({pkgcast_binary(), "server", "--data-dir", (parent / "data").string(), "--listen", "127.0.0.1:0"});
  ASSERT_TRUE(server.started());
  EXPECT_NE(server.wait_for_line("listening on", std::chrono::seconds(30)), "") << server.error_output();
}

// ---- a running server ------------------------------------------------------------------------------------------

class SecurityTest : public ServerTest {
 protected:
  json call_json(const std::string& token, const std::string& method, const std::string& target,
                 const std::string& body, unsigned* status) {
    auto r = http(token)->request(method, target, body);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return json();
    *status = r->status;
    return json::parse(r->body, nullptr, false);
  }
  unsigned status(const std::string& token, const std::string& method, const std::string& target,
                  const std::string& body = {}) {
    unsigned s = 0;
    call_json(token, method, target, body, &s);
    return s;
  }
  // `pkgcast token create ...` -> (token, id).
  std::pair<std::string, std::string> make_token(std::vector<std::string> args) {
    args.insert(args.begin(), {"--json", "token", "create"});
    auto r = cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_object()) return {};
    return {j.value("token", ""), j.value("id", "")};
  }
};

TEST_P(SecurityTest, DatabaseFilesArePrivate) {
  if (!db_url_.empty()) GTEST_SKIP() << "PostgreSQL keeps no files in the data directory";
  ASSERT_EQ(cli({"package", "create", "--name", "Something to write"}).exit_code, 0);
  EXPECT_EQ(mode_of(data_dir_), 0700u);
  EXPECT_EQ(mode_of(data_dir_ + "/admin.token"), 0600u);
  ASSERT_TRUE(fs::exists(data_dir_ + "/pkgcast.db"));
  for (const char* name : {"pkgcast.db", "pkgcast.db-wal", "pkgcast.db-shm"}) {
    const fs::path p = fs::path(data_dir_) / name;
    if (fs::exists(p)) {
      EXPECT_EQ(mode_of(p), 0600u) << p;
    }
  }
}

TEST_P(SecurityTest, AChosenStringIsNeverAToken) {
  EXPECT_EQ(status(std::string(kPlanted), "GET", "/api/v1/sites"), 401u);
  EXPECT_EQ(status(admin_token(), "GET", "/api/v1/sites"), 200u);
}

TEST_P(SecurityTest, ARevokedTokenIsRefusedAtOnceAndTheRevocationIsJournaled) {
  auto [token, id] = make_token({"--role", "read-only", "--description", "for a contractor"});
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(status(token, "GET", "/api/v1/sites"), 200u);

  auto revoked = cli({"token", "revoke", id});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_NE(revoked.out.find(id), std::string::npos);
  EXPECT_EQ(status(token, "GET", "/api/v1/sites"), 401u);
  EXPECT_EQ(status(token, "POST", "/api/v1/query", R"({"query":"SELECT * FROM SMS_Site"})"), 401u);

  // The audit trail: the token's instance says when, and never holds the secret.
  auto q = cli({"--json", "query", "SELECT * FROM PKG_Token WHERE TokenID = '" + id + "'"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  json rows = json::parse(q.out, nullptr, false);
  ASSERT_TRUE(rows.is_array() && rows.size() == 1) << q.out;
  EXPECT_EQ(rows[0]["Role"], "read-only");
  EXPECT_EQ(rows[0]["Description"], "for a contractor");
  EXPECT_FALSE(rows[0]["Revoked"].is_null());
  EXPECT_EQ(q.out.find(token), std::string::npos);
  EXPECT_EQ(q.out.find(token.substr(4, 20)), std::string::npos);

  // Revoking again changes nothing; an unknown id is an error (exit 1); no id is bad usage (exit 2).
  EXPECT_EQ(cli({"token", "revoke", id}).exit_code, 0);
  auto unknown = cli({"token", "revoke", "0123456789ab"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("WBEM_E_NOT_FOUND"), std::string::npos) << unknown.err;
  EXPECT_EQ(cli({"token", "revoke"}).exit_code, 2);
  // The listing shows it revoked.
  unsigned s = 0;
  json list = call_json(admin_token(), "GET", "/api/v1/tokens", "", &s);
  bool seen = false;
  for (const auto& t : list) {
    if (t["id"] == id) {
      seen = true;
      EXPECT_FALSE(t["revoked"].is_null());
    }
  }
  EXPECT_TRUE(seen);
}

TEST_P(SecurityTest, OnlyAnUnrestrictedFullAdminSeesTokens) {
  auto [reader, reader_id] = make_token({"--role", "read-only"});
  auto [pkg_admin, pkg_admin_id] = make_token({"--role", "package-admin"});
  auto [limited, limited_id] = make_token({"--role", "full-admin", "--site", "ABC"});
  for (const auto& t : {reader, pkg_admin, limited}) {
    auto r = cli_with_token(t, {"query", "SELECT * FROM PKG_Token"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("WBEM_E_ACCESS_DENIED"), std::string::npos) << r.err;
    // A query over the base class leaves token rows out rather than failing.
    auto base = cli_with_token(t, {"--json", "query", "SELECT * FROM SMS_BaseClass"});
    ASSERT_EQ(base.exit_code, 0) << base.err;
    EXPECT_EQ(base.out.find("PKG_Token"), std::string::npos);
  }
  auto all = cli({"--json", "query", "SELECT * FROM PKG_Token"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.out.find(reader_id), std::string::npos);
}

TEST_P(SecurityTest, AnExpiredTokenIsRefusedAsAnUnknownOne) {
  auto past = cli({"token", "create", "--role", "read-only", "--expires", "2001-01-01T00:00:00Z"});
  EXPECT_EQ(past.exit_code, 1);
  EXPECT_NE(past.err.find("WBEM_E_INVALID_PARAMETER"), std::string::npos) << past.err;
  EXPECT_EQ(cli({"token", "create", "--role", "read-only", "--expires-in", "soon"}).exit_code, 1);
  // At most ten years: 3,653 days (with the two or three leap days ten years hold), not a day more.
  EXPECT_EQ(cli({"token", "create", "--role", "read-only", "--expires-in", "3654d"}).exit_code, 1);
  EXPECT_EQ(cli({"token", "create", "--role", "read-only", "--expires-in", "3653d"}).exit_code, 0);

  auto [token, id] = make_token({"--role", "read-only", "--expires-in", "1s"});
  ASSERT_FALSE(token.empty());
  // Bounded wait for the expiry (about a second): poll until refused.
  unsigned last = 0;
  for (int i = 0; i < 100 && last != 401; ++i) {
    last = status(token, "GET", "/api/v1/sites");
    if (last != 401) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(last, 401u);
  auto [lasting, lasting_id] = make_token({"--role", "read-only", "--expires-in", "30d", "--expires",
                                           "2100-01-01T00:00:00Z"});
  EXPECT_EQ(status(lasting, "GET", "/api/v1/sites"), 200u);
}

TEST_P(SecurityTest, AScopedTokenCannotTellWhatExistsOutsideItsSites) {
  ASSERT_EQ(cli({"site", "create", "XYZ", "--name", "Branch", "--parent", "ABC", "--type", "secondary"}).exit_code, 0);
  ASSERT_EQ(cli({"dp", "add", "dp-abc", "--site", "ABC"}).exit_code, 0);
  ASSERT_EQ(cli({"dp", "add", "dp-xyz", "--site", "XYZ"}).exit_code, 0);
  ASSERT_EQ(cli({"package", "create", "--name", "Office"}).exit_code, 0);  // ABC00001, at ABC
  ASSERT_EQ(cli({"program", "create", "ABC00001", "--name", "Install", "--command-line", "x"}).exit_code, 0);
  auto group = cli({"--json", "group", "create", "Everywhere"});
  ASSERT_EQ(group.exit_code, 0) << group.err;
  const std::string gid = json::parse(group.out)["GroupID"];
  auto add = cli({"group", "add", gid, "dp-abc", "dp-xyz"});
  ASSERT_EQ(add.exit_code, 0) << add.err;

  auto [xyz, xyz_id] = make_token({"--role", "full-admin", "--site", "XYZ"});
  auto [abc, abc_id] = make_token({"--role", "read-only", "--site", "ABC"});

  // Each pair: an object outside the token's sites, and one that does not exist. Same status, same wording.
  struct Probe {
    std::string token, method, existing, absent, body;
  };
  const std::vector<Probe> probes = {
      {xyz, "GET", "/api/v1/packages/ABC00001", "/api/v1/packages/ABC00F00", ""},
      {xyz, "PATCH", "/api/v1/packages/ABC00001", "/api/v1/packages/ABC00F00", R"({"description":"x"})"},
      {xyz, "DELETE", "/api/v1/packages/ABC00001", "/api/v1/packages/ABC00F00", ""},
      {xyz, "GET", "/api/v1/packages/ABC00001/programs", "/api/v1/packages/ABC00F00/programs", ""},
      {xyz, "DELETE", "/api/v1/packages/ABC00001/programs/Install", "/api/v1/packages/ABC00F00/programs/Install",
       ""},
      {xyz, "GET", "/api/v1/sites/ABC", "/api/v1/sites/QQQ", ""},
      {xyz, "GET", "/api/v1/dps/dp-abc", "/api/v1/dps/dp-none", ""},
      {xyz, "DELETE", "/api/v1/dps/dp-abc", "/api/v1/dps/dp-none", ""},
      {abc, "GET", "/api/v1/dps/dp-xyz", "/api/v1/dps/dp-none", ""},
      {abc, "GET", "/api/v1/sites/XYZ", "/api/v1/sites/QQQ", ""},
      {xyz, "DELETE", "/api/v1/tokens/" + abc_id, "/api/v1/tokens/0123456789ab", ""},
  };
  for (const auto& p : probes) {
    unsigned s1 = 0, s2 = 0;
    json a = call_json(p.token, p.method, p.existing, p.body, &s1);
    json b = call_json(p.token, p.method, p.absent, p.body, &s2);
    EXPECT_EQ(s1, 404u) << p.method << " " << p.existing << ": " << a.dump();
    EXPECT_EQ(s2, 404u) << p.method << " " << p.absent << ": " << b.dump();
    EXPECT_EQ(a.value("error", ""), b.value("error", "")) << p.existing;
  }
  // Membership changes naming a DP outside the token's sites: as for a DP that does not exist.
  unsigned s1 = 0, s2 = 0;
  json a = call_json(xyz, "POST", "/api/v1/groups/" + gid + "/members", R"({"dps":["dp-abc"]})", &s1);
  json b = call_json(xyz, "POST", "/api/v1/groups/" + gid + "/members", R"({"dps":["dp-none"]})", &s2);
  EXPECT_EQ(s1, 404u) << a.dump();
  EXPECT_EQ(s2, 404u) << b.dump();
  EXPECT_EQ(a["message"], "DP 'dp-abc' does not exist");
  EXPECT_EQ(b["message"], "DP 'dp-none' does not exist");

  // The member list shows only the DPs on the token's sites.
  unsigned s = 0;
  json members = call_json(abc, "GET", "/api/v1/groups/" + gid + "/members", "", &s);
  EXPECT_EQ(s, 200u);
  EXPECT_EQ(members, json::array({"dp-abc"}));
  members = call_json(admin_token(), "GET", "/api/v1/groups/" + gid + "/members", "", &s);
  EXPECT_EQ(members, json::array({"dp-abc", "dp-xyz"}));
}

TEST_P(SecurityTest, PackageSourcesStayUnderTheSourceRoots) {
  const std::string inside = dir_.path() + "/src";
  fs::create_directories(inside);
  std::ofstream(inside + "/file") << "x";
  fs::create_directory_symlink("/", inside + "/up");
  for (const std::string& source :
       {std::string("/root"), std::string("/etc"), inside + "/../../etc", inside + "/up/etc", std::string("/")}) {
    unsigned s = 0;
    json j = call_json(admin_token(), "POST", "/api/v1/packages",
                       json({{"name", "probe"}, {"source", source}}).dump(), &s);
    EXPECT_EQ(s, 403u) << source << ": " << j.dump();
    EXPECT_EQ(j.value("error", ""), "WBEM_E_ACCESS_DENIED") << source;
    EXPECT_NE(j.value("message", "").find(dir_.path()), std::string::npos) << "names the roots: " << j.dump();
  }
  // A tree under the roots is taken; one that holds a link out of itself is refused by the ingest, naming it.
  unsigned s = 0;
  json refused = call_json(admin_token(), "POST", "/api/v1/packages",
                           json({{"name", "linked"}, {"source", inside}}).dump(), &s);
  EXPECT_EQ(s, 400u) << refused.dump();
  EXPECT_NE(refused.value("message", "").find("'up'"), std::string::npos) << refused.dump();
  fs::create_directories(inside + "/pkg");
  std::ofstream(inside + "/pkg/file") << "x";
  json ok = call_json(admin_token(), "POST", "/api/v1/packages",
                      json({{"name", "fine"}, {"source", inside + "/pkg"}}).dump(), &s);
  EXPECT_EQ(s, 201u) << ok.dump();
  EXPECT_EQ(ok["PkgSourcePath"], fs::canonical(inside + "/pkg").string());
}

TEST_P(SecurityTest, DuplicateJsonKeysAreRefused) {
  unsigned s = 0;
  json j = call_json(admin_token(), "POST", "/api/v1/packages", R"({"name":"a","name":"b"})", &s);
  EXPECT_EQ(s, 400u);
  EXPECT_EQ(j["error"], "WBEM_E_INVALID_PARAMETER");
  EXPECT_NE(j.value("message", "").find("'name'"), std::string::npos) << j.dump();
  j = call_json(admin_token(), "POST", "/api/v1/tokens", R"({"role":"read-only","role":"full-admin"})", &s);
  EXPECT_EQ(s, 400u) << j.dump();
  // Nothing was created by either.
  json list = call_json(admin_token(), "GET", "/api/v1/packages", "", &s);
  EXPECT_TRUE(list.is_array() && list.empty()) << list.dump();
}

INSTANTIATE_TEST_SUITE_P(Backends, SecurityTest, ::testing::ValuesIn(backends()));

}  // namespace
}  // namespace pkgcast::testing
