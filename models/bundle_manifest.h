// A bundle's manifest.yaml as one typed struct, written by the trainer and read by the loader, so
// the two sides cannot drift apart. No LibTorch in this header.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/algorithms.h"
#include "models/fitted_range.h"
#include "models/offpolicy.h"
#include "policy/config.h"

namespace allot::models {

// Bundles written before the revenue-scale models had identity-link values; they are refused.
inline constexpr int kModelFormat = 2;

// Everything needed to rebuild the networks before loading their weights.
struct Architecture {
  std::string algorithm = "awrq";
  int heads = 1;
  int64_t hidden = 64;
  std::vector<int64_t> head_hidden = {};
  int64_t mixer_embed = 32;
  int cross_layers = 3;                  // DCN of the value and cost models (public code: 3)
  std::vector<int64_t> deep = {64, 32};  // their deep towers (public code: [64, 32])
  double dropout = 0.0;
  // Two-tower action-value and cost networks (see TwoTower in nets.h) instead of the GRU or MLP
  // and the DCN: the whole scoring of an agent's joint actions in a few microseconds.
  bool factorised = false;
  // How the reuse model's output reads as the share of the user value a reuse makes: capped at 1
  // (-softplus of it, bundles from before this flag) or its exponential, which lets a cache
  // filled at richer settings than the logging policy's usual ones make more than the user value.
  bool reuse_share_capped = false;
  // The algorithm's row of algorithms.h; throws std::invalid_argument for an unknown name.
  const AlgorithmTraits& traits() const;
  bool recurrent() const { return traits().recurrent; }
  bool mixed() const { return traits().mixer == Mixer::kMonotone; }  // has a mixer network
};

// How the bundle was trained (recorded for people; the loader does not need it).
struct Hyperparameters {
  double lr = 0.0;
  double gamma = 1.0;
  double mixer_weight = 0.0;
  double td_lambda = 1.0;
  std::string q_weighting;
  int batch = 0;
  int epochs = 0;
  int value_epochs = 0;
  int target_update = 0;
  double dropout = 0.0;
  double validation_fraction = 0.0;
  uint64_t seed = 0;
  double revenue_scale = 1.0;  // mean training revenue the models trained in units of
  // TrainOptions::network: a distilled bundle's architecture reads factorised like a bundle
  // trained directly as one; this says which it was.
  std::string network = "algorithm";
  int distil_epochs = 0;   // network "distilled" only
  int distil_actions = 0;  // network "distilled" only (0: all joint actions)
  // network "distilled" only: the heads' mean less this many standard deviations (0: the heads)
  double distil_pessimism = 0.0;
};

// Served value = exp(a + log_value + b * mean head) per agent (see bundle_models.h).
struct AgentCalibration {
  std::string agent;
  double a = 0.0;
  double b = 1.0;
};

struct BundleManifest {
  std::string version;
  std::string created;  // UTC, ISO 8601
  int model_format = kModelFormat;
  std::string config_version;
  std::string input_hash;  // of the training logs
  int64_t input_files = 0;
  int64_t transitions = 0;
  int64_t skipped_records = 0;
  YAML::Node schema;  // SchemaYaml of the config trained for
  Architecture architecture;
  Hyperparameters hyperparameters;
  bool reuse_model = false;  // ComRecycle's reuse model served, else the config's half-life rule
  // Per agent "map" (the AutoBucket cost map) or "model" (the cost network); empty: no cost map.
  std::vector<std::string> cost_source;
  FittedRanges fitted_range;
  std::vector<AgentCalibration> calibration;  // one per agent, config order
  // Per agent (config order; empty when none), joint actions the bundle never chooses: its logs
  // hardly explored and hardly held them (AgentLogCheck::unlogged).
  std::vector<std::vector<uint32_t>> unlogged_actions;
  // Per agent (config order; empty in bundles from before it was recorded), per joint action: the
  // requests logged with it, from which each served value is discounted (LoggedEvidenceShare).
  std::vector<std::vector<int64_t>> logged_counts;
  std::vector<std::string> warnings;
  std::map<std::string, double> metrics;  // validation metrics
  // Off-policy estimates against the logging policy on the validation rows (absent in bundles
  // trained before propensities were logged).
  std::optional<OffPolicyReport> offpolicy;
};

// Reads a manifest written for `config` (SchemaYaml in bundle.h). Throws BundleError (bundle.h)
// when the bundle's feature and action schema differs from the config's or its model format is not
// served, and on values out of their domain, naming the key; YAML::Exception on malformed YAML.
// Per-agent entries follow the config's agents.
BundleManifest ReadManifest(const std::string& path, const AllotConfig& config);
void WriteManifest(const BundleManifest& manifest, const AllotConfig& config,
                   const std::string& path);

}  // namespace allot::models
