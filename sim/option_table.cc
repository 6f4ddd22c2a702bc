// Builds the tables stage by stage (each recall output is shared by its pre-rank and rank
// continuations) and prunes dominated options group by group, which keeps the oracle's bisection
// a tight loop over a few hundred floats per request.
#include "sim/option_table.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace allot::sim {

OptionTable::OptionTable(const World& world, std::span<const Request> requests, size_t max_bytes) {
  const std::span<const Request> one[] = {requests};
  Build(world, one, {}, max_bytes);
}

OptionTable::OptionTable(const World& world, std::span<const std::vector<Request>> samples,
                         std::span<const std::vector<double>> weights, size_t max_bytes) {
  std::vector<std::span<const Request>> spans(samples.begin(), samples.end());
  if (spans.empty()) throw std::invalid_argument("OptionTable: no samples");
  for (const auto& sample : spans) {
    if (sample.size() != spans.front().size())
      throw std::invalid_argument("OptionTable: samples of different lengths");
  }
  if (!weights.empty()) {
    if (weights.size() != spans.size())
      throw std::invalid_argument("OptionTable: one weight vector per sample");
    for (const auto& w : weights) {
      if (w.size() != spans.front().size())
        throw std::invalid_argument("OptionTable: one weight per request and sample");
    }
  }
  Build(world, spans, weights, max_bytes);
}

namespace {

// One stage's results for every sample of a request, and their weighted mean cost.
struct SampledStage {
  std::vector<StageOutput> out;
  double cost = 0.0;

  template <typename Run>
  void Fill(std::span<const double> weight, Run run) {
    out.resize(weight.size());
    cost = 0.0;
    for (size_t k = 0; k < weight.size(); ++k) {
      const StageResult result = run(k);
      out[k] = result.out;
      cost += weight[k] * result.cost;
    }
  }
};

}  // namespace

void OptionTable::CheckProjectedSize(size_t built, size_t total, size_t max_bytes) const {
  constexpr size_t kBytesPerOption =
      sizeof(float) * (1 + kNumStages) + sizeof(uint32_t);  // value, costs, id
  const double per_request =
      static_cast<double>(value_.size()) / static_cast<double>(std::max<size_t>(built, 1));
  const double projected = per_request * static_cast<double>(total) * kBytesPerOption;
  // A growing vector holds its old and its new buffer at once: up to three times the size.
  const double peak = 3.0 * projected;
  if (peak <= static_cast<double>(max_bytes)) return;
  const auto mb = [](double bytes) { return std::to_string(static_cast<long long>(bytes / 1e6)); };
  throw OptionTableTooLarge(
      "hindsight tables: " + std::to_string(static_cast<long long>(per_request)) +
      " options kept per request over the first " + std::to_string(built) + " of " +
      std::to_string(total) + " requests project to " + mb(projected) + " MB (up to " + mb(peak) +
      " MB while growing), over the limit of " + mb(static_cast<double>(max_bytes)) +
      " MB: evaluate fewer requests (--requests) or a coarser action grid (a continuous "
      "queue's granularity)");
}

void OptionTable::Build(const World& world, std::span<const std::span<const Request>> samples,
                        std::span<const std::vector<double>> weights, size_t max_bytes) {
  const ChainLayout& layout = world.layout();
  const ChainModel& model = world.model();
  const std::span<const Request> requests = samples.front();
  const size_t num_samples = samples.size();
  for (int s = 0; s < kNumStages; ++s) sizes_[s] = layout.at_stage(s).space.size();
  combos_ = sizes_[0] * sizes_[1] * sizes_[2];
  fixed_.assign(combos_, OptionTotals());
  offset_.reserve(requests.size() + 1);
  offset_.push_back(0);
  const auto& recall_settings = layout.at_stage(kRecall).settings;
  const auto& prerank_settings = layout.at_stage(kPrerank).settings;
  const auto& rank_settings = layout.at_stage(kRank).settings;
  // The current request's weight of each sample, summing to 1.
  std::vector<double> weight(num_samples, 1.0 / static_cast<double>(num_samples));
  auto mean_revenue = [&](size_t i, const std::vector<StageOutput>& out) {
    double sum = 0.0;
    for (size_t k = 0; k < num_samples; ++k)
      sum += weight[k] * ChainModel::Revenue(samples[k][i], out[k]);
    return sum;
  };
  SampledStage recall, pre, rank, cached;

  // Options of one group share everything but the later stages' choices; groups are pruned as
  // soon as they are complete.
  auto continuations = [&](size_t i, const std::vector<StageOutput>& recall_out, double recall_cost,
                           uint32_t base_id, bool fixed) {
    const size_t group = value_.size();
    for (uint32_t j1 = 0; j1 < sizes_[1]; ++j1) {
      pre.Fill(weight, [&](size_t k) {
        return model.Prerank(samples[k][i], recall_out[k], prerank_settings[j1]);
      });
      const size_t subgroup = value_.size();
      for (uint32_t j2 = 0; j2 < sizes_[2]; ++j2) {
        rank.Fill(weight, [&](size_t k) {
          return model.Rank(samples[k][i], pre.out[k], rank_settings[j2]);
        });
        const double value = mean_revenue(i, rank.out);
        const StageVector cost = {recall_cost, pre.cost, rank.cost};
        const uint32_t id = base_id + static_cast<uint32_t>(j1 * sizes_[2] + j2);
        if (fixed) {
          OptionTotals& t = fixed_[id];
          t.value += value;
          for (int s = 0; s < kNumStages; ++s) t.cost[s] += cost[s];
        }
        Add(static_cast<float>(value), cost, id);
      }
      PruneToHull(subgroup);
    }
    PruneGroup(group);
  };
  // A reused stage's cached output, per sample; false when no sample has anything cached.
  auto fill_cached = [&](size_t i, int stage) {
    bool any = false;
    cached.Fill(weight, [&](size_t k) {
      StageResult result{.out = model.Cached(samples[k][i], stage), .cost = 0.0};
      any = any || result.out.count > 0;
      return result;
    });
    return any;
  };

  for (size_t i = 0; i < requests.size(); ++i) {
    const Request& r = requests[i];
    if (!weights.empty()) {
      double total = 0.0;
      for (size_t k = 0; k < num_samples; ++k) total += weights[k][i];
      if (!(total > 0.0)) throw std::invalid_argument("OptionTable: a request's weights are all 0");
      for (size_t k = 0; k < num_samples; ++k) weight[k] = weights[k][i] / total;
    }
    for (uint32_t j0 = 0; j0 < sizes_[0]; ++j0) {
      recall.Fill(weight,
                  [&](size_t k) { return model.Recall(samples[k][i], recall_settings[j0]); });
      continuations(i, recall.out, recall.cost, static_cast<uint32_t>(j0 * sizes_[1] * sizes_[2]),
                    true);
    }
    if (r.cache.present) {
      const uint32_t reuse_base = static_cast<uint32_t>(combos_);
      if (layout.reusable(kRecall) && fill_cached(i, kRecall))
        continuations(i, cached.out, 0.0, reuse_base * 1, false);
      if (layout.reusable(kPrerank) && fill_cached(i, kPrerank)) {
        const size_t group = value_.size();
        for (uint32_t j2 = 0; j2 < sizes_[2]; ++j2) {
          rank.Fill(weight, [&](size_t k) {
            return model.Rank(samples[k][i], cached.out[k], rank_settings[j2]);
          });
          Add(static_cast<float>(mean_revenue(i, rank.out)), {0.0, 0.0, rank.cost},
              reuse_base * 2 + j2);
        }
        PruneToHull(group);
      }
      if (layout.reusable(kRank) && fill_cached(i, kRank))
        Add(static_cast<float>(mean_revenue(i, cached.out)), {0.0, 0.0, 0.0}, reuse_base * 3);
    }
    offset_.push_back(static_cast<uint32_t>(value_.size()));
    // The first 1% of the requests (at least 100) tell how many options a request keeps.
    if (max_bytes > 0 &&
        i + 1 == std::min(requests.size(), std::max<size_t>(100, requests.size() / 100)))
      CheckProjectedSize(i + 1, requests.size(), max_bytes);
  }
}

void OptionTable::Add(float value, const StageVector& cost, uint32_t id) {
  value_.push_back(value);
  for (int s = 0; s < kNumStages; ++s) cost_[s].push_back(static_cast<float>(cost[s]));
  id_.push_back(id);
}

void OptionTable::Keep(const std::vector<size_t>& keep, size_t begin) {
  size_t out = begin;
  for (size_t a : keep) {
    value_[out] = value_[a];
    for (int s = 0; s < kNumStages; ++s) cost_[s][out] = cost_[s][a];
    id_[out] = id_[a];
    ++out;
  }
  value_.resize(out);
  for (int s = 0; s < kNumStages; ++s) cost_[s].resize(out);
  id_.resize(out);
}

void OptionTable::PruneToHull(size_t begin) {
  // Options that differ only in the rank stage compete on lambda_rank alone: only the upper
  // concave hull of (rank cost, value), left of its most valuable point, can ever win.
  const size_t end = value_.size();
  std::vector<size_t> order(end - begin);
  for (size_t i = 0; i < order.size(); ++i) order[i] = begin + i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (cost_[2][a] != cost_[2][b]) return cost_[2][a] < cost_[2][b];
    return value_[a] > value_[b];
  });
  std::vector<size_t> hull;
  for (size_t a : order) {
    if (!hull.empty() && cost_[2][hull.back()] == cost_[2][a]) continue;  // same cost, less value
    if (!hull.empty() && value_[a] <= value_[hull.back()]) continue;  // costs more, worth no more
    while (hull.size() >= 2) {
      const size_t p = hull[hull.size() - 2];
      const size_t q = hull.back();
      // q is below the segment p-a: some mix of p and a beats it at every lambda.
      const double cross = (static_cast<double>(value_[q]) - value_[p]) *
                               (static_cast<double>(cost_[2][a]) - cost_[2][p]) -
                           (static_cast<double>(value_[a]) - value_[p]) *
                               (static_cast<double>(cost_[2][q]) - cost_[2][p]);
      if (cross > 0) break;
      hull.pop_back();
    }
    hull.push_back(a);
  }
  std::sort(hull.begin(), hull.end());  // keep table order (ties resolve to the lower joint)
  Keep(hull, begin);
}

void OptionTable::PruneGroup(size_t begin) {
  // Within a group the recall cost is shared: option a is dead if some b is at least as valuable
  // and no more expensive on pre-rank and rank (strictly better somewhere, or equal and earlier).
  const size_t end = value_.size();
  std::vector<size_t> keep;
  for (size_t a = begin; a < end; ++a) {
    bool dominated = false;
    for (size_t b = begin; b < end && !dominated; ++b) {
      if (b == a) continue;
      const bool no_worse =
          value_[b] >= value_[a] && cost_[1][b] <= cost_[1][a] && cost_[2][b] <= cost_[2][a];
      if (!no_worse) continue;
      const bool better =
          value_[b] > value_[a] || cost_[1][b] < cost_[1][a] || cost_[2][b] < cost_[2][a];
      dominated = better || b < a;
    }
    if (!dominated) keep.push_back(a);
  }
  Keep(keep, begin);
}

OptionTotals OptionTable::Best(const StageVector& lambda, std::vector<uint32_t>* chosen,
                               std::vector<uint32_t>* chosen_without_reuse,
                               RequestRange range) const {
  const float l0 = static_cast<float>(lambda[0]);
  const float l1 = static_cast<float>(lambda[1]);
  const float l2 = static_cast<float>(lambda[2]);
  const float* v = value_.data();
  const float* c0 = cost_[0].data();
  const float* c1 = cost_[1].data();
  const float* c2 = cost_[2].data();
  OptionTotals totals;
  const size_t n = num_requests();
  if (chosen) chosen->resize(n);
  if (chosen_without_reuse) chosen_without_reuse->resize(n);
  for (size_t i = range.begin, end = std::min(range.end, n); i < end; ++i) {
    uint32_t best = offset_[i];
    uint32_t best_plain = offset_[i];
    float best_score = -std::numeric_limits<float>::infinity();
    float best_plain_score = best_score;
    for (uint32_t o = offset_[i]; o < offset_[i + 1]; ++o) {
      const float score = v[o] - l0 * c0[o] - l1 * c1[o] - l2 * c2[o];
      if (score > best_score) {
        best_score = score;
        best = o;
      }
      if (chosen_without_reuse && id_[o] < combos_ && score > best_plain_score) {
        best_plain_score = score;
        best_plain = o;
      }
    }
    totals.value += v[best];
    totals.cost[0] += c0[best];
    totals.cost[1] += c1[best];
    totals.cost[2] += c2[best];
    if (chosen) (*chosen)[i] = best;
    if (chosen_without_reuse) (*chosen_without_reuse)[i] = best_plain;
  }
  return totals;
}

OptionTotals OptionTable::BestSampled(const StageVector& lambda, size_t stride,
                                      RequestRange range) const {
  // The solver's inner loop: no bookkeeping beyond the running best.
  const float l0 = static_cast<float>(lambda[0]);
  const float l1 = static_cast<float>(lambda[1]);
  const float l2 = static_cast<float>(lambda[2]);
  const float* v = value_.data();
  const float* c0 = cost_[0].data();
  const float* c1 = cost_[1].data();
  const float* c2 = cost_[2].data();
  OptionTotals totals;
  const size_t last = std::min(range.end, num_requests());
  for (size_t i = range.begin; i < last; i += stride) {
    uint32_t best = offset_[i];
    float best_score = -std::numeric_limits<float>::infinity();
    const uint32_t end = offset_[i + 1];
    for (uint32_t o = offset_[i]; o < end; ++o) {
      const float score = v[o] - l0 * c0[o] - l1 * c1[o] - l2 * c2[o];
      best = score > best_score ? o : best;
      best_score = score > best_score ? score : best_score;
    }
    totals.value += v[best];
    totals.cost[0] += c0[best];
    totals.cost[1] += c1[best];
    totals.cost[2] += c2[best];
  }
  return totals;
}

DecodedOption OptionTable::DecodeCombo(size_t combo) const {
  DecodedOption d;
  d.joint[2] = static_cast<uint32_t>(combo % sizes_[2]);
  d.joint[1] = static_cast<uint32_t>((combo / sizes_[2]) % sizes_[1]);
  d.joint[0] = static_cast<uint32_t>(combo / (sizes_[1] * sizes_[2]));
  return d;
}

DecodedOption OptionTable::Decode(uint32_t option) const {
  const uint32_t id = id_[option];
  DecodedOption d = DecodeCombo(id % combos_);
  d.reuse = static_cast<int>(id / combos_);
  return d;
}

}  // namespace allot::sim
