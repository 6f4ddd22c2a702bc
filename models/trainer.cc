// Training runs in three stages: the user-value models (their buckets become part of the agents'
// observations), the cost models, then the action-value networks of the chosen method.
#include "models/trainer.h"

#include <ATen/Parallel.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>

#include "models/bundle.h"
#include "models/bundle_models.h"
#include "models/cost_map.h"
#include "models/fitted_range.h"
#include "models/log_check.h"
#include "models/maddpg.h"
#include "models/policy_checks.h"
#include "models/rank_correlation.h"
#include "models/training_steps.h"
#include "models/unlogged_actions.h"
#include "policy/analytic_scorer.h"
#include "policy/cache_reuse.h"
#include "policy/yaml_map.h"

namespace allot::models {
namespace {

// Every parameter of the given modules, for one optimiser.
template <typename ModuleHolder>
std::vector<torch::Tensor> ParametersOf(const std::vector<ModuleHolder>& modules) {
  std::vector<torch::Tensor> params;
  for (const auto& m : modules) {
    auto p = m->parameters();
    params.insert(params.end(), p.begin(), p.end());
  }
  return params;
}

// The cost model's parameters, whichever network it is (the other list is empty).
std::vector<torch::Tensor> CostParametersOf(const BundleModels& models) {
  std::vector<torch::Tensor> params = ParametersOf(models->cost);
  for (const torch::Tensor& p : ParametersOf(models->cost_tower)) params.push_back(p);
  return params;
}

void CopyParameters(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto source = from.named_parameters();
  for (auto& p : to.named_parameters()) p.value().copy_(source[p.key()]);
}

std::string NewVersion(const std::string& models_dir, const std::string& algorithm) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::gmtime(&now));
  std::string version = std::string(stamp) + "-" + algorithm;
  for (int n = 2; std::filesystem::exists(std::filesystem::path(models_dir) / version); ++n) {
    version = std::string(stamp) + "-" + algorithm + "-" + std::to_string(n);
  }
  return version;
}

std::vector<double> ToDoubles(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// The rows of `rows` (int64 indices) on which the agent ran.
torch::Tensor PresentRows(const torch::Tensor& rows, const torch::Tensor& present) {
  return rows.index_select(0, present.index_select(0, rows).nonzero().squeeze(1));
}

std::string Fixed(double x) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4f", x);
  return text;
}

struct CollapseReport {
  std::map<std::string, double> metrics;
  std::vector<std::string> warnings;
};

// [1, joint actions]: the share of its value each of agent i's joint actions keeps as served.
torch::Tensor LoggedShares(const LoggedEvidence& evidence, size_t i, int64_t joint_actions) {
  const auto a = static_cast<size_t>(joint_actions);
  std::vector<double> share(a, 1.0);
  if (i < evidence.logged_counts.size() && evidence.logged_counts[i].size() == a)
    share = LoggedEvidenceShares(evidence.logged_counts[i]);
  return FloatTensor(std::vector<float>(share.begin(), share.end()), {1, joint_actions});
}

// Re-decides validation requests with the trained models at the prices they were logged at and
// asks DetectCollapse whether the choices look broken (the failure that fixed "rank queue 40,
// heavy model on" for every request of a chain in the past, with no sign in the fit metrics).
CollapseReport CheckCollapse(BundleModelsImpl& models, const AllotConfig& config,
                             const TrainingLog& log, const std::vector<torch::Tensor>& obs,
                             const std::vector<torch::Tensor>& log_base,
                             const std::vector<torch::Tensor>& present,
                             const torch::Tensor& val_rows, const std::vector<double>& calib_a,
                             double scale, const LoggedEvidence& evidence) {
  constexpr int64_t kMaxRows = 1500;
  CollapseReport report;
  const size_t n_agents = config.agents.size();
  for (size_t i = 0; i < n_agents; ++i) {
    const ActionSpace space(config.agents[i]);
    const std::string agent = config.agents[i].name;
    torch::Tensor val = PresentRows(val_rows, present[i]);
    val = val.slice(0, 0, std::min<int64_t>(kMaxRows, val.size(0))).contiguous();
    const int64_t rows = val.size(0);
    if (rows == 0) continue;
    const torch::Tensor all_digits = AllJointDigits(space);
    const int64_t a = all_digits.size(0);
    const torch::Tensor o = obs[i].index_select(0, val);
    const torch::Tensor o_all = o.unsqueeze(1).expand({rows, a, o.size(1)}).reshape({rows * a, -1});
    const torch::Tensor d_all = all_digits.repeat({rows, 1});
    const torch::Tensor log_q = models.q[i]->forward(o_all, d_all).mean(1).reshape({rows, a}) +
                                log_base[i].index_select(0, val).unsqueeze(1) + calib_a[i];
    // As served: each value discounted by its joint action's logged count (WeighWhatTheLogsHeld).
    torch::Tensor priced = log_q.exp() * scale * LoggedShares(evidence, i, a);
    const torch::Tensor cost = models.LogCost(i, o_all, models.ActionCode(i, d_all)).exp();
    const int64_t* row = val.data_ptr<int64_t>();
    std::vector<int64_t> logged(static_cast<size_t>(rows));
    std::vector<double> net(static_cast<size_t>(rows));
    std::vector<float> price(static_cast<size_t>(rows));
    for (size_t k = 0; i + k < n_agents; ++k) {
      const AgentColumns& later = log.agents[i + k];
      for (int64_t r = 0; r < rows; ++r) price[static_cast<size_t>(r)] = later.lambda[row[r]];
      priced = priced - FloatTensor(price, {rows, 1}) *
                            cost.select(1, static_cast<int64_t>(k)).reshape({rows, a});
    }
    for (int64_t r = 0; r < rows; ++r) {
      const auto at = static_cast<size_t>(row[r]);
      logged[static_cast<size_t>(r)] = log.agents[i].joint[at];
      double spent = 0;
      for (size_t k = i; k < n_agents; ++k)
        spent += log.agents[k].lambda[at] * log.agents[k].cost[at];
      net[static_cast<size_t>(r)] = log.revenue[at] - spent;
    }
    // As served: never a joint action the logs did not hold.
    if (i < evidence.unlogged.size())
      for (const uint32_t j : evidence.unlogged[i])
        priced.select(1, j).fill_(-std::numeric_limits<float>::infinity());
    const torch::Tensor chosen_t = priced.argmax(1).contiguous();
    const std::vector<int64_t> chosen(chosen_t.data_ptr<int64_t>(),
                                      chosen_t.data_ptr<int64_t>() + rows);
    const CollapseCheck check = DetectCollapse(agent, chosen, logged, net, a, [&](int64_t joint) {
      return JointActionLabel(config.agents[i], space, static_cast<size_t>(joint));
    });
    report.metrics["policy_" + agent + "_top_action_share"] = check.top_share;
    report.metrics["policy_" + agent + "_logged_top_action_share"] = check.logged_top_share;
    report.metrics["policy_" + agent + "_distinct_actions"] = static_cast<double>(check.distinct);
    if (!check.warning.empty()) report.warnings.push_back(check.warning);
  }
  return report;
}

// One training run: the source of its rows, the models, and what each phase leaves for the next.
// The phases below run in TrainBundle's order; each names at its top what it uses. Training rows
// are read a chunk at a time (StepLoop); the validation rows stay in memory, as `val`.
struct TrainingRun {
  TrainingRun(TrainingSource& training_source, Collective& collective,
              const AllotConfig& allot_config, const TrainOptions& train_options,
              std::ostream& progress_out);

  TrainingSource& source;
  Collective& ranks;
  const TrainingLog& val_log;  // every rank's validation rows
  const AllotConfig& config;
  const TrainOptions& options;
  std::ostream& out;
  const AlgorithmTraits* method;
  std::mt19937_64 rng;
  Architecture arch;
  BundleModels models{nullptr};
  BundleModels target{nullptr};  // the action values' target networks
  size_t n_agents;
  // Revenue is heavy-tailed: every model trains on revenue / mean so one learning rate suits
  // every log; the served values are scaled back (the bundle's revenue_scale).
  double scale = 1.0, log_scale = 0.0;
  RowTensors val;          // the validation rows as tensors (derived after the user values)
  torch::Tensor val_rows;  // 0 .. validation rows - 1
  double mixer_weight = 1.0;
  TrainSummary summary;
  std::vector<std::string> warnings;
  CostMap cost_map;  // FitCostMapWhereItPredictsBetter
  std::vector<std::string> cost_source;
  bool serve_reuse_model = false;        // FitReuseModel
  std::vector<double> credit;            // ComputeCredit
  std::vector<double> calib_a, calib_b;  // CalibrateAndCheck
  LoggedEvidence evidence;               // WeighWhatTheLogsHeld

  bool lead() const { return ranks.rank() == 0; }
  // The step loop over this rank's training rows; progress lines from rank 0 only.
  StepLoop Steps() {
    return StepLoop{source,
                    ranks,
                    config,
                    rng,
                    options.batch,
                    scale,
                    options.progress && lead() ? &out : nullptr};
  }
};

Architecture ArchitectureFor(const TrainOptions& options, const AlgorithmTraits& method) {
  Architecture arch;
  arch.algorithm = options.algorithm;
  arch.heads = method.multi_head ? std::max(1, options.heads) : 1;
  arch.hidden = options.hidden;
  arch.head_hidden = options.head_hidden;
  arch.mixer_embed = options.mixer_embed;
  arch.dropout = options.dropout;
  arch.factorised = options.network == "factorised";
  return arch;
}

TrainingRun::TrainingRun(TrainingSource& training_source, Collective& collective,
                         const AllotConfig& allot_config, const TrainOptions& train_options,
                         std::ostream& progress_out)
    : source(training_source),
      ranks(collective),
      val_log(training_source.validation()),
      config(allot_config),
      options(train_options),
      out(progress_out),
      method(FindAlgorithm(train_options.algorithm)),
      // Ranks shuffle their own rows: one stream each.
      rng(train_options.seed + 7919 * static_cast<uint64_t>(collective.rank())),
      arch(ArchitectureFor(train_options, *method)),
      n_agents(allot_config.agents.size()) {
  // The networks' initial weights come from torch's generator: seeded before they are built, and
  // alike on every rank, which then take the same steps.
  torch::manual_seed(options.seed);
  at::set_num_threads(std::max(1, options.threads));
  models = BundleModels(config, arch);
  target = BundleModels(config, arch);
  const LogStatistics& stats = source.statistics();
  scale = std::max(1e-9, stats.train_revenue / std::max<double>(1.0, stats.train_rows));
  log_scale = std::log(scale);
  val = ToTensors(val_log, config, scale);
  val_rows = torch::arange(val.rows);
  mixer_weight = options.mixer_weight >= 0 ? options.mixer_weight : method->default_mixer_weight;
}

// User value: DCN with Poisson loss on revenue (log-rate output), per agent on the rows
// where it ran.
void FitUserValues(TrainingRun& run) {
  auto& models = run.models;
  const std::vector<torch::Tensor> params = ParametersOf(models->value);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(run.options.lr));
  run.Steps().Run("user-value", run.options.value_epochs, opt, params,
                  [&](const RowTensors& c, const torch::Tensor& b) {
                    torch::Tensor loss = torch::zeros({});
                    for (size_t i = 0; i < run.n_agents; ++i) {
                      const torch::Tensor log_rate =
                          models->value[i]->forward(c.features[i].index_select(0, b)).squeeze(1);
                      loss = loss + MaskedPoisson(log_rate, c.reward.index_select(0, b),
                                                  c.present[i].index_select(0, b));
                    }
                    return loss;
                  });
}

// Observations of the validation rows (the training chunks derive theirs as they are read), and
// how well the user values rank validation revenue.
void ComputeObservations(TrainingRun& run) {
  Derive(run.val, run.models, run.config, run.log_scale);
  for (size_t i = 0; i < run.n_agents; ++i) {
    const torch::Tensor val = PresentRows(run.val_rows, run.val.present[i]);
    const torch::Tensor v = (run.val.log_base[i] + run.log_scale).exp();
    run.summary.metrics["value_" + run.config.agents[i].name + "_rank_corr"] = SpearmanCorrelation(
        ToDoubles(v.index_select(0, val)), ToDoubles(run.val.revenue.index_select(0, val)));
  }
}

// Per agent, the core-ms of its module and of every later agent's module: [rows, n_agents - i].
torch::Tensor CostTargets(const RowTensors& rows, size_t agent) {
  std::vector<torch::Tensor> parts(rows.cost.begin() + static_cast<ptrdiff_t>(agent),
                                   rows.cost.end());
  return torch::stack(parts, 1);
}

// Cost: DCN on (observation, action) -> log core-ms of the agent's module and of every later
// agent's module, Poisson loss (non-negative by construction).
void FitCosts(TrainingRun& run) {
  auto& config = run.config;
  auto& models = run.models;
  auto& n_agents = run.n_agents;
  const std::vector<torch::Tensor> params = CostParametersOf(models);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(run.options.lr));
  run.Steps().Run(
      "cost", run.options.value_epochs, opt, params,
      [&](const RowTensors& c, const torch::Tensor& b) {
        torch::Tensor loss = torch::zeros({});
        for (size_t i = 0; i < n_agents; ++i) {
          const torch::Tensor log_cost =
              models->LogCost(i, c.obs[i].index_select(0, b),
                              models->ActionCode(i, c.digits[i].index_select(0, b)));
          loss = loss + MaskedPoisson(log_cost, CostTargets(c, i).index_select(0, b),
                                      c.present[i].index_select(0, b).unsqueeze(1));
        }
        return loss;
      },
      &models);
  torch::NoGradGuard no_grad;
  const RowTensors& v = run.val;
  for (size_t i = 0; i < n_agents; ++i) {
    const torch::Tensor val = PresentRows(run.val_rows, v.present[i]);
    const torch::Tensor predicted =
        models
            ->LogCost(i, v.obs[i].index_select(0, val),
                      models->ActionCode(i, v.digits[i].index_select(0, val)))
            .exp();
    const torch::Tensor truth = CostTargets(v, i).index_select(0, val);
    const std::string agent = config.agents[i].name;
    run.summary.metrics["cost_" + agent + "_mae_ms"] =
        (predicted.select(1, 0) - truth.select(1, 0)).abs().mean().item<double>();
    for (size_t k = 1; k < n_agents - i; ++k) {
      run.summary.metrics["cost_" + agent + "_to_" + config.agents[i + k].name + "_mae_ms"] =
          (predicted.select(1, static_cast<int64_t>(k)) - truth.select(1, static_cast<int64_t>(k)))
              .abs()
              .mean()
              .item<double>();
    }
  }
}

// The AutoBucket cost map, served per agent for its own module where it predicts the logged
// costs better than the learned cost model on the validation rows.
void FitCostMapWhereItPredictsBetter(TrainingRun& run) {
  auto& log = run.val_log;
  auto& config = run.config;
  auto& cost_map = run.cost_map;
  run.cost_source.assign(run.n_agents, "model");
  if (run.options.testbench_csv.empty()) return;
  // A test bench that cannot cover the config (a channel that never runs alone when
  // min_selected > 1, a bucket without traffic) leaves the learned cost model serving.
  const std::string bench = ReadConfigFile(run.options.testbench_csv);
  try {
    cost_map = FitCostMap(bench, run.options.testbench_csv, config);
  } catch (const CostMapError& e) {
    run.warnings.push_back(std::string("cost map not fitted, every agent's cost comes from the "
                                       "learned cost model: ") +
                           e.what());
  }
  for (size_t i = 0; i < run.n_agents && !cost_map.empty(); ++i) {
    const std::string& agent = config.agents[i].name;
    const torch::Tensor val = PresentRows(run.val_rows, run.val.present[i]);
    const torch::Tensor val_buckets = run.val.buckets[i].index_select(0, val).contiguous();
    const int64_t* bucket = val_buckets.data_ptr<int64_t>();
    const int64_t* row = val.data_ptr<int64_t>();
    double error = 0;
    for (int64_t k = 0; k < val.size(0); ++k) {
      const auto r = static_cast<size_t>(row[k]);
      error += std::abs(
          cost_map.At(i, static_cast<int>(bucket[k]), static_cast<size_t>(log.agents[i].joint[r])) -
          log.agents[i].cost[r]);
    }
    const double mae = error / std::max<double>(1.0, static_cast<double>(val.size(0)));
    run.summary.metrics["cost_map_" + agent + "_mae_ms"] = mae;
    if (mae < run.summary.metrics["cost_" + agent + "_mae_ms"]) run.cost_source[i] = "map";
  }
}

// The log of the share of value a reuse keeps, as the reuse model predicts it, for rows `b`.
torch::Tensor PredictedLogRetained(BundleModels& models, const RowTensors& c,
                                   const torch::Tensor& b) {
  const torch::Tensor input =
      models->ReuseInput(c.obs[0].index_select(0, b), c.reuse_stage.index_select(0, b),
                         c.reuse_age.index_select(0, b), c.reuse_size.index_select(0, b));
  return models->LogRetained(models->reuse->forward(input)).squeeze(1);
}

// ComRecycle's reuse model, on the requests where the first agent chose a cache reuse: revenue
// ~ Poisson(user value x retained share), the share a function of the request, the reused stage
// and the cached output's age and size. It is served where it fits validation revenue better
// than the config's half-life rule.
void FitReuseModel(TrainingRun& run) {
  auto& options = run.options;
  auto& models = run.models;
  auto& summary = run.summary;
  const size_t n_reuse = run.source.statistics().train_reuse_rows;
  summary.metrics["reuse_rows"] = static_cast<double>(n_reuse);
  const torch::Tensor val = run.val.reuse_stage.ge(0).nonzero().squeeze(1);
  if (n_reuse < 50 || val.size(0) == 0) return;
  const std::vector<torch::Tensor> params = models->reuse->parameters();
  torch::optim::Adam opt(params, torch::optim::AdamOptions(options.lr));
  run.Steps().Run(
      "reuse", 4 * options.value_epochs, opt, params,
      [&](const RowTensors& c, const torch::Tensor& b) {
        const torch::Tensor base = c.log_base[0].index_select(0, b);
        return MaskedPoisson(base + PredictedLogRetained(models, c, b), c.reward.index_select(0, b),
                             LossWeight(options.q_weighting, base));
      },
      &models, [](const RowTensors& c) { return c.reuse_stage.ge(0).nonzero().squeeze(1); });
  torch::NoGradGuard no_grad;
  const torch::Tensor y = run.val.reward.index_select(0, val).to(torch::kDouble);
  const torch::Tensor base = run.val.log_base[0].index_select(0, val).to(torch::kDouble);
  const torch::Tensor model_share = PredictedLogRetained(models, run.val, val).to(torch::kDouble);
  const torch::Tensor rule_share =
      run.val.half_life_share.index_select(0, val).to(torch::kDouble).log();
  const double dev_model = PoissonDeviance(y, base + model_share);
  const double dev_rule = PoissonDeviance(y, base + rule_share);
  summary.metrics["reuse_deviance"] = dev_model;
  summary.metrics["reuse_deviance_half_life"] = dev_rule;
  summary.metrics["reuse_retained_mean"] = model_share.exp().mean().item<double>();
  run.serve_reuse_model = dev_model < dev_rule;
}

// VGCA credit: w_t = Var_j E[R | a_t = j] over the agent's joint actions, normalised to mean 1.
// It weighs each agent's loss (agents whose choices move revenue more get more of the model's
// capacity) instead of scaling its reward, which would shrink the agent's values below revenue
// and mis-price its compute by the same factor. The normalisation makes it free of the revenue
// scale, so it is computed from the log's statistics in revenue units.
void ComputeCredit(TrainingRun& run) {
  auto& credit = run.credit;
  credit.assign(run.n_agents, 1.0);
  if (!run.method->vgca_credit) return;
  const LogStatistics& stats = run.source.statistics();
  double total = 0;
  for (size_t i = 0; i < run.n_agents; ++i) {
    const std::vector<double>& sum = stats.action_revenue[i];
    const std::vector<double>& rows = stats.action_rows[i];
    const double n = std::accumulate(rows.begin(), rows.end(), 0.0);
    const double mean = std::accumulate(sum.begin(), sum.end(), 0.0) / std::max(1.0, n);
    double var = 0;
    for (size_t a = 0; a < sum.size(); ++a)
      if (rows[a] > 0) var += rows[a] * std::pow(sum[a] / rows[a] - mean, 2);
    credit[i] = var / std::max(1.0, n);
    total += credit[i];
  }
  for (size_t i = 0; i < run.n_agents; ++i) {
    credit[i] = total > 0 ? run.n_agents * credit[i] / total : 1.0;
    run.summary.metrics["vgca_credit_" + run.config.agents[i].name] = credit[i] / run.n_agents;
  }
}

// Action values. Every agent's heads give the log uplift of its action over the user value,
// trained with a Poisson loss against the revenue that follows: the request's revenue, mixed
// with the next agent's target-network value of its logged action when td_lambda < 1 (SARSA
// along the chain). A cache-reuse request trains the agents that ran. The algorithms differ in
// the network (MLP or GRU over the decisions), the heads (awrq: K, error-proportional weights)
// and the central loss that couples the agents (vdn: mean, qmix/awrq: monotone mixer).
void FitActionValues(TrainingRun& run) {
  auto& options = run.options;
  auto& method = run.method;
  auto& models = run.models;
  auto& target = run.target;
  auto& n_agents = run.n_agents;
  std::vector<torch::Tensor> params = ParametersOf(models->q);
  if (method->mixer == Mixer::kMonotone) {
    auto p = models->mixer->parameters();
    params.insert(params.end(), p.begin(), p.end());
  }
  torch::optim::Adam opt(params, torch::optim::AdamOptions(options.lr));
  CopyParameters(*models, *target);
  int64_t step = 0;
  const BatchLoss loss = [&](const RowTensors& c, const torch::Tensor& b) {
    const torch::Tensor r = c.reward.index_select(0, b);
    std::vector<torch::Tensor> base, o, d, weight, log_q;
    for (size_t i = 0; i < n_agents; ++i) {
      base.push_back(c.log_base[i].index_select(0, b).unsqueeze(1));
      o.push_back(c.obs[i].index_select(0, b));
      d.push_back(c.digits[i].index_select(0, b));
      // Each row's loss weight, 0 where the agent did not run.
      weight.push_back(c.present[i].index_select(0, b) *
                       LossWeight(options.q_weighting, base.back().squeeze(1)));
      log_q.push_back(base.back() + models->q[i]->forward(o.back(), d.back()));  // [B, K]
    }
    torch::Tensor total = torch::zeros({});
    std::vector<torch::Tensor> agent_q;  // revenue / scale, for the central loss
    for (size_t i = 0; i < n_agents; ++i) {
      torch::Tensor y = r;
      if (i + 1 < n_agents && options.td_lambda < 1) {
        torch::NoGradGuard no_grad;
        const torch::Tensor next =
            (base[i + 1].squeeze(1) + target->q[i + 1]->forward(o[i + 1], d[i + 1]).mean(1)).exp();
        y = options.td_lambda * r + (1 - options.td_lambda) * options.gamma * next;
      }
      const torch::Tensor head_loss =
          MaskedPoisson(log_q[i], y.unsqueeze(1).expand_as(log_q[i]), weight[i].unsqueeze(1),
                        /*per_column=*/true);  // [K]
      total = total + run.credit[i] * head_loss.mean();
      // Error-proportional weights: heads that fit worse count more in the agent's Q.
      const torch::Tensor eta = (head_loss / head_loss.sum().clamp_min(1e-12)).detach();
      agent_q.push_back((log_q[i].exp() * eta).sum(1));
    }
    if (method->mixer != Mixer::kNone) {
      const torch::Tensor full = c.full_chain.index_select(0, b);
      // The forward value is the agents' Q; the gradient reaching them is scaled.
      const torch::Tensor q_raw = torch::stack(agent_q, 1);
      const torch::Tensor q_all =
          run.mixer_weight * q_raw + (1 - run.mixer_weight) * q_raw.detach();
      const torch::Tensor q_tot = method->mixer == Mixer::kSum
                                      ? q_all.mean(1)
                                      : models->mixer->forward(q_all, models->MixerState(o, d));
      total = total + CentralLoss(q_tot, r, full, base[0].squeeze(1), options.q_weighting);
    }
    return total;
  };
  const StepLoop::Result result =
      run.Steps().Run(options.algorithm, options.epochs, opt, params, loss, &models, {}, [&] {
        if (++step % options.target_update == 0) CopyParameters(*models, *target);
      });
  run.summary.transitions_per_second = result.rows / std::max(1e-9, result.seconds);
  run.summary.metrics["train_transitions_per_second"] = run.summary.transitions_per_second;
}

// MADDPG's centralised critic and price-conditioned actors (maddpg.h), after the per-agent
// action values that keep scoring every option.
void FitActorCritic(TrainingRun& run) {
  ActorCriticRun phase{run.Steps(), run.models,  run.config,         run.options,
                       run.val,     run.val_log, run.summary.metrics};
  FitCentralCritic(phase);
  FitActors(phase);
}

// The student's squared error against the teacher over every joint action of rows `b`: the head
// values (log uplift; DistillationTarget) and the log costs, per agent where it ran.
torch::Tensor DistillationLoss(BundleModels& teacher, BundleModels& student,
                               const std::vector<torch::Tensor>& joints, const RowTensors& c,
                               const torch::Tensor& b, double pessimism) {
  torch::Tensor loss = torch::zeros({});
  for (size_t i = 0; i < joints.size(); ++i) {
    const torch::Tensor o = c.obs[i].index_select(0, b);
    const int64_t rows = o.size(0), a = joints[i].size(0);
    const torch::Tensor o_all = o.unsqueeze(1).expand({rows, a, o.size(1)}).reshape({rows * a, -1});
    const torch::Tensor d_all = joints[i].repeat({rows, 1});
    const torch::Tensor code = teacher->ActionCode(i, d_all);
    torch::Tensor q, log_cost;
    {
      torch::NoGradGuard no_grad;
      q = DistillationTarget(teacher->q[i]->forward(o_all, d_all), pessimism);
      log_cost = teacher->LogCost(i, o_all, code);
    }
    const torch::Tensor w = c.present[i].index_select(0, b).repeat_interleave(a).unsqueeze(1);
    const torch::Tensor n = w.sum().clamp_min(1.0);
    loss = loss + ((student->q[i]->forward(o_all, d_all) - q).pow(2) * w).sum() / n / q.size(1) +
           ((student->LogCost(i, o_all, code) - log_cost).pow(2) * w).sum() / n / log_cost.size(1);
  }
  return loss;
}

// --network distilled: the trained action-value and cost networks (the teacher) are fitted by
// two-tower ones (TwoTower, the student) over every joint action of the training observations.
// Those targets are dense and free of revenue noise, where a two-tower trained directly sees one
// logged action and its noisy revenue per request (second world, seed 1: +dcaf 90.72 trained
// directly, 91.45 distilled, 91.35 for the teacher). The student is what the bundle serves; the
// user-value, reuse and mixer models are the teacher's.
void DistilIntoTwoTowers(TrainingRun& run) {
  Architecture student_arch = run.arch;
  student_arch.factorised = true;
  torch::manual_seed(run.options.seed + 1);  // alike on every rank
  BundleModels student(run.config, student_arch);
  BundleModels& teacher = run.models;
  {
    torch::NoGradGuard no_grad;
    const auto from = teacher->named_parameters();
    for (auto& p : student->named_parameters()) {
      if (const torch::Tensor* t = from.find(p.key())) p.value().copy_(*t);
    }
    const auto buffers = teacher->named_buffers();
    for (auto& b : student->named_buffers()) {
      if (const torch::Tensor* t = buffers.find(b.key())) b.value().copy_(*t);
    }
  }
  std::vector<torch::Tensor> params = ParametersOf(student->q);
  for (const torch::Tensor& p : CostParametersOf(student)) params.push_back(p);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(run.options.lr));
  std::vector<torch::Tensor> joints;
  for (const AgentConfig& agent : run.config.agents)
    joints.push_back(AllJointDigits(ActionSpace(agent)));
  const double pessimism = run.options.distil_pessimism;
  run.Steps().Run(
      "distil", run.options.distil_epochs, opt, params,
      [&](const RowTensors& c, const torch::Tensor& b) {
        if (run.options.distil_actions == 0)
          return DistillationLoss(teacher, student, joints, c, b, pessimism);
        // A fresh sample of each agent's joint actions per batch: an unbiased estimate of the
        // loss over all of them, at a fraction of the teacher's forward passes.
        std::vector<torch::Tensor> sampled;
        for (const torch::Tensor& all : joints) {
          const int64_t n = std::min<int64_t>(all.size(0), run.options.distil_actions);
          sampled.push_back(
              all.index_select(0, torch::randperm(all.size(0), torch::kLong).narrow(0, 0, n)));
        }
        return DistillationLoss(teacher, student, sampled, c, b, pessimism);
      },
      &teacher);
  run.models = student;
  run.arch = student_arch;
}

// What the logs held of each joint action, for the bundle to serve it by (unlogged_actions.h):
// every value discounted by its logged count (the manifest's logged_counts), and, from logs that
// hardly randomised, the joint actions they hardly held never chosen (unlogged_actions), which
// is said loudly.
void WeighWhatTheLogsHeld(TrainingRun& run) {
  const LogCheck check = CheckLogs(run.source.statistics().logged, run.config);
  run.evidence.unlogged.assign(run.n_agents, {});
  run.evidence.logged_counts.assign(run.n_agents, {});
  for (size_t i = 0; i < run.n_agents && i < check.agents.size(); ++i) {
    const AgentLogCheck& a = check.agents[i];
    run.summary.metrics["logs_" + a.agent + "_randomised_share"] =
        a.decided > 0 ? static_cast<double>(a.randomised) / static_cast<double>(a.decided) : 0.0;
    if (a.decided > 0) run.evidence.logged_counts[i] = a.joint_count;
    if (a.unlogged.empty()) continue;
    run.evidence.unlogged[i] = a.unlogged;
    run.warnings.push_back(
        "agent " + a.agent + ": the logs hardly explored (" + std::to_string(a.randomised) +
        " of " + std::to_string(a.decided) + " requests randomised) and hold " +
        std::to_string(a.unlogged.size()) + " of its " + std::to_string(a.joint_count.size()) +
        " joint actions fewer than " + std::to_string(kMinLoggedPerAction) +
        " times: the bundle will not choose those (unlogged_actions in the manifest); log with "
        "exploration to learn them" +
        (a.exploration_recorded ? ""
                                : " (the logs record neither explored flags nor propensities, so "
                                  "none of their requests counts as randomised)"));
  }
}

// Calibration and checks on the validation split (serving uses the plain head mean). The
// calibration is one multiplicative factor per agent: it corrects the overall level and leaves
// the differences between one request's options as learned.
void CalibrateAndCheck(TrainingRun& run) {
  auto& config = run.config;
  auto& models = run.models;
  auto& n_agents = run.n_agents;
  auto& summary = run.summary;
  auto& warnings = run.warnings;
  auto& calib_a = run.calib_a;
  const RowTensors& v = run.val;
  calib_a.assign(n_agents, 0.0);
  run.calib_b.assign(n_agents, 1.0);
  {
    torch::NoGradGuard no_grad;
    models->eval();
    for (size_t i = 0; i < n_agents; ++i) {
      const std::string agent = config.agents[i].name;
      const torch::Tensor val = PresentRows(run.val_rows, v.present[i]);
      if (val.size(0) == 0) continue;
      const torch::Tensor r = v.reward.index_select(0, val).to(torch::kDouble);
      const torch::Tensor base = v.log_base[i].index_select(0, val).to(torch::kDouble);
      const torch::Tensor log_q =
          base + models->q[i]
                     ->forward(v.obs[i].index_select(0, val), v.digits[i].index_select(0, val))
                     .mean(1)
                     .to(torch::kDouble);
      calib_a[i] = std::clamp(
          std::log(r.mean().item<double>() / std::max(1e-12, log_q.exp().mean().item<double>())),
          -1.0, 1.0);
      const torch::Tensor fitted = (log_q + calib_a[i]).exp() * run.scale;
      const torch::Tensor truth = r * run.scale;
      summary.metrics["q_" + agent + "_rank_corr"] =
          SpearmanCorrelation(ToDoubles(fitted), ToDoubles(truth));
      summary.metrics["q_" + agent + "_rmse"] =
          (fitted - truth).pow(2).mean().sqrt().item<double>();
      // Poisson deviance per row against two baselines: the user value alone (no action) and a
      // constant. A model of the action that is worse than ignoring the action is a warning.
      const double dev_q = PoissonDeviance(r, log_q + calib_a[i]);
      const double dev_base = PoissonDeviance(r, base);
      const double dev_const =
          PoissonDeviance(r, torch::full_like(r, std::log(r.mean().item<double>())));
      summary.metrics["q_" + agent + "_deviance"] = dev_q;
      summary.metrics["q_" + agent + "_deviance_user_value_only"] = dev_base;
      summary.metrics["q_" + agent + "_deviance_constant"] = dev_const;
      if (dev_q > dev_base * 1.01) {
        warnings.push_back("agent " + agent +
                           ": the action-value model fits validation revenue "
                           "worse than the user value alone (deviance " +
                           Fixed(dev_q) + " vs " + Fixed(dev_base) + ")");
      }
      if (dev_q > dev_const) {
        warnings.push_back("agent " + agent +
                           ": the action-value model fits validation revenue "
                           "worse than a constant (deviance " +
                           Fixed(dev_q) + " vs " + Fixed(dev_const) + ")");
      }
    }
    const CollapseReport collapse =
        CheckCollapse(*models, config, run.val_log, v.obs, v.log_base, v.present, run.val_rows,
                      calib_a, run.scale, run.evidence);
    for (const auto& [k, x] : collapse.metrics) summary.metrics[k] = x;
    warnings.insert(warnings.end(), collapse.warnings.begin(), collapse.warnings.end());
  }
  if (run.lead())
    for (const std::string& w : warnings) run.out << "allot-train: WARNING: " << w << std::endl;
  summary.warnings = warnings;
}

// Served user values are in revenue units: the scale the models trained in moves into the
// value networks' output bias (the action-value heads add to that base, so they follow).
void MoveRevenueScaleIntoValues(TrainingRun& run) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < run.n_agents; ++i) run.models->value[i]->head->bias.add_(run.log_scale);
}

// The bundle as the server would load it, replayed over the validation rows against the logging
// policy (offpolicy.h): what it would have earned, spent and netted at the logged prices.
OffPolicyReport EvaluateOnValidation(const TrainingRun& run, const std::string& bundle_dir) {
  AllotConfig config = run.config;
  config.models.min_offpolicy_ratio = 0.0;  // the floor reads what is being computed here
  const std::shared_ptr<const ActionScorer> scorer = LoadBundle(bundle_dir, config);
  std::vector<int64_t> val(run.val_log.rows);
  std::iota(val.begin(), val.end(), 0);
  return EvaluateOffPolicy(run.val_log, val, config, scorer);
}

// Write the bundle atomically.
TrainSummary WriteBundle(TrainingRun& run, const std::string& models_dir) {
  auto& config = run.config;
  auto& options = run.options;
  auto& summary = run.summary;
  const LogStatistics& stats = run.source.statistics();
  std::filesystem::create_directories(models_dir);
  summary.version = NewVersion(models_dir, options.algorithm);
  const std::filesystem::path tmp = std::filesystem::path(models_dir) /
                                    (".tmp-" + summary.version + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(tmp);
  std::filesystem::create_directories(tmp);
  {
    torch::serialize::OutputArchive archive;
    run.models->save(archive);
    archive.save_to((tmp / kWeightsFile).string());
  }
  if (!run.cost_map.empty()) std::ofstream(tmp / kCostMapFile) << CostMapYaml(run.cost_map, config);
  BundleManifest manifest;
  manifest.version = summary.version;
  {
    const std::time_t now = std::time(nullptr);
    char created[32];
    std::strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    manifest.created = created;
  }
  manifest.config_version = config.version;
  manifest.input_hash = stats.input_hash;
  manifest.input_files = static_cast<int64_t>(stats.files.size());
  manifest.transitions = static_cast<int64_t>(stats.rows);
  manifest.skipped_records = static_cast<int64_t>(stats.skipped);
  manifest.schema = YAML::Load(SchemaYaml(config));
  manifest.architecture = run.arch;
  manifest.hyperparameters = {options.lr,
                              options.gamma,
                              run.mixer_weight,
                              options.td_lambda,
                              options.q_weighting,
                              options.batch,
                              options.epochs,
                              options.value_epochs,
                              options.target_update,
                              options.dropout,
                              options.validation_fraction,
                              options.seed,
                              run.scale,
                              options.network,
                              options.distil_epochs,
                              options.distil_actions,
                              options.distil_pessimism};
  manifest.reuse_model = run.serve_reuse_model;
  if (!run.cost_map.empty()) manifest.cost_source = run.cost_source;
  manifest.fitted_range = stats.ranges;
  for (size_t i = 0; i < run.n_agents; ++i)
    manifest.calibration.push_back({config.agents[i].name, run.calib_a[i], run.calib_b[i]});
  manifest.unlogged_actions = run.evidence.unlogged;
  manifest.logged_counts = run.evidence.logged_counts;
  manifest.warnings = run.warnings;
  manifest.metrics = summary.metrics;
  WriteManifest(manifest, config, (tmp / kManifestFile).string());
  manifest.offpolicy = EvaluateOnValidation(run, tmp.string());
  summary.offpolicy = manifest.offpolicy;
  WriteManifest(manifest, config, (tmp / kManifestFile).string());
  const std::filesystem::path final_dir = std::filesystem::path(models_dir) / summary.version;
  std::filesystem::rename(tmp, final_dir);  // fails rather than overwrite if it appeared meanwhile
  summary.bundle_dir = final_dir.string();
  return summary;
}

}  // namespace

void ValidateTrainOptions(const TrainOptions& o) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error(what);
  };
  require(FindAlgorithm(o.algorithm) != nullptr,
          "algorithm: unknown '" + o.algorithm + "' (" + AlgorithmNames() + ")");
  require(o.heads >= 1 && o.heads <= 1000, "heads: must be in [1, 1000]");
  require(o.hidden >= 1 && o.hidden <= 4096, "hidden: must be in [1, 4096]");
  require(o.lr > 0 && std::isfinite(o.lr), "lr: must be finite and > 0");
  require(o.gamma >= 0 && o.gamma <= 1, "gamma: must be in [0, 1]");
  require(o.td_lambda >= 0 && o.td_lambda <= 1, "td-lambda: must be in [0, 1]");
  require(o.network == "algorithm" || o.network == "factorised" || o.network == "distilled",
          "network: must be algorithm, factorised or distilled");
  require(o.q_weighting == "relative" || o.q_weighting == "revenue",
          "q-weighting: must be relative or revenue");
  require(std::isfinite(o.mixer_weight), "mixer-weight: must be finite (negative: the default)");
  require(o.batch >= 1, "batch: must be >= 1");
  require(o.epochs >= 1 && o.value_epochs >= 1, "epochs: must be >= 1");
  require(o.distil_epochs >= 1, "distil-epochs: must be >= 1");
  require(o.distil_actions >= 0, "distil-actions: must be >= 0 (0: all)");
  require(o.distil_pessimism >= 0 && std::isfinite(o.distil_pessimism),
          "distil-pessimism: must be finite and >= 0");
  require(o.target_update >= 1, "target-update: must be >= 1");
  require(o.validation_fraction > 0 && o.validation_fraction < 1, "validation: must be in (0, 1)");
  require(o.chunk_rows <= (size_t{1} << 30), "chunk-rows: must be at most 2^30");
  require(o.max_validation_rows >= 1, "max-validation-rows: must be >= 1");
}

namespace {

// Everything that decides a rank's steps, as text.
std::string OptionsFingerprint(const TrainOptions& o, const AllotConfig& config) {
  std::ostringstream text;
  text << o.algorithm << ' ' << o.heads << ' ' << o.hidden << ' ' << o.mixer_embed << ' ' << o.lr
       << ' ' << o.gamma << ' ' << o.mixer_weight << ' ' << o.td_lambda << ' ' << o.q_weighting
       << ' ' << o.network << ' ' << o.batch << ' ' << o.epochs << ' ' << o.value_epochs << ' '
       << o.distil_epochs << ' ' << o.distil_actions << ' ' << o.distil_pessimism << ' '
       << o.target_update << ' ' << o.dropout << ' ' << o.validation_fraction << ' ' << o.seed
       << ' ' << o.chunk_rows << ' ' << o.max_validation_rows << ' ' << o.testbench_csv << ' '
       << config.version;
  for (int64_t h : o.head_hidden) text << ' ' << h;
  return text.str();
}

}  // namespace

SplitOptions SplitOptionsFor(const TrainOptions& options) {
  // The rows in memory come as kMixedChunks pieces from random places in the log.
  const size_t chunk_rows =
      options.chunk_rows > 0 ? std::max<size_t>(1, options.chunk_rows / kMixedChunks) : 0;
  return SplitOptions{options.validation_fraction, options.seed, chunk_rows,
                      options.max_validation_rows};
}

TrainSummary TrainBundle(TrainingSource& source, Collective& ranks, const AllotConfig& config,
                         const TrainOptions& options, const std::string& models_dir,
                         std::ostream& out) {
  ValidateTrainOptions(options);
  const LogStatistics& stats = source.statistics();
  if (stats.rows < 20)
    throw std::runtime_error("need at least 20 transitions, got " + std::to_string(stats.rows));
  if (stats.validation_rows == 0 || stats.train_rows == 0) {
    throw std::runtime_error("validation: " + std::to_string(stats.validation_rows) + " of " +
                             std::to_string(stats.rows) +
                             " transitions are held out; both splits need some (change the "
                             "fraction or the seed)");
  }
  if (source.validation().agents.size() != config.agents.size())
    throw std::runtime_error("log and config disagree on agents");
  CheckSameOnEveryRank(ranks, "training flags or config", OptionsFingerprint(options, config));
  TrainingRun run(source, ranks, config, options, out);
  run.summary.metrics["validation_rows_held_out"] = static_cast<double>(stats.validation_rows);
  run.summary.metrics["validation_rows_measured"] = static_cast<double>(source.validation().rows);
  FitUserValues(run);
  ComputeObservations(run);
  FitCosts(run);
  FitCostMapWhereItPredictsBetter(run);
  FitReuseModel(run);
  ComputeCredit(run);
  FitActionValues(run);
  if (run.method->actors) FitActorCritic(run);
  if (options.network == "distilled") DistilIntoTwoTowers(run);
  CheckRanksAgree(ranks, run.models->parameters());
  double parameters = 0;
  for (const torch::Tensor& p : run.models->parameters())
    parameters += static_cast<double>(p.numel());
  run.summary.metrics["model_parameters"] = parameters;
  WeighWhatTheLogsHeld(run);
  CalibrateAndCheck(run);
  MoveRevenueScaleIntoValues(run);
  if (!run.lead()) return run.summary;  // rank 0 alone writes the bundle
  return WriteBundle(run, models_dir);
}

TrainSummary TrainBundle(const TrainingLog& log, const AllotConfig& config,
                         const TrainOptions& options, const std::string& models_dir,
                         std::ostream& out) {
  if (log.agents.size() != config.agents.size())
    throw std::runtime_error("log and config disagree on agents");
  InMemorySource source(log, config, SplitOptionsFor(options));
  Collective one_process;
  return TrainBundle(source, one_process, config, options, models_dir, out);
}

}  // namespace allot::models
