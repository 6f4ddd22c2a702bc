// A bundle trained on logs that hardly explored must not choose what those logs never held: its
// scores for such joint actions are extrapolations from combinations the logging policy chose for
// its own reasons. On the default world, logs of the analytic rule without exploration held 6 of
// recall's 62 joint actions, and the bundle trained on them, free to choose any, reached 62% of
// the oracle against the rule's 91%.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "policy/scorer.h"

namespace allot::models {

// `inner` with each agent's `unlogged[agent]` joint actions marked excluded in every Score
// (AgentScores::excluded), so that the decision rule, the controllers' re-decisions and the
// explanations all leave them out; space_sizes: each agent's number of joint actions. Returns
// `inner` itself when nothing is excluded.
std::shared_ptr<const ActionScorer> ExcludeUnloggedActions(
    std::shared_ptr<const ActionScorer> inner, const std::vector<std::vector<uint32_t>>& unlogged,
    const std::vector<size_t>& space_sizes);

}  // namespace allot::models
