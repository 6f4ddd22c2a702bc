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

// Least-squares slope through the origin of true on predicted relative differences, each option
// against its request's mean over the options: 1 when the model's differences between one
// request's options have the right size, below 1 when they are too large. The priced argmax
// trades these differences in value against those in cost, so a slope off 1 misprices compute
// even where r_s is high. Relative, because the noise in a request's value multiplies all of its
// options alike: absolute differences let the few requests of a heavy value tail decide.
class DifferenceSlope {
 public:
  // One request's options; a request whose mean prediction or truth is not positive is skipped.
  void Add(std::span<const double> predicted, std::span<const double> truth);
  double slope() const { return predicted_sq_ > 0 ? cross_ / predicted_sq_ : 0.0; }

 private:
  double cross_ = 0.0, predicted_sq_ = 0.0;
};

struct AgentQuality {
  std::string agent;
  double r_s = 0.0;          // Spearman over every (request, option) pair: MaRCA's r_s
  double r_s_within = 0.0;   // mean over requests of the Spearman across one request's options
  double value_slope = 0.0;  // DifferenceSlope of the values
  double cost_slope = 0.0;   // DifferenceSlope of the agent's own module's expected cost
  size_t requests = 0;
};

// For each agent and each of the first `max_requests` requests: the upstream stages run their
// safe defaults (what the agent's features then describe), the agent's every option is scored,
// and its true value is the chain's expected revenue with that option and the later stages at
// their safe defaults. r_s_within is what the priced argmax depends on. The cost slope compares
// the scorer's cost in the agent's own module with that module's cost without per-request noise
// (its cost in later modules depends on what the later agents choose, which the defaults fix).
std::vector<AgentQuality> MeasureModelQuality(const World& world, std::span<const Request> requests,
                                              const ActionScorer& scorer, size_t max_requests);

void PrintModelQuality(const std::string& name, const std::vector<AgentQuality>& quality,
                       std::ostream& out);

}  // namespace allot::sim
