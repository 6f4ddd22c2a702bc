// One control period: read load, re-price compute per module with the configured controller,
// and publish the new lambda table to the allocation engine.
#pragma once

#include <memory>
#include <mutex>
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

class ControlLoop {
 public:
  // The controller kind comes from config.controller.kind ("mpc" or "pid").
  ControlLoop(std::shared_ptr<const AllotConfig> config, TelemetrySource& telemetry,
              AllocationEngine& engine, const Clock& clock);

  // Runs one period and publishes the lambdas. Thread-compatible: one caller at a time.
  std::vector<ModuleDecision> Step();
  // The decisions of the last Step (empty before the first), for GetControlState and metrics.
  std::vector<ModuleDecision> last() const;
  const AllotConfig& config() const { return *config_; }

 private:
  std::shared_ptr<const AllotConfig> config_;
  TelemetrySource& telemetry_;
  AllocationEngine& engine_;
  const Clock& clock_;
  std::unique_ptr<LambdaController> controller_;
  std::vector<double> grid_;
  std::vector<int64_t> last_sample_ms_;  // per module: timestamp of the last sample acted on
  int64_t last_ms_ = 0;
  mutable std::mutex mu_;
  std::vector<ModuleDecision> last_;  // guarded by mu_
};

std::unique_ptr<LambdaController> MakeController(const AllotConfig& config);

}  // namespace allot
