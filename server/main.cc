// allot-server: thin entry point; flags, logging and signals, then AllotServer does the work.
#include <absl/synchronization/mutex.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <iostream>
#include <thread>

#include "policy/action_space.h"
#include "policy/config.h"
#include "policy/config_reference.h"
#include "server/allot_server.h"
#include "server/logging.h"

namespace {

constexpr char kUsage[] =
    "usage: allot-server [--config FILE] [--listen ADDR] [--metrics-listen ADDR] [--model-dir "
    "DIR]\n"
    "                    [--check-config] [--print-default-config] [--config-reference]\n"
    "                    [--joint-actions AGENT]\n"
    "  --config FILE          config to serve and watch (default: the embedded default config)\n"
    "  --listen ADDR          gRPC address, e.g. 0.0.0.0:50051 (port 0 picks a free port)\n"
    "  --metrics-listen ADDR  Prometheus /metrics address\n"
    "  --model-dir DIR        model bundle directory\n"
    "  --check-config         validate the config and exit (0 valid, 1 invalid)\n"
    "  --print-default-config print the embedded default config and exit\n"
    "  --config-reference     print every config key with its default and purpose (Markdown)\n"
    "  --joint-actions AGENT  print the agent's joint-action indices "
    "(Transition.steps[].joint_action)\n"
    "                         with the choices each stands for, under the config, and exit\n";

int g_signal_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &byte, 1);
}

int UsageError(const std::string& message) {
  std::cerr << "allot-server: " << message << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  allot::ServerOptions options;
  bool check_only = false;
  std::string joint_actions_of;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (arg == "--config") {
      if (!value(&options.config_path)) return UsageError("--config needs a file");
    } else if (arg == "--listen") {
      if (!value(&options.listen)) return UsageError("--listen needs an address");
    } else if (arg == "--metrics-listen") {
      if (!value(&options.metrics_listen)) return UsageError("--metrics-listen needs an address");
    } else if (arg == "--model-dir") {
      if (!value(&options.model_dir)) return UsageError("--model-dir needs a directory");
    } else if (arg == "--joint-actions") {
      if (!value(&joint_actions_of)) return UsageError("--joint-actions needs an agent name");
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--print-default-config") {
      std::cout << allot::EmbeddedDefaultConfigYaml();
      return 0;
    } else if (arg == "--config-reference") {
      std::cout << allot::FormatServerConfigReference();
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      return UsageError("unknown argument '" + arg + "'");
    }
  }

  allot::ServerFileConfig file;
  try {
    file = options.config_path.empty() ? allot::LoadEmbeddedServerConfig()
                                       : allot::LoadServerConfigFromFile(options.config_path);
  } catch (const allot::ConfigError& e) {
    std::cerr << "allot-server: invalid config "
              << (options.config_path.empty() ? "<embedded>" : options.config_path) << ": "
              << e.what() << "\n";
    return 1;
  }
  const allot::AllotConfig& config = *file.allot;
  if (!joint_actions_of.empty()) {
    const allot::AgentConfig* agent = config.FindAgent(joint_actions_of);
    if (!agent) {
      std::cerr << "allot-server: --joint-actions: no agent '" << joint_actions_of << "' in "
                << config.source << "\n";
      return 2;
    }
    const allot::ActionSpace space(*agent);
    for (size_t j = 0; j < space.size(); ++j)
      std::cout << j << "\t" << allot::JointActionLabel(*agent, space, j) << "\n";
    return 0;
  }
  if (check_only) {
    std::cout << "config " << config.source << " is valid (version " << config.version << ")\n";
    return 0;
  }
  allot::ConfigureLogging(file.logging.level_name(), file.logging.format_name());
  // Debian builds Abseil without NDEBUG, so every absl::Mutex that gRPC locks (several per call)
  // also updates a global lock-order graph for deadlock detection, under one spin lock that all
  // threads share. That is a debugging aid, not a production check: it is switched off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Signals reach a handler that only writes the signal number to a pipe (async-signal-safe);
  // a normal thread reads the pipe and does the work. sigwait is not enough here: libraries
  // (OpenBLAS, LibTorch) start threads before main, and those do not block the signals.
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    std::cerr << "allot-server: cannot create the signal pipe\n";
    return 1;
  }
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &action, nullptr);

  std::unique_ptr<allot::AllotServer> server;
  try {
    server = allot::AllotServer::Start(options);
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }

  std::thread signal_thread([&] {
    for (;;) {
      unsigned char byte = 0;
      if (read(g_signal_pipe[0], &byte, 1) != 1) continue;
      const int sig = byte;
      if (sig == SIGHUP) {
        spdlog::info("SIGHUP: reloading config");
        server->Reload();
        continue;
      }
      spdlog::info("{}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      server->Shutdown();
      return;
    }
  });
  server->Wait();
  signal_thread.join();
  return 0;
}
