// LibTorch building blocks of Allot's models. Include only from models/*.cc: a translation unit
// that includes <torch/torch.h> takes ~20 s to compile on this machine.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "policy/config.h"

namespace allot::models {

// Plain MLP: Linear -> ReLU (-> Dropout) per hidden layer, then a linear output.
struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t in, const std::vector<int64_t>& hidden, int64_t out, double dropout = 0.0);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::Sequential layers{nullptr};
};
TORCH_MODULE(Mlp);

// Deep & Cross Network: cross layers x_{l+1} = x0 * (w_l . x_l + b_l) + x_l beside a deep MLP;
// both are concatenated into a linear output.
struct DcnImpl : torch::nn::Module {
  DcnImpl(int64_t in, int cross_layers, const std::vector<int64_t>& deep, int64_t out);
  torch::Tensor forward(torch::Tensor x);
  std::vector<torch::Tensor> cross_w, cross_b;
  Mlp deep{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Dcn);

// Multi-gate mixture of experts: shared experts, one softmax gate and tower per task.
struct MmoeImpl : torch::nn::Module {
  MmoeImpl(int64_t in, int experts, int64_t expert_dim, int tasks,
           const std::vector<int64_t>& tower, int64_t out_per_task);
  std::vector<torch::Tensor> forward(torch::Tensor x);  // one [B, out_per_task] per task
  std::vector<Mlp> experts_;
  std::vector<torch::nn::Linear> gates_;
  std::vector<Mlp> towers_;
};
TORCH_MODULE(Mmoe);

// How a decision's choices enter the networks: one fixed row of 0/1 features per choice, so that
// options which share channels or lengths share what is learned about them (a channel set is the
// multi-hot of its channels, a queue a thermometer over the lengths, a switch one bit). One
// tensor [choices, width] per decision.
using ChoiceCodes = std::vector<torch::Tensor>;

// Codes for every decision of one agent, from its config (see ChoiceCodes).
ChoiceCodes MakeChoiceCodes(const AgentConfig& agent);

// A factorised (two-tower) network: out = head(phi(state) * psi(action)), where phi and psi are
// one-hidden-layer MLPs to the same width and * is elementwise. Every output is a bilinear form
// phi(s)^T diag(w_o) psi(a) + b_o, so serving computes phi once per request and dots it with
// per-action vectors precomputed at load: a few microseconds for all of an agent's joint actions,
// where a network on [state, action] runs once per action.
struct TwoTowerImpl : torch::nn::Module {
  TwoTowerImpl(int64_t state_dim, int64_t action_dim, int64_t width, int64_t out);
  torch::Tensor forward(torch::Tensor state, torch::Tensor action);  // [B, S], [B, A] -> [B, out]
  Mlp state_tower{nullptr}, action_tower{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(TwoTower);

// One agent's action-value network for a combinatorial action (one choice per decision).
// recurrent (DRQN): a GRU reads the decisions in order, step d getting [obs, code(choice_d)]
// (padded to the widest code), so Q(s, a) is built up decision by decision; not recurrent (DQN):
// an MLP on [obs, code of every choice]; factorised: a TwoTower over obs and the code of every
// choice, whose K outputs are the heads. K heads on top (K = 1 for the single-head baselines):
// MLPs when head_hidden is given, else one fused Linear(hidden, K), which is what serving at
// ~100 us needs.
struct AgentQNetImpl : torch::nn::Module {
  AgentQNetImpl(int64_t obs_dim, ChoiceCodes codes, int64_t hidden,
                const std::vector<int64_t>& head_hidden, int heads, bool recurrent, double dropout,
                bool factorised = false);
  // obs [B, obs_dim]; choices [B, D] (int64 digit of each decision) -> Q per head [B, K].
  torch::Tensor forward(torch::Tensor obs, torch::Tensor choices);
  // The codes of every decision's choice side by side: choices [B, D] -> [B, sum of widths].
  torch::Tensor ActionCode(torch::Tensor choices) const;
  ChoiceCodes codes;
  int64_t code_width = 0;  // widest decision code: the GRU's action input
  bool recurrent = true;
  TwoTower tower{nullptr};  // factorised: the whole network
  torch::nn::GRU gru{nullptr};
  Mlp encoder{nullptr};
  std::vector<Mlp> heads;
  torch::nn::Linear fused_heads{nullptr};
};
TORCH_MODULE(AgentQNet);

// QMIX's monotone mixer: a hypernetwork of the global state gives W1, b1, W2, b2 with
// W = softplus(.) >= 0, so Q_tot = relu(Q W1 + b1) W2 + b2 is non-decreasing in every agent's Q.
struct MonotoneMixerImpl : torch::nn::Module {
  MonotoneMixerImpl(int64_t agents, int64_t state_dim, int64_t embed);
  torch::Tensor forward(torch::Tensor agent_q, torch::Tensor state);  // [B, n], [B, S] -> [B]
  int64_t agents, embed;
  torch::nn::Linear w1{nullptr}, b1{nullptr}, w2{nullptr};
  Mlp b2{nullptr};
};
TORCH_MODULE(MonotoneMixer);

// ComRecycle's uplift model: item embeddings + GRU over the behaviour sequence and the dense
// features feed an MMoE; task 0 is the base logit (no reuse), tasks 1..3 the uplift of reusing the
// recall / pre-rank / rank cache. Efficiency e_j = sigmoid(base + uplift_j).
struct UpliftModelImpl : torch::nn::Module {
  UpliftModelImpl(int64_t dense_dim, int64_t vocab, int64_t embed_dim, int64_t hidden);
  // dense [B, F]; behaviour [B, L] item ids (0 = padding) -> logits [B, 4] (base,
  // base+uplift_1..3).
  torch::Tensor forward(torch::Tensor dense, torch::Tensor behaviour);
  torch::nn::Embedding embedding{nullptr};
  torch::nn::GRU gru{nullptr};
  Mmoe mmoe{nullptr};
};
TORCH_MODULE(UpliftModel);

}  // namespace allot::models
