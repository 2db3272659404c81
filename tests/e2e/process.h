// Real processes for end-to-end tests: run a command to completion, or keep a server running in the background.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace pkgcast::testing {

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string out;
  std::string err;
};

// Runs argv[0] with the arguments and the current environment plus `env` ("NAME=value"), feeding nothing on
// stdin, and collects stdout and stderr. Kills the process after `timeout`.
RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A process running in the background with its stdout read line by line. The destructor stops it (SIGTERM, then
// SIGKILL after a grace period).
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // The next stdout line containing `needle`, or "" when the process ends or the timeout passes first.
  std::string wait_for_line(const std::string& needle, std::chrono::milliseconds timeout);
  // Sends a signal and waits for the exit; returns the exit code (-1 when killed or still running at timeout).
  int stop(int signal_number, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Everything read from stdout so far, and stderr (stderr goes to a file so it never blocks the process).
  const std::string& output() const { return out_; }
  std::string error_output() const;

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string err_path_;
  std::string out_;
  std::size_t consumed_ = 0;
};

// A fresh empty directory under /tmp, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// $PKGCAST_BINARY_DIR/src/cli/pkgcast.
std::string pkgcast_binary();

// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay as they are).
std::string url_encode(std::string_view text);

}  // namespace pkgcast::testing
