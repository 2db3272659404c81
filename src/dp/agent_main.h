// `pkgcast dp-agent`: runs an Agent until SIGINT or SIGTERM (the command-line part lives in src/cli).
#pragma once

#include "dp/agent.h"

namespace pkgcast::dp {

// Blocks SIGINT/SIGTERM in every thread the agent starts, starts it, prints one line on stdout
// ("pkgcast dp-agent <name>: data <dir>[, content on http://HOST:PORT]"), waits for a signal, stops the agent.
// Returns the process exit code: 0 after a clean stop, 1 when the agent could not start (the error on stderr).
int run_agent_until_signal(AgentOptions options);

}  // namespace pkgcast::dp
