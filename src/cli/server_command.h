// `pkgcast server`: registers the subcommand and its flags. Parsing fills the flags; the subcommand's callback
// sets ctx.action to run the server (server::run_server_command) until SIGTERM/SIGINT.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/cli_context.h"
#include "server/config.h"

namespace pkgcast::cli {

// Called by main before parsing. `ctx` must outlive parsing and the action.
void add_server_command(CLI::App& app, CliContext& ctx);

// The flags alone, filled into `flags` when `command` is parsed (tests).
void add_server_flags(CLI::App& command, server::ServerFlags& flags);

}  // namespace pkgcast::cli
