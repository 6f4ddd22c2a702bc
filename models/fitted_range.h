// The range of each feature a bundle was fitted on. A network extrapolates without limit: a
// probe's features[0] = 1e4 drove the default bundle's predicted cost to 6.5e7 core-ms, and the
// MPC's predicted CPU to 1.5e8. Served bundles clip features to (a margin around) what they saw.
#pragma once

#include <yaml-cpp/yaml.h>

#include <memory>
#include <vector>

#include "models/training_log.h"
#include "policy/config.h"
#include "policy/feature_guard.h"
#include "policy/scorer.h"

namespace allot::models {

struct FeatureRange {
  float min = 0, max = 0;
};
using FittedRanges = std::vector<std::vector<FeatureRange>>;  // per agent, per feature

// Over the rows on which each agent was asked (its features are real); empty ranges for an agent
// that never was.
FittedRanges MeasureFittedRanges(const TrainingLog& log);
// Widens `ranges` (sized per agent) by the rows of `log`: how a log read in chunks is measured.
void ExtendFittedRanges(FittedRanges& ranges, const TrainingLog& log);

// The manifest's `fitted_range` entry (agent name -> [[min, max], ...]) and back. Reading an
// absent node gives no ranges (bundles written before ranges were recorded).
void WriteFittedRanges(YAML::Emitter& out, const FittedRanges& ranges, const AllotConfig& config);
FittedRanges ReadFittedRanges(const YAML::Node& node, const AllotConfig& config);

// `inner` with each agent's features clipped into its fitted range widened by the range's span
// on either side: room to extrapolate a little, never without bound.
std::shared_ptr<const ActionScorer> ClipToFittedRanges(std::shared_ptr<const ActionScorer> inner,
                                                       const FittedRanges& ranges);

}  // namespace allot::models
