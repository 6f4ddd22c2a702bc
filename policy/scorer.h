// The interface between the decision rule and whatever predicts value and cost of each action.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "policy/cache_reuse.h"

namespace allot {

// Value and cost of every joint action of one agent for one request.
struct AgentScores {
  double user_value = 0.0;  // predicted revenue of the request
  int value_bucket = 0;
  std::vector<double> value;  // per joint action, revenue units
  std::vector<double> cost;   // per joint action, CPU core-ms of the agent's module
  // Compute the choice causes in later modules (more recall channels load pre-rank too):
  // cross_cost[k * value.size() + j] is the core-ms of module cross_module[k] (an index into the
  // config's modules) for joint action j. Empty when the scorer models the own module only.
  std::vector<size_t> cross_module;
  std::vector<double> cross_cost;
  // Per joint action, 1 when the decision rule must not choose it: a bundle trained on logs that
  // hardly explored knows nothing about the actions they never held. Empty: every action may be
  // chosen. Score implementations set it (most to empty), so a reused AgentScores carries nothing
  // over from another scorer.
  std::vector<uint8_t> excluded;
  bool Excluded(size_t joint) const { return joint < excluded.size() && excluded[joint] != 0; }
};

// Implemented by the analytic model (policy/) and by learned model bundles (models/).
// Score must be thread-safe and must not block on locks held across requests.
class ActionScorer {
 public:
  virtual ~ActionScorer() = default;
  virtual const std::string& version() const = 0;
  // How scores are computed, for operators: "analytic", "fast" (a bundle in plain loops) or
  // "libtorch" (a bundle the fast path cannot express, about ten times slower per decision).
  virtual const char* inference() const = 0;
  // agent: index into the config's agent list; features: the agent's feature vector (validated).
  // Returns false when it cannot score (the caller then answers with the safe default).
  virtual bool Score(size_t agent, std::span<const float> features, AgentScores* out) const = 0;
  // Share of the request's user value (scores.user_value) that reusing each cached stage output
  // makes (ComRecycle's base plus uplift), one entry per cache, for the agent that sees the
  // cache; `scores` is what Score just wrote for the same request. Returns false when the scorer
  // has no reuse model for the agent (the config's half-life rule then applies).
  virtual bool ScoreReuse(size_t agent, std::span<const float> features, const AgentScores& scores,
                          std::span<const CachedStage> caches, std::span<double> retained) const {
    return false;
  }
  // A scorer whose agents act directly (MADDPG's actors, conditioned on the prices) proposes the
  // joint action itself instead of leaving the priced argmax over `scores` to the decision rule.
  // module_lambda: every config module's price, in config order; `scores` is what Score just
  // wrote for the same request. Returns false when the agent has no actor.
  virtual bool Propose(size_t agent, std::span<const float> features, const AgentScores& scores,
                       std::span<const double> module_lambda, size_t* joint) const {
    return false;
  }
};

}  // namespace allot
