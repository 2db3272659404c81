// pkgcast: one binary for the server, the DP agent and every administrative verb (design.md section 6).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <string>

#include "cli/cli_context.h"
#include "cli/commands.h"
#include "cli/server_command.h"

namespace {

// CLI11 says "A subcommand is required" for `pkgcast frobnicate`: name the word it did not know instead.
std::string usage_error_text(const CLI::App& app, const CLI::ParseError& e) {
  const CLI::App* deepest = &app;
  std::string path = "pkgcast";
  for (bool deeper = true; deeper;) {
    deeper = false;
    for (const CLI::App* sub : deepest->get_subcommands()) {
      deepest = sub;
      path += " " + sub->get_name();
      deeper = true;
      break;
    }
  }
  const std::vector<std::string> left = app.remaining(true);
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && !left.empty() && !left.front().starts_with("-") &&
      deepest->get_require_subcommand_min() > 0) {
    return "'" + path + "' has no command '" + left.front() + "'";
  }
  return e.what();
}

// `pkgcast <command> --help` lists the global flags too: CLI11 shows only a subcommand's own, and some commands
// cannot work without global ones (a DP agent's --server and --token).
std::string global_options_text(const CLI::App& app) {
  std::string out = "Global options (before or after the command):\n";
  for (const CLI::Option* o : app.get_options()) {
    const std::string name = o->get_name();
    if (name.empty() || name == "--help" || name == "--version") continue;
    std::string left = "  " + name;
    if (o->get_type_size() != 0) left += " " + o->get_type_name();
    left.resize(std::max<std::size_t>(left.size() + 1, 30), ' ');
    out += left + o->get_description() + "\n";
  }
  return out;
}

void add_footer(CLI::App& command, const std::string& text) {
  for (CLI::App* sub : command.get_subcommands([](CLI::App*) { return true; })) {
    sub->footer(text);
    add_footer(*sub, text);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pkgcast::cli;
  CliContext ctx;
  CLI::App app{"pkgcast: software distribution to distribution points, with live WQL status"};
  app.set_version_flag("--version", std::string("pkgcast 0.1.0"));
  app.require_subcommand(1);
  app.fallthrough();  // global flags are accepted after the subcommand too
  app.add_option("--server", ctx.options.server, "server URL (env PKGCAST_SERVER, default http://127.0.0.1:8750)");
  app.add_option("--token", ctx.options.token, "API token (env PKGCAST_TOKEN)");
  app.add_option("--token-file", ctx.options.token_file,
                 "file holding the API token (env PKGCAST_TOKEN_FILE; default <data-dir>/admin.token)");
  app.add_option("--namespace", ctx.options.namespace_path, "provider namespace (default the server's own site)");
  app.add_flag("--json", ctx.options.json, "machine-readable output");
  app.add_flag("--insecure", ctx.options.insecure, "https without certificate verification");
  app.add_option("--ca-file", ctx.options.ca_file, "CA certificates to trust for https");

  add_server_command(app, ctx);
  add_query_commands(app, ctx);
  add_watch_command(app, ctx);
  add_admin_commands(app, ctx);
  add_distribution_commands(app, ctx);
  add_status_command(app, ctx);
  add_dp_agent_command(app, ctx);
  add_demo_command(app, ctx);
  add_footer(app, global_options_text(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "usage error: " << usage_error_text(app, e) << "\n(run `pkgcast --help` or `pkgcast <command> --help`)"
              << std::endl;
    return kExitUsage;
  }
  if (!ctx.action) {
    std::cerr << "usage error: a subcommand is required (run `pkgcast --help`)" << std::endl;
    return kExitUsage;
  }
  return ctx.action();
}
