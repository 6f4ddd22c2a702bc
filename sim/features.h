// The features the simulator can compute, by the names the Allot config lists for each agent.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "sim/request.h"

namespace allot::sim {

enum class Feature {
  kUserHistValueLog,
  kUserActivity,
  kCtr7d,
  kIsNewUser,
  kHourSin,
  kHourCos,
  kPageIndex,
  kQueryLen,
  kRecallCandidatesLog,
  kRecallTopScore,
  kPrerankTopScore,
  kPrerankCandidatesLog,
};

// Throws allot::ConfigError("<path>: unknown feature 'x' (known: ...)") for a name it does not
// know, and when the feature is not observable at `stage` (recall outputs exist only after recall).
Feature ParseFeature(const std::string& name, int stage, const std::string& path);
const std::vector<std::string>& KnownFeatureNames();

// What an agent observes beyond the request itself: the outputs of earlier stages.
struct Upstream {
  StageOutput recall;
  StageOutput prerank;
};

// How strongly the best recall and pre-rank scores follow the log of the request's value (the
// rest is the stage's mass and its score noise): what the later agents can read of the value.
inline constexpr double kRecallTopScoreValueWeight = 0.5;
inline constexpr double kPrerankTopScoreValueWeight = 0.7;

// Fills out[i] with features[i]; out.size() == features.size().
void ComputeFeatures(std::span<const Feature> features, const Request& request,
                     const Upstream& upstream, std::span<float> out);

}  // namespace allot::sim
