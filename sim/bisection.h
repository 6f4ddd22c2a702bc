// Per-module lambdas that meet per-module budgets: bisection on one lambda at a time (others held),
// repeated until no lambda moves. Total cost is non-increasing in each lambda for the rules we
// tune.
#pragma once

#include <functional>
#include <vector>

namespace allot::sim {

struct BisectionOptions {
  double lambda_max = 20.0;
  double tolerance = 1e-3;  // relative: lambda bracket width, and cost below budget
  int max_rounds = 8;
  int max_steps = 40;  // per coordinate
};

// cost(lambda) returns the cost per module. budget[m] <= 0 or infinite leaves lambda[m] at 0.
// The result meets every budget (cost <= budget) unless lambda_max cannot.
using CostFunction = std::function<std::vector<double>(const std::vector<double>&)>;
std::vector<double> CoordinateBisection(const CostFunction& cost, const std::vector<double>& budget,
                                        std::vector<double> lambda,
                                        const BisectionOptions& options = {});

}  // namespace allot::sim
