// The background thread that runs the control loop every control period and exports what it
// decided. A config reload reconfigures the loop, keeping its learned state; shutdown wakes it.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "policy/control_loop.h"
#include "server/metrics.h"

namespace allot {

// Wraps the telemetry source a config calls for (experiment arms: each arm's share of the load).
using TelemetryDecorator = std::function<std::unique_ptr<TelemetrySource>(
    std::unique_ptr<TelemetrySource> source, const AllotConfig& config)>;

class ControlRunner {
 public:
  // `arm` empty: the main loop, exported as allot_lambda and friends. Otherwise an experiment
  // arm's loop, exported as allot_arm_lambda{arm}. `decorate` (optional) wraps its telemetry.
  ControlRunner(AllocationEngine& engine, const TelemetryStore& reports, ServerMetrics& metrics,
                const Clock& clock, std::string arm = "", TelemetryDecorator decorate = {});
  ~ControlRunner();

  // Builds the loop (and its telemetry source) for the first config; later configs reconfigure
  // it, and replace the telemetry source only when its settings changed. Keeps the thread running.
  void Configure(std::shared_ptr<const AllotConfig> config);
  void Start();
  void Stop();
  // One period now (tests and the first period at start-up).
  void StepOnce();
  std::vector<ModuleDecision> last() const;
  const char* telemetry_source() const;

 private:
  void Run();
  void Export(const AllotConfig& config, const std::vector<ModuleDecision>& decisions);

  AllocationEngine& engine_;
  const std::string arm_;
  const TelemetryDecorator decorate_;
  EnginePorts engine_ports_;
  const TelemetryStore& reports_;
  ServerMetrics& metrics_;
  const Clock& clock_;
  mutable std::mutex mu_;  // guards the members below; never held while the engine decides
  std::unique_ptr<TelemetrySource> source_;
  std::unique_ptr<ControlLoop> loop_;
  std::shared_ptr<const AllotConfig> config_;
  std::mutex step_mu_;  // one step at a time
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace allot
