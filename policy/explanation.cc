// Explaining costs a second scoring of the request; it runs only for callers that ask, so the
// decision path itself stays as it is.
#include "policy/explanation.h"

#include <algorithm>
#include <exception>

#include "policy/feature_guard.h"

namespace allot {

std::optional<DecisionExplanation> ExplainDecision(const PolicySnapshot& policy,
                                                   const LambdaTable& lambdas, size_t agent,
                                                   std::span<const float> request_features,
                                                   size_t chosen_joint, bool chosen_by_actor) {
  std::vector<float> clipped;
  const std::span<const float> features =
      ClipFeatures(policy.feature_guards[agent], request_features, clipped);
  AgentScores scores;
  try {
    if (!policy.scorer->Score(agent, features, &scores)) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (scores.value.size() != policy.spaces[agent].size() ||
      scores.cost.size() != scores.value.size() ||
      scores.cross_cost.size() != scores.cross_module.size() * scores.value.size())
    return std::nullopt;

  const AllotConfig& config = *policy.config;
  const size_t own = policy.agent_module_index[agent];
  const ModulePrice* price = lambdas.Price(policy.module_layout, own, policy.agent_module[agent]);
  const auto module_price = [&](size_t m) {
    return lambdas.Lambda(policy.module_layout, m, config.modules[m].name);
  };
  DecisionExplanation out;
  out.user_value = scores.user_value;
  out.value_bucket = scores.value_bucket;
  out.inference = policy.scorer->inference();
  out.model = policy.scorer->version();
  out.max_cost_ms = CostCap(config.agents[agent], price);
  out.chosen_by = chosen_by_actor ? "actor" : "rule";
  const size_t n = scores.value.size();
  for (size_t j = 0; j < n; ++j) {
    OptionExplanation o;
    o.joint = j;
    o.label = JointActionLabel(config.agents[agent], policy.spaces[agent], j);
    o.value = scores.value[j];
    o.charges.push_back({own, scores.cost[j], price ? price->lambda : 0.0});
    for (size_t k = 0; k < scores.cross_module.size(); ++k) {
      const size_t m = scores.cross_module[k];
      o.charges.push_back({m, scores.cross_cost[k * n + j], module_price(m)});
    }
    o.priced = o.value;
    for (const ModuleCharge& c : o.charges) o.priced -= c.price * c.cost_ms;
    o.over_cap = out.max_cost_ms > 0 && scores.cost[j] > out.max_cost_ms;
    o.unlogged = scores.Excluded(j);
    o.chosen = j == chosen_joint;
    out.options.push_back(std::move(o));
  }
  std::stable_sort(
      out.options.begin(), out.options.end(),
      [](const OptionExplanation& a, const OptionExplanation& b) { return a.priced > b.priced; });
  return out;
}

}  // namespace allot
