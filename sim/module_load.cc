// Load dynamics; the lag and the noise are what make control non-trivial, overload what makes it
// matter (degraded answers and lost requests).
#include "sim/module_load.h"

#include <algorithm>
#include <cmath>

namespace allot::sim {

ModuleLoad::ModuleLoad(const World& world, bool dynamics, double period_s, double scale,
                       uint64_t seed)
    : world_(world),
      dynamics_(dynamics),
      period_s_(period_s),
      scale_(scale),
      alpha_(-std::expm1(-period_s / world.world().load.lag_s)),
      rng_(seed) {
  const size_t n = world.num_modules();
  period_cost_.assign(n, 0.0);
  period_requests_.assign(n, 0.0);
  lagged_.assign(n, 0.0);
  cpu_.assign(n, 0.0);
  instant_.assign(n, 0.0);
  qps_.assign(n, 0.0);
  timeout_.assign(n, 0.0);
  level_.assign(n, 0);
}

void ModuleLoad::ClosePeriod() {
  const WorldConfig& w = world_.world();
  const OverloadConfig& o = w.overload;
  std::normal_distribution<double> noise(0.0, w.load.noise_sigma);
  for (size_t m = 0; m < period_cost_.size(); ++m) {
    const double cores = world_.cores(m);
    instant_[m] = cores > 0 ? period_cost_[m] * scale_ / (1000.0 * period_s_ * cores) : 0.0;
    qps_[m] = period_requests_[m] * scale_ / period_s_;
    period_cost_[m] = 0.0;
    period_requests_[m] = 0.0;
    if (!dynamics_) {
      cpu_[m] = instant_[m];
      continue;
    }
    // The modules were serving before the run began: the first period starts in steady state
    // rather than ramping up from idle cores (which no deployed controller ever sees).
    if (first_period_)
      lagged_[m] = instant_[m];
    else
      lagged_[m] += alpha_ * (instant_[m] - lagged_[m]);
    // A saturated module cannot report more than all of its cores.
    cpu_[m] = std::clamp(lagged_[m] + (w.load.noise_sigma > 0 ? noise(rng_) : 0.0), 0.0, 1.0);
    const int max = static_cast<int>(o.levels.size());
    if (cpu_[m] > o.degrade_above)
      level_[m] = std::min(level_[m] + 1, max);
    else if (cpu_[m] < o.recover_below)
      level_[m] = std::max(level_[m] - 1, 0);
    const double over = std::clamp(
        (std::max(lagged_[m], cpu_[m]) - o.timeout_start) / (1.0 - o.timeout_start), 0.0, 1.0);
    timeout_[m] = o.timeout_max * over * over;
  }
  first_period_ = false;
}

int ModuleLoad::max_level() const {
  return level_.empty() ? 0 : *std::max_element(level_.begin(), level_.end());
}

}  // namespace allot::sim
