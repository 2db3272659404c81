#include "server/server_main.h"

#include <signal.h>
#include <sys/stat.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <iostream>
#include <optional>
#include <system_error>
#include <vector>

#include "core/paths.h"
#include "core/strings.h"
#include "server/builtin_routes.h"
#include "server/data_dir.h"
#include "server/http_server.h"
#include "server/journal_compactor.h"
#include "server/token_cache.h"
#include "server/routes/api.h"
#include "site/tokens.h"
#include "store/store.h"

#ifndef PKGCAST_SOURCE_WEB_DIR
#error "PKGCAST_SOURCE_WEB_DIR must be defined by the build"
#endif

namespace pkgcast::server {
namespace fs = std::filesystem;
namespace {


// The configured web root, else the installed dashboard (<prefix>/share/pkgcast/web beside <prefix>/bin/pkgcast),
// else the source tree's web/ (a developer build). Empty when none exists: the dashboard answers 404 saying so.
fs::path find_web_root(const fs::path& configured) {
  if (!configured.empty()) return configured;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "pkgcast" / "web";
    if (fs::is_directory(installed, ec)) return installed;
  }
  if (fs::is_directory(PKGCAST_SOURCE_WEB_DIR, ec)) return PKGCAST_SOURCE_WEB_DIR;
  return {};
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && (s[start] == ' ' || s[start] == '\t')) ++start;
  return s.substr(start);
}

class SiteServerImpl final : public SiteServer {
 public:
  explicit SiteServerImpl(ServerConfig config) : config_(std::move(config)) {}
  ~SiteServerImpl() override { stop(); }

  Status init() {
    // Listen (and load the TLS files) first: a busy port or a bad certificate must not leave a new data
    // directory, database or token behind. Nothing is served before start(), after the routes are in place.
    HttpServerOptions http;
    http.host = config_.listen_host;
    http.port = config_.listen_port;
    if (!config_.tls_cert.empty()) http.tls = TlsFiles{config_.tls_cert, config_.tls_key};
    http.workers = static_cast<std::size_t>(config_.workers);
    http.max_body_bytes = static_cast<std::size_t>(config_.max_body_bytes);
    http.max_header_bytes = static_cast<std::size_t>(config_.max_header_bytes);
    http.idle_timeout = std::chrono::seconds(config_.idle_timeout_seconds);
    http.header_timeout = std::chrono::seconds(config_.header_timeout_seconds);
    http.max_connections = static_cast<std::size_t>(config_.max_connections);
    http.max_connections_per_address = static_cast<std::size_t>(config_.max_connections_per_address);
    http.max_streams = static_cast<std::size_t>(config_.max_streams);
    http.max_streams_per_token = static_cast<std::size_t>(config_.max_streams_per_token);
    http.max_streams_per_address = static_cast<std::size_t>(config_.max_streams_per_address);
    http.stream_buffer_bytes = static_cast<std::size_t>(config_.stream_buffer_bytes);
    http.stream_producers = static_cast<std::size_t>(config_.stream_producers);
    const fs::path web_root = find_web_root(config_.web_dir);
    // Lookups are remembered until the next commit (token_cache.h): a DP agent authenticates every chunk.
    // and the network thread answers a chunk request itself when its token is remembered (router.h, InlineHandler).
    auto authenticate = [this](std::string_view token) { return token_cache_.lookup(token); };
    auto remembered = [this](std::string_view token) { return token_cache_.remembered(token); };
    PKG_ASSIGN_OR_RETURN(http_, HttpServer::create(http, router_, authenticate, static_files_handler(web_root),
                                                   metrics_, remembered));

    PKG_TRY(ensure_private_dir(config_.data_dir));
    // Whoever can write the data directory can plant admin.token or a database: refuse one that others can write.
    PKG_TRY(check_trusted_dir(config_.data_dir));
    PKG_ASSIGN_OR_RETURN(auto dir_lock, ExclusiveLock::take(config_.data_dir / "server.lock",
                                                            "the data directory '" + config_.data_dir.string() + "'"));
    locks_.push_back(std::move(dir_lock));
    if (auto db_file = sqlite_file(config_.db_url)) {
      // A database outside the data directory may be another server's too.
      PKG_ASSIGN_OR_RETURN(
          auto db_lock, ExclusiveLock::take(db_file->string() + ".lock", "the database '" + db_file->string() + "'"));
      locks_.push_back(std::move(db_lock));
      // Created 0600 before SQLite opens it; SQLite gives -wal and -shm the database file's mode.
      PKG_TRY(ensure_private_file(*db_file));
      for (const char* suffix : {"-wal", "-shm", "-journal"}) {
        const fs::path extra = db_file->string() + suffix;
        std::error_code ec;
        if (fs::exists(fs::symlink_status(extra, ec))) PKG_TRY(ensure_private_file(extra));
      }
    }
    store::OpenOptions open;
    open.url = config_.db_url;
    open.retention.max_entries = static_cast<std::uint64_t>(config_.journal_max_entries);
    open.retention.max_age_seconds = config_.journal_max_age_seconds;
    open.max_readers = static_cast<std::size_t>(config_.db_max_readers);
    open.reader_wait = std::chrono::milliseconds(config_.db_reader_wait_ms);
    PKG_ASSIGN_OR_RETURN(store_, store::Store::open(open));
    store_->add_commit_listener([this](const std::vector<store::JournalEntry>&) { token_cache_.invalidate(); });
    PKG_ASSIGN_OR_RETURN(created_token_, ensure_admin_token(*store_, admin_token_path()));

    ApiOptions api;
    api.site_code = config_.site_code;
    api.site_name = config_.site_name;
    if (api.site_code.empty()) {
      PKG_ASSIGN_OR_RETURN(auto recorded, Api::recorded_site_code(*store_));
      if (recorded) {
        api.site_code = *recorded;
      } else {
        api.site_code = std::string(kDefaultSiteCode);
        if (api.site_name.empty()) api.site_name = std::string(kDefaultSiteName);
        spdlog::info("no site code configured; creating site {} ({}); use --site-code to choose another",
                     api.site_code, api.site_name);
      }
    }
    api.site_type = config_.site_type;
    api.source_roots = config_.source_roots;
    api.source_walker.threads = static_cast<std::size_t>(config_.source_walk_threads);
    api.source_walker.queue = static_cast<std::size_t>(config_.source_walk_queue);
    api.source_walker.timeout = std::chrono::seconds(config_.source_walk_timeout_seconds);
    api.content_library = config_.data_dir / "library";
    api.source_ingest_timeout = std::chrono::seconds(config_.source_ingest_timeout_seconds);
    api.content_gc_interval = std::chrono::seconds(config_.content_gc_interval_seconds);
    api.distribution.max_packages = static_cast<std::size_t>(config_.distmgr_max_packages);
    api.distribution.max_threads_per_package = static_cast<std::size_t>(config_.distmgr_max_threads_per_package);
    api.distribution.retry_count = static_cast<std::uint32_t>(config_.distmgr_retry_count);
    api.distribution.retry_delay = std::chrono::seconds(config_.distmgr_retry_delay_seconds);
    api.distribution.stall_timeout = std::chrono::seconds(config_.distmgr_stall_seconds);
    api.query_limits.max_rows_evaluated = static_cast<std::uint64_t>(config_.query_max_rows_evaluated);
    api.query_limits.max_time = std::chrono::seconds(config_.query_max_seconds);
    api.query_limits.max_distinct_rows = static_cast<std::uint64_t>(config_.query_max_distinct_rows);
    api.query_limits.max_subquery_values = static_cast<std::uint64_t>(config_.query_max_subquery_values);
    api.query_limits.max_join_rows = static_cast<std::uint64_t>(config_.query_max_join_rows);
    api.query_limits.max_join_bytes = static_cast<std::uint64_t>(config_.query_max_join_mib) << 20;
    // Subqueries are answered on a request worker: half of them at most, so that the others stay for everyone.
    api.query_limits.max_concurrent_subqueries =
        std::max<std::size_t>(1, static_cast<std::size_t>(config_.workers) / 2);
    api.events.max_subscriptions = static_cast<std::size_t>(config_.max_subscriptions);
    api.event_heartbeat = std::chrono::seconds(config_.event_heartbeat_seconds);
    site_code_ = to_upper(api.site_code);
    PKG_ASSIGN_OR_RETURN(api_, Api::create(*store_, api));
    // A revoked token must not outlive its revocation on a stream it opened (a query, an event stream).
    api_->on_token_revoked([this](const std::string& token_id) {
      const std::size_t ended = http_->end_streams_of(token_id);
      if (ended > 0) spdlog::info("token {} revoked: ended {} open stream(s)", token_id, ended);
    });

    add_builtin_routes(router_, BuiltinRoutesOptions{
                                    .site_code = site_code_,
                                    .last_revision = [this] { return store_->last_revision(); },
                                    .stopping = [this] { return stopping_.load(); },
                                    // Every reader busy (WBEM_E_SERVER_TOO_BUSY) is a busy server, not a database
                                    // that cannot be read: a monitor must not restart it for that.
                                    .store_probe = [this]() -> Status {
                                      auto first = store_->first_revision();
                                      if (first.ok() || first.error().code == WbemCode::kServerTooBusy) {
                                        return ok_status();
                                      }
                                      return first.error();
                                    },
                                    .metrics = &metrics_,
                                    .metrics_public = is_loopback_host(config_.listen_host),
                                });
    api_->register_routes(router_);
    metrics_.add_gauge("pkgcast_store_last_revision", "Last committed journal revision.",
                       [this]() -> std::optional<double> {
                         auto r = store_->last_revision();
                         return r.ok() ? std::optional<double>(static_cast<double>(*r)) : std::nullopt;
                       });
    metrics_.add_gauge("pkgcast_store_first_revision",
                       "Oldest journal revision still kept (moves forward as the journal is compacted).",
                       [this]() -> std::optional<double> {
                         auto r = store_->first_revision();
                         return r.ok() ? std::optional<double>(static_cast<double>(*r)) : std::nullopt;
                       });

    http_->start();
    compactor_ = std::make_unique<JournalCompactor>(*store_,
                                                    std::chrono::seconds(config_.journal_compact_interval_seconds));
    spdlog::info("site {} serving {} (database {}, {} workers, dashboard {})", site_code_, http_->url(),
                 store_->backend_name(), config_.workers, web_root.empty() ? "not installed" : web_root.string());
    if (!config_.port_file.empty()) PKG_TRY(write_file_atomic(config_.port_file.string(), http_->url() + "\n", 0644));
    return ok_status();
  }

  std::string url() const override { return http_ ? http_->url() : ""; }
  std::string site_code() const override { return site_code_; }
  fs::path admin_token_path() const override { return config_.data_dir / "admin.token"; }
  bool created_admin_token() const override { return created_token_; }
  store::Store& store() override { return *store_; }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    stopping_.store(true);
    if (http_) http_->stop(std::chrono::seconds(config_.shutdown_grace_seconds));
    http_.reset();
    compactor_.reset();  // joins its thread: no compaction may start on a closing store
    api_.reset();
    if (store_) store_->close();
  }

 private:
  ServerConfig config_;
  std::vector<ExclusiveLock> locks_;  // the data directory's and the SQLite database's, held until the end
  // Declaration order is teardown order reversed: the HTTP server goes first, the store last (and the token cache,
  // which the store's writer calls, after it).
  TokenCache token_cache_{[this](std::string_view token) { return site::lookup_token(*store_, token); },
                          Clock::system()};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<JournalCompactor> compactor_;
  std::unique_ptr<Api> api_;
  Metrics metrics_;
  Router router_;
  std::unique_ptr<HttpServer> http_;
  std::string site_code_;
  bool created_token_ = false;
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};
};

// A start-up error on one line (libpq's span several), as the CLI prints its errors.
std::string on_one_line(std::string s) {
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return s;
}

void set_up_logging(const std::string& level) {
  // Logs go to stderr; stdout carries only the "listening on" line that scripts and tests read.
  auto logger = spdlog::stderr_color_mt("pkgcast");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

Result<bool> ensure_admin_token(store::Store& store, const fs::path& token_file, Micros now) {
  // The file is checked even when it is not needed: a token file others could write is a planted one, and the
  // administrator must hear of it.
  auto file_state = check_private_file(token_file);
  if (!file_state.ok() && file_state.error().code != WbemCode::kNotFound) return std::move(file_state).error();
  const bool file_exists = file_state.ok();
  std::string token;
  if (file_exists) {
    PKG_ASSIGN_OR_RETURN(std::string text, read_file(token_file.string()));
    token = trim(text);
    // Only what generate_token() makes: a chosen string (a planted "pkc_attacker-chosen-token") is refused.
    if (!site::is_well_formed_token(token)) {
      return make_error(WbemCode::kInvalidParameter, "'" + token_file.string() +
                                                         "' does not hold a pkgcast token (pkc_ and 43 base64url "
                                                         "characters, as the server generates); move it away to get "
                                                         "a new one");
    }
  }
  PKG_ASSIGN_OR_RETURN(auto tokens, site::list_tokens(store));
  for (const auto& t : tokens) {
    if (t.role == site::Role::kFullAdmin && t.active(now)) return false;
  }
  // A token file without a matching record is the remains of a start that wrote the file and stopped before the
  // commit (the file is written first for exactly that reason), or of a database that was replaced: register it,
  // so the token the administrator already has keeps working. A file whose token the database knows (revoked or
  // expired, since no full-admin token is active) is replaced by a new token: a revocation is never undone.
  bool known = false;
  if (file_exists) {
    const std::string id = site::hash_token(token).substr(0, 12);
    for (const auto& t : tokens) known = known || t.id == id;
  }
  if (!file_exists || known) {
    PKG_ASSIGN_OR_RETURN(token, site::generate_token());
    PKG_TRY(write_file_atomic(token_file.string(), token + "\n", 0600));
  }
  site::TokenRecord record;
  record.role = site::Role::kFullAdmin;
  record.description = "administrator token made by the server on first start";
  PKG_TRY(store.execute([&](store::WriteTxn& txn) { return site::save_token(txn, token, record); }));
  spdlog::info("full-admin token {} in {}", record.id, token_file.string());
  return true;
}

Result<std::unique_ptr<SiteServer>> SiteServer::start(const ServerConfig& config) {
  auto server = std::make_unique<SiteServerImpl>(config);
  PKG_TRY(server->init());
  return std::unique_ptr<SiteServer>(std::move(server));
}

int run_server_command(const ServerFlags& flags) {
  auto config = load_server_config(flags, process_environment());
  if (!config.ok()) {
    std::cerr << "error: " << on_one_line(config.error().to_string()) << std::endl;
    return 2;
  }
  set_up_logging(config->log_level);
  // Nothing the server creates (database, -wal, -shm, token files) is for anyone else.
  ::umask(077);
  // A client that hangs up must never kill the server; Asio already sends with MSG_NOSIGNAL, stdout may not.
  ::signal(SIGPIPE, SIG_IGN);
  // Installed before anything starts, so a SIGTERM during start-up still means "stop cleanly".
  boost::asio::io_context signal_context;
  boost::asio::signal_set signals(signal_context, SIGINT, SIGTERM);
  int received = 0;
  signals.async_wait([&](const boost::system::error_code& ec, int number) {
    if (!ec) received = number;
  });

  auto server = SiteServer::start(*config);
  if (!server.ok()) {
    std::cerr << "error: " << on_one_line(server.error().to_string()) << std::endl;
    // What start-up refuses as an invalid parameter is the configuration's fault (a TLS file, a listen host that
    // does not resolve, a site code the database does not have); anything else is a failure to start.
    return server.error().code == WbemCode::kInvalidParameter ? 2 : 1;
  }
  std::cout << "pkgcast server listening on " << (*server)->url() << std::endl;
  if ((*server)->created_admin_token()) {
    std::cerr << "admin token written to " << (*server)->admin_token_path().string() << std::endl;
  }
  signal_context.run();
  spdlog::info("received signal {}; stopping", received);
  (*server)->stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace pkgcast::server
