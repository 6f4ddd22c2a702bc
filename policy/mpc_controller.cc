// See mpc_controller.h for the model, objective and search.
#include "policy/mpc_controller.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "policy/control_loop.h"

namespace allot {
namespace {

// A period's plan counts as "at the aim" when its predicted load is within this of it (as a
// fraction of the target): well inside the one-period prediction error.
constexpr double kOnAim = 0.01;
// CPU utilisation (a fraction of the module's cores) no prediction can sensibly exceed.
constexpr double kMaxPlausibleLoad = 1e3;
// Golden-section steps refining the best constant lambda (one path each): the bracket shrinks
// to 0.618^n of the two grid intervals around the best grid point.
constexpr int kRefineSteps = 16;

}  // namespace

MpcController::MpcController(const AllotConfig& config)
    : state_(config.modules.size()), pid_(config), rng_(config.controller.mpc.seed) {
  Adopt(config);
}

bool MpcController::Adopt(const AllotConfig& config) {
  const size_t n = config.modules.size();
  if (n != state_.size() || !pid_.Adopt(config)) return false;
  const ControllerConfig& c = config.controller;
  const MpcConfig& mpc = c.mpc;
  const bool first = forecasts_.empty();
  // The forecast's profile and the back-off's history are kept unless their own settings changed.
  if (first || c.forecast != options_.forecast) forecasts_.assign(n, TrafficForecast(c.forecast));
  if (first || mpc.error_window != options_.mpc.error_window ||
      mpc.overshoot_budget != options_.mpc.overshoot_budget ||
      mpc.max_backoff != options_.mpc.max_backoff) {
    backoffs_.assign(n, OvershootBackoff(static_cast<size_t>(mpc.error_window),
                                         mpc.overshoot_budget, mpc.max_backoff));
  }
  if (!first && mpc.seed != options_.mpc.seed) rng_.seed(mpc.seed);
  options_ = c;
  bounds_ = config.lambda;
  targets_.clear();
  for (const ModuleConfig& m : config.modules) targets_.push_back(m.cpu_target);
  return true;
}

double MpcLoadModel::Lagged(double previous, double input) const {
  return load_lag * previous + (1 - load_lag) * input;
}

double PathCost(const MpcConfig& options, const MpcPlanInput& in, std::span<const double> path) {
  const MpcLoadModel model{options.load_lag};
  double previous = in.start_load;
  double weight = 1.0;
  double total = 0.0;
  for (size_t i = 0; i < path.size(); ++i) {
    const double load = model.Lagged(previous, in.k * in.qps[i] * in.curve->At(path[i]));
    double term = (load - in.aim) * (load - in.aim);
    // Damping applies between successive *predicted* loads: it smooths the plan without resisting
    // the correction away from the measured load (which the lag already slows down).
    if (i > 0 && previous >= options.critical_load) {
      term += options.beta * (load - previous) * (load - previous);
    }
    if (options.move_penalty > 0 && in.noise > 0) {
      const double move = std::log(std::max(path[i], in.lambda_floor)) -
                          std::log(std::max(i > 0 ? path[i - 1] : in.lambda, in.lambda_floor));
      term += options.move_penalty * in.noise * in.noise * in.aim * in.aim * move * move;
    }
    total += weight * term;
    weight *= options.alpha;
    previous = load;
  }
  return total;
}

double PlanLambda(const MpcConfig& options, const LambdaConfig& bounds, const MpcPlanInput& in,
                  std::mt19937_64& rng) {
  const int horizon = options.horizon;
  auto clamp = [&](double x) { return std::clamp(x, bounds.min, bounds.max); };
  std::vector<double> path(static_cast<size_t>(horizon));
  double best = std::numeric_limits<double>::infinity();
  double best_first = in.lambda;
  auto consider = [&] {
    const double j = PathCost(options, in, path);
    if (j < best) {
      best = j;
      best_first = path[0];
    }
    return j;
  };
  // The rate-limited ramp from the current lambda towards `goal`, then holding there.
  auto ramp_to = [&](double goal) {
    double x = in.lambda;
    for (int i = 0; i < horizon; ++i) {
      const double step = MaxLambdaStep(bounds, x);
      x = clamp(x + std::clamp(goal - x, -step, step));
      path[i] = x;
    }
    return consider();
  };
  const std::vector<double>& grid = in.curve->grid();
  size_t best_goal = 0;
  double best_ramp = std::numeric_limits<double>::infinity();
  for (size_t g = 0; g < grid.size(); ++g) {
    const double j = ramp_to(grid[g]);
    if (j < best_ramp) {
      best_ramp = j;
      best_goal = g;
    }
  }
  // Neighbouring grid lambdas can be a few percent of the load apart, more than the back-off
  // is fine-tuned to: refine the best goal between its grid neighbours (golden section).
  if (grid.size() > 1) {
    constexpr double kGolden = 0.6180339887498949;
    double lo = grid[best_goal > 0 ? best_goal - 1 : 0];
    double hi = grid[std::min(best_goal + 1, grid.size() - 1)];
    double a = hi - kGolden * (hi - lo);
    double b = lo + kGolden * (hi - lo);
    double cost_a = ramp_to(a);
    double cost_b = ramp_to(b);
    // Each step keeps one inner point of the narrowed bracket: one new path per step.
    for (int i = 0; i < kRefineSteps; ++i) {
      if (cost_a < cost_b) {
        hi = b;
        b = a;
        cost_b = cost_a;
        a = hi - kGolden * (hi - lo);
        cost_a = ramp_to(a);
      } else {
        lo = a;
        a = b;
        cost_a = cost_b;
        b = lo + kGolden * (hi - lo);
        cost_b = ramp_to(b);
      }
    }
  }
  std::uniform_real_distribution<double> move(-1.0, 1.0);
  for (int n = 0; n < options.samples; ++n) {
    double x = in.lambda;
    for (int i = 0; i < horizon; ++i) {
      x = clamp(x + move(rng) * MaxLambdaStep(bounds, x));
      path[i] = x;
    }
    consider();
  }
  return best_first;
}

std::vector<ModuleDecision> MpcController::Update(const ControlInput& input) {
  std::vector<ModuleDecision> out(targets_.size());
  for (size_t m = 0; m < targets_.size(); ++m) out[m] = UpdateModule(m, input);
  return out;
}

ModuleDecision MpcController::UpdateModule(size_t m, const ControlInput& input) {
  ModuleDecision d;
  d.lambda = input.lambda[m];
  d.controller = name();
  if (!input.load[m]) {
    // Without a sample the guard holds or decays lambda: the next measurement will not follow
    // this period's plan, so it must not be scored as the plan's error or overshoot.
    state_[m].predicted_next = -1;
    return d;
  }
  const LoadSample& load = *input.load[m];
  const double target = targets_[m];
  const CostCurve* curve = m < input.curves.size() ? &input.curves[m] : nullptr;
  const double cost_now = curve && !curve->empty() ? curve->At(input.lambda[m]) : 0.0;
  const double start_load = Observe(m, load);
  if (cost_now <= 0 || load.qps <= 0 || !Calibrate(m, load, cost_now)) {
    d.lambda = pid_.Step(m, input.lambda[m], load.cpu_utilization, target, input.dt_s);
    d.controller = "pid";
    return d;
  }

  MpcPlanInput plan{input.lambda[m],
                    start_load,
                    state_[m].aim,
                    state_[m].k,
                    {},
                    curve,
                    LogLambdaFloor(bounds_.min, bounds_.max),
                    backoffs_[m].scatter()};
  plan.qps = forecasts_[m].Horizon(input.now_ms / 1000.0, options_.period_s, options_.mpc.horizon);
  for (double& q : plan.qps) {
    if (!(q > 0)) q = load.qps;
  }
  d.forecast = plan.qps;
  d.forecast_qps = plan.qps.front();
  const double planned = PlanLambda(options_.mpc, bounds_, plan, rng_);
  // PID runs every period, so that its history is warm whenever the MPC hands over.
  const double feedback = pid_.Step(m, input.lambda[m], load.cpu_utilization, target, input.dt_s);
  if (state_[m].error > options_.mpc.fallback_error) {
    // The model has been wrong lately: let feedback steer until its predictions recover.
    d.lambda = feedback;
    d.controller = "pid";
  } else {
    d.lambda = planned;
  }
  // What the model expects next period at the lambda actually applied; compared with the
  // measurement next period to decide whether the model can be trusted.
  const double predicted =
      load_model().Lagged(start_load, plan.k * plan.qps.front() * curve->At(d.lambda));
  if (!(predicted >= 0 && predicted <= kMaxPlausibleLoad && std::isfinite(planned))) {
    // A calibration on a vanishing demand (a report of 1e-307 QPS is valid) gives a k near the
    // largest double, and its predictions overflow: start the model afresh and let feedback
    // steer until the next sample calibrates it.
    state_[m] = State{};
    d.lambda = feedback;
    d.controller = "pid";
    return d;
  }
  state_[m].predicted_next = predicted;
  d.predicted_cpu = predicted;
  return d;
}

double MpcController::Observe(size_t m, const LoadSample& load) {
  const double target = targets_[m];
  State& s = state_[m];
  forecasts_[m].Observe(load.timestamp_ms / 1000.0, load.qps);
  if (s.predicted_next >= 0) {
    const double e = (load.cpu_utilization - s.predicted_next) / target;
    s.error = 0.7 * s.error + 0.3 * std::abs(e);
    backoffs_[m].Add(e);
    // The overshoot the back-off is accountable for: periods planned at the aim. Not those
    // the plan could not bring to it (lambda at a bound, the lag still closing a gap).
    if (std::abs(s.predicted_next - s.aim) <= kOnAim * target)
      backoffs_[m].AddOutcome(load.cpu_utilization / target);
  }
  // The load the plan starts from: the model's prediction for now corrected towards the
  // measurement (a fixed-gain state observer), so measurement noise is not replayed through
  // the lag into every predicted period.
  const double start =
      s.predicted_next >= 0
          ? s.predicted_next + options_.mpc.state_gain * (load.cpu_utilization - s.predicted_next)
          : load.cpu_utilization;
  // Aim below the target by what the model cannot predict, so that the overshoot it leaves is
  // on average controller.overshoot_budget: a chance constraint instead of a symmetric target.
  s.aim = target * (1 - backoffs_[m].Backoff());
  s.predicted_next = -1;
  return start;
}

bool MpcController::Calibrate(size_t m, const LoadSample& load, double cost_now) {
  // Measured CPU per unit of compute demand passed through the model's own lag, so that a ramp
  // (the CPU still catching up with a demand change) is not read as a change of k. The first
  // sample is taken as steady state.
  State& s = state_[m];
  const double demand = load.qps * cost_now;
  s.lagged_demand = s.lagged_demand < 0 ? demand : load_model().Lagged(s.lagged_demand, demand);
  const double k_observed = load.cpu_utilization / s.lagged_demand;
  if (!std::isfinite(k_observed)) {  // no demand to speak of: nothing to learn from this sample
    s.lagged_demand = -1;
    return s.k > 0;
  }
  s.k = s.k == 0 ? k_observed
                 : (1 - options_.mpc.calibration_alpha) * s.k +
                       options_.mpc.calibration_alpha * k_observed;
  return true;
}

}  // namespace allot
