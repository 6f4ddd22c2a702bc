// What the simulator asks a policy: one decision per request and agent, given the agent's features,
// the cache state (first agent of a repeat request) and the lambdas in force.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "policy/cache_reuse.h"
#include "policy/score_reservoir.h"
#include "sim/request.h"

namespace allot::sim {

struct AgentView {
  const Request* request = nullptr;  // for policies with hindsight (the oracle) and logging
  size_t position = 0;               // chain position; 0 is the agent that sees the cache
  size_t agent = 0;                  // index into config.agents
  size_t module = 0;                 // index into config.modules of the agent's module
  std::span<const float> features;   // in the agent's configured order
  std::span<const CachedStage> caches;
  std::span<const double> lambdas;   // per config module
  std::span<const double> max_cost;  // per config module: per-request cost cap (0 = none)
};

struct AgentChoice {
  uint32_t joint = 0;   // index into the agent's ActionSpace
  int cache_reuse = 0;  // 0 none, 1 recall, 2 prerank, 3 rank (first agent only)
  double lambda = 0.0;  // price of the agent's module compute in this decision
  double predicted_value = 0.0;
  double predicted_cost = 0.0;
  double user_value = 0.0;  // the policy's estimate
  bool explored = false;
  bool fallback = false;
  // Probability with which the policy chose `joint`, and `cache_reuse` (1: deterministic).
  double propensity = 1.0;
  double cache_propensity = 1.0;
  // The share of predicted_value that the chosen reuse keeps, as the policy estimated it; < 0
  // when it chose none or does not estimate it.
  double reuse_retained = -1.0;
};

class SimPolicy {
 public:
  virtual ~SimPolicy() = default;
  virtual const std::string& name() const = 0;
  virtual AgentChoice Decide(const AgentView& view) = 0;
  // The joint the policy would choose for an agent that a cache reuse skipped, without side
  // effects (no sampling, no RPC): prices the reuse counterfactually. nullopt = the safe default.
  virtual std::optional<uint32_t> Counterfactual(const AgentView& view) { return std::nullopt; }
  // Recently scored requests for a lambda controller (nullptr when the policy has none).
  virtual const ScoreReservoir* reservoir() const { return nullptr; }
};

}  // namespace allot::sim
