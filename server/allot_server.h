// Process wiring: gRPC server, health, reflection, metrics exposer, config reload and shutdown.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "policy/allocation_engine.h"
#include "policy/clock.h"
#include "policy/telemetry_store.h"
#include "server/allocator_service.h"
#include "server/bundle_watcher.h"
#include "server/control_runner.h"
#include "server/metrics.h"

namespace allot {

struct ServerOptions {
  // Config file to load and watch; empty = the embedded default (nothing to watch).
  std::string config_path;
  // Overrides of the config's listen addresses and model directory (empty = keep). Port 0 picks
  // a free port; see AllotServer::port().
  std::string listen;
  std::string metrics_listen;
  std::string model_dir;
  const Clock* clock = &SystemClock::Instance();
};

class AllotServer {
 public:
  // Loads the config, binds both ports and starts serving. Throws ConfigError or
  // std::runtime_error (with the address) when it cannot.
  static std::unique_ptr<AllotServer> Start(const ServerOptions& options);
  ~AllotServer();

  int port() const { return port_; }
  int metrics_port() const { return metrics_->metrics_port(); }

  // Re-reads the config file: validates and swaps it in, or keeps the last good config and
  // returns false. Settings that need a restart (listen addresses) are logged and ignored.
  bool Reload();
  // NOT_SERVING on both health services, waits drain_delay_s, then lets in-flight calls finish
  // within shutdown_timeout_s. Idempotent.
  void Shutdown();
  // Blocks until Shutdown() has completed.
  void Wait();

  AllocationEngine& engine() { return *engine_; }
  // One control period now for the main loop and every experiment arm's (tests).
  void StepControlOnce();
  ControlRunner& control() { return *control_; }
  BundleWatcher& bundles() { return *bundles_; }
  const AllocatorService& service() const { return *service_; }
  // The Allocate calls held now, which server.max_in_flight bounds (tests hold slots with it).
  InFlightCalls& allocate_in_flight() { return metrics_->allocate_in_flight(); }
  std::shared_ptr<const AllotConfig> config() const { return service_->serving()->policy->config; }
  // The server's own settings in force (the `server` section).
  ServerConfig settings() const { return service_->serving()->server; }

 private:
  explicit AllotServer(const ServerOptions& options);
  void Install(std::shared_ptr<const AllotConfig> config, const ServerConfig& server);
  ServerFileConfig LoadConfig() const;
  void WatchConfigFile();
  void InstallBundle(std::shared_ptr<const ActionScorer> scorer, const std::string& dir);
  void UpdateReadiness();
  // The scorers a config's experiments need that are not loaded yet (the shadow candidate, the
  // arms' bundles), loaded without changing anything; throws std::runtime_error naming the key
  // (experiments.shadow_bundle, experiments.arms[i].bundle) when one cannot load.
  struct PendingExperiments {
    bool shadow_changed = false;
    std::shared_ptr<const ActionScorer> shadow;  // null: no shadow
    std::string shadow_key;
    std::map<std::string, std::pair<std::string, std::shared_ptr<const ActionScorer>>>
        arm_scorers;  // by arm name: (key, scorer)
  };
  PendingExperiments LoadExperiments(const AllotConfig& config);
  void CommitExperiments(PendingExperiments pending);
  // The arms of `config` for the serving snapshot: engines and control loops created (with a
  // new bundle: kept, with their prices and learned state), or stopped when an arm is removed.
  void InstallArms(const std::shared_ptr<const AllotConfig>& config, ServingSnapshot& serving);
  // The telemetry an arm's control loop reads ("main" too, once arms exist): its share of each
  // module's load. By name, since a reload can move an arm in the list.
  TelemetryDecorator ArmTelemetry(std::string arm);

  ServerOptions options_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<TelemetryStore> telemetry_;
  std::unique_ptr<AllocationEngine> engine_;
  std::unique_ptr<ControlRunner> control_;
  std::unique_ptr<AllocatorService> service_;
  std::unique_ptr<BundleWatcher> bundles_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  std::mutex bundle_mu_;
  std::shared_ptr<const ActionScorer> bundle_;  // guarded by bundle_mu_; null = none loaded
  std::string bundle_schema_;  // guarded by bundle_mu_: schema it was checked against
  std::shared_ptr<const ActionScorer> shadow_;  // guarded by bundle_mu_; null = no shadow
  std::string shadow_key_;  // guarded by bundle_mu_: directory and schema it was loaded for
  // Experiment arms by name (guarded by bundle_mu_): their scorers with what they were loaded
  // for, their running engines and control loops (published once whole), and the load they
  // cause by arm and module (replaced when the arms or modules change; read by their telemetry).
  std::map<std::string, std::pair<std::string, std::shared_ptr<const ActionScorer>>> arm_scorers_;
  std::map<std::string, std::shared_ptr<ArmRuntime>> arms_;
  std::shared_ptr<ArmLoadShare> arm_load_;  // guarded by bundle_mu_

  std::mutex reload_mu_;  // serialises reloads (SIGHUP and the file watcher)
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  bool stopped_ = false;   // guarded by mu_
  std::thread watcher_;
  std::string watched_contents_;  // config file as last seen; read at start, then by watcher_ only
  LoggingConfig logging_;         // in force; guarded by reload_mu_ after Start
};

}  // namespace allot
