#include "server/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>

namespace pkgcast::server {
namespace {
namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pkgcast-config-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    env_["HOME"] = "/home/alice";
  }
  void TearDown() override { fs::remove_all(dir_); }

  EnvLookup env() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      auto it = env_.find(std::string(name));
      return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
  }
  std::string toml(const std::string& text) {
    const fs::path p = dir_ / "pkgcast.toml";
    std::ofstream(p) << text;
    return p.string();
  }

  fs::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, DefaultsWithOnlyHome) {
  auto c = load_server_config({}, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->listen_host, "127.0.0.1");
  EXPECT_EQ(c->listen_port, 8750);
  EXPECT_EQ(c->data_dir, "/home/alice/.local/state/pkgcast");
  EXPECT_EQ(c->db_url, "/home/alice/.local/state/pkgcast/pkgcast.db");
  EXPECT_EQ(c->site_code, "");
  EXPECT_EQ(c->site_type, "primary");
  EXPECT_EQ(c->workers, 4);
  EXPECT_EQ(c->max_body_bytes, 1024 * 1024);
  EXPECT_EQ(c->log_level, "info");
  EXPECT_TRUE(c->tls_cert.empty());
  EXPECT_EQ(c->journal_compact_interval_seconds, 60);
  EXPECT_EQ(c->db_max_readers, 0);  // the store's backend default
  EXPECT_EQ(c->db_reader_wait_ms, 2000);
  EXPECT_EQ(c->query_max_distinct_rows, 100'000);
  EXPECT_EQ(c->query_max_subquery_values, 100'000);
  EXPECT_EQ(c->query_max_join_rows, 250'000);
  EXPECT_EQ(c->query_max_join_mib, 64);
}

TEST_F(ConfigTest, SourceRoots) {
  auto c = load_server_config({}, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->source_roots,
            (std::vector<fs::path>{"/home/alice/.local/state/pkgcast/sources", "/srv"}));
  EXPECT_EQ(c->source_walk_threads, 2);
  EXPECT_EQ(c->source_walk_queue, 2);
  EXPECT_EQ(c->source_walk_timeout_seconds, 60);

  ServerFlags flags;
  flags.config_file = toml("source_roots = [\"/data/src\", \"pkgs\"]\nsource_walk_threads = 3\n");
  c = load_server_config(flags, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->source_roots, (std::vector<fs::path>{"/data/src", dir_ / "pkgs"}));
  EXPECT_EQ(c->source_walk_threads, 3);

  // A relative --config: its relative entries are still made absolute (relative to the file, not refused).
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_.parent_path());
  flags.config_file = (dir_.filename() / "pkgcast.toml").string();
  c = load_server_config(flags, env());
  fs::current_path(cwd);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->source_roots, (std::vector<fs::path>{"/data/src", dir_ / "pkgs"}));

  flags.config_file = toml("source_roots = []\n");
  c = load_server_config(flags, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_TRUE(c->source_roots.empty()) << "an empty list admits no source";

  env_["PKGCAST_SOURCE_ROOTS"] = "/a:/b/c";
  c = load_server_config(flags, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->source_roots, (std::vector<fs::path>{"/a", "/b/c"}));

  env_["PKGCAST_SOURCE_ROOTS"] = "relative";
  c = load_server_config({}, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("PKGCAST_SOURCE_ROOTS: source_roots must list absolute paths"), std::string::npos)
      << c.error().message;
  env_.erase("PKGCAST_SOURCE_ROOTS");
  flags.config_file = toml("source_roots = \"/srv\"\n");
  c = load_server_config(flags, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("source_roots must be an array of strings"), std::string::npos)
      << c.error().message;
}

TEST_F(ConfigTest, XdgStateHomeWinsOverHome) {
  env_["XDG_STATE_HOME"] = "/var/state";
  auto c = load_server_config({}, env());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data_dir, "/var/state/pkgcast");
}

TEST_F(ConfigTest, RelativeXdgStateHomeIsIgnored) {
  env_["XDG_STATE_HOME"] = "relative/state";
  auto c = load_server_config({}, env());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data_dir, "/home/alice/.local/state/pkgcast");
}

TEST_F(ConfigTest, NoHomeNoDataDirIsAnError) {
  env_.clear();
  auto c = load_server_config({}, env());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, WbemCode::kInvalidParameter);
  EXPECT_NE(c.error().message.find("--data-dir"), std::string::npos);
}

TEST_F(ConfigTest, FlagsBeatEnvironmentBeatsFileBeatsDefaults) {
  const std::string file = toml(R"(
listen = "127.0.0.1:9001"
site_code = "FIL"
site_name = "From file"
workers = 7
max_body_bytes = 2048
journal_max_entries = 500
journal_compact_interval_seconds = 300
)");
  env_["PKGCAST_LISTEN"] = "127.0.0.1:9002";
  env_["PKGCAST_SITE_CODE"] = "ENV";
  env_["PKGCAST_CONFIG"] = "/ignored/because/the/flag/names/one.toml";
  ServerFlags flags;
  flags.config_file = file;
  flags.site_code = "flg";
  auto c = load_server_config(flags, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->site_code, "FLG");               // flag (upper-cased)
  EXPECT_EQ(c->listen_port, 9002);              // environment over file
  EXPECT_EQ(c->site_name, "From file");         // file over default
  EXPECT_EQ(c->workers, 7);
  EXPECT_EQ(c->max_body_bytes, 2048);
  EXPECT_EQ(c->journal_max_entries, 500);
  EXPECT_EQ(c->journal_max_age_seconds, 7 * 86'400);  // default
  EXPECT_EQ(c->journal_compact_interval_seconds, 300);
  env_["PKGCAST_JOURNAL_COMPACT_INTERVAL_SECONDS"] = "5";
  c = load_server_config(flags, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->journal_compact_interval_seconds, 5);  // environment over file
}

TEST_F(ConfigTest, ConfigFileFromEnvironment) {
  env_["PKGCAST_CONFIG"] = toml("site_type = \"central\"\n");
  auto c = load_server_config({}, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->site_type, "central");
}

TEST_F(ConfigTest, RelativePathsInTheFileAreRelativeToTheFile) {
  ServerFlags flags;
  flags.config_file = toml("data_dir = \"state\"\ntls_cert = \"/abs/cert.pem\"\ntls_key = \"key.pem\"\n");
  auto c = load_server_config(flags, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->data_dir, dir_ / "state");
  EXPECT_EQ(c->db_url, (dir_ / "state" / "pkgcast.db").string());
  EXPECT_EQ(c->tls_cert, "/abs/cert.pem");
  EXPECT_EQ(c->tls_key, dir_ / "key.pem");
  // A SQLite database named in the file too, with or without its scheme; URLs and absolute paths as written.
  for (const auto& [written, expected] : std::vector<std::pair<std::string, std::string>>{
           {"my.db", (dir_ / "my.db").string()},
           {"sqlite:db/my.db", "sqlite:" + (dir_ / "db" / "my.db").string()},
           {"/var/lib/pkgcast.db", "/var/lib/pkgcast.db"},
           {"postgresql://u@127.0.0.1/p", "postgresql://u@127.0.0.1/p"},
           {":memory:", ":memory:"}}) {
    flags.config_file = toml("db = \"" + written + "\"\n");
    c = load_server_config(flags, env());
    ASSERT_TRUE(c.ok()) << c.error().to_string();
    EXPECT_EQ(c->db_url, expected) << written;
  }
}

TEST_F(ConfigTest, DbFlagOverridesTheDefaultDatabase) {
  ServerFlags flags;
  flags.data_dir = "/srv/pkgcast";
  flags.db = "postgresql://pkgcast@127.0.0.1:5432/pkgcast";
  auto c = load_server_config(flags, env());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data_dir, "/srv/pkgcast");
  EXPECT_EQ(c->db_url, "postgresql://pkgcast@127.0.0.1:5432/pkgcast");
}

TEST_F(ConfigTest, UnknownKeyInTheFileIsAnErrorWithItsLine) {
  ServerFlags flags;
  flags.config_file = toml("listen = \"127.0.0.1:1\"\nsite_cod = \"ABC\"\n");
  auto c = load_server_config(flags, env());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, WbemCode::kInvalidParameter);
  EXPECT_NE(c.error().message.find("pkgcast.toml:2: unknown key 'site_cod'"), std::string::npos)
      << c.error().message;
}

TEST_F(ConfigTest, WrongTypesAndSyntaxErrorsNameTheFile) {
  ServerFlags flags;
  flags.config_file = toml("workers = \"four\"\n");
  auto c = load_server_config(flags, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("workers must be an integer"), std::string::npos) << c.error().message;

  flags.config_file = toml("site_code = 123\n");
  c = load_server_config(flags, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("site_code must be a string"), std::string::npos);

  flags.config_file = toml("site_name = \"x\"\njournal_compact_interval_seconds = 0\n");
  c = load_server_config(flags, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("pkgcast.toml:2: journal_compact_interval_seconds must be between 1 and 86400"),
            std::string::npos)
      << c.error().message;

  flags.config_file = toml(
      "query_max_distinct_rows = 10\nquery_max_subquery_values = 0\nquery_max_join_rows = 1000000\n"
      "query_max_join_mib = 16\n");
  c = load_server_config(flags, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->query_max_join_mib, 16);
  EXPECT_EQ(c->query_max_distinct_rows, 10);
  EXPECT_EQ(c->query_max_subquery_values, 0);
  EXPECT_EQ(c->query_max_join_rows, 1'000'000);
  flags.config_file = toml("query_max_join_rows = -1\n");
  c = load_server_config(flags, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("query_max_join_rows must be between 0 and"), std::string::npos)
      << c.error().message;

  flags.config_file = toml("db_max_readers = 4\ndb_reader_wait_ms = 250\n");
  c = load_server_config(flags, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->db_max_readers, 4);
  EXPECT_EQ(c->db_reader_wait_ms, 250);
  flags.config_file = toml("db_max_readers = 5000\n");
  c = load_server_config(flags, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("db_max_readers must be between 0 and 1000"), std::string::npos)
      << c.error().message;

  flags.config_file = toml("listen = \n");
  c = load_server_config(flags, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("pkgcast.toml:1:"), std::string::npos) << c.error().message;

  flags.config_file = (dir_ / "missing.toml").string();
  c = load_server_config(flags, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("does not exist"), std::string::npos);
}

TEST_F(ConfigTest, BadValuesNameTheirSource) {
  struct Case {
    std::string var, value, expect;
  };
  const Case cases[] = {
      {"PKGCAST_LISTEN", "8750", "PKGCAST_LISTEN: listen address must be HOST:PORT"},
      {"PKGCAST_LISTEN", "127.0.0.1:70000", "port from 0 to 65535"},
      {"PKGCAST_SITE_CODE", "ABCD", "PKGCAST_SITE_CODE: site_code must be 3 letters or digits"},
      {"PKGCAST_SITE_CODE", "A-1", "must be 3 letters or digits"},
      {"PKGCAST_SITE_TYPE", "secondary", "must be 'primary' or 'central'"},
      {"PKGCAST_WORKERS", "0", "PKGCAST_WORKERS: workers must be between 1 and 256"},
      {"PKGCAST_WORKERS", "4x", "workers must be an integer, not '4x'"},
      {"PKGCAST_LOG_LEVEL", "loud", "log_level must be one of"},
      {"PKGCAST_TLS_CERT", "/c.pem", "TLS needs both a certificate and a key: tls_key is not set"},
      {"PKGCAST_MAX_BODY_BYTES", "10", "max_body_bytes must be between 1024"},
      {"PKGCAST_JOURNAL_COMPACT_INTERVAL_SECONDS", "0",
       "PKGCAST_JOURNAL_COMPACT_INTERVAL_SECONDS: journal_compact_interval_seconds must be between 1 and 86400"},
      {"PKGCAST_JOURNAL_COMPACT_INTERVAL_SECONDS", "-5", "journal_compact_interval_seconds must be between 1"},
      {"PKGCAST_JOURNAL_COMPACT_INTERVAL_SECONDS", "1m", "journal_compact_interval_seconds must be an integer"},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.var + "=" + k.value);
    auto saved = env_;
    env_[k.var] = k.value;
    auto c = load_server_config({}, env());
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().code, WbemCode::kInvalidParameter);
    EXPECT_NE(c.error().message.find(k.expect), std::string::npos) << c.error().message;
    env_ = saved;
  }
  ServerFlags flags;
  flags.workers = 1000;
  auto c = load_server_config(flags, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("--workers: workers must be between"), std::string::npos);

  // Found before anything is written: an empty data directory, a port file in a directory that is not there.
  ServerFlags empty_dir;
  empty_dir.data_dir = "";
  auto e = load_server_config(empty_dir, env());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("--data-dir: data_dir must name a directory"), std::string::npos)
      << e.error().message;
  ServerFlags port_file;
  port_file.port_file = "/nonexistent-pkgcast-dir/port";
  auto p = load_server_config(port_file, env());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("--port-file: port_file names a file in '/nonexistent-pkgcast-dir'"),
            std::string::npos)
      << p.error().message;
  port_file.port_file = "port";  // beside the working directory
  EXPECT_TRUE(load_server_config(port_file, env()).ok());
}

TEST_F(ConfigTest, EmptyEnvironmentValuesCountAsUnset) {
  env_["PKGCAST_LISTEN"] = "";
  auto c = load_server_config({}, env());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->listen_port, 8750);
}

TEST(ParseListenTest, Forms) {
  auto v4 = parse_listen("0.0.0.0:0");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->first, "0.0.0.0");
  EXPECT_EQ(v4->second, 0);
  auto v6 = parse_listen("[::1]:8443");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  EXPECT_EQ(v6->second, 8443);
  EXPECT_TRUE(parse_listen("localhost:8750").ok());
  for (const char* bad : {"", ":8750", "host:", "host:-1", "host:80x", "[]:80", "host"}) {
    EXPECT_FALSE(parse_listen(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace pkgcast::server

namespace pkgcast::server {
namespace {

TEST_F(ConfigTest, ConnectionLimitsAndHeaderTimeout) {
  auto d = load_server_config({}, env());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->max_connections, 0);  // from the open-file limit at start
  EXPECT_EQ(d->max_connections_per_address, 0);
  EXPECT_EQ(d->header_timeout_seconds, 10);
  env_["PKGCAST_MAX_CONNECTIONS"] = "500";
  env_["PKGCAST_MAX_CONNECTIONS_PER_ADDRESS"] = "20";
  env_["PKGCAST_HEADER_TIMEOUT_SECONDS"] = "3";
  auto c = load_server_config({}, env());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->max_connections, 500);
  EXPECT_EQ(c->max_connections_per_address, 20);
  EXPECT_EQ(c->header_timeout_seconds, 3);
}

TEST_F(ConfigTest, HeaderLimitStaysWithinWhatTheParserHolds) {
  env_["PKGCAST_MAX_HEADER_BYTES"] = "65535";
  ASSERT_TRUE(load_server_config({}, env()).ok());
  env_["PKGCAST_MAX_HEADER_BYTES"] = "65536";
  auto c = load_server_config({}, env());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("between 1024 and 65535"), std::string::npos) << c.error().message;
}

}  // namespace
}  // namespace pkgcast::server
