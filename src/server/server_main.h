// `pkgcast server`: the site server process. Opens the store in the data directory, makes sure an admin token
// exists, creates the server's own site through the Api, and serves HTTP until SIGTERM/SIGINT.
//
// First start (docs/configuration.md): the data directory is created (0700); the store opens at
// <data-dir>/pkgcast.db unless --db says otherwise; when the store has no full-admin token, one is made, saved
// (hashed) and written to <data-dir>/admin.token (0600, atomically). The site code is the configured one, else the
// one the database was created with, else "P01" ("Primary site").
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/result.h"
#include "server/config.h"

namespace pkgcast::store {
class Store;
}

namespace pkgcast::server {

// A running site server. Thread safety: stop() from one thread.
class SiteServer {
 public:
  // Everything up to and including listening. Errors: WBEM_E_INVALID_PARAMETER for bad configuration (a site code
  // the database does not have, unusable TLS files), WBEM_E_FAILED for the environment (port in use, unwritable
  // data directory), the store's own errors.
  static Result<std::unique_ptr<SiteServer>> start(const ServerConfig& config);
  virtual ~SiteServer() = default;

  virtual std::string url() const = 0;
  virtual std::string site_code() const = 0;
  virtual std::filesystem::path admin_token_path() const = 0;
  // True when this start created the admin token (the first start of this database).
  virtual bool created_admin_token() const = 0;
  virtual store::Store& store() = 0;

  // Graceful: stops accepting, lets requests finish (up to shutdown_grace_seconds), ends streams, closes the
  // store. Idempotent.
  virtual void stop() = 0;
};

// Loads the configuration (flags > environment > file > defaults), starts the server, prints
// "pkgcast server listening on <url>" on stdout, waits for SIGTERM or SIGINT, stops gracefully.
// Returns the exit code: 0 after a clean stop, 1 when the server could not start or failed, 2 for bad
// configuration; errors are one line on stderr, "error: <WBEM name>: <detail>".
int run_server_command(const ServerFlags& flags);

// The admin token bootstrap (exposed for tests): when the store holds no active (unrevoked, unexpired) full-admin
// token, registers the token in `token_file` if that file holds one the store does not know, else a new token
// written to `token_file` (0600, atomically). Returns whether a token was created or registered. An existing
// `token_file` must be a regular file of this user that nobody else may read or write (WBEM_E_ACCESS_DENIED) and
// hold exactly what site::generate_token() makes (WBEM_E_INVALID_PARAMETER), whether or not it is needed.
Result<bool> ensure_admin_token(store::Store& store, const std::filesystem::path& token_file,
                                Micros now = Clock::system().now_micros());

}  // namespace pkgcast::server
