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
// Golden-section steps refining the best constant lambda (one path each): the bracket shrinks
// to 0.618^n of the two grid intervals around the best grid point.
constexpr int kRefineSteps = 16;

}  // namespace

MpcController::MpcController(const AllotConfig& config)
    : options_(config.controller),
      bounds_(config.lambda),
      state_(config.modules.size()),
      backoffs_(
          config.modules.size(),
          OvershootBackoff(static_cast<size_t>(config.controller.error_window),
                           config.controller.overshoot_budget, config.controller.max_backoff)),
      pid_(config),
      rng_(config.controller.seed) {
  ForecastOptions f;
  f.day_length_s = options_.day_length_s;
  f.slots = options_.forecast_slots;
  f.level_alpha = options_.forecast_level_alpha;
  f.trend_beta = options_.forecast_trend_beta;
  f.seasonal_gamma = options_.forecast_seasonal_gamma;
  for (const ModuleConfig& m : config.modules) {
    targets_.push_back(m.cpu_target);
    forecasts_.emplace_back(f);
  }
}

double MpcController::Lagged(double previous, double input) const {
  return options_.load_lag * previous + (1 - options_.load_lag) * input;
}

double MpcController::PathCost(const std::vector<double>& path, double cpu, double target, double k,
                               const std::vector<double>& qps, const CostCurve& curve) const {
  double previous = cpu;
  double weight = 1.0;
  double total = 0.0;
  for (size_t i = 0; i < path.size(); ++i) {
    const double load = Lagged(previous, k * qps[i] * curve.At(path[i]));
    double term = (load - target) * (load - target);
    // Damping applies between successive *predicted* loads: it smooths the plan without resisting
    // the correction away from the measured load (which the lag already slows down).
    if (i > 0 && previous >= options_.critical_load) {
      term += options_.beta * (load - previous) * (load - previous);
    }
    total += weight * term;
    weight *= options_.alpha;
    previous = load;
  }
  return total;
}

std::vector<ModuleDecision> MpcController::Update(const ControlInput& input) {
  const double dt =
      last_ms_ == 0 ? options_.period_s : std::max(1e-3, (input.now_ms - last_ms_) / 1000.0);
  last_ms_ = input.now_ms;
  const double now_s = input.now_ms / 1000.0;
  const int horizon = options_.horizon;
  std::vector<ModuleDecision> out(targets_.size());
  for (size_t m = 0; m < targets_.size(); ++m) {
    ModuleDecision& d = out[m];
    d.lambda = input.lambda[m];
    d.controller = name();
    if (!input.load[m]) {
      // Without a sample the guard holds or decays lambda: the next measurement will not follow
      // this period's plan, so it must not be scored as the plan's error or overshoot.
      state_[m].predicted_next = -1;
      continue;
    }
    const LoadSample& load = *input.load[m];
    const double target = targets_[m];
    State& s = state_[m];
    TrafficForecast& forecast = forecasts_[m];
    forecast.Observe(load.timestamp_ms / 1000.0, load.qps);

    const CostCurve* curve = m < input.curves.size() ? &input.curves[m] : nullptr;
    const double cost_now = curve && !curve->empty() ? curve->At(input.lambda[m]) : 0.0;
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
    const double state =
        s.predicted_next >= 0
            ? s.predicted_next + options_.state_gain * (load.cpu_utilization - s.predicted_next)
            : load.cpu_utilization;
    // Aim below the target by what the model cannot predict, so that the overshoot it leaves is
    // on average controller.overshoot_budget: a chance constraint instead of a symmetric target.
    const double aim = target * (1 - backoffs_[m].Backoff());
    s.predicted_next = -1;
    s.aim = aim;
    if (cost_now <= 0 || load.qps <= 0) {
      d.lambda = pid_.Step(m, input.lambda[m], load.cpu_utilization, target, dt);
      d.controller = "pid";
      continue;
    }
    // Calibration: measured CPU per unit of compute demand passed through the model's own lag,
    // so that a ramp (the CPU still catching up with a demand change) is not read as a change
    // of k. The first sample is taken as steady state.
    const double demand = load.qps * cost_now;
    s.lagged_demand = s.lagged_demand < 0 ? demand : Lagged(s.lagged_demand, demand);
    const double k_observed = load.cpu_utilization / s.lagged_demand;
    s.k = s.k == 0
              ? k_observed
              : (1 - options_.calibration_alpha) * s.k + options_.calibration_alpha * k_observed;

    std::vector<double> qps = forecast.Horizon(now_s, options_.period_s, horizon);
    for (double& q : qps) {
      if (!(q > 0)) q = load.qps;
    }
    d.forecast = qps;
    d.forecast_qps = qps.front();

    // Candidate paths, all within the bounds and the per-period rate limit.
    auto clamp = [&](double x) { return std::clamp(x, bounds_.min, bounds_.max); };
    std::vector<double> path(static_cast<size_t>(horizon));
    double best = std::numeric_limits<double>::infinity();
    double best_first = input.lambda[m];
    auto consider = [&] {
      const double j = PathCost(path, state, aim, s.k, qps, *curve);
      if (j < best) {
        best = j;
        best_first = path[0];
      }
      return j;
    };
    // The rate-limited ramp from the current lambda towards `goal`, then holding there.
    auto ramp_to = [&](double goal) {
      double x = input.lambda[m];
      for (int i = 0; i < horizon; ++i) {
        const double step = MaxLambdaStep(bounds_, x);
        x = clamp(x + std::clamp(goal - x, -step, step));
        path[i] = x;
      }
      return consider();
    };
    const std::vector<double>& grid = curve->grid();
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
    for (int n = 0; n < options_.samples; ++n) {
      double x = input.lambda[m];
      for (int i = 0; i < horizon; ++i) {
        x = clamp(x + move(rng_) * MaxLambdaStep(bounds_, x));
        path[i] = x;
      }
      consider();
    }
    if (s.error > options_.fallback_error) {
      // The model has been wrong lately: let feedback steer until its predictions recover.
      d.lambda = pid_.Step(m, input.lambda[m], load.cpu_utilization, target, dt);
      d.controller = "pid";
    } else {
      pid_.Step(m, input.lambda[m], load.cpu_utilization, target, dt);  // keep PID history warm
      d.lambda = best_first;
    }
    // What the model expects next period at the lambda actually applied; compared with the
    // measurement next period to decide whether the model can be trusted.
    s.predicted_next = Lagged(state, s.k * qps.front() * curve->At(d.lambda));
    d.predicted_cpu = s.predicted_next;
  }
  return out;
}

}  // namespace allot
