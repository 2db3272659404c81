// `pkgcast dp-agent`: the DP agent (src/dp) with its flags. The agent itself lives in src/dp.
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "core/paths.h"
#include "dp/agent_main.h"

namespace pkgcast::cli {

void add_dp_agent_command(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("dp-agent", "run a distribution point agent: pull, verify, install, serve content");
  auto o = std::make_shared<dp::AgentOptions>();
  auto data_dir = std::make_shared<std::string>();
  cmd->add_option("--name", o->name, "this DP's name")->required();
  cmd->add_option("--data-dir", *data_dir, "where the agent keeps installed content, staged versions, its outbox and state")
      ->required();
  cmd->add_option("--listen", o->listen, "HOST:PORT to serve installed content on (default: do not serve)");
  cmd->add_option("--download-workers", o->download_workers, "parallel chunk downloads (default 4)")
      ->check(CLI::Range(1, 64));
  cmd->callback([&ctx, o, data_dir] {
    ctx.action = [&ctx, o, data_dir] {
      o->server = ctx.server_url();
      // The DP's own token: flags, then the variables; never the default data directory's admin token.
      auto token = ctx.resolve_token(/*default_file=*/false);
      if (!token.ok()) return ctx.fail(token.error());
      o->token = std::move(token).value();
      if (o->token.empty()) {
        std::cerr << "usage error: dp-agent needs the DP's token (--token, --token-file, PKGCAST_TOKEN or "
                     "PKGCAST_TOKEN_FILE)"
                  << std::endl;
        return kExitUsage;
      }
      o->insecure = ctx.options.insecure;
      o->ca_file = ctx.options.ca_file;
      o->data_dir = *data_dir;
      return dp::run_agent_until_signal(*o);
    };
  });
}

}  // namespace pkgcast::cli
