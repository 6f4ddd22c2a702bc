// The per-request serving rule a* = argmax_a [value(a) - lambda * cost(a)] under constraints.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "policy/scorer.h"

namespace allot {

struct ChosenAction {
  size_t joint = 0;
  double value = 0.0;
  double cost = 0.0;
  bool capped = false;    // the cost cap removed the unconstrained argmax
  bool proposed = false;  // the scorer's actor chose it (DecideJoint), not the priced argmax
};

// max_cost <= 0 means no cap. When no action fits under the cap, the cheapest action is chosen.
// Ties go to the lower index (deterministic). Requires scores.value.size() == scores.cost.size() >
// 0.
ChosenAction ChooseAction(const AgentScores& scores, double lambda, double max_cost = 0.0);

// net[j] = value[j] - sum_k module_lambda[cross_module[k]] * cross_cost[k * n + j]: the value
// of each joint action after paying for the compute it causes in later modules.
void NetOfLaterModules(std::span<const double> value, std::span<const size_t> cross_module,
                       std::span<const double> cross_cost, std::span<const double> module_lambda,
                       std::vector<double>& net);

// The same rule with the compute the choice causes in later modules priced too:
// argmax value - lambda * cost - sum_k module_lambda[cross_module[k]] * cross_cost[k]. The cap
// still applies to the own module's cost. `priced` is scratch (no allocation once it has grown).
ChosenAction ChooseActionAcrossModules(const AgentScores& scores, double lambda,
                                       std::span<const double> module_lambda, double max_cost,
                                       std::vector<double>& priced);

// One agent's decision for a scored request: the scorer's proposal (Propose) where it has one
// and it fits under the cap, else ChooseActionAcrossModules (also when Propose throws).
// module_lambda: every config module's price; `priced` is scratch.
ChosenAction DecideJoint(const ActionScorer& scorer, size_t agent, std::span<const float> features,
                         const AgentScores& scores, double lambda,
                         std::span<const double> module_lambda, double max_cost,
                         std::vector<double>& priced);

}  // namespace allot
