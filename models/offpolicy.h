// Off-policy evaluation: how a candidate policy would have done on logged traffic, estimated from
// the logging policy's propensities (IPS, SNIPS) and from the candidate's own value and cost
// predictions (doubly robust), before it serves a single request. No LibTorch in this header.
//
// A logged request is one episode: the chain's agents decide in order and its revenue arrives at
// the end. The candidate is deterministic, so the trajectory's importance weight is
//   w = prod_t 1[candidate_t == logged_t] / propensity_t,
// and the doubly robust term is Jiang & Li's step-wise recursion, from the last step back:
//   V_t = vhat_t + rho_t (r_t + V_{t+1} - qhat_t),  rho_t = 1[candidate_t == logged_t] / p_t,
// with qhat_t the candidate's prediction for the logged action and vhat_t for its own choice.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/training_log.h"
#include "policy/config.h"
#include "policy/scorer.h"

namespace allot::models {

// A point estimate with its normal-approximation 95% confidence interval.
struct Interval {
  double estimate = 0.0;
  double lower = 0.0;
  double upper = 0.0;
};

struct OutcomeEstimates {
  double logged = 0.0;  // the logging policy's own mean (on-policy)
  Interval ips;         // mean of w * y
  Interval snips;       // sum(w * y) / sum(w): self-normalised (NaN when no weight)
  Interval dr;          // mean of the doubly robust terms
};

// The three estimators of one outcome's per-request mean, from per-request importance weights,
// outcomes and doubly robust terms (equal lengths, at least one request).
OutcomeEstimates EstimateOutcome(std::span<const double> weight, std::span<const double> outcome,
                                 std::span<const double> dr);

// (sum w)^2 / sum w^2: how many logged requests the weighted estimate is worth.
double EffectiveSampleSize(std::span<const double> weight);

struct OffPolicyReport {
  int64_t requests = 0;  // logged requests replayed
  int64_t matched = 0;   // with weight > 0: the candidate chose what was logged at every step
  double effective_sample_size = 0.0;
  OutcomeEstimates revenue;  // revenue per request
  OutcomeEstimates cost;     // core-ms per request, summed over the chain's modules
  // Revenue minus the compute priced at the lambdas logged with each step: the quantity the
  // decision rule maximises, so the one to compare policies of different compute on.
  OutcomeEstimates net;
  std::string unusable;  // why there is no estimate ("" when there is)
};

// Replays `rows` of the log through `scorer` with the decision rule the server runs (the same
// AllocationEngine), at the prices logged with each step and the cache each request saw, and
// estimates the candidate's revenue, cost and net return per request. A log without propensities
// (written before they were logged) gives a report whose `unusable` says so.
OffPolicyReport EvaluateOffPolicy(const TrainingLog& log, std::span<const int64_t> rows,
                                  const AllotConfig& config,
                                  std::shared_ptr<const ActionScorer> scorer);

// A readable summary, one outcome per line ("revenue  logged 1.234  ips 1.30 [1.1, 1.5] ...").
std::string FormatOffPolicyReport(const OffPolicyReport& report);

}  // namespace allot::models
