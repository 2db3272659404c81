// Subcommand groups of `pkgcast`. Each add_* registers its subcommands on the app; their callbacks set
// ctx.action, which main runs after parsing.
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
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

// Number checks whose refusal an administrator can read ("--count: must be a number above 0, not '0'"; CLI11's
// own print the whole range of a double).
inline CLI::Validator number_check(bool zero_allowed) {
  return CLI::Validator(
      [zero_allowed](std::string& text) -> std::string {
        double v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        const bool number = ec == std::errc() && end == text.data() + text.size() && std::isfinite(v);
        if (number && (v > 0 || (zero_allowed && v == 0))) return {};
        return std::string(zero_allowed ? "must be a number, 0 or more" : "must be a number above 0") + ", not '" +
               text + "'";
      },
      zero_allowed ? "NUMBER >= 0" : "NUMBER > 0");
}
inline const CLI::Validator kPositiveNumber = number_check(false);
inline const CLI::Validator kNonNegativeNumber = number_check(true);

// `pkgcast status`'s view and exit code, for the demo.
int run_package_status(CliContext& ctx, const std::string& package_id, bool wait, std::optional<double> timeout);

}  // namespace pkgcast::cli
