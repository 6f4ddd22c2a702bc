// Model quality apart from control: how well a scorer's predicted values rank the true values of
// an agent's options on held-out requests (MaRCA's r_s).
#pragma once

#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "policy/scorer.h"
#include "sim/request.h"
#include "sim/world.h"

namespace allot::sim {

struct AgentQuality {
  std::string agent;
  double r_s = 0.0;         // Spearman over every (request, option) pair: MaRCA's r_s
  double r_s_within = 0.0;  // mean over requests of the Spearman across one request's options
  size_t requests = 0;
};

// For each agent and each of the first `max_requests` requests: the upstream stages run their
// safe defaults (what the agent's features then describe), the agent's every option is scored,
// and its true value is the chain's expected revenue with that option and the later stages at
// their safe defaults. r_s_within is what the priced argmax depends on.
std::vector<AgentQuality> MeasureModelQuality(const World& world, std::span<const Request> requests,
                                              const ActionScorer& scorer, size_t max_requests);

void PrintModelQuality(const std::string& name, const std::vector<AgentQuality>& quality,
                       std::ostream& out);

}  // namespace allot::sim
