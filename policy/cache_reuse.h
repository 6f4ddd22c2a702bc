// ComRecycle's per-request choice: reuse a cached stage output or recompute, priced by lambda.
#pragma once

#include <cstdint>
#include <span>

#include "policy/config.h"

namespace allot {

// Stage numbering matches allot.v1.Stage / CacheReuse: 1 recall, 2 prerank, 3 rank; 0 = none.
int StageNumber(const std::string& stage_name);

struct CachedStage {
  int stage = 0;
  bool present = false;
  double age_s = 0.0;
  uint32_t size = 0;
};

struct CacheReuseChoice {
  int reuse = 0;                // 0 none, else the stage whose cached output is reused
  double value_retained = 1.0;  // the request's value with the reuse / computed afresh (may be > 1)
  double cost_saved_ms = 0.0;   // compute not spent (recomputation of that stage and earlier)
};

// What a learned bundle knows about reuse; empty spans fall back to the config.
struct ReuseEstimates {
  std::span<const double> retained;    // per entry of `caches`: share of the fresh value kept
  std::span<const double> stage_cost;  // per config stage: core-ms its recomputation would cost
};

// v is the value the request makes when computed afresh: the chosen action's predicted value.
// Reusing stage s keeps v * retained (the bundle's ComRecycle uplift model, as a share of v that
// exceeds 1 when the cache holds more than the chosen action would compute; else the half-life
// rule 0.5^(age / half_life_s)) and saves the compute of s and every earlier stage (the bundle's
// predicted cost of the request's chosen actions, else stage_cost_ms). Over the usable caches
// (present, non-empty, not older than max_age_s):
// - lambda mode (budget_mu < 0): maximise value - sum_m lambda_m * cost_m, where stage_lambda[i]
//   is the lambda of the module of config.stages[i];
// - budget mode (budget_mu >= 0, ComRecycle): maximise saved_ms - budget_mu * value lost.
CacheReuseChoice ChooseCacheReuse(const CacheReuseConfig& config, double fresh_value,
                                  std::span<const double> stage_lambda,
                                  std::span<const CachedStage> caches, double budget_mu = -1.0,
                                  const ReuseEstimates& estimates = {});

}  // namespace allot
