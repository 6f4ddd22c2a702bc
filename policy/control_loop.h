// One control period: read load, re-price compute per module with the configured controller,
// and publish the new lambda table. The server and the simulator both run this loop; they differ
// only in the ports it reads and publishes through.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "policy/allocation_engine.h"
#include "policy/clock.h"
#include "policy/lambda_controller.h"
#include "policy/telemetry_source.h"

namespace allot {

// The safety rules every controller's output passes through, per module and period:
// - telemetry older than lambda.stale_after_s: lambda is held; after twice that it decays towards
//   lambda.safe_value with half-life lambda.decay_half_life_s;
// - otherwise: the change is limited to MaxLambdaStep() and lambda stays within [min, max];
// - above cpu_hard_limit: a per-request cost cap of cost(lambda) * target / cpu (DCAF MaxPower).
double MaxLambdaStep(const LambdaConfig& bounds, double lambda);
ModuleDecision GuardDecision(const AllotConfig& config, size_t module, ModuleDecision proposed,
                             double previous_lambda, double telemetry_age_s,
                             const std::optional<LoadSample>& load, const CostCurve& curve,
                             double dt_s);

// Where the loop reads the prices in force and publishes the new ones.
class PriceBoard {
 public:
  virtual ~PriceBoard() = default;
  // Lambda in force per module, in config order.
  virtual std::vector<double> Current(const AllotConfig& config) const = 0;
  virtual void Publish(const AllotConfig& config, std::span<const ModuleDecision> decisions) = 0;
};

// Where the loop reads the recently scored requests its cost curves are built from.
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual std::vector<ScoredSample> Recent() const = 0;
};

// The allocation engine as both: its lambda table and its reservoir.
class EnginePorts final : public PriceBoard, public SampleSource {
 public:
  explicit EnginePorts(AllocationEngine& engine) : engine_(engine) {}
  std::vector<double> Current(const AllotConfig& config) const override;
  void Publish(const AllotConfig& config, std::span<const ModuleDecision> decisions) override;
  std::vector<ScoredSample> Recent() const override { return engine_.reservoir().Snapshot(); }

 private:
  AllocationEngine& engine_;
};

struct ControlPorts {
  TelemetrySource* telemetry = nullptr;
  PriceBoard* prices = nullptr;
  SampleSource* samples = nullptr;
  const Clock* clock = nullptr;
};

class ControlLoop {
 public:
  // Runs the controller config.controller.kind names (MakeController). The ports must outlive
  // the loop.
  ControlLoop(std::shared_ptr<const AllotConfig> config, ControlPorts ports);
  // Runs `controller`, which the caller owns (a simulator row's); Reconfigure never replaces it.
  ControlLoop(std::shared_ptr<const AllotConfig> config, ControlPorts ports,
              LambdaController& controller);

  // Runs one period and publishes the lambdas. Thread-compatible: one caller at a time.
  std::vector<ModuleDecision> Step();
  // Adopts a new config while keeping what was learned: the controller's state (calibration,
  // back-off history, forecast profile, PID history) and the last decisions survive whenever the
  // module set is the same; only the parts whose sections changed are rebuilt. `telemetry`, if
  // set, replaces the telemetry port. Not concurrent with Step.
  void Reconfigure(std::shared_ptr<const AllotConfig> config, TelemetrySource* telemetry = nullptr);
  // The decisions of the last Step (empty before the first), for GetControlState and metrics.
  std::vector<ModuleDecision> last() const;
  const AllotConfig& config() const { return *config_; }
  const LambdaController& controller() const { return *controller_; }

 private:
  void Derive();  // grid and module masks from config_

  std::shared_ptr<const AllotConfig> config_;
  ControlPorts ports_;
  std::unique_ptr<LambdaController> owned_;  // null when the controller is borrowed
  LambdaController* controller_;
  std::vector<double> grid_;
  std::vector<std::vector<bool>> in_module_;  // per module: which agents price its compute
  std::vector<int64_t> last_sample_ms_;       // per module: timestamp of the last sample acted on
  int64_t last_ms_ = 0;
  mutable std::mutex mu_;
  std::vector<ModuleDecision> last_;  // guarded by mu_
};

// The controller of config.controller.kind: the one place a new controller kind is built.
std::unique_ptr<LambdaController> MakeController(const AllotConfig& config);

}  // namespace allot
