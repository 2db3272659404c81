// Fuzzes the server's HTTP request handling on arbitrary bytes, the way a connection (src/server/session.h) sees
// them:
//   the head, found within max_header_bytes -> the raw-head rules (obs-fold) -> Beast's request parser with the
//   server's header and body limits -> the head rules (method, Transfer-Encoding, Host, Authorization) -> the body,
//   read through a window of max_header_bytes as the connection's bounded buffer reads it (trailers and chunk lines
//   must fit) -> header plus trailer fields within the limit -> target decoding -> the real Dispatcher and Router
//   with the server's own routes (health, metrics, the dashboard's static files) and one route per access level.
// Nothing may throw (the connection would close; here libFuzzer reports it), every refusal is one of the statuses
// the server documents, and every error body is the WBEM JSON object.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unistd.h>

#include "core/strings.h"
#include "server/builtin_routes.h"
#include "server/http_server.h"
#include "server/dispatch.h"
#include "server/metrics.h"
#include "server/request_rules.h"
#include "server/router.h"
#include "server/url.h"

namespace {

namespace http = boost::beast::http;
namespace net = boost::asio;
using namespace pkgcast;
using namespace pkgcast::server;

// The server's defaults (http_server.h).
constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
constexpr std::size_t kMaxBodyBytes = 1024 * 1024;

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "http_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

// An error answer must be the WBEM JSON object with a status the server documents.
void check_response(const Response& r) {
  if (r.status < 200 || r.status > 599) fail("status out of range", std::to_string(r.status));
  if (r.status < 400) return;
  const auto body = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("error") || !body.contains("hresult") || !body.contains("message")) {
    fail("error body is not a WBEM error", r.body);
  }
}

struct World {
  Metrics metrics;
  Router router;
  std::filesystem::path web_root;
  std::unique_ptr<Dispatcher> dispatcher;

  World() {
    char tmpl[] = "/tmp/pkgcast-http-fuzz-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) fail("mkdtemp", "");
    web_root = tmpl;
    std::ofstream(web_root / "index.html") << "<!doctype html><title>pkgcast</title>";
    std::ofstream(web_root / "app.js") << "console.log('pkgcast');";
    std::ofstream(web_root / ".hidden") << "secret";

    add_builtin_routes(router, BuiltinRoutesOptions{
                                   .site_code = "ABC",
                                   .last_revision = [] { return Result<std::uint64_t>(7); },
                                   .stopping = [] { return false; },
                                   .metrics = &metrics,
                                   .metrics_public = true,
                               });
    auto echo = [](unsigned status) {
      return [status](Request& req) {
        nlohmann::json j = {{"method", req.method}, {"path", req.path}, {"params", req.params},
                            {"query", req.query}, {"body_bytes", req.body.size()}};
        return Response::json(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      };
    };
    router.add("GET", "/api/v1/packages", Access::kRead, echo(200));
    router.add("GET", "/api/v1/packages/{id}", Access::kRead, echo(200));
    router.add("POST", "/api/v1/packages", Access::kPackageAdmin, [](Request& req) {
      const auto body = nlohmann::json::parse(req.body, nullptr, false);
      if (!body.is_object()) return error_response(make_error(WbemCode::kInvalidParameter, "not a JSON object"));
      return Response::json(201, R"({"PackageID":"ABC00001"})");
    });
    router.add("DELETE", "/api/v1/packages/{id}", Access::kPackageAdmin, echo(200));
    router.add("PATCH", "/api/v1/packages/{id}", Access::kPackageAdmin, echo(200));
    router.add("POST", "/api/v1/tokens", Access::kFullAdmin, echo(201));
    router.add("GET", "/api/v1/dps/{name}/jobs", Access::kDp, echo(200));
    router.add("GET", "/api/v1/packages/{id}/throws", Access::kRead,
               [](Request&) -> Response { throw std::runtime_error("handler failure"); });

    Authenticator authenticate = [](std::string_view token) -> Result<std::optional<site::TokenRecord>> {
      site::TokenRecord record;
      if (token == "pkc_fuzz_admin") {
        record.role = site::Role::kFullAdmin;
      } else if (token == "pkc_fuzz_read") {
        record.role = site::Role::kReadOnly;
      } else if (token == "pkc_fuzz_dp") {
        record.role = site::Role::kDp;
        record.dp_name = "DP01";
      } else if (token == "pkc_fuzz_storedown") {
        return make_error(WbemCode::kFailed, "the store is down");
      } else {
        return std::optional<site::TokenRecord>();
      }
      return std::optional<site::TokenRecord>(record);
    };
    dispatcher = std::make_unique<Dispatcher>(router, authenticate, static_files_handler(web_root));
  }
  ~World() {
    std::error_code ec;
    std::filesystem::remove_all(web_root, ec);
  }
};

World& world() {
  static World w;
  return w;
}

void run_one(std::string_view bytes) {
  World& w = world();
  if (auto refusal = check_request_start(bytes)) {  // the server answers as soon as the first byte arrives
    if (refusal->status != 400) fail("request-start refusal status", std::to_string(refusal->status));
    return;
  }
  const auto end = find_head_end(bytes);
  if (!end || *end > kMaxHeaderBytes) return;  // the server answers 431 (or waits) without parsing
  const std::string_view head = bytes.substr(0, *end);
  if (auto refusal = check_raw_head(head)) {
    if (refusal->status != 400) fail("raw-head refusal status", std::to_string(refusal->status));
    return;
  }

  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(kMaxHeaderBytes));
  parser.body_limit(kMaxBodyBytes);
  parser.eager(true);
  boost::beast::error_code ec;
  const std::size_t used = parser.put(net::buffer(head.data(), head.size()), ec);
  if (ec) return;  // 400, 413 or 431
  if (!parser.is_header_done()) return;
  if (used > head.size()) fail("parser consumed past the head", head);

  RequestHead rules;
  rules.method = sv(parser.get().method_string());
  rules.version = parser.get().version();
  for (const auto& field : parser.get()) rules.fields.emplace_back(sv(field.name_string()), sv(field.value()));
  if (auto refusal = check_request_head(rules)) {
    if (refusal->status != 400 && refusal->status != 501) fail("head refusal status", std::to_string(refusal->status));
    return;
  }
  const std::string_view method = *known_method(rules.method);

  // Admission on the head alone, as the connection does before reading a body.
  Request request;
  request.method = std::string(method);
  auto target = decode_target(sv(parser.get().target()));
  if (!target.ok()) return;
  request.path = target->path;
  request.query = target->query;
  for (const auto& [name, value] : rules.fields) request.headers.emplace(to_lower(name), std::string(value));
  Admission admission = w.dispatcher->admit(request);
  if (admission.refusal) {
    check_response(*admission.refusal);
    w.metrics.record_request(request.method, admission.route_label, admission.refusal->status, {});
    return;
  }

  // The body through the connection's bounded buffer: unconsumed bytes never exceed max_header_bytes.
  std::string_view rest = bytes.substr(used);
  while (!parser.is_done()) {
    const std::string_view window = rest.substr(0, kMaxHeaderBytes);
    const std::size_t n = parser.put(net::buffer(window.data(), window.size()), ec);
    rest.remove_prefix(n);
    // Beast takes an empty buffer without error and without progress: the input ended mid-body (the client went
    // away), which the connection answers with its header/idle timeout.
    if (!ec && n == 0) return;
    if (ec == http::error::need_more) {
      if (n > 0) continue;
      if (window.size() >= kMaxHeaderBytes) return;  // 431: a trailer or chunk line beyond the limit
      parser.put_eof(ec);
      return;  // all input given and no progress: the client went away mid-body
    }
    if (ec) return;  // 400 or 413
  }
  std::size_t field_bytes = 0;
  for (const auto& field : parser.get()) field_bytes += field.name_string().size() + field.value().size() + 4;
  if (field_bytes > kMaxHeaderBytes) return;  // 431
  request.body = std::move(parser.get().body());
  if (request.body.size() > kMaxBodyBytes) fail("body beyond the limit", "");

  Response response = w.dispatcher->run(admission, request);
  check_response(response);
  w.metrics.record_request(request.method, admission.route_label, response.status, {});
}

}  // namespace

// The version the health route reports; the fuzz build does not link the network server that defines it.
std::string_view pkgcast::server::pkgcast_version() { return "fuzz"; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_one(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
