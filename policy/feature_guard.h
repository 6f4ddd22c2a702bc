// Ranges features are trusted in, from the config (agents[].feature_bounds) or from the data a
// model was fitted on, and the one clipping routine both use.
#pragma once

#include <span>
#include <vector>

#include "policy/config.h"

namespace allot {

struct FeatureGuard {
  size_t index = 0;  // into the agent's features
  float min = 0, max = 0;
  bool reject = false;  // refuse the request (the server's validation) rather than clip
};

// The agent's configured bounds, resolved to feature indices.
std::vector<FeatureGuard> FeatureGuards(const AgentConfig& agent);

// `features` with each guarded one clipped into its range; `buffer` holds the copy when one is
// needed (no guards: `features` itself is returned).
std::span<const float> ClipFeatures(std::span<const FeatureGuard> guards,
                                    std::span<const float> features, std::vector<float>& buffer);

}  // namespace allot
