// Why a decision came out as it did: every joint action of the agent scored, costed and priced as
// the decision rule saw it, so that an operator can tell a collapsed bundle from a good one by
// looking at one request.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "policy/allocation_engine.h"

namespace allot {

struct ModuleCharge {
  size_t module = 0;  // index into config.modules
  double cost_ms = 0.0;
  double price = 0.0;  // the module's lambda in this decision
};

struct OptionExplanation {
  size_t joint = 0;
  std::string label;  // JointActionLabel
  double value = 0.0;
  std::vector<ModuleCharge> charges;  // own module first, then the later modules it loads
  double priced = 0.0;                // value - sum of price x cost_ms
  bool over_cap = false;
  bool unlogged = false;  // excluded: the bundle's training logs hardly held it (AgentScores)
  bool chosen = false;
};

struct DecisionExplanation {
  std::vector<OptionExplanation> options;  // highest priced first
  double user_value = 0.0;
  int value_bucket = 0;
  std::string inference;
  std::string model;  // the scorer's version
  double max_cost_ms = 0.0;
  // "rule": the option with the highest priced score that fits the cap; "actor": the bundle's
  // actor proposed the chosen option, which may rank lower here.
  std::string chosen_by;
};

// Scores `features` again with the snapshot's scorer at `lambdas` (the same clipping, prices and
// cap as AllocationEngine::Decide) and marks `chosen_joint`, which an actor chose when
// `chosen_by_actor` (Allocation::proposed). nullopt when the scorer cannot score (the decision was
// then the safe default, which has nothing to explain).
std::optional<DecisionExplanation> ExplainDecision(const PolicySnapshot& policy,
                                                   const LambdaTable& lambdas, size_t agent,
                                                   std::span<const float> features,
                                                   size_t chosen_joint, bool chosen_by_actor);

}  // namespace allot
