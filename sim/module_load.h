// Per-module CPU of the simulated cluster: utilisation = load / capacity with a first-order lag and
// noise; overload raises the elastic-degradation level and makes requests time out.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "sim/world.h"

namespace allot::sim {

class ModuleLoad {
 public:
  // dynamics=false (offline replay): utilisation is the period's load itself, never degraded.
  ModuleLoad(const World& world, bool dynamics, double period_s, double scale, uint64_t seed);

  void Add(size_t module, double cost_ms) { period_cost_[module] += cost_ms; }
  void Count(size_t module) { period_requests_[module] += 1; }
  // Ends a control period: updates utilisation, degradation and timeout probability.
  void ClosePeriod();

  double utilization(size_t m) const { return cpu_[m]; }  // what monitoring shows
  double instant(size_t m) const { return instant_[m]; }  // this period's load / capacity
  double qps(size_t m) const { return qps_[m]; }          // real requests per second
  int level(size_t m) const { return level_[m]; }
  double timeout(size_t m) const { return timeout_[m]; }  // probability, for the next period
  int max_level() const;

 private:
  const World& world_;
  const bool dynamics_;
  const double period_s_;
  const double scale_;
  const double alpha_;  // lag per period
  std::mt19937_64 rng_;
  std::vector<double> period_cost_, period_requests_;
  std::vector<double> lagged_, cpu_, instant_, qps_, timeout_;
  bool first_period_ = true;  // the next ClosePeriod is the run's first
  std::vector<int> level_;
};

}  // namespace allot::sim
