// The background thread that runs the control loop every control period and exports what it
// decided. A config reload reconfigures the loop, keeping its learned state; shutdown wakes it.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "policy/control_loop.h"
#include "server/metrics.h"

namespace allot {

class ControlRunner {
 public:
  ControlRunner(AllocationEngine& engine, const TelemetryStore& reports, ServerMetrics& metrics,
                const Clock& clock);
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
