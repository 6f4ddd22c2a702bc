// PID on measured CPU against the module's target: the baseline and the MPC's fallback.
#pragma once

#include <vector>

#include "policy/lambda_controller.h"

namespace allot {

// Velocity (incremental) form on log lambda with the relative error e = (cpu - target) / target:
//   log lambda[t+1] = log lambda[t] + kp (e[t] - e[t-1]) + ki e[t] dt + kd (e[t] - 2e[t-1] +
//   e[t-2]) / dt
// The integral lives in lambda itself, which the guard clamps and rate-limits, so the controller
// cannot wind up while lambda sits at a bound (anti-windup by construction), and a hand-over from
// the MPC is bumpless. Log space makes the gain scale-free: lambda moves by percentages.
class PidController final : public LambdaController {
 public:
  explicit PidController(const AllotConfig& config);
  const char* name() const override { return "pid"; }
  std::vector<ModuleDecision> Update(const ControlInput& input) override;
  bool Adopt(const AllotConfig& config) override;

  // One module's step; also used by the MPC when it falls back.
  double Step(size_t module, double lambda, double cpu, double target, double dt_s);

 private:
  struct State {
    double e1 = 0.0, e2 = 0.0;
    int history = 0;
  };
  PidConfig options_;
  double floor_;  // log needs lambda > 0: lambda below this counts as this
  double min_;
  std::vector<double> targets_;
  std::vector<State> state_;
};

}  // namespace allot
