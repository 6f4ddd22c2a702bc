// Model-predictive lambda control per module (MaRCA): forecast the load over a horizon for
// candidate lambda paths, apply the first lambda of the best path, repeat next period.
#pragma once

#include <memory>
#include <random>
#include <span>
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
//   J = sum_i alpha^i [ (C[i] - aim)^2 + beta [C[i-1] >= critical] (C[i] - C[i-1])^2
//                       + move_penalty (noise aim)^2 (log lambda[i] - log lambda[i-1])^2 ]
// (lambda[-1] the lambda in force; log of lambda floored as the PID does). noise is the scatter of
// the one-period prediction errors (a fraction of the target): a load error within the noise is
// weak evidence that lambda must move, so the plan moves less the noisier the load, like the gain
// of a Kalman filter, and as fast as before when the load is predictable.
// with aim = target * (1 - b), b chosen from the recent one-period prediction errors so that the
// expected overshoot is controller.overshoot_budget, and corrected by the overshoot measured after
// the periods planned at the aim (OvershootBackoff).
// Candidates: for every lambda on the grid, the rate-limited ramp towards it and holding there,
// the best of these refined between its grid neighbours; plus `samples` random rate-limited walks
// (random shooting). The module falls back to PID while
// the model is unusable: no scored requests, no traffic, or a smoothed relative prediction error
// above controller.fallback_error.
// The load model's lag: one period of it is load_lag * previous + (1 - load_lag) * input.
struct MpcLoadModel {
  double load_lag = 0.5;
  double Lagged(double previous, double input) const;
};

// Everything one module's plan depends on in one period.
struct MpcPlanInput {
  double lambda = 0.0;      // in force
  double start_load = 0.0;  // the observer's estimate of the load now
  double aim = 0.0;         // the load to steer to (target less the back-off)
  double k = 0.0;           // calibration: CPU per core-ms per second
  std::vector<double> qps;  // forecast for each period of the horizon
  const CostCurve* curve = nullptr;
  double lambda_floor = 1e-6;  // lambdas below count as this in the move penalty's log
  double noise = 0.0;          // scatter of the load the model cannot predict (fraction of target)
};

// J of one lambda path (see above), from in.start_load towards in.aim.
double PathCost(const MpcConfig& options, const MpcPlanInput& in, std::span<const double> path);
// The first lambda of the best candidate path. A function of its arguments alone (and of `rng`,
// which random shooting draws from), so plans are testable without a controller.
double PlanLambda(const MpcConfig& options, const LambdaConfig& bounds, const MpcPlanInput& in,
                  std::mt19937_64& rng);

// Per module and period: observe (prediction error, back-off, calibration), plan (PlanLambda),
// choose (the plan, or PID while the model's recent error is above fallback_error).
class MpcController final : public LambdaController {
 public:
  explicit MpcController(const AllotConfig& config);
  const char* name() const override { return "mpc"; }
  std::vector<ModuleDecision> Update(const ControlInput& input) override;
  bool Adopt(const AllotConfig& config) override;

  double calibration(size_t module) const { return state_[module].k; }

 private:
  struct State {
    double k = 0.0;              // 0 = not calibrated yet
    double lagged_demand = -1;   // qps * cost(lambda) through the load lag (-1 = none yet)
    double predicted_next = -1;  // C[1] predicted last period (-1 = none)
    double aim = -1;             // the load last period's plan aimed at (-1 = none)
    double error = 0.0;          // smoothed |predicted - measured| / target
  };
  ModuleDecision UpdateModule(size_t module, const ControlInput& input);
  // Scores last period's prediction against the measurement (error, back-off), feeds the
  // forecast, sets this period's aim; returns the load the plan starts from.
  double Observe(size_t module, const LoadSample& load);
  // Updates k from one sample; false when the model has no calibration to plan with (the sample
  // carried no usable demand and none came before).
  bool Calibrate(size_t module, const LoadSample& load, double cost_now);
  MpcLoadModel load_model() const { return {options_.mpc.load_lag}; }

  ControllerConfig options_;
  LambdaConfig bounds_;
  std::vector<double> targets_;
  std::vector<State> state_;
  std::vector<OvershootBackoff> backoffs_;
  std::vector<TrafficForecast> forecasts_;
  PidController pid_;
  std::mt19937_64 rng_;
};

}  // namespace allot
