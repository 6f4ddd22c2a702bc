// allot-train's engine: fits the user-value, cost and action-value models on a training log and
// writes a new versioned model bundle. No LibTorch in this header.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "models/algorithms.h"
#include "models/collective.h"
#include "models/offpolicy.h"
#include "models/training_log.h"
#include "models/training_source.h"
#include "policy/config.h"

namespace allot::models {

// The action-value methods, selectable by name, are the rows of algorithms.h.

struct TrainOptions {
  std::string algorithm = "awrq";
  int heads = 20;       // K (multi-head methods only: awrq; the others have one head)
  int64_t hidden = 32;  // GRU / encoder width (paper: 256; see bench/ for the cost)
  std::vector<int64_t> head_hidden = {};  // Q-head MLP (paper: [512, 256]); {} = linear heads
  int64_t mixer_embed = 32;
  // "algorithm": each method's own action-value network (GRU or MLP) and the DCN cost model;
  // "factorised": two-tower action-value and cost networks (see TwoTower in nets.h);
  // "distilled": the algorithm's own, then two-tower ones fitted to them and served. The
  // default: over seeds 1-3 of both simulated worlds it stays 0.2 points of the oracle below the
  // algorithm's own networks on average (-0.5 to +0.2 by seed and world, within a seed's spread),
  // and scores a request's joint actions about ten times faster (recall: 3 us against 33).
  std::string network = "distilled";
  double lr = 3e-3;  // Adam (paper: 0.01 at batch 2048)
  // One request is one episode whose only reward is its revenue at the end of the chain; a
  // discount below 1 would shrink upstream agents' values and mis-price their compute.
  double gamma = 1.0;
  // How much of the central (mixer) loss's gradient reaches the agents (vdn, qmix, awrq); the
  // mixer itself always trains on it. Negative: the algorithm's own choice, 1 for vdn and qmix
  // (value decomposition shapes the agents) and 0 for awrq, whose agents keep their own
  // revenue-scale targets while the monotone mixer learns the joint value beside them, as in
  // MaRCA's public code (on the trainer test's known task, weight 0.1 learned E[R | a = 2] as
  // 1.82 for 2.33 in 8 epochs; 0 learned it within 0.3).
  double mixer_weight = -1.0;
  // Each agent's target mixes the request's revenue (weight td_lambda) with the next agent's
  // target-network value of its logged action (1 - td_lambda): TD(lambda) along the chain.
  // Default 1 (Monte Carlo): a later agent sees only part of what an earlier one chose (pre-rank
  // sees recall's candidate count, not its channels), so its value averages over the earlier
  // choice and bootstrapping from it pulls the earlier agent's differences between options
  // towards zero (on the trainer test's known task, 0.5 learns E[R | a = 2] as 2.0 for 2.33).
  double td_lambda = 1.0;
  // How each request weighs in the action-value loss. "relative": by 1 / its predicted user
  // value, so that every request's options count alike whatever the request is worth; revenue
  // noise is multiplicative (variance ~ mean^2), and 1 / mean is its quasi-likelihood weight.
  // "revenue": the plain Poisson loss, where a request weighs in proportion to its revenue and
  // the many low-value requests barely shape the differences between their options (default
  // world, seed 1: the rank agent's within-request rank correlation 0.73, against 0.93 relative).
  std::string q_weighting = "relative";
  int batch = 512;  // paper: 2048
  int epochs = 6;
  int value_epochs = 4;
  // Passes of the distillation (network "distilled") over the training rows.
  int distil_epochs = 6;
  // Joint actions per agent the distillation fits in each batch, sampled afresh (0: all). With 8,
  // distilling a 500k-request log takes about 3 minutes here instead of most of a 17-23-minute
  // training, for 0.17 points of the oracle on average against fitting all of them (recall has
  // 62; seeds 1 and 2 of both simulated worlds).
  int distil_actions = 8;
  // What the student learns of the teacher's ensemble of heads: their mean less this many
  // standard deviations across them (0: each head as it is; DistillationTarget). One, as the
  // logged-count discount is one standard error: over seeds 1-3 of three worlds, +0.15 points of
  // the oracle offline and +0.11 online on average, none lower by more than 0.03 (10: -0.15 to
  // +0.07 on seed 1).
  double distil_pessimism = 1.0;
  int target_update = 100;           // steps between target-network copies
  double dropout = 0.0;              // paper: 0.2
  double validation_fraction = 0.1;  // of requests, chosen by a hash of each request's identity
  uint64_t seed = 1;
  // Training rows in memory at a time: allot-train streams its logs, and each phase reads this
  // many rows as 8 chunks from random places in the log and shuffles them together. 0: a log
  // already in memory is read whole; files 65,536 rows at a time.
  size_t chunk_rows = 0;
  // Held-out rows kept in memory for the validation metrics (a sample chosen by request hash).
  size_t max_validation_rows = 100000;
  // LibTorch intra-op threads. The models' tensors are small (batch 512, width 32), so a second
  // thread mostly spins in OpenMP and OpenBLAS waits: on 2 cores, awrq trained at 24k
  // transitions/s with 2 threads and 74k/s with 1 (perf: 70% of cycles in libgomp spin,
  // sched_yield and the kernel).
  int threads = 1;
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
  // Against the logging policy on the validation rows (also in the manifest).
  std::optional<OffPolicyReport> offpolicy;
};

// Throws std::runtime_error naming the first option no training run can use, as allot-train's
// flag without its dashes ("td-lambda: must be in [0, 1]").
void ValidateTrainOptions(const TrainOptions& options);

// How a run's options split and chunk its rows.
SplitOptions SplitOptionsFor(const TrainOptions& options);

// Trains every model and writes <models_dir>/<version>/ atomically (a temporary directory renamed
// into place); never overwrites an existing version. Throws std::runtime_error on failure.
// Data-parallel when `ranks` has several: each trains on its source's rows, gradients are averaged
// every step, and rank 0 alone writes the bundle (the others return the same metrics and no
// bundle_dir). Every rank must be given the same options.
TrainSummary TrainBundle(TrainingSource& source, Collective& ranks, const AllotConfig& config,
                         const TrainOptions& options, const std::string& models_dir,
                         std::ostream& progress);
// A log already in memory, in one process.
TrainSummary TrainBundle(const TrainingLog& log, const AllotConfig& config,
                         const TrainOptions& options, const std::string& models_dir,
                         std::ostream& progress);

}  // namespace allot::models
