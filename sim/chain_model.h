// The simulator's ground truth: what each stage produces, what it costs, and the revenue of the
// whole chain. Pure functions of a Request and the settings applied to it.
//
// recall   mass R = 1 - prod_c (1 - coverage_c) over the selected channels (overlap: diminishing
//          returns); count N = sum_c yield_c * dedup^(k-1); an expansion switch multiplies N and
//          adds coverage that grows with the user's value.
//          cost = sum_c cost_c * (0.5 + 0.5 yield_c / nominal) + switch costs.
// prerank  keeps k = min(queue, N) of recall's merge order, whose value decays with depth s:
//          mass *= (1 - e^(-k/s)) / (1 - e^(-N/s)) -- a long queue is wasted when recall was thin.
//          cost = fixed + per_candidate * k.
// rank     the same truncation over pre-rank's order, then precision, times (1 + g V/(V + h)) per
//          heavy model (high-value users gain more); cost = fixed + per_candidate * k * multiplier.
// revenue  expected = V * mass_rank (times the share of requests that do not time out);
//          realised  = expected * lognormal noise. Costs carry per-request noise (mean 1).
#pragma once

#include <vector>

#include "sim/chain_layout.h"
#include "sim/request.h"
#include "sim/world_config.h"

namespace allot::sim {

struct StageResult {
  StageOutput out;
  double cost = 0.0;  // CPU core-ms of this stage for this request
};

class ChainModel {
 public:
  explicit ChainModel(const WorldConfig& world);

  StageResult Recall(const Request& r, const StageSetting& s) const;
  StageResult Prerank(const Request& r, const StageOutput& in, const StageSetting& s) const;
  StageResult Rank(const Request& r, const StageOutput& in, const StageSetting& s) const;
  // One of the three above by stage number (kRecall ignores `in`).
  StageResult Run(int stage, const Request& r, const StageOutput& in, const StageSetting& s) const;

  // A cached stage output as usable now: decayed by age and drift, exposed items removed.
  // count == 0 means nothing is left to reuse.
  StageOutput Cached(const Request& r, int stage) const;
  // Outputs of the reference chain for this request (what it leaves in the cache).
  std::array<StageOutput, kNumStages> Reference(const Request& r,
                                                const ChainSettings& reference) const;

  static double Revenue(const Request& r, const StageOutput& ranked) {
    return r.value * ranked.mass;
  }

 private:
  const WorldConfig& world_;
  std::vector<bool> expansion_;  // per world switch: recall_expansion (else heavy_rank)
  std::array<double, kNumStages> half_life_s_{};
  std::array<double, kNumStages> drift_sensitivity_{};
  std::array<double, kNumStages> exposure_scale_{};
};

// Share of the value in the first k of n candidates when value density decays as e^(-x/scale).
double TruncationShare(double k, double n, double scale);

}  // namespace allot::sim
