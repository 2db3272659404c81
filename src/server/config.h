// Configuration of `pkgcast server`: command-line flags, then PKGCAST_* environment variables, then an optional
// TOML file (--config FILE or PKGCAST_CONFIG), then defaults. docs/configuration.md lists every key.
// Pure: the environment is injected, so precedence is unit-tested without touching the process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace pkgcast::server {

// What the command line gave; nullopt = not given.
struct ServerFlags {
  std::optional<std::string> config_file;
  std::optional<std::string> data_dir;
  std::optional<std::string> listen;  // HOST:PORT
  std::optional<std::string> db;
  std::optional<std::string> site_code;
  std::optional<std::string> site_name;
  std::optional<std::string> site_type;  // primary | central
  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;
  std::optional<std::string> web_dir;
  std::optional<std::string> log_level;
  std::optional<std::string> port_file;
  std::optional<std::int64_t> workers;
};

struct ServerConfig {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8750;
  std::filesystem::path data_dir;  // always set after loading
  std::string db_url;              // always set after loading: default "<data_dir>/pkgcast.db"
  std::string site_code;           // "" = the site the database already has, else kDefaultSiteCode
  std::string site_name;           // "" = kDefaultSiteName for a new site
  std::string site_type = "primary";
  std::filesystem::path tls_cert;  // both set, or both empty
  std::filesystem::path tls_key;
  std::filesystem::path web_dir;  // "" = the installed dashboard or the source tree's web/, when present
  std::filesystem::path port_file;  // "" = none; else the URL is written there atomically once listening
  std::string log_level = "info";
  std::int64_t workers = 4;
  std::int64_t max_body_bytes = 1024 * 1024;
  std::int64_t max_header_bytes = 16 * 1024;     // at most 65,535 (what the HTTP parser can hold)
  std::int64_t max_connections = 0;              // 0 = from the open-file limit (http_server.h)
  std::int64_t max_connections_per_address = 0;  // 0 = a quarter of max_connections
  std::int64_t header_timeout_seconds = 10;      // a request head must arrive whole within this
  std::int64_t idle_timeout_seconds = 60;
  std::int64_t shutdown_grace_seconds = 10;
  std::int64_t max_streams = 256;
  std::int64_t max_streams_per_token = 32;    // of max_streams, per token id
  std::int64_t max_streams_per_address = 64;  // of max_streams, per client IP address
  std::int64_t stream_buffer_bytes = 256 * 1024;  // unsent bytes a stream may hold
  std::int64_t stream_producers = 2;              // threads pulling every stream's body
  std::int64_t query_max_rows_evaluated = 10'000'000;  // per query; 0 = unlimited
  std::int64_t query_max_seconds = 60;                 // evaluation time per query; 0 = unlimited
  std::int64_t query_max_distinct_rows = 100'000;      // SELECT DISTINCT's combinations held at once; 0 = unlimited
  std::int64_t query_max_subquery_values = 100'000;    // IN (SELECT ...) values held per query; 0 = unlimited
  std::int64_t query_max_join_rows = 250'000;          // rows a join holds at once; 0 = unlimited
  std::int64_t query_max_join_mib = 64;                // MiB a join sorted in memory holds; 0 = unlimited
  std::int64_t event_heartbeat_seconds = 15;           // an idle event stream sends a comment this often
  std::int64_t max_subscriptions = 20'000;             // open event subscriptions, server-wide
  std::int64_t journal_max_entries = 1'000'000;      // 0 = unlimited
  std::int64_t journal_max_age_seconds = 7 * 86'400;  // 0 = unlimited
  std::int64_t journal_compact_interval_seconds = 60;  // how often the running server applies the retention
  std::int64_t db_max_readers = 0;       // concurrent database reads; 0 = the backend's default (store.h)
  std::int64_t db_reader_wait_ms = 2000;  // how long a read waits for a connection before WBEM_E_SERVER_TOO_BUSY
  // Package sources must lie under one of these (canonically). Default: <data_dir>/sources and /srv. An empty list
  // (source_roots = []) admits no source.
  std::vector<std::filesystem::path> source_roots;
  std::int64_t source_walk_threads = 2;           // threads that measure package sources
  std::int64_t source_walk_queue = 2;             // walks that may wait for one; more are WBEM_E_SERVER_TOO_BUSY
  std::int64_t source_walk_timeout_seconds = 60;  // one walk's budget (WBEM_E_TIMED_OUT past it)
  std::int64_t source_ingest_timeout_seconds = 3600;  // one ingest into the content library
  std::int64_t content_gc_interval_seconds = 3600;    // how often unreferenced content is freed
  // The Distribution Manager (docs/distribution.md).
  std::int64_t distmgr_max_packages = 3;             // packages sent at once
  std::int64_t distmgr_max_threads_per_package = 5;  // DPs per package at once
  std::int64_t distmgr_retry_count = 100;            // failed attempts before INSTALL_FAILED
  std::int64_t distmgr_retry_delay_seconds = 1800;   // the first back-off, doubled per attempt (with jitter)
  std::int64_t distmgr_stall_seconds = 300;          // a DP with no progress this long is retried ("stalled")
};

inline constexpr std::string_view kDefaultSiteCode = "P01";
inline constexpr std::string_view kDefaultSiteName = "Primary site";

// Returns the value of an environment variable, nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
// The process environment (getenv).
EnvLookup process_environment();

// Merges flags > environment > TOML file > defaults and validates the result. Bad input is
// WBEM_E_INVALID_PARAMETER naming the source (flag, variable or file:line) and the key.
Result<ServerConfig> load_server_config(const ServerFlags& flags, const EnvLookup& env);

// "$XDG_STATE_HOME/pkgcast", else "$HOME/.local/state/pkgcast"; WBEM_E_INVALID_PARAMETER when neither is set.
Result<std::filesystem::path> default_data_dir(const EnvLookup& env);

// "127.0.0.1:8750", "[::1]:8750", "0.0.0.0:0", "localhost:8750" -> host and port.
Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text);

// The database file of a SQLite URL ("PATH" or "sqlite:PATH"); nullopt for PostgreSQL, in-memory and `file:` URI
// databases.
std::optional<std::filesystem::path> sqlite_file(const std::string& url);

}  // namespace pkgcast::server
