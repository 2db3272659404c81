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
#include <set>
#include <thread>

#include "server/builtin_routes.h"
#include "server/http_server.h"
#include "server/test_client.h"

namespace pkgcast::server::testing {

using namespace std::chrono_literals;

inline nlohmann::json json_of(const HttpResponse& r) { return nlohmann::json::parse(r.body()); }

// A StreamSource made of functions, for test routes.
class FnSource final : public StreamSource {
 public:
  using Next = std::function<Step(std::string& out, std::size_t room)>;
  using EndEarly = std::function<bool(const Error& why, std::string& out)>;
  explicit FnSource(Next next, std::function<void(Waker)> on_start = {},
                    std::function<void(const Error&)> on_cancel = {}, EndEarly on_end_early = {})
      : next_(std::move(next)),
        on_start_(std::move(on_start)),
        on_cancel_(std::move(on_cancel)),
        on_end_early_(std::move(on_end_early)) {}
  void start(Waker wake) override {
    if (on_start_) on_start_(std::move(wake));
  }
  Step next(std::string& out, std::size_t room) override { return next_(out, room); }
  void cancel(const Error& why) override {
    if (on_cancel_) on_cancel_(why);
  }
  bool end_early(const Error& why, std::string& out) override { return on_end_early_ && on_end_early_(why, out); }

 private:
  Next next_;
  std::function<void(Waker)> on_start_;
  std::function<void(const Error&)> on_cancel_;
  EndEarly on_end_early_;
};

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
    // An immutable representation with an ETag: 304 when the client already has it.
    router_.add("GET", "/api/v1/cached", Access::kPublic, [](Request& r) {
      Response resp = Response::json(200, R"({"cached":true})");
      resp.headers.emplace_back("ETag", "\"v1\"");
      if (r.header("if-none-match") == "\"v1\"") {
        resp.status = 304;
        resp.body.clear();
      }
      return resp;
    });
    // Takes its token as ?access_token= too (an EventSource's route); echoes the caller and the query it sees.
    router_.add(
        "GET", "/api/v1/watch", Access::kRead,
        [](Request& r) {
          return Response::json(200, nlohmann::json{{"caller", r.caller ? r.caller->id : ""}, {"q", r.query}}.dump());
        },
        QueryToken::kAccepted);
    // Answered on the network thread (an InlineHandler) unless its id is "decline"; otherwise by a worker. Both
    // say who answered, with the parameters and caller they saw.
    auto who = [](const char* by, const Request& r) {
      return Response::json(200, nlohmann::json{{"by", by},
                                                {"id", r.params.at("id")},
                                                {"caller", r.caller ? r.caller->id : ""}}
                                     .dump());
    };
    router_.add(
        "GET", "/api/v1/inline/{id}", Access::kRead, [who](Request& r) { return who("worker", r); },
        QueryToken::kRefused, [who](Request& r) -> std::optional<Response> {
          if (r.params.at("id") == "decline") return std::nullopt;
          return who("inline", r);
        });
    // Holds its worker until the test calls release_worker().
    router_.add("GET", "/api/v1/hold", Access::kPublic, [this](Request&) {
      held_.store(true);
      release_.wait();
      return Response::json(200, R"({"held":true})");
    });
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
      auto i = std::make_shared<int>(0);
      resp.stream = std::make_shared<FnSource>([this, n, i](std::string& out, std::size_t room) {
        // A bounded step: a few lines, at most `room` bytes.
        for (int k = 0; k < 64 && *i < n && out.size() < room; ++k, ++*i) {
          out += "line " + std::to_string(*i) + "\n";
        }
        if (*i < n) return StreamSource::Step::more();
        produced_.store(n);
        return StreamSource::Step::done();
      });
      return resp;
    });
    // Produces up to 4 GiB, as much as there is room for, until the client goes away; reports how it ended.
    router_.add("GET", "/api/v1/firehose", Access::kPublic, [this](Request&) {
      Response resp;
      resp.stream = std::make_shared<FnSource>(
          [this](std::string& out, std::size_t room) {
            if (produced_.load() >= (4L << 30)) {
              firehose_end_.set_value(Error{WbemCode::kOk, "finished"});
              return StreamSource::Step::done();
            }
            const std::size_t n = std::min<std::size_t>(room, 1 << 20);
            out.append(n, 'x');
            produced_.fetch_add(static_cast<long>(n));
            return StreamSource::Step::more();
          },
          nullptr, [this](const Error& why) { firehose_end_.set_value(why); });
      return resp;
    });
    // A stream that fails after some output: the client must see a truncated body.
    router_.add("GET", "/api/v1/broken-stream", Access::kPublic, [](Request&) {
      Response resp;
      auto step = std::make_shared<int>(0);
      resp.stream = std::make_shared<FnSource>([step](std::string& out, std::size_t) {
        if ((*step)++ == 0) {
          out = "partial";
          return StreamSource::Step::more();
        }
        return StreamSource::Step::done(make_error(WbemCode::kFailed, "the source failed"));
      });
      return resp;
    });
    // An event-stream-like answer: a heartbeat each time the ticker wakes it (every 20 ms), nothing in between.
    auto heartbeats = [this](std::function<void(const Error&)> on_cancel, FnSource::EndEarly last_words) {
      Response resp;
      resp.content_type = "text/event-stream";
      resp.stream = std::make_shared<FnSource>(
          [](std::string& out, std::size_t) {
            out = ": heartbeat\n\n";
            return StreamSource::Step::wait();
          },
          [this](StreamSource::Waker wake) { add_ticker(std::move(wake)); }, std::move(on_cancel),
          std::move(last_words));
      return resp;
    };
    router_.add("GET", "/api/v1/events", Access::kPublic, [this, heartbeats](Request&) {
      return heartbeats([this](const Error& why) {
        if (!events_ended_.exchange(true)) events_end_.set_value(why);
      }, nullptr);
    });
    // An event stream that says why it ends early (as the SSE route does): heartbeats, then "event: error" with the
    // error's code when the server ends it.
    auto last_words = [](const Error& why, std::string& out) {
      out += "event: error\ndata: " + std::string(wbem_name(why.code)) + "\n\n";
      return true;
    };
    router_.add("GET", "/api/v1/sse", Access::kPublic,
                [heartbeats, last_words](Request&) { return heartbeats(nullptr, last_words); });
    // The same with as much to send as there is room for: a client that does not read has its buffer full.
    router_.add("GET", "/api/v1/sse-flood", Access::kPublic, [last_words](Request&) {
      Response resp;
      resp.content_type = "text/event-stream";
      resp.stream = std::make_shared<FnSource>(
          [](std::string& out, std::size_t room) {
            out.append(std::min<std::size_t>(room, 64 << 10), 'x');
            return StreamSource::Step::more();
          },
          nullptr, nullptr, last_words);
      return resp;
    });
    // Writes "first", waits until the test calls open_gate(), then writes "second" and finishes: the test acts
    // while the stream is known to be open.
    router_.add("GET", "/api/v1/gated", Access::kPublic, [this](Request&) {
      Response resp;
      resp.content_type = "text/plain";
      auto step = std::make_shared<int>(0);
      resp.stream = std::make_shared<FnSource>(
          [this, step](std::string& out, std::size_t) {
            if (*step == 0) {
              *step = 1;
              out = "first";
              return StreamSource::Step::wait();
            }
            std::lock_guard lock(gate_mu_);
            if (!gate_open_) return StreamSource::Step::wait();
            out = "second";
            return StreamSource::Step::done();
          },
          [this](StreamSource::Waker wake) {
            std::lock_guard lock(gate_mu_);
            gate_wakers_.push_back(std::move(wake));
          });
      return resp;
    });
    add_builtin_routes(router_, BuiltinRoutesOptions{.site_code = "ABC",
                                                     .last_revision = [] { return Result<std::uint64_t>(42); },
                                                     .stopping = [this] { return server_ && server_->stopping(); },
                                                     .store_probe = [this]() -> Status {
                                                       std::function<Status()> probe;
                                                       {
                                                         std::lock_guard lock(probe_mu_);
                                                         probe = store_probe_;
                                                       }
                                                       return probe ? probe() : ok_status();
                                                     },
                                                     .probe_patience = std::chrono::milliseconds(300),
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
        std::move(fallback), metrics_, [this](std::string_view token) -> std::optional<site::TokenRecord> {
          if (!remembered_.contains(std::string(token))) return std::nullopt;
          return tokens_.at(std::string(token));
        });
    ASSERT_TRUE(server.ok()) << server.error().to_string();
    server_ = std::move(*server);
    server_->start();
  }

  void release_worker() {
    if (!released_.exchange(true)) release_promise_.set_value();
  }

  void TearDown() override {
    release_worker();
    if (server_) server_->stop(2s);
    {
      std::lock_guard lock(ticker_mu_);
      ticker_stop_ = true;
    }
    ticker_cv_.notify_all();
    if (ticker_.joinable()) ticker_.join();
  }

  // Wakes every registered waker each 20 ms (one thread for all the event-like streams of a test).
  void add_ticker(StreamSource::Waker wake) {
    std::lock_guard lock(ticker_mu_);
    tickers_.push_back(std::move(wake));
    if (ticker_.joinable()) return;
    ticker_ = std::thread([this] {
      std::unique_lock lock(ticker_mu_);
      while (!ticker_cv_.wait_for(lock, 20ms, [this] { return ticker_stop_; })) {
        for (auto& w : tickers_) w();
      }
    });
  }

  static std::pair<std::string, std::string> bearer(const std::string& token) {
    return {"Authorization", "Bearer " + token};
  }

  void open_gate() {
    std::vector<StreamSource::Waker> wakers;
    {
      std::lock_guard lock(gate_mu_);
      gate_open_ = true;
      wakers = gate_wakers_;
    }
    for (auto& w : wakers) w();
  }

  std::map<std::string, site::TokenRecord> tokens_;
  // Tokens known without the store (RememberedToken): those the network thread may authenticate itself.
  std::set<std::string> remembered_;
  std::promise<void> release_promise_;
  std::shared_future<void> release_ = release_promise_.get_future().share();
  std::atomic<bool> released_{false};
  std::atomic<bool> held_{false};
  Router router_;
  Metrics metrics_;
  // What health's read of the database answers (unset: ok).
  std::mutex probe_mu_;
  std::function<Status()> store_probe_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<long> produced_{0};
  std::promise<Error> firehose_end_;
  std::promise<Error> events_end_;
  std::atomic<bool> events_ended_{false};
  std::mutex gate_mu_;
  std::vector<StreamSource::Waker> gate_wakers_;
  bool gate_open_ = false;
  std::mutex ticker_mu_;
  std::condition_variable ticker_cv_;
  std::vector<StreamSource::Waker> tickers_;
  bool ticker_stop_ = false;
  std::thread ticker_;
};

}  // namespace pkgcast::server::testing
