// Linear scan: agents have at most a few thousand joint actions, so this is a few microseconds.
#include "policy/decision_rule.h"

#include <exception>
#include <limits>

namespace allot {

namespace {

ChosenAction Choose(const std::vector<double>& net, const AgentScores& scores, double lambda,
                    double max_cost) {
  const size_t n = net.size();
  size_t best = n;
  size_t best_uncapped = 0;
  size_t cheapest = 0;
  double best_score = -std::numeric_limits<double>::infinity();
  double best_uncapped_score = best_score;
  for (size_t j = 0; j < n; ++j) {
    const double score = net[j] - lambda * scores.cost[j];
    if (score > best_uncapped_score) {
      best_uncapped_score = score;
      best_uncapped = j;
    }
    if (scores.cost[j] < scores.cost[cheapest]) cheapest = j;
    if (max_cost > 0 && scores.cost[j] > max_cost) continue;
    if (score > best_score) {
      best_score = score;
      best = j;
    }
  }
  ChosenAction out;
  out.joint = best == n ? cheapest : best;
  out.capped = out.joint != best_uncapped;
  out.value = scores.value[out.joint];
  out.cost = scores.cost[out.joint];
  return out;
}

}  // namespace

ChosenAction ChooseAction(const AgentScores& scores, double lambda, double max_cost) {
  return Choose(scores.value, scores, lambda, max_cost);
}

ChosenAction ChooseActionAcrossModules(const AgentScores& scores, double lambda,
                                       std::span<const double> module_lambda, double max_cost,
                                       std::vector<double>& priced) {
  if (scores.cross_module.empty()) return Choose(scores.value, scores, lambda, max_cost);
  NetOfLaterModules(scores.value, scores.cross_module, scores.cross_cost, module_lambda, priced);
  return Choose(priced, scores, lambda, max_cost);
}

ChosenAction DecideJoint(const ActionScorer& scorer, size_t agent, std::span<const float> features,
                         const AgentScores& scores, double lambda,
                         std::span<const double> module_lambda, double max_cost,
                         std::vector<double>& priced) {
  size_t joint = 0;
  const size_t n = scores.value.size();
  bool proposed = false;
  try {
    proposed = scorer.Propose(agent, features, scores, module_lambda, &joint);
  } catch (const std::exception&) {
    proposed = false;  // the scores are good: the rule decides on them
  }
  if (proposed && joint < n && (max_cost <= 0 || scores.cost[joint] <= max_cost)) {
    ChosenAction out;
    out.joint = joint;
    out.value = scores.value[joint];
    out.cost = scores.cost[joint];
    out.proposed = true;
    return out;
  }
  // No actor, or its proposal breaks the cap: the cap is a hard limit, so the rule decides.
  return ChooseActionAcrossModules(scores, lambda, module_lambda, max_cost, priced);
}

void NetOfLaterModules(std::span<const double> value, std::span<const size_t> cross_module,
                       std::span<const double> cross_cost, std::span<const double> module_lambda,
                       std::vector<double>& net) {
  const size_t n = value.size();
  net.assign(value.begin(), value.end());
  for (size_t k = 0; k < cross_module.size(); ++k) {
    const size_t m = cross_module[k];
    const double price = m < module_lambda.size() ? module_lambda[m] : 0.0;
    const double* cost = cross_cost.data() + k * n;
    for (size_t j = 0; j < n; ++j) net[j] -= price * cost[j];
  }
}

}  // namespace allot
