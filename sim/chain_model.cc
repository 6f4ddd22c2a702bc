// Ground-truth stage math; see chain_model.h for the formulas and why they have this shape.
#include "sim/chain_model.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace allot::sim {

double TruncationShare(double k, double n, double scale) {
  if (n <= 0.0 || k <= 0.0) return 0.0;
  if (k >= n) return 1.0;
  return -std::expm1(-k / scale) / -std::expm1(-n / scale);
}

ChainModel::ChainModel(const WorldConfig& world) : world_(world) {
  for (const SwitchConfig& s : world.switches) expansion_.push_back(s.effect == "recall_expansion");
  for (int s = 0; s < kNumStages; ++s) {
    const CacheStageWorld* c = world.FindCacheStage(StageName(s));
    half_life_s_[s] = c ? c->half_life_s : 1.0;
    drift_sensitivity_[s] = c ? c->drift_sensitivity : 1.0;
    exposure_scale_[s] = c ? c->exposure_scale : 1.0;
  }
}

StageResult ChainModel::Recall(const Request& r, const StageSetting& s) const {
  const RecallConfig& rc = world_.recall;
  double miss = 1.0;
  double count = 0.0;
  double cost = 0.0;
  for (uint32_t bits = s.channels; bits; bits &= bits - 1) {
    const int c = std::countr_zero(bits);
    miss *= 1.0 - r.coverage[c];
    count += r.yield[c];
    cost += rc.channels[c].cost_ms * (0.5 + 0.5 * r.yield_ratio[c]);
  }
  const int k = std::popcount(s.channels);
  if (k > 1) count *= std::pow(rc.dedup, k - 1);
  for (uint32_t bits = s.switches; bits; bits &= bits - 1) {
    const int i = std::countr_zero(bits);
    if (!expansion_[i]) continue;
    const SwitchConfig& sw = world_.switches[i];
    count *= sw.yield_multiplier;
    const double extra =
        sw.coverage + sw.coverage_value * std::max(0.0, std::tanh(std::log(r.user_value)));
    miss *= 1.0 - std::min(extra, rc.max_coverage);
    cost += sw.cost_ms;
  }
  return {{1.0 - miss, count}, cost * r.cost_noise[kRecall]};
}

StageResult ChainModel::Prerank(const Request& r, const StageOutput& in,
                                const StageSetting& s) const {
  const StageConfig& pc = world_.prerank;
  const double k = s.queue_len > 0 ? std::min<double>(s.queue_len, in.count) : in.count;
  const double share = TruncationShare(k, in.count, pc.scale * r.depth[kPrerank]);
  const double cost = (pc.fixed_cost_ms + pc.cost_per_candidate_ms * k) * r.cost_noise[kPrerank];
  return {{in.mass * share, k}, cost};
}

StageResult ChainModel::Rank(const Request& r, const StageOutput& in, const StageSetting& s) const {
  const StageConfig& kc = world_.rank;
  const double k = s.queue_len > 0 ? std::min<double>(s.queue_len, in.count) : in.count;
  double mass = in.mass * TruncationShare(k, in.count, kc.scale * r.depth[kRank]) * kc.precision;
  double per_candidate = kc.cost_per_candidate_ms;
  for (uint32_t bits = s.switches; bits; bits &= bits - 1) {
    const int i = std::countr_zero(bits);
    if (expansion_[i]) continue;
    const SwitchConfig& sw = world_.switches[i];
    mass *= 1.0 + sw.gain * r.value / (r.value + sw.gain_half_value);
    per_candidate *= sw.cost_multiplier;
  }
  return {{mass, k}, (kc.fixed_cost_ms + per_candidate * k) * r.cost_noise[kRank]};
}

StageResult ChainModel::Run(int stage, const Request& r, const StageOutput& in,
                            const StageSetting& s) const {
  switch (stage) {
    case kRecall:
      return Recall(r, s);
    case kPrerank:
      return Prerank(r, in, s);
    default:
      return Rank(r, in, s);
  }
}

StageOutput ChainModel::Cached(const Request& r, int stage) const {
  const CacheContext& c = r.cache;
  if (!c.present) return {};
  const StageOutput& stored = c.stored[stage];
  const double count = std::max(0.0, stored.count - c.exposed);
  if (count <= 0.0) return {};
  // Old outputs and drifted interests are worth less; the previous request showed the best items.
  const double retained = std::exp2(-c.age_s / half_life_s_[stage]) *
                          std::max(0.0, 1.0 - drift_sensitivity_[stage] * r.drift) *
                          std::exp(-c.exposed / exposure_scale_[stage]);
  return {stored.mass * retained, count};
}

std::array<StageOutput, kNumStages> ChainModel::Reference(const Request& r,
                                                          const ChainSettings& reference) const {
  const StageResult recall = Recall(r, reference[kRecall]);
  const StageResult prerank = Prerank(r, recall.out, reference[kPrerank]);
  const StageResult rank = Rank(r, prerank.out, reference[kRank]);
  return {recall.out, prerank.out, rank.out};
}

}  // namespace allot::sim
