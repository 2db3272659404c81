// Helpers every file of administrative verbs shares (defined in admin_commands.cc).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "cim/json.h"
#include "cli/cli_context.h"

namespace pkgcast::cli {

// A path segment, percent-encoded.
std::string segment(const std::string& s);
// The elements of a JSON array (none for anything else).
std::vector<cim::Json> rows_of(const cim::Json& j);
// Registers `parent verb`, whose work runs `fn` after parsing.
CLI::App* verb(CLI::App* parent, CliContext& ctx, const std::string& name, const std::string& help,
               std::function<int()> fn);
// Runs a call and prints its answer: JSON with --json, else what `human` prints.
int answer(CliContext& ctx, std::string_view method, const std::string& target, const cim::Json* body,
           const std::function<void(const cim::Json&)>& human);

}  // namespace pkgcast::cli
