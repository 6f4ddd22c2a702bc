// How far to trust off-policy estimates: the simulator logs a day the way `generate` does
// (epsilon-greedy around the analytic rule, propensities recorded), estimates each candidate from
// that log with models/offpolicy.h, and replays the candidate itself on the same requests at the
// same prices for the truth.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/offpolicy.h"
#include "policy/scorer.h"
#include "sim/request.h"
#include "sim/world.h"

namespace allot::sim {

struct OffPolicyCheckOptions {
  double epsilon = 0.1;  // the logging policy's exploration, as `generate` logs by default
  size_t requests = 0;   // a strided sample of the held-out requests this size (0 = all)
  uint64_t seed = 1;
};

// The simulated truth of one candidate: per request, at the logged prices.
struct OffPolicyTruth {
  double revenue = 0.0;  // expected
  double cost = 0.0;     // core-ms, every module
  double net = 0.0;      // revenue - sum over modules of lambda x core-ms
};

struct OffPolicyCheckRow {
  std::string name;
  models::OffPolicyReport estimate;
  OffPolicyTruth truth;
};

struct OffPolicyCheck {
  int64_t requests = 0;
  OffPolicyTruth logging;  // the logging policy's own run
  std::vector<OffPolicyCheckRow> rows;
};

using Candidate = std::pair<std::string, std::shared_ptr<const ActionScorer>>;

// Logs and replays at fixed `lambdas` (per config module), offline, so that the truth and the
// estimate price compute alike.
OffPolicyCheck CheckOffPolicy(const World& world, const std::vector<Request>& held_out,
                              double scale, const std::vector<double>& lambdas,
                              const std::vector<Candidate>& candidates,
                              const OffPolicyCheckOptions& options);

// One row per candidate and outcome: truth, each estimator with its interval, and whether the
// interval covers the truth.
std::string FormatOffPolicyCheck(const OffPolicyCheck& check);

}  // namespace allot::sim
