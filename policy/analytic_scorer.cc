// Precomputes per-joint-action gain and cost tables so scoring is a dot product and a table read.
#include "policy/analytic_scorer.h"

#include <algorithm>
#include <cmath>

namespace allot {

AnalyticScorer::AnalyticScorer(const AllotConfig& config) : value_model_(config.value_model) {
  const int buckets = value_model_.num_buckets();
  for (const AgentConfig& agent : config.agents) {
    AgentTables t;
    for (const std::string& f : agent.features) {
      auto it = value_model_.weights.find(f);
      t.weights.push_back(it == value_model_.weights.end() ? 0.0 : it->second);
    }
    const ActionSpace space(agent);
    for (const DecisionConfig& decision : agent.decisions) {
      for (const OptionConfig& o : decision.options) {
        for (const auto& [module, cost] : o.module_cost_ms) {
          const size_t m = static_cast<size_t>(config.ModuleIndex(module));
          if (std::find(t.cross_module.begin(), t.cross_module.end(), m) == t.cross_module.end())
            t.cross_module.push_back(m);
        }
      }
    }
    t.gain.assign(space.size() * buckets, 0.0);
    t.cost.assign(space.size(), 0.0);
    t.cross_cost.assign(t.cross_module.size() * space.size(), 0.0);
    for (size_t j = 0; j < space.size(); ++j) {
      double multiplier = 1.0;
      for (size_t d = 0; d < agent.decisions.size(); ++d) {
        const DecisionConfig& decision = agent.decisions[d];
        const uint32_t choice = space.Choice(j, d);
        auto add = [&](const OptionConfig& o) {
          for (int b = 0; b < buckets; ++b) t.gain[j * buckets + b] += o.gain[b];
          t.cost[j] += o.cost_ms;
          multiplier *= o.cost_multiplier;
          for (size_t k = 0; k < t.cross_module.size(); ++k) {
            const auto it = o.module_cost_ms.find(config.modules[t.cross_module[k]].name);
            if (it != o.module_cost_ms.end()) t.cross_cost[k * space.size() + j] += it->second;
          }
        };
        ForEachSelected(decision.kind, choice, static_cast<uint32_t>(decision.options.size()),
                        [&](uint32_t i) { add(decision.options[i]); });
      }
      t.cost[j] *= multiplier;
    }
    agents_.push_back(std::move(t));
  }
}

int AnalyticScorer::Bucket(const ValueModelConfig& model, double user_value) {
  const auto& bounds = model.bucket_bounds;
  return static_cast<int>(std::upper_bound(bounds.begin(), bounds.end(), user_value) -
                          bounds.begin());
}

bool AnalyticScorer::Score(size_t agent, std::span<const float> features, AgentScores* out) const {
  if (agent >= agents_.size()) return false;
  const AgentTables& t = agents_[agent];
  if (features.size() != t.weights.size()) return false;
  double logit = value_model_.bias;
  for (size_t i = 0; i < features.size(); ++i) logit += t.weights[i] * features[i];
  // Clamp so a wild feature cannot overflow exp(); e^30 is far beyond any real request value.
  out->user_value = std::exp(std::clamp(logit, -30.0, 30.0));
  out->value_bucket = Bucket(value_model_, out->user_value);
  out->excluded.clear();
  const size_t n = t.cost.size();
  const int buckets = value_model_.num_buckets();
  out->value.resize(n);
  out->cost.assign(t.cost.begin(), t.cost.end());
  out->cross_module.assign(t.cross_module.begin(), t.cross_module.end());
  out->cross_cost.assign(t.cross_cost.begin(), t.cross_cost.end());
  for (size_t j = 0; j < n; ++j)
    out->value[j] = out->user_value * t.gain[j * buckets + out->value_bucket];
  return true;
}

}  // namespace allot
