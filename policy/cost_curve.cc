// Building the curve costs samples x options x grid points: 4096 x 62 x 48 is ~12M multiply-adds,
// a few milliseconds once per control period.
#include "policy/cost_curve.h"

#include <algorithm>
#include <cmath>

#include "policy/config.h"
#include "policy/decision_rule.h"

namespace allot {

std::vector<double> LambdaGrid(double min_lambda, double max_lambda, int points) {
  std::vector<double> grid;
  const double low = LogLambdaFloor(min_lambda, max_lambda);
  if (min_lambda < low) grid.push_back(min_lambda);
  for (int i = 0; i < points; ++i) {
    const double f = points == 1 ? 1.0 : static_cast<double>(i) / (points - 1);
    grid.push_back(low * std::pow(max_lambda / low, f));
  }
  return grid;
}

CostCurve::CostCurve(const std::vector<ScoredSample>& samples,
                     const std::vector<bool>& agent_in_module, std::vector<double> grid,
                     std::span<const double> module_lambda)
    : grid_(std::move(grid)), cost_(grid_.size(), 0.0) {
  const size_t agents = agent_in_module.size();
  std::vector<std::vector<double>> sum(agents, std::vector<double>(grid_.size(), 0.0));
  std::vector<size_t> count(agents, 0);
  AgentScores scores;  // the sample's own-module costs, its value net of later modules' prices
  for (const ScoredSample& s : samples) {
    if (s.agent >= agents || !agent_in_module[s.agent] || s.value.empty() ||
        s.value.size() != s.cost.size()) {
      continue;
    }
    // The later modules' prices are the same at every grid point: priced once per sample.
    NetOfLaterModules(s.value, s.cross_module, s.cross_cost, module_lambda, scores.value);
    scores.cost = s.cost;
    scores.excluded = s.excluded;  // re-decided as the request was: never an excluded action
    for (size_t g = 0; g < grid_.size(); ++g)
      sum[s.agent][g] += ChooseAction(scores, grid_[g]).cost;
    ++count[s.agent];
    ++samples_;
  }
  for (size_t a = 0; a < agents; ++a) {
    if (count[a] == 0) continue;
    for (size_t g = 0; g < grid_.size(); ++g) cost_[g] += sum[a][g] / static_cast<double>(count[a]);
  }
}

double CostCurve::At(double lambda) const {
  if (grid_.empty()) return 0.0;
  if (lambda <= grid_.front()) return cost_.front();
  if (lambda >= grid_.back()) return cost_.back();
  const size_t hi =
      static_cast<size_t>(std::upper_bound(grid_.begin(), grid_.end(), lambda) - grid_.begin());
  const size_t lo = hi - 1;
  const double w = (lambda - grid_[lo]) / (grid_[hi] - grid_[lo]);
  return (1 - w) * cost_[lo] + w * cost_[hi];
}

}  // namespace allot
