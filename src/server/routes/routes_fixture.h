// Calls routes the way the server does (Router::match, the role check, the handler), without sockets, over a real
// SQLite store in a temporary directory.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "server/router.h"
#include "server/routes/api.h"
#include "store/store.h"

namespace pkgcast::server {

// Pulls a streamed body to its end the way the server's producer pool does (a bounded room per call), without a
// connection: a source that waits is a test failure here, since query answers never wait.
struct DrainedStream {
  Status status;
  std::string out;
  int calls = 0;
};
inline DrainedStream drain(StreamSource& source, std::size_t room = 256 * 1024) {
  DrainedStream d;
  source.start([] {});
  for (int guard = 0; guard < 1'000'000; ++guard) {
    std::string piece;
    StreamSource::Step step = source.next(piece, room);
    ++d.calls;
    d.out += piece;
    if (step.kind() == StreamSource::Step::Kind::kDone) {
      d.status = step.status();
      return d;
    }
    if (step.kind() == StreamSource::Step::Kind::kWait) {
      d.status = make_error(WbemCode::kFailed, "the source waited");
      return d;
    }
  }
  d.status = make_error(WbemCode::kFailed, "the source never finished");
  return d;
}

struct Reply {
  unsigned status = 0;
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  std::string error() const {
    auto j = json();
    return j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "";
  }
};

class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("pkgcast_routes_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    store::OpenOptions options;
    options.url = "sqlite:" + (dir_ / "r.db").string();
    auto opened = store::Store::open(options);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    store_ = std::move(*opened);
    ApiOptions api_options;
    api_options.site_code = "ABC";
    api_options.site_name = "Head office";
    api_options.server_name = "server1";
    configure(api_options);
    auto api = Api::create(*store_, api_options);
    ASSERT_TRUE(api.ok()) << api.error().to_string();
    api_ = std::move(*api);
    api_->register_routes(router_);
    admin_.role = site::Role::kFullAdmin;
    packager_.role = site::Role::kPackageAdmin;
    reader_.role = site::Role::kReadOnly;
    dp_.role = site::Role::kDp;
    dp_.dp_name = "dp1";
  }
  // A fixture's changes to the options the Api is created with.
  virtual void configure(ApiOptions& options) { (void)options; }

  void TearDown() override {
    api_.reset();
    store_->close();
    std::filesystem::remove_all(dir_);
  }

  // The handler's response as the server gets it (a stream not yet pulled); 404, 405 and 403 as the server would.
  Response respond(const std::string& method, const std::string& target, const std::string& body,
                   const site::TokenRecord& caller) {
    Request req;
    req.method = method;
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      const std::string query = target.substr(q + 1);
      const auto eq = query.find('=');
      req.query[query.substr(0, eq)] = eq == std::string::npos ? "" : query.substr(eq + 1);
    }
    req.body = body;
    req.caller = caller;
    auto match = router_.match(method, req.path);
    Response resp;
    if (!match) {
      resp.status = 404;
    } else if (match->handler == nullptr) {
      resp.status = 405;
    } else if (!role_allows(caller.role, match->access)) {
      resp.status = 403;
      resp.body = "{\"error\":\"WBEM_E_ACCESS_DENIED\"}";
    } else {
      req.params = match->params;
      resp = (*match->handler)(req);
    }
    return resp;
  }
  Reply call(const std::string& method, const std::string& target, const std::string& body,
             const site::TokenRecord& caller) {
    Response resp = respond(method, target, body, caller);
    if (resp.stream) {
      DrainedStream d = drain(*resp.stream);
      EXPECT_TRUE(d.status.ok()) << d.status.error().to_string();
      return {resp.status, d.out};
    }
    return {resp.status, resp.body};
  }
  Reply call(const std::string& method, const std::string& target, const std::string& body = "") {
    return call(method, target, body, admin_);
  }

  std::uint64_t revision() { return *store_->last_revision(); }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Api> api_;
  Router router_;
  site::TokenRecord admin_, packager_, reader_, dp_;
};

}  // namespace pkgcast::server
