// What a bundle serves of the joint actions its logs hardly held.
//
// A bundle trained on logs that hardly explored must not choose what those logs never held: its
// scores for such joint actions are extrapolations from combinations the logging policy chose for
// its own reasons. On the default world, logs of the analytic rule without exploration held 6 of
// recall's 62 joint actions, and the bundle trained on them, free to choose any, reached 62% of
// the oracle against the rule's 91%.
//
// Short of that, a joint action's value is known only as well as its logs show it: a mean from n
// requests is known to about 1/sqrt(n) of itself when revenue varies about as much as its mean.
// The argmax over many options favours whichever the model overrates, most often the thinly
// logged ones, so each value is served one standard error low.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "policy/scorer.h"

namespace allot::models {

// The share of its value a joint action logged `logged` times keeps when served: exp(-1/sqrt(n)),
// n at least 1 (0.90 at a hundred requests, 0.99 at ten thousand).
double LoggedEvidenceShare(int64_t logged);
// LoggedEvidenceShare of each count.
std::vector<double> LoggedEvidenceShares(const std::vector<int64_t>& logged);

// Per agent (config order; an agent's list empty when there is nothing to apply).
struct LoggedEvidence {
  std::vector<std::vector<uint32_t>> unlogged;      // joint actions never chosen
  std::vector<std::vector<int64_t>> logged_counts;  // per joint action: requests logged with it
};

// `inner` with each agent's unlogged joint actions marked excluded in every Score
// (AgentScores::excluded), so that the decision rule, the controllers' re-decisions and the
// explanations all leave them out, and each value multiplied by LoggedEvidenceShare of its joint
// action's logged count. space_sizes: each agent's number of joint actions; a list of another
// size is ignored. Returns `inner` itself when there is nothing to apply.
std::shared_ptr<const ActionScorer> ServeWithinLoggedEvidence(
    std::shared_ptr<const ActionScorer> inner, const LoggedEvidence& evidence,
    const std::vector<size_t>& space_sizes);

}  // namespace allot::models
