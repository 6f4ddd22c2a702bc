// Scores every usable cached stage against recomputation; see cache_reuse.h for the rule.
#include "policy/cache_reuse.h"

#include <algorithm>
#include <cmath>

namespace allot {

int StageNumber(const std::string& stage_name) {
  if (stage_name == "recall") return 1;
  if (stage_name == "prerank") return 2;
  if (stage_name == "rank") return 3;
  return 0;
}

CacheReuseChoice ChooseCacheReuse(const CacheReuseConfig& config, double fresh_value,
                                  std::span<const double> stage_lambda,
                                  std::span<const CachedStage> caches, double budget_mu,
                                  const ReuseEstimates& estimates) {
  CacheReuseChoice best;
  if (!config.enabled || caches.empty()) return best;
  double best_gain = 0.0;  // relative to recomputing everything (gain 0)
  double saved_priced = 0.0;
  double saved_ms = 0.0;
  const bool budget_mode = budget_mu >= 0;
  for (size_t i = 0; i < config.stages.size() && (budget_mode || i < stage_lambda.size()); ++i) {
    const CacheStageConfig& stage = config.stages[i];
    const double stage_ms =
        i < estimates.stage_cost.size() ? estimates.stage_cost[i] : stage.stage_cost_ms;
    saved_priced += budget_mode ? stage_ms : stage_lambda[i] * stage_ms;
    saved_ms += stage_ms;
    const int number = StageNumber(stage.stage);
    for (size_t c = 0; c < caches.size(); ++c) {
      const CachedStage& cache = caches[c];
      if (cache.stage != number || !cache.present || cache.size == 0) continue;
      if (!(cache.age_s >= 0 && cache.age_s <= config.max_age_s)) continue;
      const double retained = c < estimates.retained.size()
                                  ? std::max(estimates.retained[c], 0.0)
                                  : std::exp2(-cache.age_s / stage.half_life_s);
      const double lost = fresh_value * (1.0 - retained);
      const double gain = budget_mode ? saved_priced - budget_mu * lost : saved_priced - lost;
      if (gain > best_gain) {
        best_gain = gain;
        best = {number, retained, saved_ms};
      }
    }
  }
  return best;
}

}  // namespace allot
