// The networks of one bundle, shared by the trainer and the server-side scorer (models-internal:
// includes LibTorch).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "models/bundle_manifest.h"
#include "models/nets.h"
#include "models/served_scores.h"
#include "policy/action_space.h"
#include "policy/config.h"

namespace allot::models {

// Per agent i: the user-value model (DCN, log of the expected revenue of the request), the cost
// model (DCN on the observation and the action; output k is the log of the core-ms that agent
// i + k's module spends, so a choice is charged for the compute it causes later in the chain),
// and the action-value network, whose mean head is the log uplift of the action over the user
// value: value(s, a) = exp(calib_a + log_value(s) + calib_b * mean_k Q_k(s, a)) in revenue units,
// non-negative by construction (the structure of the analytic model and of ComRecycle's
// base-plus-uplift logits).

inline constexpr int64_t kReuseStages = 3;
struct BundleModelsImpl : torch::nn::Module {
  BundleModelsImpl(const AllotConfig& config, const Architecture& arch);

  int64_t obs_dim(size_t agent) const { return widths[agent] + buckets; }
  int64_t action_dim(size_t agent) const;
  // Observation: features and the one-hot value bucket. features [B, F], bucket [B] int64.
  torch::Tensor Observation(torch::Tensor features, torch::Tensor bucket) const;
  // The choice code of every decision (see ChoiceCodes): digits [B, D] -> [B, action_dim].
  torch::Tensor ActionCode(size_t agent, torch::Tensor digits) const;
  // Global state for the mixer: every agent's observation and action.
  torch::Tensor MixerState(const std::vector<torch::Tensor>& obs,
                           const std::vector<torch::Tensor>& digits) const;
  // The same from action codes (MADDPG's critic reads its actors' relaxed codes).
  torch::Tensor JointState(const std::vector<torch::Tensor>& obs,
                           const std::vector<torch::Tensor>& action_codes) const;

  Architecture arch;
  int64_t buckets;
  std::vector<int64_t> widths;
  std::vector<ChoiceCodes> codes;  // per agent
  std::vector<Dcn> value;
  std::vector<Dcn> cost;             // per agent, unless factorised
  std::vector<TwoTower> cost_tower;  // per agent, when factorised
  // The cost model's log core-ms per output (see above): obs [B, obs_dim], code [B, action_dim].
  torch::Tensor LogCost(size_t agent, torch::Tensor obs, torch::Tensor code);
  std::vector<AgentQNet> q;
  MonotoneMixer mixer{nullptr};
  // ComRecycle's reuse model for the first agent (the one that sees the cache): on
  // ReuseInput(...) it gives the log of the share of the value a reuse keeps (see Retained).
  Mlp reuse{nullptr};
  int64_t reuse_dim() const { return obs_dim(0) + kReuseStages + 3; }
  // [obs, one-hot of the reused stage (recall, pre-rank, rank), log1p(age s), age s / 100,
  // log1p(size)]: the age both ways, so that an immediate loss and an exponential decay are
  // equally easy to fit.
  torch::Tensor ReuseInput(torch::Tensor obs, torch::Tensor stage, torch::Tensor age,
                           torch::Tensor size) const;
  // The log of the share of the user value a reuse makes (see RetainedShare in served_scores.h).
  torch::Tensor LogRetained(torch::Tensor raw) const {
    return arch.reuse_share_capped ? -torch::softplus(raw) : raw.clamp_max(kMaxLogReuseShare);
  }

  // MADDPG (an algorithm with actors; see maddpg.h). Per agent, a deterministic actor on
  // [observation, the prices of every agent's module as ActorServing::WritePrices scales them]
  // with ActorOutputs outputs; one centralised critic on JointState: the log of the request's
  // revenue over the last agent's user value, and the log core-ms of every agent's step
  // (CriticOutputs in maddpg.h). The log-price range the actors trained over
  // (mid +- half, per agent's module) is kept with the weights.
  std::vector<Mlp> actor;
  Mlp critic{nullptr};
  torch::Tensor log_lambda_mid, log_lambda_half;  // [agents]
  std::vector<DecisionRanges> continuous;         // per agent: ContinuousDecisions
  std::vector<int64_t> actor_outputs;             // per agent
  int64_t actor_dim(size_t agent) const { return obs_dim(agent) + log_lambda_mid.size(0); }
  // How the served actors read the prices; none when the bundle has no actors.
  std::optional<ActorServing> ActorPrices(const AllotConfig& config) const;

 private:
  void AddActorCritic(const AllotConfig& config, int64_t state_dim);
};
TORCH_MODULE(BundleModels);

// All joint actions of an agent as digits [A, D] (int64), in joint-index order.
torch::Tensor AllJointDigits(const ActionSpace& space);

}  // namespace allot::models
