// Iterated coordinate bisection (DCAF's bisection, one module at a time, because modules couple:
// fewer recall candidates also means less pre-rank work).
#include "sim/bisection.h"

#include <algorithm>
#include <cmath>

namespace allot::sim {
namespace {

bool Constrained(double budget) { return budget > 0 && std::isfinite(budget); }

// Smallest lambda_m (within tolerance) whose cost meets the budget, others held.
double SolveOne(const CostFunction& cost, const std::vector<double>& budget,
                std::vector<double>& lambda, size_t m, const BisectionOptions& o) {
  const double b = budget[m];
  auto cost_at = [&](double x) {
    lambda[m] = x;
    return cost(lambda)[m];
  };
  const double start = lambda[m];
  double lo = 0.0;
  double hi = start;
  double c = cost_at(start);
  // Bracket outwards from the current value with a growing factor (1.02, 1.04, 1.08, 1.17, ...):
  // warm starts are usually close, and then a narrow bracket saves most bisection steps.
  double factor = 1.02;
  if (c > b) {
    lo = start;
    for (;;) {
      hi = std::min(std::max(start, 1e-6) * factor, o.lambda_max);
      if ((c = cost_at(hi)) <= b) break;
      if (hi >= o.lambda_max) return o.lambda_max;
      lo = hi;
      factor *= factor;
    }
  } else {
    if (start == 0.0) return 0.0;
    for (;;) {
      lo = start / factor;
      if (lo < 1e-9) {
        if (cost_at(0.0) <= b) return 0.0;
        lo = 0.0;
        break;
      }
      const double cl = cost_at(lo);
      if (cl > b) break;
      hi = lo;
      c = cl;
      factor *= factor;
    }
  }
  for (int step = 0; step < o.max_steps; ++step) {
    if (hi - lo <= o.tolerance * hi || c >= (1.0 - o.tolerance) * b) break;
    const double mid = lo > 0 ? std::sqrt(lo * hi) : 0.5 * hi;
    const double cm = cost_at(mid);
    if (cm > b) {
      lo = mid;
    } else {
      hi = mid;
      c = cm;
    }
  }
  return hi;
}

}  // namespace

std::vector<double> CoordinateBisection(const CostFunction& cost, const std::vector<double>& budget,
                                        std::vector<double> lambda,
                                        const BisectionOptions& options) {
  lambda.resize(budget.size(), 0.0);
  for (size_t m = 0; m < budget.size(); ++m) {
    if (!Constrained(budget[m])) lambda[m] = 0.0;
  }
  for (int round = 0; round < options.max_rounds; ++round) {
    double moved = 0.0;
    for (size_t m = 0; m < budget.size(); ++m) {
      if (!Constrained(budget[m])) continue;
      const double before = lambda[m];
      lambda[m] = SolveOne(cost, budget, lambda, m, options);
      moved = std::max(moved, std::abs(lambda[m] - before) / std::max(lambda[m], 1e-9));
    }
    if (moved <= 10 * options.tolerance) break;
  }
  return lambda;
}

}  // namespace allot::sim
