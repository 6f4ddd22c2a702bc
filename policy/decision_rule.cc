// Linear scan: agents have at most a few thousand joint actions, so this is a few microseconds.
#include "policy/decision_rule.h"

#include <exception>
#include <limits>

#include "policy/score_scans.h"

namespace allot {

namespace {

// The first joint action of the highest net - lambda * cost, or n if none is above -inf (every
// score NaN). Without a cost cap this is the whole rule, and it is the common call: the maximum
// is found in vectors (score_scans.h), then the first action that reaches it, each score computed
// by the same expression in both passes.
size_t FirstBest(const double* net, const double* cost, size_t n, double lambda) {
  const double best = score_scans::MaxNetScore(net, cost, n, lambda);
  if (best == -std::numeric_limits<double>::infinity()) return n;
  for (size_t j = 0; j < n; ++j) {
    if (net[j] - lambda * cost[j] == best) return j;
  }
  return n;
}

// The first joint action the rule may choose (n when the scores exclude every one: a broken mask,
// which is then ignored rather than leaving no choice).
size_t FirstAllowed(const AgentScores& scores, size_t n) {
  size_t j = 0;
  while (j < n && scores.Excluded(j)) ++j;
  return j;
}

ChosenAction Choose(const std::vector<double>& net, const AgentScores& scores, double lambda,
                    double max_cost) {
  const size_t n = net.size();
  const size_t first = FirstAllowed(scores, n);
  const bool masked = !scores.excluded.empty() && first < n;
  if (max_cost <= 0 && !masked) {
    const size_t best = FirstBest(net.data(), scores.cost.data(), n, lambda);
    if (best < n) {
      ChosenAction out;
      out.joint = best;
      out.value = scores.value[best];
      out.cost = scores.cost[best];
      return out;
    }
    // No score above -inf: the scan below picks the cheapest action, as it always has.
  }
  const double* cost = scores.cost.data();
  const size_t start = masked ? first : 0;
  size_t best = n;
  size_t best_uncapped = start;
  size_t cheapest = start;
  double best_score = -std::numeric_limits<double>::infinity();
  double best_uncapped_score = best_score;
  // The cheapest cost so far is carried in a register: comparing with cost[cheapest] made every
  // step wait for a load whose address the previous step chose (a third of a recall decision's
  // scan time).
  double cheapest_cost = start < n ? cost[start] : 0.0;
  for (size_t j = start; j < n; ++j) {
    if (masked && scores.Excluded(j)) continue;
    const double score = net[j] - lambda * cost[j];
    if (score > best_uncapped_score) {
      best_uncapped_score = score;
      best_uncapped = j;
    }
    if (cost[j] < cheapest_cost) {
      cheapest_cost = cost[j];
      cheapest = j;
    }
    if (max_cost > 0 && cost[j] > max_cost) continue;
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
  if (proposed && joint < n && !scores.Excluded(joint) &&
      (max_cost <= 0 || scores.cost[joint] <= max_cost)) {
    ChosenAction out;
    out.joint = joint;
    out.value = scores.value[joint];
    out.cost = scores.cost[joint];
    out.proposed = true;
    return out;
  }
  // No actor, or its proposal breaks the cap or was never logged: the rule decides.
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
