// Test fixture shared by the server's loopback tests (http_server_test.cc, http_stream_test.cc): a real
// HttpServer on a free port with test routes, including streamed ones, and a fixed token table. Tests only.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/builtin_routes.h"
#include "server/http_server.h"
#include "server/test_client.h"

namespace pkgcast::server::testing {

using namespace std::chrono_literals;

inline nlohmann::json json_of(const HttpResponse& r) { return nlohmann::json::parse(r.body()); }

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto record = [](site::Role role, std::string dp_name = "") {
      site::TokenRecord r;
      r.id = "id" + std::to_string(static_cast<int>(role));
      r.role = role;
      r.dp_name = std::move(dp_name);
      return r;
    };
    tokens_["pkc_full"] = record(site::Role::kFullAdmin);
    tokens_["pkc_pkg"] = record(site::Role::kPackageAdmin);
    tokens_["pkc_read"] = record(site::Role::kReadOnly);
    tokens_["pkc_dp"] = record(site::Role::kDp, "DP01");

    router_.add("GET", "/api/v1/echo/{id}", Access::kRead, [](Request& r) {
      nlohmann::json j = {{"id", r.params.at("id")},
                          {"q", r.query},
                          {"caller", r.caller ? static_cast<int>(r.caller->role) : -1},
                          {"accept", std::string(r.header("accept"))}};
      return Response::json(200, j.dump());
    });
    router_.add("POST", "/api/v1/echo/{id}", Access::kPackageAdmin,
                [](Request& r) { return Response::json(201, nlohmann::json{{"body", r.body}}.dump()); });
    router_.add("GET", "/api/v1/public", Access::kPublic, [](Request& r) {
      return Response::json(200, nlohmann::json{{"caller", r.caller.has_value()}}.dump());
    });
    router_.add("GET", "/api/v1/admin", Access::kFullAdmin, [](Request&) { return Response::json(200, "{}"); });
    router_.add("GET", "/api/v1/dp", Access::kDp, [](Request&) { return Response::json(200, "{}"); });
    router_.add("GET", "/api/v1/throws", Access::kPublic,
                [](Request&) -> Response { throw std::runtime_error("boom"); });
    router_.add("GET", "/api/v1/slow", Access::kPublic, [](Request&) {
      std::this_thread::sleep_for(300ms);
      return Response::json(200, R"({"slow":true})");
    });
    router_.add("GET", "/api/v1/lines", Access::kPublic, [this](Request& r) {
      const int n = std::stoi(r.query.count("n") ? r.query.at("n") : "100000");
      Response resp;
      resp.content_type = "text/plain";
      resp.stream = [this, n](BodyWriter& w) -> Status {
        for (int i = 0; i < n; ++i) {
          PKG_TRY(w.write("line " + std::to_string(i) + "\n"));
        }
        produced_.store(n);
        return ok_status();
      };
      return resp;
    });
    // Writes 1 MiB pieces until the client goes away; reports how write() ended.
    router_.add("GET", "/api/v1/firehose", Access::kPublic, [this](Request&) {
      Response resp;
      resp.stream = [this](BodyWriter& w) -> Status {
        const std::string piece(1 << 20, 'x');
        for (int i = 0; i < 4096; ++i) {
          Status s = w.write(piece);
          if (!s.ok()) {
            firehose_end_.set_value(s.error());
            return s;
          }
          produced_.fetch_add(static_cast<long>(piece.size()));
        }
        firehose_end_.set_value(Error{WbemCode::kOk, "finished"});
        return ok_status();
      };
      return resp;
    });
    // A stream that fails after some output: the client must see a truncated body.
    router_.add("GET", "/api/v1/broken-stream", Access::kPublic, [](Request&) {
      Response resp;
      resp.stream = [](BodyWriter& w) -> Status {
        PKG_TRY(w.write("partial"));
        return make_error(WbemCode::kFailed, "the producer failed");
      };
      return resp;
    });
    // An event-stream-like producer: writes a heartbeat every 20 ms until write() fails.
    router_.add("GET", "/api/v1/events", Access::kPublic, [this](Request&) {
      Response resp;
      resp.content_type = "text/event-stream";
      resp.stream = [this](BodyWriter& w) -> Status {
        while (true) {
          Status s = w.write(": heartbeat\n\n");
          if (!s.ok()) {
            events_end_.set_value(s.error());
            return s;
          }
          std::this_thread::sleep_for(20ms);
        }
      };
      return resp;
    });
    // Writes "first", waits until the test calls open_gate(), then writes "second" and finishes: the test acts
    // while the stream is known to be open.
    router_.add("GET", "/api/v1/gated", Access::kPublic, [this](Request&) {
      Response resp;
      resp.content_type = "text/plain";
      resp.stream = [this](BodyWriter& w) -> Status {
        PKG_TRY(w.write("first"));
        {
          std::unique_lock lock(gate_mu_);
          if (!gate_cv_.wait_for(lock, 10s, [this] { return gate_open_; })) {
            return make_error(WbemCode::kFailed, "the test never opened the gate");
          }
        }
        return w.write("second");
      };
      return resp;
    });
    add_builtin_routes(router_, BuiltinRoutesOptions{.site_code = "ABC",
                                                     .last_revision = [] { return Result<std::uint64_t>(42); },
                                                     .stopping = [this] { return server_ && server_->stopping(); },
                                                     .metrics = &metrics_,
                                                     .metrics_public = true});
  }

  void start(HttpServerOptions options = {}, Handler fallback = {}) {
    options.port = 0;
    auto server = HttpServer::create(
        options, router_,
        [this](std::string_view token) -> Result<std::optional<site::TokenRecord>> {
          if (token == "pkc_store_down") return make_error(WbemCode::kFailed, "the store is unavailable");
          auto it = tokens_.find(std::string(token));
          if (it == tokens_.end()) return std::optional<site::TokenRecord>();
          return std::optional<site::TokenRecord>(it->second);
        },
        std::move(fallback), metrics_);
    ASSERT_TRUE(server.ok()) << server.error().to_string();
    server_ = std::move(*server);
    server_->start();
  }

  void TearDown() override {
    if (server_) server_->stop(2s);
  }

  static std::pair<std::string, std::string> bearer(const std::string& token) {
    return {"Authorization", "Bearer " + token};
  }

  void open_gate() {
    std::lock_guard lock(gate_mu_);
    gate_open_ = true;
    gate_cv_.notify_all();
  }

  std::map<std::string, site::TokenRecord> tokens_;
  Router router_;
  Metrics metrics_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<long> produced_{0};
  std::promise<Error> firehose_end_;
  std::promise<Error> events_end_;
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool gate_open_ = false;
};

}  // namespace pkgcast::server::testing
