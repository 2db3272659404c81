#include "server/config.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <map>
#include <toml++/toml.h>

#include "core/strings.h"
#include "site/identity.h"

namespace pkgcast::server {
namespace fs = std::filesystem;

std::optional<fs::path> sqlite_file(const std::string& url) {
  if (url.rfind("postgresql:", 0) == 0 || url.rfind("postgres:", 0) == 0) return std::nullopt;
  std::string path = url.rfind("sqlite:", 0) == 0 ? url.substr(7) : url;
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return std::nullopt;
  return fs::path(path);
}

namespace {

// A SQLite database path in a config file, relative to the file's directory (config_test's
// RelativePathsInTheFileAreRelativeToTheFile).
std::string resolve_sqlite_path(const std::string& value, const fs::path& base) {
  const auto file = sqlite_file(value);
  if (!file || file->is_absolute()) return value;
  return (value.rfind("sqlite:", 0) == 0 ? "sqlite:" : "") + (base / *file).string();
}

enum class Kind { kString, kPath, kInteger, kPathList };

// A path list is kept in a Setting as its paths joined by this (a newline: no configured path holds one).
constexpr char kListSeparator = '\n';

struct Key {
  std::string_view name;
  Kind kind;
  std::int64_t min = 0;
  std::int64_t max = 0;
};

// Every key the TOML file and the environment (PKGCAST_<NAME>) accept; flags cover the common subset.
constexpr std::array<Key, 48> kKeys{{
    {"listen", Kind::kString},
    {"data_dir", Kind::kPath},
    {"db", Kind::kString},
    {"site_code", Kind::kString},
    {"site_name", Kind::kString},
    {"site_type", Kind::kString},
    {"tls_cert", Kind::kPath},
    {"tls_key", Kind::kPath},
    {"web_dir", Kind::kPath},
    {"port_file", Kind::kPath},
    {"log_level", Kind::kString},
    {"workers", Kind::kInteger, 1, 256},
    {"max_body_bytes", Kind::kInteger, 1024, std::int64_t{1} << 30},
    // 65,535: what Beast's parser can hold (kMaxHeaderBytesLimit in http_server.h; a field of 64 KiB throws).
    {"max_header_bytes", Kind::kInteger, 1024, 65'535},
    {"max_connections", Kind::kInteger, 0, 10'000'000},
    {"max_connections_per_address", Kind::kInteger, 0, 10'000'000},
    {"header_timeout_seconds", Kind::kInteger, 1, 3'600},
    {"idle_timeout_seconds", Kind::kInteger, 1, 86'400},
    {"shutdown_grace_seconds", Kind::kInteger, 0, 3'600},
    {"max_streams", Kind::kInteger, 1, 100'000},
    {"max_streams_per_token", Kind::kInteger, 1, 100'000},
    {"max_streams_per_address", Kind::kInteger, 1, 100'000},
    {"stream_buffer_bytes", Kind::kInteger, 4096, std::int64_t{64} << 20},
    {"stream_producers", Kind::kInteger, 1, 64},
    {"query_max_rows_evaluated", Kind::kInteger, 0, std::int64_t{1} << 50},
    {"query_max_seconds", Kind::kInteger, 0, 86'400},
    {"query_max_distinct_rows", Kind::kInteger, 0, std::int64_t{1} << 40},
    {"query_max_subquery_values", Kind::kInteger, 0, std::int64_t{1} << 40},
    {"query_max_join_rows", Kind::kInteger, 0, std::int64_t{1} << 40},
    {"query_max_join_mib", Kind::kInteger, 0, std::int64_t{1} << 20},
    {"event_heartbeat_seconds", Kind::kInteger, 1, 3'600},
    {"max_subscriptions", Kind::kInteger, 1, 1'000'000},
    {"journal_max_entries", Kind::kInteger, 0, std::int64_t{1} << 50},
    {"journal_max_age_seconds", Kind::kInteger, 0, std::int64_t{1} << 40},
    {"journal_compact_interval_seconds", Kind::kInteger, 1, 86'400},
    {"db_max_readers", Kind::kInteger, 0, 1'000},
    {"db_reader_wait_ms", Kind::kInteger, 0, 600'000},
    {"source_roots", Kind::kPathList},
    {"source_walk_threads", Kind::kInteger, 1, 64},
    {"source_walk_queue", Kind::kInteger, 0, 4096},
    {"source_walk_timeout_seconds", Kind::kInteger, 1, 86'400},
    {"source_ingest_timeout_seconds", Kind::kInteger, 1, 7 * 86'400},
    {"content_gc_interval_seconds", Kind::kInteger, 1, 7 * 86'400},
    {"distmgr_max_packages", Kind::kInteger, 1, 1'000},
    {"distmgr_max_threads_per_package", Kind::kInteger, 1, 10'000},
    {"distmgr_retry_count", Kind::kInteger, 0, 100'000},
    {"distmgr_retry_delay_seconds", Kind::kInteger, 1, 7 * 86'400},
    {"distmgr_stall_seconds", Kind::kInteger, 1, 7 * 86'400},
}};

// One key's winning value and where it came from ("--listen", "PKGCAST_LISTEN", "/etc/pkgcast.toml:3").
struct Setting {
  std::string value;
  std::string source;
};
using Settings = std::map<std::string, Setting, std::less<>>;

Error bad(const Setting& s, std::string_view key, const std::string& why) {
  return make_error(WbemCode::kInvalidParameter, s.source + ": " + std::string(key) + " " + why);
}

std::string env_name(std::string_view key) { return "PKGCAST_" + to_upper(key); }

Status read_toml(const fs::path& file, Settings& out) {
  toml::table table;
  try {
    table = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return make_error(WbemCode::kInvalidParameter, file.string() + ":" + std::to_string(where.line) + ":" +
                                                       std::to_string(where.column) + ": " +
                                                       std::string(e.description()));
  }
  // Absolute, so that what a relative --config names is checked as the absolute path it is (source_roots).
  std::error_code absolute_ec;
  const fs::path absolute_file = fs::absolute(file, absolute_ec);
  const fs::path base = (absolute_ec ? file : absolute_file).parent_path();
  for (const auto& [name, node] : table) {
    const std::string key(name.str());
    const std::string source = file.string() + ":" + std::to_string(node.source().begin.line);
    const Key* def = nullptr;
    for (const auto& k : kKeys) {
      if (k.name == key) def = &k;
    }
    if (def == nullptr) {
      return make_error(WbemCode::kInvalidParameter, source + ": unknown key '" + key + "'");
    }
    if (def->kind == Kind::kPathList) {
      const toml::array* list = node.as_array();
      if (list == nullptr) return bad({"", source}, key, "must be an array of strings");
      std::string joined;
      for (const auto& item : *list) {
        const auto v = item.value<std::string>();
        if (!item.is_string() || !v || v->empty() || v->find(kListSeparator) != std::string::npos) {
          return bad({"", source}, key, "must be an array of non-empty strings");
        }
        std::string value = *v;
        if (fs::path(value).is_relative()) value = (base / value).string();
        joined += (joined.empty() ? "" : std::string(1, kListSeparator)) + value;
      }
      out[key] = {joined, source};
    } else if (def->kind == Kind::kInteger) {
      const auto v = node.value<std::int64_t>();
      if (!node.is_integer() || !v) return bad({"", source}, key, "must be an integer");
      out[key] = {std::to_string(*v), source};
    } else {
      const auto v = node.value<std::string>();
      if (!node.is_string() || !v) return bad({"", source}, key, "must be a string");
      std::string value = *v;
      // A relative path in a file means relative to that file, not to wherever the server was started.
      if (def->kind == Kind::kPath && !value.empty() && fs::path(value).is_relative()) value = (base / value).string();
      // So is a SQLite database's (`db = "pkgcast.db"` or `"sqlite:pkgcast.db"`); a PostgreSQL URL, an in-memory
      // or a `file:` URI database is left as written.
      if (key == "db") value = resolve_sqlite_path(value, base);
      out[key] = {value, source};
    }
  }
  return ok_status();
}

void read_env(const EnvLookup& env, Settings& out) {
  for (const auto& k : kKeys) {
    const std::string name = env_name(k.name);
    auto v = env(name);
    if (!v || v->empty()) continue;
    if (k.kind == Kind::kPathList) {
      // PKGCAST_SOURCE_ROOTS=/a:/b, as PATH is written.
      std::string joined = *v;
      std::replace(joined.begin(), joined.end(), ':', kListSeparator);
      out[std::string(k.name)] = {joined, name};
    } else {
      out[std::string(k.name)] = {*v, name};
    }
  }
}

void read_flags(const ServerFlags& f, Settings& out) {
  auto put = [&](std::string_view key, const std::optional<std::string>& v, std::string_view flag) {
    if (v) out[std::string(key)] = {*v, std::string(flag)};
  };
  put("data_dir", f.data_dir, "--data-dir");
  put("listen", f.listen, "--listen");
  put("db", f.db, "--db");
  put("site_code", f.site_code, "--site-code");
  put("site_name", f.site_name, "--site-name");
  put("site_type", f.site_type, "--type");
  put("tls_cert", f.tls_cert, "--tls-cert");
  put("tls_key", f.tls_key, "--tls-key");
  put("web_dir", f.web_dir, "--web-dir");
  put("log_level", f.log_level, "--log-level");
  put("port_file", f.port_file, "--port-file");
  if (f.workers) out["workers"] = {std::to_string(*f.workers), "--workers"};
}

Result<std::int64_t> integer(const Settings& s, std::string_view key, std::int64_t fallback) {
  const auto it = s.find(key);
  if (it == s.end()) return fallback;
  const std::string& text = it->second.value;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return bad(it->second, key, "must be an integer, not '" + text + "'");
  }
  for (const auto& k : kKeys) {
    if (k.name == key && (v < k.min || v > k.max)) {
      return bad(it->second, key, "must be between " + std::to_string(k.min) + " and " + std::to_string(k.max));
    }
  }
  return v;
}

std::string text(const Settings& s, std::string_view key, std::string fallback = "") {
  const auto it = s.find(key);
  return it == s.end() ? fallback : it->second.value;
}

const Setting& setting(const Settings& s, std::string_view key) {
  static const Setting kDefault{"", "default"};
  const auto it = s.find(key);
  return it == s.end() ? kDefault : it->second;
}

}  // namespace

EnvLookup process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    return v == nullptr ? std::nullopt : std::optional<std::string>(v);
  };
}

Result<fs::path> default_data_dir(const EnvLookup& env) {
  // The one rule for the server (where it writes admin.token) and the CLI (where it looks for it). A relative
  // XDG_STATE_HOME is ignored, as the XDG specification says.
  if (auto xdg = env("XDG_STATE_HOME"); xdg && !xdg->empty() && xdg->front() == '/') return fs::path(*xdg) / "pkgcast";
  if (auto home = env("HOME"); home && !home->empty()) return fs::path(*home) / ".local" / "state" / "pkgcast";
  return make_error(WbemCode::kInvalidParameter,
                    "no data directory: set --data-dir, PKGCAST_DATA_DIR, XDG_STATE_HOME or HOME");
}

Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return make_error(WbemCode::kInvalidParameter, "listen address must be HOST:PORT, not '" + std::string(listen) + "'");
  }
  std::string host(listen.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string_view port_text = listen.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return make_error(WbemCode::kInvalidParameter, "listen address must be HOST:PORT with a port from 0 to 65535, "
                                                   "not '" + std::string(listen) + "'");
  }
  return std::pair<std::string, std::uint16_t>(host, static_cast<std::uint16_t>(port));
}

Result<ServerConfig> load_server_config(const ServerFlags& flags, const EnvLookup& env) {
  Settings settings;
  std::optional<std::string> config_file = flags.config_file;
  if (!config_file) {
    if (auto v = env("PKGCAST_CONFIG"); v && !v->empty()) config_file = v;
  }
  if (config_file) {
    std::error_code ec;
    if (!fs::is_regular_file(*config_file, ec)) {
      return make_error(WbemCode::kInvalidParameter, "config file '" + *config_file + "' does not exist");
    }
    PKG_TRY(read_toml(*config_file, settings));
  }
  read_env(env, settings);
  read_flags(flags, settings);

  ServerConfig c;
  if (auto it = settings.find("listen"); it != settings.end()) {
    auto listen = parse_listen(it->second.value);
    if (!listen.ok()) return make_error(WbemCode::kInvalidParameter, it->second.source + ": " + listen.error().message);
    c.listen_host = listen->first;
    c.listen_port = listen->second;
  }
  if (auto it = settings.find("data_dir"); it != settings.end()) {
    c.data_dir = it->second.value;
    if (c.data_dir.empty()) return bad(it->second, "data_dir", "must name a directory, not be empty");
  } else {
    PKG_ASSIGN_OR_RETURN(c.data_dir, default_data_dir(env));
  }
  c.db_url = text(settings, "db", (c.data_dir / "pkgcast.db").string());

  c.site_code = to_upper(text(settings, "site_code"));
  if (!c.site_code.empty()) {
    const bool well_formed = c.site_code.size() == 3 && std::all_of(c.site_code.begin(), c.site_code.end(), [](char ch) {
                               return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
                             });
    if (!well_formed) {
      return bad(setting(settings, "site_code"), "site_code",
                 "must be 3 letters or digits (like P01), not '" + text(settings, "site_code") + "'");
    }
  }
  c.site_name = text(settings, "site_name");
  c.site_type = to_lower(text(settings, "site_type", "primary"));
  if (const auto type = site::parse_site_type(c.site_type); !type || *type == site::SiteType::kSecondary) {
    return bad(setting(settings, "site_type"), "site_type",
               "must be 'primary' or 'central' (a secondary site has no server of its own), not '" + c.site_type + "'");
  }
  c.tls_cert = text(settings, "tls_cert");
  c.tls_key = text(settings, "tls_key");
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    const char* missing = c.tls_cert.empty() ? "tls_cert" : "tls_key";
    return make_error(WbemCode::kInvalidParameter,
                      std::string("TLS needs both a certificate and a key: ") + missing + " is not set");
  }
  c.web_dir = text(settings, "web_dir");
  c.port_file = text(settings, "port_file");
  if (!c.port_file.empty()) {
    // Checked now, not when the file is written after start-up: by then a first start has made its data directory.
    const fs::path dir = c.port_file.has_parent_path() ? c.port_file.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      return bad(setting(settings, "port_file"), "port_file",
                 "names a file in '" + dir.string() + "', which is not an existing directory");
    }
  }
  c.log_level = to_lower(text(settings, "log_level", "info"));
  constexpr std::array<std::string_view, 7> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), c.log_level) == kLevels.end()) {
    return bad(setting(settings, "log_level"), "log_level",
               "must be one of trace, debug, info, warn, error, critical, off; not '" + c.log_level + "'");
  }
  PKG_ASSIGN_OR_RETURN(c.workers, integer(settings, "workers", c.workers));
  PKG_ASSIGN_OR_RETURN(c.max_body_bytes, integer(settings, "max_body_bytes", c.max_body_bytes));
  PKG_ASSIGN_OR_RETURN(c.max_header_bytes, integer(settings, "max_header_bytes", c.max_header_bytes));
  PKG_ASSIGN_OR_RETURN(c.idle_timeout_seconds, integer(settings, "idle_timeout_seconds", c.idle_timeout_seconds));
  PKG_ASSIGN_OR_RETURN(c.max_connections, integer(settings, "max_connections", c.max_connections));
  PKG_ASSIGN_OR_RETURN(c.max_connections_per_address,
                       integer(settings, "max_connections_per_address", c.max_connections_per_address));
  PKG_ASSIGN_OR_RETURN(c.header_timeout_seconds,
                       integer(settings, "header_timeout_seconds", c.header_timeout_seconds));
  PKG_ASSIGN_OR_RETURN(c.shutdown_grace_seconds,
                       integer(settings, "shutdown_grace_seconds", c.shutdown_grace_seconds));
  PKG_ASSIGN_OR_RETURN(c.max_streams, integer(settings, "max_streams", c.max_streams));
  PKG_ASSIGN_OR_RETURN(c.max_streams_per_token, integer(settings, "max_streams_per_token", c.max_streams_per_token));
  PKG_ASSIGN_OR_RETURN(c.max_streams_per_address,
                       integer(settings, "max_streams_per_address", c.max_streams_per_address));
  PKG_ASSIGN_OR_RETURN(c.stream_buffer_bytes, integer(settings, "stream_buffer_bytes", c.stream_buffer_bytes));
  PKG_ASSIGN_OR_RETURN(c.stream_producers, integer(settings, "stream_producers", c.stream_producers));
  PKG_ASSIGN_OR_RETURN(c.query_max_rows_evaluated,
                       integer(settings, "query_max_rows_evaluated", c.query_max_rows_evaluated));
  PKG_ASSIGN_OR_RETURN(c.query_max_seconds, integer(settings, "query_max_seconds", c.query_max_seconds));
  PKG_ASSIGN_OR_RETURN(c.query_max_distinct_rows,
                       integer(settings, "query_max_distinct_rows", c.query_max_distinct_rows));
  PKG_ASSIGN_OR_RETURN(c.query_max_subquery_values,
                       integer(settings, "query_max_subquery_values", c.query_max_subquery_values));
  PKG_ASSIGN_OR_RETURN(c.query_max_join_rows, integer(settings, "query_max_join_rows", c.query_max_join_rows));
  PKG_ASSIGN_OR_RETURN(c.query_max_join_mib, integer(settings, "query_max_join_mib", c.query_max_join_mib));
  PKG_ASSIGN_OR_RETURN(c.event_heartbeat_seconds,
                       integer(settings, "event_heartbeat_seconds", c.event_heartbeat_seconds));
  PKG_ASSIGN_OR_RETURN(c.max_subscriptions, integer(settings, "max_subscriptions", c.max_subscriptions));
  PKG_ASSIGN_OR_RETURN(c.journal_max_entries, integer(settings, "journal_max_entries", c.journal_max_entries));
  PKG_ASSIGN_OR_RETURN(c.journal_max_age_seconds,
                       integer(settings, "journal_max_age_seconds", c.journal_max_age_seconds));
  PKG_ASSIGN_OR_RETURN(c.journal_compact_interval_seconds,
                       integer(settings, "journal_compact_interval_seconds", c.journal_compact_interval_seconds));
  PKG_ASSIGN_OR_RETURN(c.db_max_readers, integer(settings, "db_max_readers", c.db_max_readers));
  PKG_ASSIGN_OR_RETURN(c.db_reader_wait_ms, integer(settings, "db_reader_wait_ms", c.db_reader_wait_ms));
  if (auto it = settings.find("source_roots"); it != settings.end()) {
    const std::string& joined = it->second.value;
    std::size_t start = 0;
    while (start <= joined.size()) {
      std::size_t end = joined.find(kListSeparator, start);
      if (end == std::string::npos) end = joined.size();
      const std::string root = joined.substr(start, end - start);
      if (!root.empty()) {
        if (root.front() != '/') return bad(it->second, "source_roots", "must list absolute paths, not '" + root + "'");
        c.source_roots.emplace_back(root);
      }
      start = end + 1;
    }
  } else {
    c.source_roots = {c.data_dir / "sources", "/srv"};
  }
  PKG_ASSIGN_OR_RETURN(c.source_walk_threads, integer(settings, "source_walk_threads", c.source_walk_threads));
  PKG_ASSIGN_OR_RETURN(c.source_walk_queue, integer(settings, "source_walk_queue", c.source_walk_queue));
  PKG_ASSIGN_OR_RETURN(c.source_walk_timeout_seconds,
                       integer(settings, "source_walk_timeout_seconds", c.source_walk_timeout_seconds));
  PKG_ASSIGN_OR_RETURN(c.source_ingest_timeout_seconds,
                       integer(settings, "source_ingest_timeout_seconds", c.source_ingest_timeout_seconds));
  PKG_ASSIGN_OR_RETURN(c.content_gc_interval_seconds,
                       integer(settings, "content_gc_interval_seconds", c.content_gc_interval_seconds));
  PKG_ASSIGN_OR_RETURN(c.distmgr_max_packages, integer(settings, "distmgr_max_packages", c.distmgr_max_packages));
  PKG_ASSIGN_OR_RETURN(c.distmgr_max_threads_per_package,
                       integer(settings, "distmgr_max_threads_per_package", c.distmgr_max_threads_per_package));
  PKG_ASSIGN_OR_RETURN(c.distmgr_retry_count, integer(settings, "distmgr_retry_count", c.distmgr_retry_count));
  PKG_ASSIGN_OR_RETURN(c.distmgr_retry_delay_seconds,
                       integer(settings, "distmgr_retry_delay_seconds", c.distmgr_retry_delay_seconds));
  PKG_ASSIGN_OR_RETURN(c.distmgr_stall_seconds, integer(settings, "distmgr_stall_seconds", c.distmgr_stall_seconds));
  return c;
}

}  // namespace pkgcast::server
