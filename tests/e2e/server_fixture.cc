#include "server_fixture.h"

#include <libpq-fe.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace pkgcast::testing {
namespace {

// Runs one SQL statement on the maintenance database; "" on success, else the error.
std::string pg_exec(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  std::string err;
  if (PQstatus(conn) != CONNECTION_OK) {
    err = PQerrorMessage(conn);
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) err = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(conn);
  return err;
}

// The maintenance URL with its database replaced.
std::string with_database(const std::string& url, const std::string& db) {
  const std::size_t slash = url.rfind('/');
  return url.substr(0, slash + 1) + db;
}

}  // namespace

std::vector<std::string> backends() { return {"sqlite", "postgresql"}; }

void ServerTest::SetUp() {
  ASSERT_FALSE(dir_.path().empty());
  data_dir_ = dir_.path() + "/data";
  if (GetParam() == "postgresql") {
    const char* pg = std::getenv("PKGCAST_TEST_PG_URL");
    if (pg == nullptr || pg[0] == '\0') GTEST_SKIP() << "PKGCAST_TEST_PG_URL is not set (run under scripts/with-postgres)";
    pg_database_ = "pkgcast_e2e_" + std::to_string(std::random_device{}());
    const std::string err = pg_exec(pg, "CREATE DATABASE " + pg_database_);
    ASSERT_EQ(err, "");
    db_url_ = with_database(pg, pg_database_);
  }
  start_server();
}

void ServerTest::TearDown() {
  server_.reset();
  if (!pg_database_.empty()) pg_exec(std::getenv("PKGCAST_TEST_PG_URL"), "DROP DATABASE IF EXISTS " + pg_database_);
}

void ServerTest::start_server(const std::vector<std::string>& extra_flags) {
  std::vector<std::string> argv = {pkgcast_binary(), "server",      "--data-dir", data_dir_,  "--listen",
                                   "127.0.0.1:0",    "--site-code", "ABC",        "--site-name", "Head office"};
  if (!db_url_.empty()) {
    argv.push_back("--db");
    argv.push_back(db_url_);
  }
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  // Package sources of the tests live in the test's temporary directory.
  server_ = std::make_unique<Background>(argv, std::vector<std::string>{"PKGCAST_SOURCE_ROOTS=" + dir_.path()});
  ASSERT_TRUE(server_->started());
  const std::string line = server_->wait_for_line("listening on", std::chrono::seconds(30));
  ASSERT_NE(line, "") << "server did not start:\n" << server_->error_output();
  url_ = line.substr(line.find("http"));
  while (!url_.empty() && (url_.back() == ' ' || url_.back() == '\r')) url_.pop_back();
}

int ServerTest::stop_server() {
  const int code = server_->stop(SIGTERM);
  server_.reset();
  return code;
}

RunResult ServerTest::cli(std::vector<std::string> args) {
  args.insert(args.begin(), {pkgcast_binary(), "--server", url_, "--token-file", data_dir_ + "/admin.token"});
  return run(args);
}

RunResult ServerTest::cli_with_token(const std::string& token, std::vector<std::string> args) {
  args.insert(args.begin(), {pkgcast_binary(), "--server", url_, "--token", token});
  return run(args, {"PKGCAST_TOKEN_FILE=/nonexistent"});
}

std::unique_ptr<client::HttpClient> ServerTest::http(const std::string& token) {
  auto url = client::parse_server_url(url_);
  EXPECT_TRUE(url.ok());
  client::HttpOptions options;
  options.token = token;
  auto c = client::HttpClient::create(*url, options);
  EXPECT_TRUE(c.ok());
  return std::move(c).value();
}

std::string ServerTest::admin_token() const {
  std::ifstream in(data_dir_ + "/admin.token");
  std::string token;
  in >> token;
  return token;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

void write_file(const std::filesystem::path& p, const std::string& bytes, std::filesystem::perms mode) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
  std::filesystem::permissions(p, mode);
}

}  // namespace pkgcast::testing
