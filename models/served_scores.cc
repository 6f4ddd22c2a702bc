// One place for the output transforms, so the fast path and the reference cannot drift apart.
#include "models/served_scores.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "models/kernels.h"
#include "policy/analytic_scorer.h"

namespace allot::models {
namespace {

size_t ModuleIndex(const AllotConfig& config, const std::string& name) {
  for (size_t m = 0; m < config.modules.size(); ++m) {
    if (config.modules[m].name == name) return m;
  }
  return config.modules.size();
}

// exp clamped so that a wild output cannot produce inf (a NaN stays NaN, for the finite check).
double SafeExp(double x) { return std::exp(std::clamp(x, -30.0, 30.0)); }

}  // namespace

AgentServing::AgentServing(const AllotConfig& config, size_t agent_index, double a, double b,
                           const ServedCostMap& costs)
    : agent(agent_index),
      calib_a(a),
      calib_b(b),
      space(config.agents[agent_index]),
      order(config.agents[agent_index], space) {
  const std::string& own = config.agents[agent_index].module;
  for (size_t later = agent_index; later < config.agents.size(); ++later) {
    const std::string& module = config.agents[later].module;
    if (module == own) {
      output_slot.push_back(-1);
      continue;
    }
    const size_t m = ModuleIndex(config, module);
    const auto found = std::find(cross_module.begin(), cross_module.end(), m);
    output_slot.push_back(static_cast<int>(found - cross_module.begin()));
    if (found == cross_module.end()) cross_module.push_back(m);
  }
  // Only when the map's row is the whole own cost: a later agent of the same module adds its own
  // output to it, and the sum is put in order per call.
  const bool map_row_alone =
      OwnCostFromMap(costs) &&
      std::all_of(output_slot.begin() + 1, output_slot.end(), [](int slot) { return slot >= 0; });
  if (map_row_alone) {
    for (const std::vector<double>& row : costs.map->cost[agent]) {
      monotone_map_rows.push_back(row);
      order.Enforce(monotone_map_rows.back());
    }
  }
}

void FinishScores(const AgentServing& s, const ValueModelConfig& value_model,
                  const ServedCostMap& costs, double log_value, const float* q,
                  const float* log_cost, size_t outputs, AgentScores* out) {
  const size_t n = s.space.size();
  out->user_value = SafeExp(log_value);
  out->value_bucket = AnalyticScorer::Bucket(value_model, out->user_value);
  out->excluded.clear();
  // The per-action values and costs are exponentiated in float, a whole array at a time: the
  // networks' outputs are float, and one scalar exp per action was a fifth of a decision.
  thread_local std::vector<float> exps;
  exps.resize(n);
  const double value_base = s.calib_a + log_value;
  for (size_t j = 0; j < n; ++j) exps[j] = static_cast<float>(value_base + s.calib_b * q[j]);
  kernels::ExpClamped(exps.data(), n);
  out->value.assign(exps.begin(), exps.end());

  const bool own_is_map_row = !s.monotone_map_rows.empty();
  out->cost.assign(n, 0.0);
  out->cross_module = s.cross_module;
  out->cross_cost.assign(s.cross_module.size() * n, 0.0);
  for (size_t k = 0; k < outputs && k < s.output_slot.size(); ++k) {
    const int slot = s.output_slot[k];
    if (slot < 0 && own_is_map_row) {
      out->cost = s.monotone_map_rows[static_cast<size_t>(out->value_bucket)];
      continue;
    }
    if (slot < 0 && k == 0 && s.OwnCostFromMap(costs)) {
      const std::span<const double> row = costs.map->Row(s.agent, out->value_bucket);
      for (size_t j = 0; j < n; ++j) out->cost[j] += row[j];
      continue;
    }
    exps.assign(log_cost + k * n, log_cost + (k + 1) * n);
    kernels::ExpClamped(exps.data(), n);
    double* sum =
        slot < 0 ? out->cost.data() : out->cross_cost.data() + static_cast<size_t>(slot) * n;
    for (size_t j = 0; j < n; ++j) sum[j] += exps[j];
  }
  if (!own_is_map_row) s.order.Enforce(out->cost);
  s.order.Enforce(out->cross_cost);  // one array per later module
}

bool ReuseInputRow(std::span<const float> features, int value_bucket, size_t obs_dim,
                   const CachedStage& cache, std::vector<float>* row) {
  constexpr int kStages = 3;  // as kReuseStages (bundle_models.h, which needs LibTorch)
  if (cache.stage < 1 || cache.stage > kStages) return false;
  row->assign(features.begin(), features.end());
  row->resize(obs_dim, 0.0f);
  (*row)[features.size() + static_cast<size_t>(value_bucket)] = 1.0f;
  for (int s = 1; s <= kStages; ++s) row->push_back(s == cache.stage ? 1.0f : 0.0f);
  row->push_back(static_cast<float>(std::log1p(std::max(0.0, cache.age_s))));
  row->push_back(static_cast<float>(std::max(0.0, cache.age_s) / 100));
  row->push_back(static_cast<float>(std::log1p(static_cast<double>(cache.size))));
  return true;
}

double RetainedShare(double raw, bool capped) {
  if (!capped) return std::exp(std::min(raw, kMaxLogReuseShare));
  // softplus computed stably: max(x, 0) + log1p(e^-|x|).
  return std::exp(-(std::max(raw, 0.0) + std::log1p(std::exp(-std::abs(raw)))));
}

ActorServing::ActorServing(const AllotConfig& config, std::vector<float> log_lambda_mid,
                           std::vector<float> log_lambda_half)
    : mid(std::move(log_lambda_mid)), half(std::move(log_lambda_half)) {
  for (const AgentConfig& agent : config.agents)
    module.push_back(ModuleIndex(config, agent.module));
}

void ActorServing::WritePrices(std::span<const double> module_lambda, float* out) const {
  for (size_t k = 0; k < module.size(); ++k) {
    const double lambda = module[k] < module_lambda.size() ? module_lambda[module[k]] : 0.0;
    // A price of 0 (or a NaN) reads as the cheapest end of the range.
    const double log_lambda = std::log(std::max(lambda, 1e-30));
    const double position = (log_lambda - mid[k]) / std::max(half[k], 1e-6f);
    out[k] = static_cast<float>(std::clamp(std::isnan(position) ? -1.0 : position, -1.0, 1.0));
  }
}

DecisionRanges ContinuousDecisions(const AgentConfig& agent) {
  DecisionRanges out;
  for (const DecisionConfig& d : agent.decisions) out.push_back(d.range);
  return out;
}

size_t ActorOutputs(const ActionSpace& space, const DecisionRanges& continuous) {
  size_t n = 0;
  for (size_t d = 0; d < space.num_decisions(); ++d) n += continuous[d] ? 1 : space.NumChoices(d);
  return n;
}

size_t ActorJoint(const ActionSpace& space, const DecisionRanges& continuous, const float* raw) {
  thread_local std::vector<uint32_t> choices;  // keeps its capacity: no allocation per request
  choices.resize(space.num_decisions());
  for (size_t d = 0; d < choices.size(); ++d) {
    const size_t n = space.NumChoices(d);
    size_t digit = 0;
    if (const std::optional<QueueRangeConfig>& range = continuous[d]) {
      // A NaN output gives a NaN length, which NearestIndex snaps to the shortest.
      const double u = 1.0 / (1.0 + std::exp(-static_cast<double>(*raw)));
      digit = static_cast<size_t>(range->NearestIndex(range->min + u * (range->max - range->min)));
      ++raw;
    } else {
      for (size_t c = 1; c < n; ++c)
        if (raw[c] > raw[digit]) digit = c;  // NaN never wins: the first choice stays
      raw += n;
    }
    choices[d] = space.ChoiceValue(d, digit);
  }
  return space.IndexOf(choices);
}

}  // namespace allot::models
