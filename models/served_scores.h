// What both serving paths of a bundle (the fast loops and the LibTorch reference) do with the raw
// network outputs of one request: revenue-scale values, non-negative monotone costs per module.
// No LibTorch in this header.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "models/cost_map.h"
#include "policy/action_space.h"
#include "policy/config.h"
#include "policy/cost_order.h"
#include "policy/scorer.h"

namespace allot::models {

// Fixed at load for one agent.
struct AgentServing {
  // costs: the bundle's served cost map, whose rows for this agent are made monotone here once
  // when it serves the agent's own cost.
  AgentServing(const AllotConfig& config, size_t agent, double calib_a, double calib_b,
               const ServedCostMap& costs);

  size_t agent = 0;
  double calib_a = 0.0, calib_b = 1.0;
  ActionSpace space;
  CostOrder order;
  // Cost output k of the agent's cost network is the module of agent `agent + k`: -1 when that
  // is the agent's own module, else the slot in cross_module.
  std::vector<int> output_slot;
  std::vector<size_t> cross_module;  // config module indices
  // Per value bucket, when the cost map's row is the whole own cost (no later agent of the same
  // module adds to it): the row in the cost order (as Enforce leaves it), so that a call copies
  // it and needs no Enforce. Empty otherwise.
  std::vector<std::vector<double>> monotone_map_rows;

  // Whether `costs` serves this agent's own-module cost in place of cost output 0, which is then
  // never read.
  bool OwnCostFromMap(const ServedCostMap& costs) const {
    return costs.Uses(agent) && !output_slot.empty() && output_slot[0] < 0;
  }
};

// log_value: the user-value network's output (log revenue); q: mean head per joint action;
// log_cost: [outputs][joints] (output-major). Writes user value, bucket, values
// exp(calib_a + log_value + calib_b q) and costs (the cost map's for the own module where the
// bundle serves it), each module's costs made monotone in the options' cost order.
void FinishScores(const AgentServing& serving, const ValueModelConfig& value_model,
                  const ServedCostMap& costs, double log_value, const float* q,
                  const float* log_cost, size_t outputs, AgentScores* out);

// The reuse model's input for one cache entry: [features, one-hot value bucket (obs_dim wide
// together), one-hot of the reused stage, log1p(age), age / 100, log1p(size)] (as
// BundleModelsImpl::ReuseInput). Returns false for a stage outside recall, pre-rank and rank.
bool ReuseInputRow(std::span<const float> features, int value_bucket, size_t obs_dim,
                   const CachedStage& cache, std::vector<float>* row);

// The reuse model's raw output as the share of the user value a reuse makes: exp(raw), at most
// e^kMaxLogReuseShare (no cached output is worth twenty fresh requests; it also keeps a broken
// bundle's output finite), or for a bundle from before uncapped shares exp(-softplus(raw)), in
// (0, 1] (Architecture::reuse_share_capped).
inline constexpr double kMaxLogReuseShare = 3.0;
double RetainedShare(double raw, bool capped);

// How a MADDPG actor (maddpg.h) reads the prices and how its outputs become a joint action, the
// same for the fast loops and the LibTorch reference. Fixed at load for one bundle.
struct ActorServing {
  ActorServing(const AllotConfig& config, std::vector<float> log_lambda_mid,
               std::vector<float> log_lambda_half);
  // The actor input's tail: the price of every agent's module (config order), as its log's
  // position in the range the actors trained over, clamped to [-1, 1] (outside it, the actor
  // acts as at the nearest end).
  void WritePrices(std::span<const double> module_lambda, float* out) const;
  size_t agents() const { return module.size(); }

  std::vector<size_t> module;  // per agent: config module index
  std::vector<float> mid, half;
};

// Per decision of one agent: the range of a continuous queue (one actor output, its position in
// the range), none for a decision with one actor output (a logit) per choice.
using DecisionRanges = std::vector<std::optional<QueueRangeConfig>>;
DecisionRanges ContinuousDecisions(const AgentConfig& agent);
// Actor outputs of one agent (see ContinuousDecisions).
size_t ActorOutputs(const ActionSpace& space, const DecisionRanges& continuous);
// The joint action an actor's raw outputs choose: per decision the choice with the largest logit
// or, for a continuous queue, the range's grid length nearest sigmoid(raw) of the way from min to
// max (QueueRangeConfig::NearestIndex, which the simulator's degradation snaps with too).
size_t ActorJoint(const ActionSpace& space, const DecisionRanges& continuous, const float* raw);

}  // namespace allot::models
