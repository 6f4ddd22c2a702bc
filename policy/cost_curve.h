// Expected compute per request of one module as a function of lambda, from recently scored
// requests: each sample is re-decided at every candidate lambda (the DCAF bisection idea).
#pragma once

#include <span>
#include <vector>

#include "policy/score_reservoir.h"

namespace allot {

class CostCurve {
 public:
  CostCurve() = default;
  // agent_in_module[a]: whether agent a's cost is spent in this module. The module's cost per
  // request is the sum over its agents of the mean cost each agent would choose at lambda.
  // grid: increasing candidate lambdas. module_lambda (per config module): the prices of the
  // later modules a sample's choice loads, held as they are while the own lambda varies, so the
  // samples are re-decided as the request path decides them.
  CostCurve(const std::vector<ScoredSample>& samples, const std::vector<bool>& agent_in_module,
            std::vector<double> grid, std::span<const double> module_lambda = {});

  bool empty() const { return samples_ == 0; }
  size_t samples() const { return samples_; }
  // Linear interpolation between grid points; clamped at the ends. Non-increasing in lambda.
  double At(double lambda) const;
  const std::vector<double>& grid() const { return grid_; }

 private:
  std::vector<double> grid_;
  std::vector<double> cost_;
  size_t samples_ = 0;
};

// Candidate lambdas: 0 (when allowed) and `points` log-spaced values up to max_lambda.
std::vector<double> LambdaGrid(double min_lambda, double max_lambda, int points);

}  // namespace allot
