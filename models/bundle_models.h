// The networks of one bundle, shared by the trainer and the server-side scorer (models-internal:
// includes LibTorch).
#pragma once

#include <string>
#include <vector>

#include "models/nets.h"
#include "policy/action_space.h"
#include "policy/config.h"

namespace allot::models {

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
  bool recurrent() const { return algorithm != "dqn"; }
  bool mixed() const { return algorithm == "qmix" || algorithm == "awrq"; }
};

// Per agent: the user-value model (DCN, log of expected revenue), the cost model (DCN on the
// observation and the action), the action-value network, and the linear calibration that maps
// the mean head to revenue units (value = calib_a + calib_b * Q, calib_b > 0 keeps the argmax).
struct BundleModelsImpl : torch::nn::Module {
  BundleModelsImpl(const AllotConfig& config, const Architecture& arch);

  int64_t obs_dim(size_t agent) const { return widths[agent] + buckets; }
  int64_t action_dim(size_t agent) const;
  // Observation: features and the one-hot value bucket. features [B, F], bucket [B] int64.
  torch::Tensor Observation(torch::Tensor features, torch::Tensor bucket) const;
  // One-hot of every decision's digit: digits [B, D] -> [B, sum of choices].
  torch::Tensor ActionOneHot(size_t agent, torch::Tensor digits) const;
  // Global state for the mixer: every agent's observation and action.
  torch::Tensor MixerState(const std::vector<torch::Tensor>& obs,
                           const std::vector<torch::Tensor>& digits) const;

  Architecture arch;
  int64_t buckets;
  std::vector<int64_t> widths;
  std::vector<std::vector<int64_t>> choices;  // per agent, per decision
  std::vector<Dcn> value;
  std::vector<Dcn> cost;
  std::vector<AgentQNet> q;
  MonotoneMixer mixer{nullptr};
};
TORCH_MODULE(BundleModels);

// All joint actions of an agent as digits [A, D] (int64), in joint-index order.
torch::Tensor AllJointDigits(const ActionSpace& space);

}  // namespace allot::models
