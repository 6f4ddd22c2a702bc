// The trainer's data-parallel mechanics (models-internal: includes LibTorch): a chunk of rows as
// tensors, and the gradient-step loop every phase runs over this rank's chunks, with each step's
// gradient averaged over all ranks' rows so that every rank takes the same step.
#pragma once

#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "models/bundle_models.h"
#include "models/collective.h"
#include "models/training_log.h"
#include "models/training_source.h"
#include "policy/config.h"

namespace allot::models {

torch::Tensor FloatTensor(const std::vector<float>& data, std::vector<int64_t> shape);
torch::Tensor LongTensor(const std::vector<int64_t>& data, std::vector<int64_t> shape);

// Rows of a TrainingLog as tensors. The derived columns exist once Derive has run.
struct RowTensors {
  int64_t rows = 0;
  std::vector<torch::Tensor> features, digits, cost, present;  // per agent
  torch::Tensor revenue;                                       // [rows]
  torch::Tensor reward;                                        // revenue / the run's revenue scale
  torch::Tensor full_chain;  // 1 on rows where every agent ran: what the central losses train on
  // The cache reuse the first agent chose (IsReuseRow): the reused stage (0-based, -1 none), the
  // cached output's age and size, and the share of value the config's half-life rule keeps.
  torch::Tensor reuse_stage, reuse_age, reuse_size, half_life_share;
  // Derive: per agent, the observation (features and the predicted value bucket), the bucket and
  // the log user value (in units of the revenue scale) that the action-value heads add to.
  std::vector<torch::Tensor> obs, buckets, log_base;
};

RowTensors ToTensors(const TrainingLog& log, const AllotConfig& config, double scale);
// The rows of several (underived) parts, in order.
RowTensors Concat(std::vector<RowTensors>& parts);

// How many chunks a phase holds and shuffles together (see StepLoop::Run).
inline constexpr size_t kMixedChunks = 8;
void Derive(RowTensors& rows, BundleModels& models, const AllotConfig& config, double log_scale);

// Every step's work: the loss of one batch of a chunk (rows: int64 indices into it).
using BatchLoss = std::function<torch::Tensor(const RowTensors& chunk, const torch::Tensor& rows)>;
// Which rows of a chunk a phase trains on (int64 indices); unset: all of them.
using RowSelector = std::function<torch::Tensor(const RowTensors& chunk)>;

struct StepLoop {
  TrainingSource& source;
  Collective& ranks;
  const AllotConfig& config;
  std::mt19937_64& rng;
  int batch = 512;  // the global batch: each rank takes its share
  double scale = 1.0;
  std::ostream* progress_out = nullptr;  // rank 0's progress lines, or none

  struct Result {
    size_t rows = 0;  // every rank's rows stepped over
    double seconds = 0;
  };
  // `epochs` passes over this rank's chunks: in a shuffled order, kMixedChunks at a time with
  // their selected rows shuffled together into batches. A step's gradient is the average over every
  // rank's rows of that step; a rank out of rows adds none and still steps. models: for Derive,
  // when `derive`.
  Result Run(const std::string& stage, int epochs, torch::optim::Optimizer& optimizer,
             const std::vector<torch::Tensor>& parameters, const BatchLoss& loss,
             BundleModels* derive_with = nullptr, const RowSelector& select = {},
             const std::function<void()>& after_step = {});
};

// Poisson negative log-likelihood (up to a constant) of `target` under rate exp(log_rate),
// averaged over the rows where mask is 1 (mask broadcasts over columns). per_column: one mean per
// column instead of one overall.
torch::Tensor MaskedPoisson(const torch::Tensor& log_rate, const torch::Tensor& target,
                            const torch::Tensor& mask, bool per_column = false);
// Each row's weight in the revenue losses (TrainOptions::q_weighting, "relative" or "revenue"):
// 1, or 1 / its predicted user value (in units of the mean revenue), floored so that a request
// predicted near zero cannot dominate a batch.
torch::Tensor LossWeight(const std::string& q_weighting, const torch::Tensor& log_base);
// The central loss on the mixed value q_tot, weighed per request as the agents' losses are: the
// quadratic approximation of their weighted Poisson loss, (q_tot - r)^2 / v times the request's
// loss weight, with v its predicted user value. A plain squared error weighs a request by its value
// squared, so the few valuable requests would decide, through the mixer, the agents' differences
// between options for everybody (as the plain Poisson loss did before --q-weighting relative).
torch::Tensor CentralLoss(const torch::Tensor& q_tot, const torch::Tensor& reward,
                          const torch::Tensor& full_chain, const torch::Tensor& log_base,
                          const std::string& q_weighting);
// What every head of a distilled student learns from the teacher's heads q [rows, K] (log
// uplift): the heads as they are when pessimism is 0 or K is 1, else on every head their mean
// less `pessimism` standard deviations across them. The heads are an ensemble, so where they
// disagree the teacher knows less, and its lower bound is served (TrainOptions::distil_pessimism).
torch::Tensor DistillationTarget(const torch::Tensor& q, double pessimism);
// Mean Poisson deviance of outcomes y under rates exp(log_rate) (0 for a perfect fit).
double PoissonDeviance(const torch::Tensor& y, const torch::Tensor& log_rate);

// Throws std::runtime_error when the ranks' copies of the parameters differ (they take the same
// steps, so they must not).
void CheckRanksAgree(Collective& ranks, const std::vector<torch::Tensor>& parameters);
// Throws std::runtime_error naming `what` unless every rank passes the same `value` (the options
// and the config: ranks that would take different steps must not start).
void CheckSameOnEveryRank(Collective& ranks, const std::string& what, const std::string& value);

}  // namespace allot::models
