#include "cli/cli_context.h"

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

}  // namespace

std::string CliContext::server_url() const {
  return options.server.empty() ? env_or("PKGCAST_SERVER", kDefaultServer) : options.server;
}

Result<std::string> CliContext::resolve_token() const {
  if (!options.token.empty()) return options.token;
  if (const char* t = std::getenv("PKGCAST_TOKEN"); t != nullptr && t[0] != '\0') return std::string(t);
  std::string file = options.token_file.empty() ? env_or("PKGCAST_TOKEN_FILE", "") : options.token_file;
  const bool explicit_file = !file.empty();
  if (!explicit_file) {
    // The server's default data directory; with none (no HOME), there is no default token file.
    auto dir = server::default_data_dir(server::process_environment());
    if (!dir.ok()) return std::string();
    file = (*dir / "admin.token").string();
  }
  auto text = read_file(file);
  if (!text.ok()) {
    // No token at all is fine for public endpoints; the server answers the others with ACCESS_DENIED.
    if (!explicit_file && text.error().code == WbemCode::kNotFound) return std::string();
    return make_error(text.error().code, "token file: " + text.error().message);
  }
  return trim(std::move(text).value());
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
  if (!options.namespace_path.empty()) PKG_TRY(check_namespace(*made));
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

Result<ManagementScope> CliContext::scope(bool resync_on_gap) const {
  PKG_ASSIGN_OR_RETURN(std::string token, resolve_token());
  ConnectionOptions o;
  o.token = std::move(token);
  o.resync_on_gap = resync_on_gap;
  o.insecure = options.insecure;
  o.ca_file = options.ca_file;
  return ManagementScope::try_create(server_url(), options.namespace_path, std::move(o));
}

int CliContext::fail(const Error& error) const {
  if (options.json) {
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
