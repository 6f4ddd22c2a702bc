// See pid_controller.h for the control law.
#include "policy/pid_controller.h"

#include <algorithm>
#include <cmath>

namespace allot {

PidController::PidController(const AllotConfig& config) : state_(config.modules.size()) {
  Adopt(config);
}

bool PidController::Adopt(const AllotConfig& config) {
  if (config.modules.size() != state_.size()) return false;
  options_ = config.controller.pid;
  floor_ = LogLambdaFloor(config.lambda.min, config.lambda.max);
  min_ = config.lambda.min;
  targets_.clear();
  for (const ModuleConfig& m : config.modules) targets_.push_back(m.cpu_target);
  return true;
}

double PidController::Step(size_t module, double lambda, double cpu, double target, double dt_s) {
  State& s = state_[module];
  const double e = (cpu - target) / target;
  double dlog = options_.ki * e * dt_s;
  if (s.history >= 1) dlog += options_.kp * (e - s.e1);
  if (s.history >= 2 && options_.kd > 0) dlog += options_.kd * (e - 2 * s.e1 + s.e2) / dt_s;
  s.e2 = s.e1;
  s.e1 = e;
  s.history = std::min(s.history + 1, 2);
  const double next = std::max(lambda, floor_) * std::exp(std::clamp(dlog, -2.0, 2.0));
  return next <= floor_ ? std::max(min_, std::min(next, floor_)) : next;
}

std::vector<ModuleDecision> PidController::Update(const ControlInput& input) {
  std::vector<ModuleDecision> out(targets_.size());
  for (size_t m = 0; m < targets_.size(); ++m) {
    out[m].controller = name();
    out[m].lambda = input.lambda[m];
    if (!input.load[m]) continue;
    out[m].lambda =
        Step(m, input.lambda[m], input.load[m]->cpu_utilization, targets_[m], input.dt_s);
  }
  return out;
}

}  // namespace allot
