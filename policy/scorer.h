// The interface between the decision rule and whatever predicts value and cost of each action.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace allot {

// Value and cost of every joint action of one agent for one request.
struct AgentScores {
  double user_value = 0.0;  // predicted revenue of the request
  int value_bucket = 0;
  std::vector<double> value;  // per joint action, revenue units
  std::vector<double> cost;   // per joint action, CPU core-ms of the agent's module
};

// Implemented by the analytic model (policy/) and by learned model bundles (models/).
// Score must be thread-safe and must not block on locks held across requests.
class ActionScorer {
 public:
  virtual ~ActionScorer() = default;
  virtual const std::string& version() const = 0;
  // agent: index into the config's agent list; features: the agent's feature vector (validated).
  // Returns false when it cannot score (the caller then answers with the safe default).
  virtual bool Score(size_t agent, std::span<const float> features, AgentScores* out) const = 0;
};

}  // namespace allot
