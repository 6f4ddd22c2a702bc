// Model-predictive lambda control per module (MaRCA): forecast the load over a horizon for
// candidate lambda paths, apply the first lambda of the best path, repeat next period.
#pragma once

#include <memory>
#include <random>
#include <vector>

#include "policy/lambda_controller.h"
#include "policy/overshoot_backoff.h"
#include "policy/pid_controller.h"
#include "policy/traffic_forecast.h"

namespace allot {

// Load model, per module m and period i of the horizon:
//   C[i+1] = rho C[i] + (1 - rho) k qps[i+1] cost(lambda[i])
// cost(lambda): the module's expected core-ms per request at lambda (CostCurve);
// qps[i]: the traffic forecast; k: CPU fraction per (core-ms/s), learned online as measured CPU
// over the demand passed through the same lag (the calibration between predicted and measured
// load); rho: controller.load_lag.
// Objective (alpha discount, beta damping only at or above the critical load):
//   J = sum_i alpha^i [ (C[i] - aim)^2 + beta [C[i-1] >= critical] (C[i] - C[i-1])^2 ]
// with aim = target * (1 - b), b chosen from the recent one-period prediction errors so that the
// expected overshoot is controller.overshoot_budget, and corrected by the overshoot measured after
// the periods planned at the aim (OvershootBackoff).
// Candidates: for every lambda on the grid, the rate-limited ramp towards it and holding there,
// the best of these refined between its grid neighbours; plus `samples` random rate-limited walks
// (random shooting). The module falls back to PID while
// the model is unusable: no scored requests, no traffic, or a smoothed relative prediction error
// above controller.fallback_error.
class MpcController final : public LambdaController {
 public:
  explicit MpcController(const AllotConfig& config);
  const char* name() const override { return "mpc"; }
  std::vector<ModuleDecision> Update(const ControlInput& input) override;

  double calibration(size_t module) const { return state_[module].k; }

 private:
  struct State {
    double k = 0.0;              // 0 = not calibrated yet
    double lagged_demand = -1;   // qps * cost(lambda) through the load lag (-1 = none yet)
    double predicted_next = -1;  // C[1] predicted last period (-1 = none)
    double aim = -1;             // the load last period's plan aimed at (-1 = none)
    double error = 0.0;          // smoothed |predicted - measured| / target
  };
  // One period of the load lag: load_lag * previous + (1 - load_lag) * input.
  double Lagged(double previous, double input) const;
  // Cost of one lambda path from the current load.
  double PathCost(const std::vector<double>& path, double cpu, double target, double k,
                  const std::vector<double>& qps, const CostCurve& curve) const;

  ControllerConfig options_;
  LambdaConfig bounds_;
  std::vector<double> targets_;
  std::vector<State> state_;
  std::vector<OvershootBackoff> backoffs_;
  std::vector<TrafficForecast> forecasts_;
  PidController pid_;
  std::mt19937_64 rng_;
  int64_t last_ms_ = 0;
};

}  // namespace allot
