#include "cli/server_command.h"

#include <memory>

#include "server/server_main.h"

namespace pkgcast::cli {
namespace {

// CLI11 fills plain values; an option that was not given must stay "not given" so the environment and the config
// file can supply it (flags > PKGCAST_* > file > defaults). So each flag is parsed into a string and copied into
// the optional only when it was present.
struct FlagText {
  std::string config_file, data_dir, listen, db, site_code, site_name, site_type, tls_cert, tls_key, web_dir,
      log_level, port_file;
  std::int64_t workers = 0;
};

}  // namespace

void add_server_flags(CLI::App& cmd, server::ServerFlags& flags) {
  auto text = std::make_shared<FlagText>();
  struct Binding {
    CLI::Option* option;
    std::string* value;
    std::optional<std::string>* target;
  };
  auto bindings = std::make_shared<std::vector<Binding>>();
  auto add = [&](const char* name, std::string FlagText::*field, std::optional<std::string> server::ServerFlags::*target,
                 const char* help) {
    CLI::Option* opt = cmd.add_option(name, (*text).*field, help);
    bindings->push_back({opt, &((*text).*field), &(flags.*target)});
  };
  add("--config", &FlagText::config_file, &server::ServerFlags::config_file,
      "TOML configuration file (env PKGCAST_CONFIG)");
  add("--data-dir", &FlagText::data_dir, &server::ServerFlags::data_dir,
      "data directory (env PKGCAST_DATA_DIR; default $XDG_STATE_HOME/pkgcast or ~/.local/state/pkgcast)");
  add("--listen", &FlagText::listen, &server::ServerFlags::listen,
      "HOST:PORT to listen on (env PKGCAST_LISTEN; default 127.0.0.1:8750; port 0 picks a free port)");
  add("--db", &FlagText::db, &server::ServerFlags::db,
      "database: a SQLite path or postgresql://... (env PKGCAST_DB; default <data-dir>/pkgcast.db)");
  add("--site-code", &FlagText::site_code, &server::ServerFlags::site_code,
      "the server's own site code, 3 letters or digits (env PKGCAST_SITE_CODE; default: the database's, else P01)");
  add("--site-name", &FlagText::site_name, &server::ServerFlags::site_name,
      "the site's name when it is created (env PKGCAST_SITE_NAME)");
  add("--type", &FlagText::site_type, &server::ServerFlags::site_type,
      "site type when it is created: primary or central (env PKGCAST_SITE_TYPE; default primary)");
  add("--tls-cert", &FlagText::tls_cert, &server::ServerFlags::tls_cert,
      "PEM certificate chain: serve HTTPS (env PKGCAST_TLS_CERT; needs --tls-key)");
  add("--tls-key", &FlagText::tls_key, &server::ServerFlags::tls_key, "PEM private key (env PKGCAST_TLS_KEY)");
  add("--web-dir", &FlagText::web_dir, &server::ServerFlags::web_dir,
      "dashboard files (env PKGCAST_WEB_DIR; default the installed or source web/)");
  add("--log-level", &FlagText::log_level, &server::ServerFlags::log_level,
      "trace, debug, info, warn, error, critical or off (env PKGCAST_LOG_LEVEL; default info); logs go to stderr");
  add("--port-file", &FlagText::port_file, &server::ServerFlags::port_file,
      "write the server's URL to this file, atomically, once it listens");
  CLI::Option* workers = cmd.add_option("--workers", text->workers,
                                        "handler threads (env PKGCAST_WORKERS; default 4)");
  cmd.parse_complete_callback([text, bindings, workers, &flags] {
    for (const auto& b : *bindings) {
      if (b.option->count() > 0) *b.target = *b.value;
    }
    if (workers->count() > 0) flags.workers = text->workers;
  });
}

void add_server_command(CLI::App& app, CliContext& ctx) {
  CLI::App* cmd = app.add_subcommand(
      "server", "run the site server: HTTP API, dashboard and metrics, until SIGTERM or SIGINT");
  auto flags = std::make_shared<server::ServerFlags>();
  add_server_flags(*cmd, *flags);
  cmd->callback([&ctx, flags] { ctx.action = [flags] { return server::run_server_command(*flags); }; });
}

}  // namespace pkgcast::cli
