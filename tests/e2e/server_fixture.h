// A real `pkgcast server` process on a free loopback port, over SQLite or a fresh PostgreSQL database, and the
// `pkgcast` command line pointed at it.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "client/http_client.h"
#include "process.h"

namespace pkgcast::testing {

// A loopback port nobody listens on now (a process binds it a moment later).
int free_port();
// Writes `bytes` to `p` (creating its directories) and gives it `mode`.
void write_file(const std::filesystem::path& p, const std::string& bytes,
                std::filesystem::perms mode = std::filesystem::perms(0644));

class ServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts the server (again, after stop_server(), on the same data directory and database).
  void start_server(const std::vector<std::string>& extra_flags = {});
  // SIGTERM; returns the exit code.
  int stop_server();

  // Runs `pkgcast --server URL <args>` with the admin token file.
  RunResult cli(std::vector<std::string> args);
  // Runs `pkgcast --server URL --token TOKEN <args>`.
  RunResult cli_with_token(const std::string& token, std::vector<std::string> args);
  // A raw HTTP client with the given token ("" for none).
  std::unique_ptr<client::HttpClient> http(const std::string& token);
  std::string admin_token() const;

  TempDir dir_;
  std::string data_dir_;
  std::string db_url_;  // empty for SQLite
  std::string url_;
  std::unique_ptr<Background> server_;

 private:
  std::string pg_database_;
};

// "sqlite", and "postgresql" (skipped unless PKGCAST_TEST_PG_URL is set).
std::vector<std::string> backends();

}  // namespace pkgcast::testing
