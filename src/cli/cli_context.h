// What every `pkgcast` subcommand shares: the global flags, the connection to the server, and output that is a
// table for people and JSON (--json) for scripts.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cim/json.h"
#include "client/http_client.h"
#include "core/result.h"

namespace pkgcast {
class ManagementScope;  // pkgcast/management_scope.h: only the commands that subscribe need it
}

namespace pkgcast::cli {

// Exit codes (design.md section 6).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

struct GlobalOptions {
  std::string server;      // --server / PKGCAST_SERVER
  std::string token;       // --token / PKGCAST_TOKEN
  std::string token_file;  // --token-file / PKGCAST_TOKEN_FILE
  std::string namespace_path;  // --namespace; empty = the server's own site
  bool json = false;
  bool insecure = false;   // --insecure: https without certificate checks
  std::string ca_file;     // --ca-file
};

class CliContext {
 public:
  GlobalOptions options;

  // The subcommand's work, set by its parse callback; main runs it after parsing. Returns the exit code.
  std::function<int()> action;
  // Set by a command whose requests carry --namespace (a query): the server checks it then, and may serve more
  // than the site's own (`root\sms`), so client() does not check it first.
  bool namespace_in_requests = false;

  // Connects lazily, resolving the server URL and token as documented: flags, then PKGCAST_* variables, then the
  // default data directory's admin.token when it exists.
  // With --namespace, the first connection also checks that the server serves that namespace
  // (WBEM_E_INVALID_NAMESPACE otherwise), since only queries carry it to the server.
  Result<client::HttpClient*> client();

  // The server URL in use and the token source, for messages.
  std::string server_url() const;

  // Prints `error: <WBEM name>: <detail>` on stderr (and with --json also
  // {"error", "hresult", "message"} on stdout, unless `json_object` is false because the command's own JSON
  // document carries them); returns kExitError.
  int fail(const Error& error, bool json_object = true) const;

  // Calls the API and decodes the JSON answer, or the error.
  Result<cim::Json> call(std::string_view method, std::string_view target, const cim::Json* body = nullptr);

  // The client library's view of the server (event subscriptions), with the same URL, token and TLS settings.
  // `resync_on_gap` is ConnectionOptions::resync_on_gap: false makes a gap in the journal the subscription's end.
  // `within`: a command's --timeout left; no wait for the server (connect, an answer's head, a silent stream) lasts
  // longer, so a server that accepts and never answers cannot hold the command past its timeout.
  Result<ManagementScope> scope(bool resync_on_gap = true,
                                std::optional<std::chrono::milliseconds> within = std::nullopt) const;

  // Prints JSON (pretty, one document) on stdout.
  void print_json(const cim::Json& j) const;

  // The token from the first of --token, --token-file, PKGCAST_TOKEN, PKGCAST_TOKEN_FILE and, with
  // `default_file`, the default data directory's admin.token when it exists ("" when there is none). A token file
  // named but unusable (missing, not a regular file, empty, more than one token) is an error that says so.
  Result<std::string> resolve_token(bool default_file = true) const;

 private:
  Status check_namespace(client::HttpClient& http) const;
  std::unique_ptr<client::HttpClient> client_;
};

}  // namespace pkgcast::cli
