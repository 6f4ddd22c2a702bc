// The loop itself holds no lock while controllers compute; only the published results are locked.
#include "policy/control_loop.h"

#include <algorithm>
#include <cmath>

#include "policy/mpc_controller.h"
#include "policy/pid_controller.h"

namespace allot {

std::unique_ptr<LambdaController> MakeController(const AllotConfig& config) {
  switch (config.controller.kind) {
    case ControllerKind::kMpc:
      return std::make_unique<MpcController>(config);
    case ControllerKind::kPid:
      return std::make_unique<PidController>(config);
  }
  throw std::logic_error("unknown controller kind");  // unreachable: the enum is closed
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

std::vector<double> EnginePorts::Current(const AllotConfig& config) const {
  const std::shared_ptr<const LambdaTable> table = engine_.lambdas();
  std::vector<double> out;
  out.reserve(config.modules.size());
  for (const ModuleConfig& m : config.modules) out.push_back(table->Get(m.name, m.initial_lambda));
  return out;
}

void EnginePorts::Publish(const AllotConfig& config, std::span<const ModuleDecision> decisions) {
  auto table = std::make_shared<LambdaTable>();
  table->layout = ModuleLayout(config);
  for (size_t m = 0; m < decisions.size(); ++m)
    table->modules.push_back(
        {config.modules[m].name, decisions[m].lambda, decisions[m].max_cost_ms});
  engine_.SetLambdas(std::move(table));
}

ControlLoop::ControlLoop(std::shared_ptr<const AllotConfig> config, ControlPorts ports)
    : config_(std::move(config)),
      ports_(ports),
      owned_(MakeController(*config_)),
      controller_(owned_.get()),
      last_sample_ms_(config_->modules.size(), -1) {
  Derive();
}

ControlLoop::ControlLoop(std::shared_ptr<const AllotConfig> config, ControlPorts ports,
                         LambdaController& controller)
    : config_(std::move(config)),
      ports_(ports),
      controller_(&controller),
      last_sample_ms_(config_->modules.size(), -1) {
  Derive();
}

void ControlLoop::Derive() {
  const AllotConfig& config = *config_;
  grid_ = LambdaGrid(config.lambda.min, config.lambda.max, config.controller.lambda_grid);
  in_module_.clear();
  for (const ModuleConfig& module : config.modules) {
    std::vector<bool> mask;
    for (const AgentConfig& a : config.agents) mask.push_back(a.module == module.name);
    in_module_.push_back(std::move(mask));
  }
}

namespace {

bool SameModuleSet(const AllotConfig& a, const AllotConfig& b) {
  return std::equal(a.modules.begin(), a.modules.end(), b.modules.begin(), b.modules.end(),
                    [](const ModuleConfig& x, const ModuleConfig& y) { return x.name == y.name; });
}

}  // namespace

void ControlLoop::Reconfigure(std::shared_ptr<const AllotConfig> config,
                              TelemetrySource* telemetry) {
  if (telemetry) ports_.telemetry = telemetry;
  const AllotConfig& before = *config_;
  const bool same_modules = SameModuleSet(before, *config);
  if (owned_ && (!same_modules || config->controller.kind != before.controller.kind ||
                 !owned_->Adopt(*config))) {
    owned_ = MakeController(*config);
    controller_ = owned_.get();
  } else if (!owned_) {
    controller_->Adopt(*config);
  }
  if (!same_modules) {
    last_sample_ms_.assign(config->modules.size(), -1);
    std::lock_guard<std::mutex> lock(mu_);
    last_.clear();
  }
  config_ = std::move(config);
  Derive();
}

namespace {

// Replicas that share telemetry step from a price pulled towards the one their module's replicas
// use, so one that joined late or drifted comes back; a module without a price query, or whose
// query fails this period, keeps its own.
void PullTowardsClusterPrices(const AllotConfig& config, TelemetrySource& telemetry,
                              std::vector<double>& lambda) {
  const double gain = config.lambda.consensus;
  if (gain <= 0) return;
  for (size_t m = 0; m < config.modules.size() && m < lambda.size(); ++m) {
    if (config.modules[m].price_query.empty() || !(lambda[m] > 0)) continue;
    std::string error;  // a failed query is the same as none: the replica keeps its price
    const std::optional<double> cluster = telemetry.ClusterPrice(config.modules[m].name, &error);
    if (!cluster || !(*cluster > 0)) continue;
    lambda[m] = std::exp((1 - gain) * std::log(lambda[m]) + gain * std::log(*cluster));
  }
}

}  // namespace

std::vector<ModuleDecision> ControlLoop::Step() {
  const AllotConfig& config = *config_;
  const int64_t now = ports_.clock->NowMs();
  const size_t n = config.modules.size();
  const std::vector<ScoredSample> recent = ports_.samples->Recent();

  ControlInput input;
  input.now_ms = now;
  input.dt_s =
      last_ms_ == 0 ? config.controller.period_s : std::max(1e-3, (now - last_ms_) / 1000.0);
  last_ms_ = now;
  input.lambda = ports_.prices->Current(config);
  PullTowardsClusterPrices(config, *ports_.telemetry, input.lambda);
  std::vector<std::optional<LoadSample>> raw(n);
  std::vector<double> age(n, 0.0);
  std::vector<std::string> errors(n);
  for (size_t m = 0; m < n; ++m) {
    raw[m] = ports_.telemetry->Latest(config.modules[m].name, &errors[m]);
    age[m] = raw[m] ? (now - raw[m]->timestamp_ms) / 1000.0 : 0.0;
    // A controller acts once per new sample: re-reading the same sample would integrate the same
    // error again. No new sample means lambda holds (and, once old enough, the guard decays it).
    const bool fresh = raw[m] && age[m] <= config.lambda.stale_after_s &&
                       raw[m]->timestamp_ms != last_sample_ms_[m];
    if (fresh) last_sample_ms_[m] = raw[m]->timestamp_ms;
    input.load.push_back(fresh ? raw[m] : std::nullopt);
    input.curves.emplace_back(recent, in_module_[m], grid_, input.lambda);
  }

  std::vector<ModuleDecision> decisions = controller_->Update(input);
  decisions.resize(n);
  for (size_t m = 0; m < n; ++m) {
    decisions[m] = GuardDecision(config, m, decisions[m], input.lambda[m], age[m], raw[m],
                                 input.curves[m], input.dt_s);
    decisions[m].telemetry_error = std::move(errors[m]);
  }
  ports_.prices->Publish(config, decisions);
  std::lock_guard<std::mutex> lock(mu_);
  last_ = decisions;
  return decisions;
}

std::vector<ModuleDecision> ControlLoop::last() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

}  // namespace allot
