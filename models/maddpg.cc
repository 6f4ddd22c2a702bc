// MADDPG's critic and actors; see maddpg.h.
#include "models/maddpg.h"

#include <algorithm>
#include <cmath>

#include "models/served_scores.h"
#include "policy/action_space.h"

namespace allot::models {
namespace {

// Gaussian noise on a continuous queue's position in its range (0..1) while the actors train.
constexpr double kPositionNoise = 0.1;
// Weight of the newest actor in its Polyak average after each step.
constexpr double kPolyakTau = 0.01;

torch::Tensor FullChainRows(const RowTensors& c) { return c.full_chain.nonzero().squeeze(1); }

// Per agent's module, the range of log prices to train the actors over: the 5th to 95th
// percentile of the logged prices, widened three times each way (the controller will wander
// beyond what was logged), within the config's lambda bounds. Unlogged or zero prices leave the
// module's initial price x/ 10.
std::pair<double, double> PriceRange(const AllotConfig& config, size_t agent,
                                     const std::vector<float>& logged) {
  std::vector<double> positive;
  for (float x : logged)
    if (x > 0 && std::isfinite(x)) positive.push_back(x);
  double lo = 0, hi = 0;
  if (positive.size() >= 20) {
    std::sort(positive.begin(), positive.end());
    lo = positive[positive.size() / 20] / 3;
    hi = positive[positive.size() - 1 - positive.size() / 20] * 3;
  } else {
    const int m = config.ModuleIndex(config.agents[agent].module);
    const double initial = m >= 0 ? config.modules[static_cast<size_t>(m)].initial_lambda : 0.0;
    lo = (initial > 0 ? initial : 1.0) / 10;
    hi = (initial > 0 ? initial : 1.0) * 10;
  }
  if (config.lambda.max > 0) hi = std::min(hi, config.lambda.max);
  lo = std::max({lo, config.lambda.min, 1e-6});
  hi = std::max(hi, lo * 1.01);
  return {std::log(lo), std::log(hi)};
}

// Every parameter of the given modules.
std::vector<torch::Tensor> ParametersOf(const std::vector<Mlp>& modules) {
  std::vector<torch::Tensor> params;
  for (const Mlp& m : modules)
    for (const torch::Tensor& p : m->parameters()) params.push_back(p);
  return params;
}

// The critic's and the cost models' weights take no gradient while the actors train through them.
class FrozenDuring {
 public:
  explicit FrozenDuring(BundleModelsImpl& models) {
    for (torch::Tensor& p : models.parameters()) {
      if (p.requires_grad()) frozen_.push_back(p);
    }
    const std::vector<torch::Tensor> actors = ParametersOf(models.actor);
    for (torch::Tensor& p : frozen_) {
      const bool actor = std::any_of(actors.begin(), actors.end(),
                                     [&](const torch::Tensor& a) { return a.is_same(p); });
      if (!actor) p.requires_grad_(false);
    }
  }
  ~FrozenDuring() {
    for (torch::Tensor& p : frozen_) p.requires_grad_(true);
  }
  FrozenDuring(const FrozenDuring&) = delete;
  FrozenDuring& operator=(const FrozenDuring&) = delete;

 private:
  std::vector<torch::Tensor> frozen_;
};

// Mean core-ms of each agent's step on the validation rows where every agent ran (1 each where
// there are none), for Stake.
torch::Tensor MeanStepCost(const RowTensors& val) {
  const torch::Tensor mean = torch::stack(val.cost, 1).index_select(0, FullChainRows(val)).mean(0);
  return torch::nan_to_num(mean, 1.0);
}

// Revenue minus the priced compute of every agent's step, as the critic predicts them for the
// given codes, per row, in units of the revenue scale. lambda: [B, agents], each agent's module's
// price in revenue per core-ms.
torch::Tensor NetOfActions(BundleModelsImpl& models, const std::vector<torch::Tensor>& obs,
                           const std::vector<torch::Tensor>& codes,
                           const torch::Tensor& last_log_base, const torch::Tensor& lambda,
                           double scale) {
  const torch::Tensor out = CriticOutputs(models, last_log_base, obs, codes).exp();
  return out.select(1, 0) - (out.slice(1, 1) * lambda / scale).sum(1);
}

// What is at stake in each row at its prices: its value plus the typical priced compute of a
// request (mean core-ms per agent's step), in units of the revenue scale. Dividing a row's net by
// it leaves the row's best action as it is and keeps dear rows (whose nets run to -100) from
// drowning the gradient of cheap ones.
torch::Tensor Stake(const torch::Tensor& last_log_base, const torch::Tensor& lambda,
                    const torch::Tensor& mean_cost, double scale) {
  return last_log_base.exp() + (lambda * mean_cost / scale).sum(1);
}

// How far each actor is from the best of its agent's joint actions by its own critic, the other
// agents acting as their actors do: the share of rows where it chose that best, and the mean
// shortfall in units of each row's stake. A large shortfall with a good critic fit means the
// actors are under-trained, not the critic wrong.
void MeasureRegret(ActorCriticRun& run, const std::vector<torch::Tensor>& obs,
                   const std::vector<torch::Tensor>& actor_codes, const torch::Tensor& base,
                   const torch::Tensor& lambda, double scale) {
  constexpr int64_t kMaxRows = 1000;
  BundleModelsImpl& models = *run.models;
  const int64_t rows = std::min<int64_t>(kMaxRows, base.size(0));
  const torch::Tensor mean_cost = MeanStepCost(run.val);
  const torch::Tensor stake =
      Stake(base.narrow(0, 0, rows), lambda.narrow(0, 0, rows), mean_cost, scale);
  for (size_t i = 0; i < obs.size(); ++i) {
    const torch::Tensor all =
        models.ActionCode(i, AllJointDigits(ActionSpace(run.config.agents[i])));
    const int64_t a = all.size(0);
    std::vector<torch::Tensor> o, codes;
    for (size_t k = 0; k < obs.size(); ++k) {
      o.push_back(obs[k].narrow(0, 0, rows).repeat_interleave(a, 0));
      codes.push_back(k == i ? all.repeat({rows, 1})
                             : actor_codes[k].narrow(0, 0, rows).repeat_interleave(a, 0));
    }
    const torch::Tensor net =
        NetOfActions(models, o, codes, base.narrow(0, 0, rows).repeat_interleave(a, 0),
                     lambda.narrow(0, 0, rows).repeat_interleave(a, 0), scale)
            .reshape({rows, a});
    const torch::Tensor chosen =
        NetOfActions(models, obs, actor_codes, base, lambda, scale).narrow(0, 0, rows);
    const torch::Tensor best = std::get<0>(net.max(1));
    const std::string& agent = run.config.agents[i].name;
    run.metrics["actor_" + agent + "_critic_best_share"] =
        (chosen >= best - 1e-6).to(torch::kDouble).mean().item<double>();
    run.metrics["actor_" + agent + "_critic_regret"] =
        ((best - chosen) / stake).mean().item<double>();
  }
}

// The actors' choices on the validation rows where every agent ran, at the logged prices: how
// varied they are, and what the critic and cost models make of them against the logged actions.
void MeasureActors(ActorCriticRun& run, double scale) {
  torch::NoGradGuard no_grad;
  BundleModelsImpl& models = *run.models;
  const RowTensors& v = run.val;
  const torch::Tensor rows = FullChainRows(v);
  const int64_t n_rows = rows.size(0);
  if (n_rows == 0) return;
  const size_t n = run.config.agents.size();
  std::vector<float> logged_lambda(static_cast<size_t>(n_rows) * n);
  const int64_t* row = rows.data_ptr<int64_t>();
  for (int64_t r = 0; r < n_rows; ++r)
    for (size_t k = 0; k < n; ++k)
      logged_lambda[static_cast<size_t>(r) * n + k] =
          run.val_log.agents[k].lambda[static_cast<size_t>(row[r])];
  const auto agents = static_cast<int64_t>(n);
  const torch::Tensor lambda = FloatTensor(logged_lambda, {n_rows, agents});
  const torch::Tensor positions =
      ((lambda.clamp_min(1e-30).log() - models.log_lambda_mid) / models.log_lambda_half)
          .clamp(-1, 1);
  std::vector<torch::Tensor> obs, actor_codes, logged_codes;
  for (size_t i = 0; i < n; ++i) {
    const std::string& agent = run.config.agents[i].name;
    obs.push_back(v.obs[i].index_select(0, rows));
    const torch::Tensor raw = ActorRaw(models, i, obs.back(), positions).contiguous();
    actor_codes.push_back(RelaxedActorCode(models, i, raw, /*explore=*/false));
    logged_codes.push_back(models.ActionCode(i, v.digits[i].index_select(0, rows)));
    const ActionSpace space(run.config.agents[i]);
    std::vector<int64_t> count(space.size(), 0);
    const float* out = raw.data_ptr<float>();
    const auto width = static_cast<size_t>(raw.size(1));
    for (int64_t r = 0; r < n_rows; ++r) {
      const size_t joint = ActorJoint(space, models.continuous[i], out + r * width);
      if (joint < count.size()) ++count[joint];
    }
    run.metrics["actor_" + agent + "_distinct_actions"] = static_cast<double>(
        std::count_if(count.begin(), count.end(), [](int64_t c) { return c > 0; }));
    run.metrics["actor_" + agent + "_top_action_share"] =
        static_cast<double>(*std::max_element(count.begin(), count.end())) /
        static_cast<double>(n_rows);
  }
  const torch::Tensor base = v.log_base[n - 1].index_select(0, rows);
  MeasureRegret(run, obs, actor_codes, base, lambda, scale);
  const double actor =
      NetOfActions(models, obs, actor_codes, base, lambda, scale).mean().item<double>();
  const double logged =
      NetOfActions(models, obs, logged_codes, base, lambda, scale).mean().item<double>();
  // Above 1: the critic expects the actors to net more than the logging policy did.
  run.metrics["actor_critic_net_over_logged"] = logged > 0 ? actor / logged : 0.0;
}

}  // namespace

torch::Tensor ActorRaw(BundleModelsImpl& models, size_t agent, const torch::Tensor& obs,
                       const torch::Tensor& prices) {
  return models.actor[agent]->forward(torch::cat({obs, prices}, 1));
}

torch::Tensor RelaxedActorCode(BundleModelsImpl& models, size_t agent, const torch::Tensor& raw,
                               bool explore) {
  std::vector<torch::Tensor> parts;
  int64_t column = 0;
  for (size_t d = 0; d < models.codes[agent].size(); ++d) {
    const torch::Tensor& code = models.codes[agent][d];  // [choices, width]
    const int64_t choices = code.size(0);
    torch::Tensor weights;  // [B, choices]
    if (models.continuous[agent][d]) {
      torch::Tensor u = torch::sigmoid(raw.select(1, column));
      if (explore) u = (u + kPositionNoise * torch::randn_like(u)).clamp(0, 1);
      // Hat functions on the grid: weight 1 - |position - k| on the two nearest lengths.
      const torch::Tensor grid = torch::arange(choices, torch::kFloat);
      const torch::Tensor position = u.unsqueeze(1) * static_cast<double>(choices - 1);
      weights = (1 - (position - grid).abs()).clamp_min(0);
      column += 1;
    } else {
      const torch::Tensor logits = raw.slice(1, column, column + choices);
      if (explore) {
        weights = torch::nn::functional::gumbel_softmax(
            logits, torch::nn::functional::GumbelSoftmaxFuncOptions().tau(1.0).hard(true).dim(1));
      } else {
        weights = torch::one_hot(logits.argmax(1), choices).to(torch::kFloat);
      }
      column += choices;
    }
    parts.push_back(torch::matmul(weights, code));
  }
  return torch::cat(parts, 1);
}

torch::Tensor CriticOutputs(BundleModelsImpl& models, const torch::Tensor& last_log_base,
                            const std::vector<torch::Tensor>& obs,
                            const std::vector<torch::Tensor>& codes) {
  const torch::Tensor out = models.critic->forward(models.JointState(obs, codes));
  return torch::cat({(last_log_base + out.select(1, 0)).unsqueeze(1), out.slice(1, 1)}, 1);
}

void SetPriceRange(BundleModelsImpl& models, const AllotConfig& config, const TrainingLog& log) {
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < config.agents.size(); ++k) {
    std::vector<float> logged;
    const AgentColumns& columns = log.agents[k];
    for (size_t r = 0; r < log.rows; ++r)
      if (columns.present[r]) logged.push_back(columns.lambda[r]);
    const auto [lo, hi] = PriceRange(config, k, logged);
    models.log_lambda_mid[static_cast<int64_t>(k)] = (lo + hi) / 2;
    models.log_lambda_half[static_cast<int64_t>(k)] = (hi - lo) / 2;
  }
}

void FitCentralCritic(ActorCriticRun& run) {
  BundleModels& models = run.models;
  const size_t n = run.config.agents.size();
  const std::vector<torch::Tensor> params = models->critic->parameters();
  torch::optim::Adam opt(params, torch::optim::AdamOptions(run.options.lr));
  auto outputs = [&](const RowTensors& c, const torch::Tensor& b) {
    std::vector<torch::Tensor> obs, codes;
    for (size_t i = 0; i < n; ++i) {
      obs.push_back(c.obs[i].index_select(0, b));
      codes.push_back(models->ActionCode(i, c.digits[i].index_select(0, b)));
    }
    return CriticOutputs(*models, c.log_base[n - 1].index_select(0, b), obs, codes);
  };
  auto step_costs = [&](const RowTensors& c, const torch::Tensor& b) {
    return torch::stack(c.cost, 1).index_select(0, b);  // [B, agents]
  };
  run.steps.Run(
      "critic", run.options.epochs, opt, params,
      [&](const RowTensors& c, const torch::Tensor& b) {
        const torch::Tensor out = outputs(c, b);
        const torch::Tensor base = c.log_base[n - 1].index_select(0, b);
        return MaskedPoisson(out.select(1, 0), c.reward.index_select(0, b),
                             LossWeight(run.options.q_weighting, base)) +
               MaskedPoisson(out.slice(1, 1), step_costs(c, b), torch::ones({b.size(0), 1}));
      },
      &models, FullChainRows);
  torch::NoGradGuard no_grad;
  const torch::Tensor val = FullChainRows(run.val);
  if (val.size(0) == 0) return;
  const torch::Tensor out = outputs(run.val, val);
  const torch::Tensor y = run.val.reward.index_select(0, val).to(torch::kDouble);
  run.metrics["critic_deviance"] = PoissonDeviance(y, out.select(1, 0).to(torch::kDouble));
  run.metrics["critic_deviance_user_value_only"] =
      PoissonDeviance(y, run.val.log_base[n - 1].index_select(0, val).to(torch::kDouble));
  const torch::Tensor cost_error = (out.slice(1, 1).exp() - step_costs(run.val, val)).abs().mean(0);
  for (size_t i = 0; i < n; ++i) {
    run.metrics["critic_cost_" + run.config.agents[i].name + "_mae_ms"] =
        cost_error[static_cast<int64_t>(i)].item<double>();
  }
}

void FitActors(ActorCriticRun& run) {
  BundleModels& models = run.models;
  const size_t n = run.config.agents.size();
  const double scale = run.steps.scale;
  SetPriceRange(*models, run.config, run.val_log);
  const std::vector<torch::Tensor> params = ParametersOf(models->actor);
  const torch::Tensor mean_cost = MeanStepCost(run.val);
  std::vector<torch::Tensor> averaged;
  for (const torch::Tensor& p : params) averaged.push_back(p.detach().clone());
  {
    FrozenDuring frozen(*models);
    torch::optim::Adam opt(params, torch::optim::AdamOptions(run.options.lr));
    const auto agents = static_cast<int64_t>(n);
    run.steps.Run(
        "actors", run.options.epochs, opt, params,
        [&](const RowTensors& c, const torch::Tensor& b) {
          // Each row at its own prices, uniform in log over the trained range.
          const torch::Tensor positions = torch::rand({b.size(0), agents}) * 2 - 1;
          const torch::Tensor lambda =
              (models->log_lambda_mid + models->log_lambda_half * positions).exp();
          std::vector<torch::Tensor> obs, codes;
          for (size_t i = 0; i < n; ++i) {
            obs.push_back(c.obs[i].index_select(0, b));
            codes.push_back(RelaxedActorCode(*models, i,
                                             ActorRaw(*models, i, obs.back(), positions),
                                             /*explore=*/true));
          }
          const torch::Tensor base = c.log_base[n - 1].index_select(0, b);
          const torch::Tensor net = NetOfActions(*models, obs, codes, base, lambda, scale);
          return -(net / Stake(base, lambda, mean_cost, scale)).mean();
        },
        &models, FullChainRows,
        [&] {
          torch::NoGradGuard no_grad;
          for (size_t k = 0; k < params.size(); ++k)
            averaged[k].mul_(1 - kPolyakTau).add_(params[k].detach(), kPolyakTau);
        });
  }
  {
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < params.size(); ++k) params[k].copy_(averaged[k]);
  }
  MeasureActors(run, scale);
}

}  // namespace allot::models
