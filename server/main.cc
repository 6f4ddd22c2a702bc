// allot-server: thin entry point; flags, logging and signals, then AllotServer does the work.
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstring>
#include <iostream>
#include <thread>

#include "policy/config.h"
#include "server/allot_server.h"
#include "server/logging.h"

namespace {

constexpr char kUsage[] =
    "usage: allot-server [--config FILE] [--listen ADDR] [--metrics-listen ADDR] [--model-dir "
    "DIR]\n"
    "                    [--check-config] [--print-default-config]\n"
    "  --config FILE          config to serve and watch (default: the embedded default config)\n"
    "  --listen ADDR          gRPC address, e.g. 0.0.0.0:50051 (port 0 picks a free port)\n"
    "  --metrics-listen ADDR  Prometheus /metrics address\n"
    "  --model-dir DIR        model bundle directory\n"
    "  --check-config         validate the config and exit (0 valid, 1 invalid)\n"
    "  --print-default-config print the embedded default config and exit\n";

int UsageError(const std::string& message) {
  std::cerr << "allot-server: " << message << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  allot::ServerOptions options;
  bool check_only = false;
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
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--print-default-config") {
      std::cout << allot::EmbeddedDefaultConfigYaml();
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      return UsageError("unknown argument '" + arg + "'");
    }
  }

  allot::AllotConfig config;
  try {
    config = options.config_path.empty() ? allot::LoadEmbeddedDefaultConfig()
                                         : allot::LoadConfigFromFile(options.config_path);
  } catch (const allot::ConfigError& e) {
    std::cerr << "allot-server: invalid config "
              << (options.config_path.empty() ? "<embedded>" : options.config_path) << ": "
              << e.what() << "\n";
    return 1;
  }
  if (check_only) {
    std::cout << "config " << config.source << " is valid (version " << config.version << ")\n";
    return 0;
  }
  allot::ConfigureLogging(config.logging.level, config.logging.format);

  // Signals are taken synchronously by one thread (sigwait), so no work happens in a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<allot::AllotServer> server;
  try {
    server = allot::AllotServer::Start(options);
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }

  std::thread signal_thread([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
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
