// allot-train's engine: fits the user-value, cost and action-value models on a training log and
// writes a new versioned model bundle. No LibTorch in this header.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "models/training_log.h"
#include "policy/config.h"

namespace allot::models {

// Action-value methods, selectable by name (ALGORITHMS.md section 3).
//   dqn:  per-agent MLP Q, one head, independent TD learners on the chain's terminal revenue
//   drqn: per-agent recurrent Q (GRU over the agent's decisions), otherwise as dqn
//   vdn:  recurrent agents, Q_tot = sum of agent Qs, trained on revenue
//   qmix: recurrent agents, monotone hypernetwork mixer, trained on revenue
//   awrq: AWRQ-Mixer: recurrent agents with K heads, error-proportional head weights in training,
//         VGCA credit-assigned TD targets with target networks, monotone mixer
const std::vector<std::string>& Algorithms();

struct TrainOptions {
  std::string algorithm = "awrq";
  int heads = 20;       // K (awrq only; the baselines have one head)
  int64_t hidden = 32;  // GRU / encoder width (paper: 256; see bench/ for the cost)
  std::vector<int64_t> head_hidden = {};  // Q-head MLP (paper: [512, 256]); {} = linear heads
  int64_t mixer_embed = 32;
  double lr = 3e-3;  // Adam (paper: 0.01 at batch 2048)
  // One request is one episode whose only reward is its revenue at the end of the chain; a
  // discount below 1 would shrink upstream agents' values and mis-price their compute.
  double gamma = 1.0;
  // Weight of the central (mixer) loss in the agents' gradients (vdn, qmix, awrq). The agents'
  // own revenue-scale losses fix the price scale; the mixer couples them.
  double mixer_weight = 0.1;
  // Each agent's target mixes the request's revenue (weight td_lambda) with the next agent's
  // target-network value of its logged action (1 - td_lambda): TD(lambda) along the chain.
  double td_lambda = 0.5;
  int batch = 512;  // paper: 2048
  int epochs = 6;
  int value_epochs = 4;
  int target_update = 100;  // steps between target-network copies
  double dropout = 0.0;     // paper: 0.2
  double validation_fraction = 0.1;
  uint64_t seed = 1;
  int threads = 2;
  // AutoBucket measurements (`allot-sim testbench` CSV) to fit the cost map from; empty: none.
  std::string testbench_csv;
  bool progress = true;
};

struct TrainSummary {
  std::string bundle_dir;
  std::string version;
  std::map<std::string, double> metrics;  // validation metrics, also in the manifest
  double transitions_per_second = 0.0;    // action-value training throughput
  std::vector<std::string> warnings;      // also printed and in the manifest
};

// Trains every model and writes <models_dir>/<version>/ atomically (a temporary directory renamed
// into place); never overwrites an existing version. Throws std::runtime_error on failure.
TrainSummary TrainBundle(const TrainingLog& log, const AllotConfig& config,
                         const TrainOptions& options, const std::string& models_dir,
                         std::ostream& progress);

}  // namespace allot::models
