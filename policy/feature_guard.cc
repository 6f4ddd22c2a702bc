// Feature bounds; see feature_guard.h.
#include "policy/feature_guard.h"

#include <algorithm>
#include <limits>

namespace allot {

std::vector<FeatureGuard> FeatureGuards(const AgentConfig& agent) {
  auto as_float = [](double v) {
    return static_cast<float>(std::clamp<double>(v, std::numeric_limits<float>::lowest(),
                                                 std::numeric_limits<float>::max()));
  };
  std::vector<FeatureGuard> guards;
  for (const FeatureBoundConfig& b : agent.feature_bounds) {
    const auto at = std::find(agent.features.begin(), agent.features.end(), b.feature);
    guards.push_back({static_cast<size_t>(at - agent.features.begin()), as_float(b.min),
                      as_float(b.max), b.action == FeatureBoundConfig::Action::kReject});
  }
  return guards;
}

std::span<const float> ClipFeatures(std::span<const FeatureGuard> guards,
                                    std::span<const float> features, std::vector<float>& buffer) {
  if (guards.empty()) return features;
  buffer.assign(features.begin(), features.end());
  for (const FeatureGuard& g : guards) {
    if (g.index < buffer.size()) buffer[g.index] = std::clamp(buffer[g.index], g.min, g.max);
  }
  return buffer;
}

}  // namespace allot
