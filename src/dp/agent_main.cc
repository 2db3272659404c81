#include "dp/agent_main.h"

#include <signal.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

namespace pkgcast::dp {

int run_agent_until_signal(AgentOptions options) {
  // Blocked before any thread exists, so every thread inherits the mask and only sigwait below sees the signal.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // raised by the agent itself when the server refuses its token
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  // Logs go to stderr, as the server's do; stdout carries only the line below that says where the agent serves.
  spdlog::set_default_logger(spdlog::stderr_color_mt("pkgcast-dp-agent"));

  const std::string name = options.name;
  const std::string data_dir = options.data_dir.string();
  options.on_refused = [](const Error&) { ::kill(::getpid(), SIGUSR1); };
  auto agent = Agent::create(std::move(options));
  if (!agent.ok()) {
    std::cerr << "error: " << agent.error().to_string() << std::endl;
    return 1;
  }
  (*agent)->start();
  std::cout << "pkgcast dp-agent " << name << ": data " << data_dir;
  if (const auto port = (*agent)->content_port(); port != 0) std::cout << ", content on port " << port;
  std::cout << std::endl;
  int signal_number = 0;
  sigwait(&set, &signal_number);
  (*agent)->stop();
  if (const auto refused = (*agent)->refused()) {
    std::cerr << "error: " << refused->to_string() << std::endl;
    return 1;
  }
  return 0;
}

}  // namespace pkgcast::dp
