// The loop itself holds no lock while controllers compute; only the published results are locked.
#include "policy/control_loop.h"

#include <algorithm>
#include <cmath>

#include "policy/mpc_controller.h"
#include "policy/pid_controller.h"

namespace allot {

std::unique_ptr<LambdaController> MakeController(const AllotConfig& config) {
  if (config.controller.kind == "pid") return std::make_unique<PidController>(config);
  return std::make_unique<MpcController>(config);
}

double MaxLambdaStep(const LambdaConfig& bounds, double lambda) {
  return std::max(bounds.max_step, bounds.max_step_ratio * lambda);
}

ModuleDecision GuardDecision(const AllotConfig& config, size_t module, ModuleDecision d,
                             double previous, double age_s, const std::optional<LoadSample>& load,
                             const CostCurve& curve, double dt_s) {
  const LambdaConfig& bounds = config.lambda;
  const ModuleConfig& m = config.modules[module];
  d.stale = !load || age_s > bounds.stale_after_s;
  if (d.stale) {
    d.max_cost_ms = 0;
    if (load && age_s <= 2 * bounds.stale_after_s) {
      d.lambda = previous;
      d.controller = "hold";
    } else {
      d.lambda = bounds.safe_value +
                 (previous - bounds.safe_value) * std::exp2(-dt_s / bounds.decay_half_life_s);
      d.controller = "decay";
    }
    return d;
  }
  const double step = MaxLambdaStep(bounds, previous);
  d.lambda = std::clamp(d.lambda, previous - step, previous + step);
  d.lambda = std::clamp(d.lambda, bounds.min, bounds.max);
  d.capped = load->cpu_utilization > m.cpu_hard_limit && !curve.empty();
  d.max_cost_ms = d.capped ? curve.At(d.lambda) * m.cpu_target / load->cpu_utilization : 0.0;
  return d;
}

ControlLoop::ControlLoop(std::shared_ptr<const AllotConfig> config, TelemetrySource& telemetry,
                         AllocationEngine& engine, const Clock& clock)
    : config_(std::move(config)),
      telemetry_(telemetry),
      engine_(engine),
      clock_(clock),
      controller_(MakeController(*config_)),
      grid_(LambdaGrid(config_->lambda.min, config_->lambda.max, config_->controller.lambda_grid)),
      last_sample_ms_(config_->modules.size(), -1) {}

std::vector<ModuleDecision> ControlLoop::Step() {
  const AllotConfig& config = *config_;
  const int64_t now = clock_.NowMs();
  const double dt =
      last_ms_ == 0 ? config.controller.period_s : std::max(1e-3, (now - last_ms_) / 1000.0);
  last_ms_ = now;
  const size_t n = config.modules.size();
  const std::shared_ptr<const LambdaTable> current = engine_.lambdas();
  const std::vector<ScoredSample> recent = engine_.reservoir().Snapshot();

  ControlInput input;
  input.now_ms = now;
  std::vector<std::optional<LoadSample>> raw(n);
  std::vector<double> age(n, 0.0);
  std::vector<std::string> errors(n);
  for (const ModuleConfig& module : config.modules)
    input.lambda.push_back(current->Get(module.name, module.initial_lambda));
  for (size_t m = 0; m < n; ++m) {
    const ModuleConfig& module = config.modules[m];
    raw[m] = telemetry_.Latest(module.name, &errors[m]);
    age[m] = raw[m] ? (now - raw[m]->timestamp_ms) / 1000.0 : 0.0;
    // A controller acts once per new sample: re-reading the same sample would integrate the same
    // error again. No new sample means lambda holds (and, once old enough, the guard decays it).
    const bool fresh = raw[m] && age[m] <= config.lambda.stale_after_s &&
                       raw[m]->timestamp_ms != last_sample_ms_[m];
    if (fresh) last_sample_ms_[m] = raw[m]->timestamp_ms;
    input.load.push_back(fresh ? raw[m] : std::nullopt);
    std::vector<bool> in_module;
    for (const AgentConfig& a : config.agents) in_module.push_back(a.module == module.name);
    input.curves.emplace_back(recent, in_module, grid_, input.lambda);
  }

  std::vector<ModuleDecision> decisions = controller_->Update(input);
  auto table = std::make_shared<LambdaTable>();
  for (size_t m = 0; m < n; ++m) {
    decisions[m] = GuardDecision(config, m, decisions[m], input.lambda[m], age[m], raw[m],
                                 input.curves[m], dt);
    decisions[m].telemetry_error = std::move(errors[m]);
    table->modules.push_back(
        {config.modules[m].name, decisions[m].lambda, decisions[m].max_cost_ms});
  }
  engine_.SetLambdas(std::move(table));
  std::lock_guard<std::mutex> lock(mu_);
  last_ = decisions;
  return decisions;
}

std::vector<ModuleDecision> ControlLoop::last() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

}  // namespace allot
