// Construction of the bundle's networks from the config's schema and the architecture.
#include "models/bundle_models.h"

#include "models/served_scores.h"

namespace allot::models {

BundleModelsImpl::BundleModelsImpl(const AllotConfig& config, const Architecture& a)
    : arch(a), buckets(config.value_model.num_buckets()) {
  int64_t state_dim = 0;
  for (size_t i = 0; i < config.agents.size(); ++i) {
    codes.push_back(MakeChoiceCodes(config.agents[i]));
    widths.push_back(static_cast<int64_t>(config.agents[i].features.size()));
    const std::string n = std::to_string(i);
    value.push_back(register_module("value" + n, Dcn(widths[i], arch.cross_layers, arch.deep, 1)));
    // One log-cost output per module the choice loads: the agent's own and every later agent's.
    const int64_t cost_outputs = static_cast<int64_t>(config.agents.size() - i);
    if (arch.factorised) {
      cost_tower.push_back(register_module(
          "cost_tower" + n, TwoTower(obs_dim(i), action_dim(i), arch.hidden, cost_outputs)));
    } else {
      cost.push_back(register_module(
          "cost" + n, Dcn(obs_dim(i) + action_dim(i), arch.cross_layers, arch.deep, cost_outputs)));
    }
    q.push_back(register_module(
        "q" + n, AgentQNet(obs_dim(i), codes[i], arch.hidden, arch.head_hidden, arch.heads,
                           arch.recurrent(), arch.dropout, arch.factorised)));
    state_dim += obs_dim(i) + action_dim(i);
  }
  reuse = register_module("reuse", Mlp(reuse_dim(), std::vector<int64_t>{32}, 1));
  if (arch.mixed()) {
    mixer = register_module("mixer", MonotoneMixer(static_cast<int64_t>(config.agents.size()),
                                                   state_dim, arch.mixer_embed));
  }
  if (arch.traits().actors) AddActorCritic(config, state_dim);
}

void BundleModelsImpl::AddActorCritic(const AllotConfig& config, int64_t state_dim) {
  const auto agents = static_cast<int64_t>(config.agents.size());
  log_lambda_mid = register_buffer("log_lambda_mid", torch::zeros({agents}));
  log_lambda_half = register_buffer("log_lambda_half", torch::ones({agents}));
  for (size_t i = 0; i < config.agents.size(); ++i) {
    continuous.push_back(ContinuousDecisions(config.agents[i]));
    actor_outputs.push_back(
        static_cast<int64_t>(ActorOutputs(ActionSpace(config.agents[i]), continuous.back())));
    actor.push_back(register_module(
        "actor" + std::to_string(i),
        Mlp(actor_dim(i), std::vector<int64_t>{arch.hidden, arch.hidden}, actor_outputs.back())));
  }
  critic = register_module(
      "critic", Mlp(state_dim, std::vector<int64_t>{2 * arch.hidden, 2 * arch.hidden}, 1 + agents));
}

int64_t BundleModelsImpl::action_dim(size_t agent) const {
  int64_t total = 0;
  for (const torch::Tensor& c : codes[agent]) total += c.size(1);
  return total;
}

torch::Tensor BundleModelsImpl::Observation(torch::Tensor features, torch::Tensor bucket) const {
  return torch::cat({features, torch::one_hot(bucket, buckets).to(torch::kFloat)}, 1);
}

torch::Tensor BundleModelsImpl::ActionCode(size_t agent, torch::Tensor digits) const {
  return q[agent]->ActionCode(digits);
}

torch::Tensor BundleModelsImpl::LogCost(size_t agent, torch::Tensor obs, torch::Tensor code) {
  if (arch.factorised) return cost_tower[agent]->forward(obs, code);
  return cost[agent]->forward(torch::cat({obs, code}, 1));
}

torch::Tensor BundleModelsImpl::ReuseInput(torch::Tensor obs, torch::Tensor stage,
                                           torch::Tensor age, torch::Tensor size) const {
  return torch::cat(
      {obs, torch::one_hot(stage, kReuseStages).to(torch::kFloat),
       torch::log1p(age.clamp_min(0)).unsqueeze(1), (age.clamp_min(0) / 100).unsqueeze(1),
       torch::log1p(size.clamp_min(0)).unsqueeze(1)},
      1);
}

torch::Tensor BundleModelsImpl::MixerState(const std::vector<torch::Tensor>& obs,
                                           const std::vector<torch::Tensor>& digits) const {
  std::vector<torch::Tensor> action_codes;
  for (size_t i = 0; i < digits.size(); ++i) action_codes.push_back(ActionCode(i, digits[i]));
  return JointState(obs, action_codes);
}

torch::Tensor BundleModelsImpl::JointState(const std::vector<torch::Tensor>& obs,
                                           const std::vector<torch::Tensor>& action_codes) const {
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < obs.size(); ++i) {
    parts.push_back(obs[i]);
    parts.push_back(action_codes[i]);
  }
  return torch::cat(parts, 1);
}

torch::Tensor AllJointDigits(const ActionSpace& space) {
  const int64_t a = static_cast<int64_t>(space.size());
  const int64_t d = static_cast<int64_t>(space.num_decisions());
  torch::Tensor out = torch::empty({a, d}, torch::kInt64);
  auto acc = out.accessor<int64_t, 2>();
  for (int64_t j = 0; j < a; ++j) {
    for (int64_t k = 0; k < d; ++k) {
      const uint32_t choice = space.Choice(static_cast<size_t>(j), static_cast<size_t>(k));
      int64_t digit = 0;
      while (space.ChoiceValue(static_cast<size_t>(k), static_cast<size_t>(digit)) != choice)
        ++digit;
      acc[j][k] = digit;
    }
  }
  return out;
}

std::optional<ActorServing> BundleModelsImpl::ActorPrices(const AllotConfig& config) const {
  if (actor.empty()) return std::nullopt;
  auto floats = [](const torch::Tensor& t) {
    const torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  };
  return ActorServing(config, floats(log_lambda_mid), floats(log_lambda_half));
}

}  // namespace allot::models
