#include "cli/cli_context.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "core/paths.h"
#include "core/strings.h"
#include "pkgcast/management_scope.h"
#include "provider/provider.h"
#include "server/config.h"

namespace pkgcast::cli {
namespace {

constexpr const char* kDefaultServer = "http://127.0.0.1:8750";

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' ? std::string(v) : fallback;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && (s[start] == ' ' || s[start] == '\t')) ++start;
  return s.substr(start);
}

// A token file holds one token, on one line (a trailing newline and surrounding blanks are allowed).
Result<std::string> read_token_file(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return make_error(WbemCode::kInvalidParameter, "token file '" + file + "' is not a regular file");
  }
  auto text = read_file(file);
  if (!text.ok()) return make_error(text.error().code, "token file: " + text.error().message);
  std::string token = trim(std::move(text).value());
  if (token.empty()) return make_error(WbemCode::kInvalidParameter, "token file '" + file + "' is empty");
  for (const char c : token) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '\x7f') {
      return make_error(WbemCode::kInvalidParameter, "token file '" + file + "' holds more than one token");
    }
  }
  return token;
}

}  // namespace

std::string CliContext::server_url() const {
  return options.server.empty() ? env_or("PKGCAST_SERVER", kDefaultServer) : options.server;
}

Result<std::string> CliContext::resolve_token(bool default_file) const {
  if (!options.token.empty()) return options.token;
  if (!options.token_file.empty()) return read_token_file(options.token_file);
  if (const char* t = std::getenv("PKGCAST_TOKEN"); t != nullptr && t[0] != '\0') return std::string(t);
  if (const std::string file = env_or("PKGCAST_TOKEN_FILE", ""); !file.empty()) return read_token_file(file);
  if (!default_file) return std::string();
  // The server's default data directory; with none (no HOME), there is no default token file. No token at all is
  // fine for public endpoints; the server answers the others with ACCESS_DENIED.
  auto dir = server::default_data_dir(server::process_environment());
  if (!dir.ok()) return std::string();
  const std::string file = (*dir / "admin.token").string();
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 && errno == ENOENT) return std::string();
  return read_token_file(file);
}

Result<client::HttpClient*> CliContext::client() {
  if (client_) return client_.get();
  PKG_ASSIGN_OR_RETURN(client::ServerUrl url, client::parse_server_url(server_url()));
  PKG_ASSIGN_OR_RETURN(std::string token, resolve_token());
  client::HttpOptions http;
  http.token = std::move(token);
  http.insecure = options.insecure;
  http.ca_file = options.ca_file;
  PKG_ASSIGN_OR_RETURN(auto made, client::HttpClient::create(url, std::move(http)));
  if (!options.namespace_path.empty() && !namespace_in_requests) PKG_TRY(check_namespace(*made));
  client_ = std::move(made);
  return client_.get();
}

// The server serves one namespace, its own site's (docs/wql.md); a command other than a query has no namespace in
// its request, so a --namespace naming another one is refused here rather than quietly ignored. The rule is the
// provider's ('/' as '\', compared without case), but a server part is left to --server.
Status CliContext::check_namespace(client::HttpClient& http) const {
  PKG_ASSIGN_OR_RETURN(std::string text, http.call("GET", "/api/v1/health"));
  const auto health = cim::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!health.is_object() || !health.contains("site") || !health["site"].is_string()) {
    return make_error(WbemCode::kFailed, "the server's /api/v1/health names no site");
  }
  const std::string served = provider::namespace_for_site(health["site"].get<std::string>());
  // A server part (`\\.\root\...`, `\\SCCM01\root\...`) is WMI's way to choose the machine; here --server does.
  if (iequals(provider::parse_namespace(options.namespace_path).path, served)) return ok_status();
  return make_error(WbemCode::kInvalidNamespace, "namespace '" + options.namespace_path.substr(0, 128) +
                                                     "' is not served here (this server serves '" + served + "')");
}

Result<ManagementScope> CliContext::scope(bool resync_on_gap, std::optional<std::chrono::milliseconds> within) const {
  PKG_ASSIGN_OR_RETURN(std::string token, resolve_token());
  ConnectionOptions o;
  o.token = std::move(token);
  o.resync_on_gap = resync_on_gap;
  if (within) {
    const auto bound = std::max(*within, std::chrono::milliseconds(1));
    o.timeout = std::min(o.timeout, bound);
    o.event_idle_timeout = std::min(o.event_idle_timeout, bound);
  }
  o.insecure = options.insecure;
  o.ca_file = options.ca_file;
  return ManagementScope::try_create(server_url(), options.namespace_path, std::move(o));
}

int CliContext::fail(const Error& error, bool json_object) const {
  if (options.json && json_object) {
    cim::Json j = {{"error", wbem_name(error.code)}, {"hresult", wbem_hresult(error.code)}, {"message", error.message}};
    std::cout << j.dump() << std::endl;
  }
  std::string line = error.to_string();
  // One line, whatever the message holds.
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::cerr << "error: " << line << std::endl;
  return kExitError;
}

Result<cim::Json> CliContext::call(std::string_view method, std::string_view target, const cim::Json* body) {
  PKG_ASSIGN_OR_RETURN(client::HttpClient * http, client());
  PKG_ASSIGN_OR_RETURN(std::string text, http->call(method, target, body ? body->dump() : std::string()));
  if (text.empty()) return cim::Json();
  auto j = cim::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(WbemCode::kFailed, "the server answered with malformed JSON");
  return j;
}

void CliContext::print_json(const cim::Json& j) const { std::cout << j.dump(2) << std::endl; }

}  // namespace pkgcast::cli
