// Subcommand groups of `pkgcast`. Each add_* registers its subcommands on the app; their callbacks set
// ctx.action, which main runs after parsing.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "cli/cli_context.h"

namespace pkgcast::cli {

void add_query_commands(CLI::App& app, CliContext& ctx);  // query, wql parse
void add_watch_command(CLI::App& app, CliContext& ctx);   // watch
void add_admin_commands(CLI::App& app, CliContext& ctx);  // site, dp, package, program, advertisement, token
void add_distribution_commands(CLI::App& app, CliContext& ctx);  // distribute, redistribute, remove, validate, cancel
void add_status_command(CLI::App& app, CliContext& ctx);         // status
void add_dp_agent_command(CLI::App& app, CliContext& ctx);  // dp-agent
void add_demo_command(CLI::App& app, CliContext& ctx);           // demo

// `pkgcast status`'s view and exit code, for the demo.
int run_package_status(CliContext& ctx, const std::string& package_id, bool wait, std::optional<double> timeout);

}  // namespace pkgcast::cli
