// Model bundles on disk: a versioned directory with manifest.yaml and model.pt, loaded into an
// ActionScorer the allocation engine can serve. No LibTorch in this header.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/config.h"
#include "policy/scorer.h"

namespace allot::models {

class BundleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr char kManifestFile[] = "manifest.yaml";
inline constexpr char kWeightsFile[] = "model.pt";
inline constexpr char kCostMapFile[] = "cost_map.yaml";  // only with a manifest cost_source

// Bundle directories under models_dir that have a manifest, newest version first (versions
// sort by creation time). Temporary directories (".tmp-*") are ignored.
std::vector<std::string> ListBundles(const std::string& models_dir);

// How a loaded bundle is evaluated. kFast (serving): the weights are copied into plain loops (see
// fast_scorer.h; ~10x faster than LibTorch here). kTorch (reference): one batched LibTorch forward
// pass over all joint actions under c10::InferenceMode with one intra-op thread.
enum class Inference { kFast, kTorch };

// Loads a bundle and checks it against the config's feature and action schema; throws
// BundleError naming the problem.
std::shared_ptr<const ActionScorer> LoadBundle(const std::string& dir, const AllotConfig& config,
                                               Inference inference = Inference::kFast);

// The schema part of a manifest for this config (what a bundle must match to be served).
std::string SchemaYaml(const AllotConfig& config);

}  // namespace allot::models
