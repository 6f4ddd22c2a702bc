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
#include <numeric>
#include <random>

#include "models/bundle.h"
#include "models/bundle_models.h"
#include "models/cost_map.h"
#include "models/fitted_range.h"
#include "models/policy_checks.h"
#include "models/rank_correlation.h"
#include "policy/analytic_scorer.h"
#include "policy/cache_reuse.h"
#include "policy/yaml_map.h"

namespace allot::models {
namespace {

using Clock = std::chrono::steady_clock;

torch::Tensor FloatTensor(const std::vector<float>& data, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(data.data()), shape, torch::kFloat).clone();
}

torch::Tensor LongTensor(const std::vector<int64_t>& data, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<int64_t*>(data.data()), shape, torch::kInt64).clone();
}

// Progress on one line every couple of seconds: rate, loss and time left.
class Progress {
 public:
  Progress(std::ostream& out, std::string stage, size_t total, bool enabled)
      : out_(out),
        stage_(std::move(stage)),
        total_(total),
        enabled_(enabled),
        start_(Clock::now()),
        last_(start_) {}
  void Update(size_t done, double loss) {
    const auto now = Clock::now();
    if (!enabled_ || (now - last_ < std::chrono::seconds(2) && done < total_)) return;
    last_ = now;
    const double s = std::chrono::duration<double>(now - start_).count();
    const double rate = done / std::max(1e-9, s);
    const double eta = (total_ - std::min(done, total_)) / std::max(1e-9, rate);
    char line[256];
    std::snprintf(
        line, sizeof(line), "train %-14s %5.1f%% | %7.1fk transitions/s | loss %.5f | ETA %.0fs",
        stage_.c_str(), 100.0 * done / std::max<size_t>(1, total_), rate / 1000, loss, eta);
    out_ << line << std::endl;
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  std::ostream& out_;
  std::string stage_;
  size_t total_;
  bool enabled_;
  Clock::time_point start_, last_;
};

std::vector<torch::Tensor> Batches(const torch::Tensor& rows, int batch, std::mt19937_64& rng) {
  std::vector<int64_t> order(static_cast<size_t>(rows.size(0)));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const torch::Tensor shuffled = rows.index_select(0, LongTensor(order, {rows.size(0)}));
  return shuffled.split(batch);
}

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

// Poisson negative log-likelihood (up to a constant) of `target` under rate exp(log_rate),
// averaged over the rows where mask is 1 (mask broadcasts over columns). per_column: one mean per
// column instead of one overall.
torch::Tensor MaskedPoisson(const torch::Tensor& log_rate, const torch::Tensor& target,
                            const torch::Tensor& mask, bool per_column = false) {
  const torch::Tensor weight = mask.expand_as(log_rate);
  const torch::Tensor nll = (log_rate.exp() - target * log_rate) * weight;
  if (per_column) return nll.sum(0) / weight.sum(0).clamp_min(1.0);
  return nll.sum() / weight.sum().clamp_min(1.0);
}

// Each row's weight in the action-value and reuse losses (TrainOptions::q_weighting): 1, or
// 1 / its predicted user value (in units of the mean revenue), floored so that a request
// predicted near zero cannot dominate a batch.
torch::Tensor LossWeight(const TrainOptions& options, const torch::Tensor& log_base) {
  if (options.q_weighting == "revenue") return torch::ones_like(log_base);
  constexpr double kFloor = 0.05;  // weight at most 20x that of an average request
  return 1.0 / log_base.exp().clamp_min(kFloor);
}

// Mean Poisson deviance of outcomes y under rates exp(log_rate) (0 for a perfect fit).
double PoissonDeviance(const torch::Tensor& y, const torch::Tensor& log_rate) {
  const torch::Tensor mu = log_rate.exp();
  const torch::Tensor term = torch::where(y > 0, y * (y / mu).log(), torch::zeros_like(y));
  return (2 * (term - (y - mu))).mean().item<double>();
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

// Re-decides validation requests with the trained models at the prices they were logged at and
// asks DetectCollapse whether the choices look broken (the failure that fixed "rank queue 40,
// heavy model on" for every request of a chain in the past, with no sign in the fit metrics).
CollapseReport CheckCollapse(BundleModelsImpl& models, const AllotConfig& config,
                             const TrainingLog& log, const std::vector<torch::Tensor>& obs,
                             const std::vector<torch::Tensor>& log_base,
                             const std::vector<torch::Tensor>& present,
                             const torch::Tensor& val_rows, const std::vector<double>& calib_a,
                             double scale) {
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
    torch::Tensor priced = log_q.exp() * scale;
    const torch::Tensor cost =
        models.cost[i]->forward(torch::cat({o_all, models.ActionCode(i, d_all)}, 1)).exp();
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

// One training run: the log's columns as tensors, the models, and what each phase leaves for the
// next. The phases below run in TrainBundle's order; each names at its top what it uses.
struct TrainingRun {
  TrainingRun(const TrainingLog& training_log, const AllotConfig& allot_config,
              const TrainOptions& train_options, std::ostream& progress_out);

  const TrainingLog& log;
  const AllotConfig& config;
  const TrainOptions& options;
  std::ostream& out;
  const AlgorithmTraits* method;
  std::mt19937_64 rng;
  Architecture arch;
  BundleModels models{nullptr};
  BundleModels target{nullptr};  // the action values' target networks
  size_t n_agents;
  int64_t rows;
  std::vector<torch::Tensor> features, digits, cost, present;  // per agent
  torch::Tensor revenue;
  torch::Tensor full_chain;  // rows on which every agent ran: what the central losses train on
  torch::Tensor train_rows, val_rows;
  // Revenue is heavy-tailed: every model trains on revenue / mean so one learning rate suits
  // every log; the served values are scaled back (the bundle's revenue_scale).
  double scale = 1.0, log_scale = 0.0;
  torch::Tensor reward;
  double mixer_weight = 1.0;
  TrainSummary summary;
  std::vector<std::string> warnings;
  std::vector<torch::Tensor> obs, buckets, log_base;  // ComputeObservations
  CostMap cost_map;                                   // FitCostMapWhereItPredictsBetter
  std::vector<std::string> cost_source;
  bool serve_reuse_model = false;        // FitReuseModel
  std::vector<double> credit;            // ComputeCredit
  std::vector<double> calib_a, calib_b;  // CalibrateAndCheck
};

Architecture ArchitectureFor(const TrainOptions& options, const AlgorithmTraits& method) {
  Architecture arch;
  arch.algorithm = options.algorithm;
  arch.heads = method.multi_head ? std::max(1, options.heads) : 1;
  arch.hidden = options.hidden;
  arch.head_hidden = options.head_hidden;
  arch.mixer_embed = options.mixer_embed;
  arch.dropout = options.dropout;
  return arch;
}

TrainingRun::TrainingRun(const TrainingLog& training_log, const AllotConfig& allot_config,
                         const TrainOptions& train_options, std::ostream& progress_out)
    : log(training_log),
      config(allot_config),
      options(train_options),
      out(progress_out),
      method(FindAlgorithm(train_options.algorithm)),
      rng(train_options.seed),
      arch(ArchitectureFor(train_options, *method)),
      n_agents(allot_config.agents.size()),
      rows(static_cast<int64_t>(training_log.rows)) {
  // The networks' initial weights come from torch's generator: seeded before they are built.
  torch::manual_seed(options.seed);
  at::set_num_threads(std::max(1, options.threads));
  models = BundleModels(config, arch);
  target = BundleModels(config, arch);
  for (size_t i = 0; i < n_agents; ++i) {
    const AgentColumns& c = log.agents[i];
    features.push_back(FloatTensor(c.features, {rows, static_cast<int64_t>(c.width)}));
    digits.push_back(LongTensor(c.digits, {rows, static_cast<int64_t>(c.decisions)}));
    cost.push_back(FloatTensor(c.cost, {rows}));
    present.push_back(
        torch::from_blob(const_cast<uint8_t*>(c.present.data()), {rows}, torch::kUInt8)
            .to(torch::kFloat));
  }
  revenue = FloatTensor(log.revenue, {rows});
  full_chain = torch::ones({rows});
  for (const torch::Tensor& p : present) full_chain = full_chain * p;

  // Deterministic split: a seeded permutation, the last validation_fraction held out.
  std::vector<int64_t> order(static_cast<size_t>(rows));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const int64_t n_val =
      std::clamp<int64_t>(static_cast<int64_t>(rows * options.validation_fraction), 1, rows - 1);
  const torch::Tensor all = LongTensor(order, {rows});
  train_rows = all.slice(0, 0, rows - n_val);
  val_rows = all.slice(0, rows - n_val, rows);
  scale = std::max(1e-9, revenue.index_select(0, train_rows).mean().item<double>());
  reward = revenue / scale;
  log_scale = std::log(scale);
  mixer_weight = options.mixer_weight >= 0 ? options.mixer_weight : method->default_mixer_weight;
}

// User value: DCN with Poisson loss on revenue (log-rate output), per agent on the rows
// where it ran.
void FitUserValues(TrainingRun& run) {
  auto& options = run.options;
  auto& out = run.out;
  auto& rng = run.rng;
  auto& models = run.models;
  auto& n_agents = run.n_agents;
  auto& features = run.features;
  auto& present = run.present;
  auto& train_rows = run.train_rows;
  auto& reward = run.reward;
  torch::optim::Adam opt(ParametersOf(models->value), torch::optim::AdamOptions(options.lr));
  Progress progress(out, "user-value",
                    static_cast<size_t>(options.value_epochs * train_rows.size(0)),
                    options.progress);
  size_t done = 0;
  for (int epoch = 0; epoch < options.value_epochs; ++epoch) {
    for (const torch::Tensor& b : Batches(train_rows, options.batch, rng)) {
      torch::Tensor loss = torch::zeros({});
      for (size_t i = 0; i < n_agents; ++i) {
        const torch::Tensor log_rate =
            models->value[i]->forward(features[i].index_select(0, b)).squeeze(1);
        loss = loss +
               MaskedPoisson(log_rate, reward.index_select(0, b), present[i].index_select(0, b));
      }
      opt.zero_grad();
      loss.backward();
      opt.step();
      done += static_cast<size_t>(b.size(0));
      progress.Update(done, loss.item<double>() / n_agents);
    }
  }
}

// Observations: features and the predicted value bucket; the log user value is the base the
// action-value heads add their log uplift to.
void ComputeObservations(TrainingRun& run) {
  auto& config = run.config;
  auto& models = run.models;
  auto& n_agents = run.n_agents;
  auto& features = run.features;
  auto& present = run.present;
  auto& revenue = run.revenue;
  auto& val_rows = run.val_rows;
  auto& log_scale = run.log_scale;
  auto& summary = run.summary;
  auto& obs = run.obs;
  auto& buckets = run.buckets;
  auto& log_base = run.log_base;
  torch::NoGradGuard no_grad;
  const auto& bounds = config.value_model.bucket_bounds;
  const torch::Tensor bounds_t =
      torch::tensor(std::vector<double>(bounds.begin(), bounds.end()), torch::kFloat);
  for (size_t i = 0; i < n_agents; ++i) {
    const torch::Tensor base = models->value[i]->forward(features[i]).squeeze(1).clamp(-30, 30);
    const torch::Tensor v = (base + log_scale).exp();  // revenue units
    const torch::Tensor bucket = torch::bucketize(v, bounds_t, /*out_int32=*/false, /*right=*/true);
    obs.push_back(models->Observation(features[i], bucket));
    buckets.push_back(bucket);
    log_base.push_back(base);
    const torch::Tensor val = PresentRows(val_rows, present[i]);
    summary.metrics["value_" + config.agents[i].name + "_rank_corr"] = SpearmanCorrelation(
        ToDoubles(v.index_select(0, val)), ToDoubles(revenue.index_select(0, val)));
  }
}

// Cost: DCN on (observation, action) -> log core-ms of the agent's module and of every later
// agent's module, Poisson loss (non-negative by construction).
void FitCosts(TrainingRun& run) {
  auto& config = run.config;
  auto& options = run.options;
  auto& out = run.out;
  auto& rng = run.rng;
  auto& models = run.models;
  auto& n_agents = run.n_agents;
  auto& digits = run.digits;
  auto& cost = run.cost;
  auto& present = run.present;
  auto& train_rows = run.train_rows;
  auto& val_rows = run.val_rows;
  auto& summary = run.summary;
  auto& obs = run.obs;
  std::vector<torch::Tensor> cost_targets;  // per agent [rows, n_agents - i]
  for (size_t i = 0; i < n_agents; ++i) {
    std::vector<torch::Tensor> parts(cost.begin() + static_cast<ptrdiff_t>(i), cost.end());
    cost_targets.push_back(torch::stack(parts, 1));
  }
  {
    torch::optim::Adam opt(ParametersOf(models->cost), torch::optim::AdamOptions(options.lr));
    Progress progress(out, "cost", static_cast<size_t>(options.value_epochs * train_rows.size(0)),
                      options.progress);
    size_t done = 0;
    for (int epoch = 0; epoch < options.value_epochs; ++epoch) {
      for (const torch::Tensor& b : Batches(train_rows, options.batch, rng)) {
        torch::Tensor loss = torch::zeros({});
        for (size_t i = 0; i < n_agents; ++i) {
          const torch::Tensor in = torch::cat(
              {obs[i].index_select(0, b), models->ActionCode(i, digits[i].index_select(0, b))}, 1);
          loss =
              loss + MaskedPoisson(models->cost[i]->forward(in), cost_targets[i].index_select(0, b),
                                   present[i].index_select(0, b).unsqueeze(1));
        }
        opt.zero_grad();
        loss.backward();
        opt.step();
        done += static_cast<size_t>(b.size(0));
        progress.Update(done, loss.item<double>() / n_agents);
      }
    }
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < n_agents; ++i) {
      const torch::Tensor val = PresentRows(val_rows, present[i]);
      const torch::Tensor in = torch::cat(
          {obs[i].index_select(0, val), models->ActionCode(i, digits[i].index_select(0, val))}, 1);
      const torch::Tensor predicted = models->cost[i]->forward(in).exp();
      const torch::Tensor truth = cost_targets[i].index_select(0, val);
      const std::string agent = config.agents[i].name;
      summary.metrics["cost_" + agent + "_mae_ms"] =
          (predicted.select(1, 0) - truth.select(1, 0)).abs().mean().item<double>();
      for (size_t k = 1; k < n_agents - i; ++k) {
        summary.metrics["cost_" + agent + "_to_" + config.agents[i + k].name + "_mae_ms"] =
            (predicted.select(1, static_cast<int64_t>(k)) -
             truth.select(1, static_cast<int64_t>(k)))
                .abs()
                .mean()
                .item<double>();
      }
    }
  }
}

// The AutoBucket cost map, served per agent for its own module where it predicts the logged
// costs better than the learned cost model on the validation rows.
void FitCostMapWhereItPredictsBetter(TrainingRun& run) {
  auto& log = run.log;
  auto& config = run.config;
  auto& options = run.options;
  auto& n_agents = run.n_agents;
  auto& present = run.present;
  auto& val_rows = run.val_rows;
  auto& summary = run.summary;
  auto& warnings = run.warnings;
  auto& buckets = run.buckets;
  auto& cost_map = run.cost_map;
  auto& cost_source = run.cost_source;
  cost_source.assign(n_agents, "model");
  if (!options.testbench_csv.empty()) {
    // A test bench that cannot cover the config (a channel that never runs alone when
    // min_selected > 1, a bucket without traffic) leaves the learned cost model serving.
    const std::string bench = ReadConfigFile(options.testbench_csv);
    try {
      cost_map = FitCostMap(bench, options.testbench_csv, config);
    } catch (const CostMapError& e) {
      warnings.push_back(std::string("cost map not fitted, every agent's cost comes from the "
                                     "learned cost model: ") +
                         e.what());
    }
    for (size_t i = 0; i < n_agents && !cost_map.empty(); ++i) {
      const std::string& agent = config.agents[i].name;
      const torch::Tensor val = PresentRows(val_rows, present[i]);
      const torch::Tensor val_buckets = buckets[i].index_select(0, val).contiguous();
      const int64_t* bucket = val_buckets.data_ptr<int64_t>();
      const int64_t* row = val.data_ptr<int64_t>();
      double error = 0;
      for (int64_t k = 0; k < val.size(0); ++k) {
        const auto r = static_cast<size_t>(row[k]);
        error += std::abs(cost_map.At(i, static_cast<int>(bucket[k]),
                                      static_cast<size_t>(log.agents[i].joint[r])) -
                          log.agents[i].cost[r]);
      }
      const double mae = error / std::max<double>(1.0, static_cast<double>(val.size(0)));
      summary.metrics["cost_map_" + agent + "_mae_ms"] = mae;
      if (mae < summary.metrics["cost_" + agent + "_mae_ms"]) cost_source[i] = "map";
    }
  }
}

// ComRecycle's reuse model, on the requests where the first agent chose a cache reuse: revenue
// ~ Poisson(user value x retained share), the share a function of the request, the reused stage
// and the cached output's age and size. It is served where it fits validation revenue better
// than the config's half-life rule.
void FitReuseModel(TrainingRun& run) {
  auto& log = run.log;
  auto& config = run.config;
  auto& options = run.options;
  auto& rng = run.rng;
  auto& models = run.models;
  auto& rows = run.rows;
  auto& reward = run.reward;
  auto& summary = run.summary;
  auto& obs = run.obs;
  auto& log_base = run.log_base;
  auto& serve_reuse_model = run.serve_reuse_model;
  std::vector<int64_t> reuse_rows, stage;
  std::vector<float> age, size, half_life_share;
  for (int64_t r = 0; r < rows; ++r) {
    const int reused = log.cache_reuse[static_cast<size_t>(r)];
    if (reused <= 0 || reused > kReuseStages || !log.agents[0].decided[static_cast<size_t>(r)])
      continue;
    const size_t at = static_cast<size_t>(r) * kCacheStages + static_cast<size_t>(reused - 1);
    if (log.cache_age[at] < 0) continue;
    reuse_rows.push_back(r);
    stage.push_back(reused - 1);
    age.push_back(log.cache_age[at]);
    size.push_back(log.cache_size[at]);
    double half_life = 0;
    for (const CacheStageConfig& c : config.cache_reuse.stages)
      if (StageNumber(c.stage) == reused) half_life = c.half_life_s;
    half_life_share.push_back(
        half_life > 0 ? static_cast<float>(std::exp2(-log.cache_age[at] / half_life)) : 1.0f);
  }
  const int64_t n_reuse = static_cast<int64_t>(reuse_rows.size());
  summary.metrics["reuse_rows"] = static_cast<double>(n_reuse);
  if (n_reuse >= 50) {
    const torch::Tensor idx = LongTensor(reuse_rows, {n_reuse});
    const torch::Tensor input =
        models->ReuseInput(obs[0].index_select(0, idx), LongTensor(stage, {n_reuse}),
                           FloatTensor(age, {n_reuse}), FloatTensor(size, {n_reuse}));
    const torch::Tensor base = log_base[0].index_select(0, idx);
    const torch::Tensor target_r = reward.index_select(0, idx);
    const int64_t n_val_reuse = std::max<int64_t>(1, n_reuse / 10);
    const int64_t n_train_reuse = n_reuse - n_val_reuse;
    torch::optim::Adam opt(models->reuse->parameters(), torch::optim::AdamOptions(options.lr));
    const torch::Tensor row_weight = LossWeight(options, base.slice(0, 0, n_train_reuse));
    for (int epoch = 0; epoch < 4 * options.value_epochs; ++epoch) {
      for (const torch::Tensor& b : Batches(torch::arange(n_train_reuse), options.batch, rng)) {
        const torch::Tensor log_rate =
            base.index_select(0, b) +
            BundleModelsImpl::LogRetained(models->reuse->forward(input.index_select(0, b)))
                .squeeze(1);
        const torch::Tensor loss =
            MaskedPoisson(log_rate, target_r.index_select(0, b), row_weight.index_select(0, b));
        opt.zero_grad();
        loss.backward();
        opt.step();
      }
    }
    torch::NoGradGuard no_grad;
    const torch::Tensor val = torch::arange(n_train_reuse, n_reuse);
    const torch::Tensor y = target_r.index_select(0, val).to(torch::kDouble);
    const torch::Tensor b_val = base.index_select(0, val).to(torch::kDouble);
    const torch::Tensor model_share =
        BundleModelsImpl::LogRetained(models->reuse->forward(input.index_select(0, val)))
            .squeeze(1)
            .to(torch::kDouble);
    const torch::Tensor rule_share =
        FloatTensor(half_life_share, {n_reuse}).index_select(0, val).to(torch::kDouble).log();
    const double dev_model = PoissonDeviance(y, b_val + model_share);
    const double dev_rule = PoissonDeviance(y, b_val + rule_share);
    summary.metrics["reuse_deviance"] = dev_model;
    summary.metrics["reuse_deviance_half_life"] = dev_rule;
    summary.metrics["reuse_retained_mean"] = model_share.exp().mean().item<double>();
    serve_reuse_model = dev_model < dev_rule;
  }
}

// VGCA credit: w_t = Var_j E[R | a_t = j] over the agent's joint actions, normalised to mean 1.
// It weighs each agent's loss (agents whose choices move revenue more get more of the model's
// capacity) instead of scaling its reward, which would shrink the agent's values below revenue
// and mis-price its compute by the same factor.
void ComputeCredit(TrainingRun& run) {
  auto& log = run.log;
  auto& config = run.config;
  auto& method = run.method;
  auto& n_agents = run.n_agents;
  auto& present = run.present;
  auto& train_rows = run.train_rows;
  auto& scale = run.scale;
  auto& summary = run.summary;
  auto& credit = run.credit;
  credit.assign(n_agents, 1.0);
  if (method->vgca_credit) {
    double total = 0;
    for (size_t i = 0; i < n_agents; ++i) {
      std::map<int64_t, std::pair<double, double>> by_action;  // joint -> (sum, count)
      const torch::Tensor tr_t = PresentRows(train_rows, present[i]);
      const auto* tr = tr_t.data_ptr<int64_t>();
      for (int64_t k = 0; k < tr_t.size(0); ++k) {
        auto& s = by_action[log.agents[i].joint[tr[k]]];
        s.first += log.revenue[tr[k]] / scale;
        s.second += 1;
      }
      double mean = 0, n = 0, var = 0;
      for (auto& [a, s] : by_action) {
        mean += s.first;
        n += s.second;
      }
      mean /= std::max(1.0, n);
      for (auto& [a, s] : by_action) var += s.second * std::pow(s.first / s.second - mean, 2);
      credit[i] = var / std::max(1.0, n);
      total += credit[i];
    }
    for (size_t i = 0; i < n_agents; ++i) {
      credit[i] = total > 0 ? n_agents * credit[i] / total : 1.0;
      summary.metrics["vgca_credit_" + config.agents[i].name] = credit[i] / n_agents;
    }
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
  auto& out = run.out;
  auto& method = run.method;
  auto& rng = run.rng;
  auto& models = run.models;
  auto& target = run.target;
  auto& n_agents = run.n_agents;
  auto& digits = run.digits;
  auto& present = run.present;
  auto& full_chain = run.full_chain;
  auto& train_rows = run.train_rows;
  auto& reward = run.reward;
  auto& summary = run.summary;
  auto& obs = run.obs;
  auto& log_base = run.log_base;
  auto& credit = run.credit;
  auto& mixer_weight = run.mixer_weight;
  std::vector<torch::Tensor> params = ParametersOf(models->q);
  if (method->mixer == Mixer::kMonotone) {
    auto p = models->mixer->parameters();
    params.insert(params.end(), p.begin(), p.end());
  }
  torch::optim::Adam opt(params, torch::optim::AdamOptions(options.lr));
  CopyParameters(*models, *target);
  const torch::Tensor state = models->MixerState(obs, digits);
  // Per agent: each row's loss weight, 0 where the agent did not run.
  std::vector<torch::Tensor> row_weight;
  for (size_t i = 0; i < n_agents; ++i)
    row_weight.push_back(present[i] * LossWeight(options, log_base[i]));
  Progress progress(out, options.algorithm,
                    static_cast<size_t>(options.epochs * train_rows.size(0)), options.progress);
  size_t done = 0;
  int64_t step = 0;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    for (const torch::Tensor& b : Batches(train_rows, options.batch, rng)) {
      const torch::Tensor r = reward.index_select(0, b);
      std::vector<torch::Tensor> base, o, d, weight, log_q;
      for (size_t i = 0; i < n_agents; ++i) {
        base.push_back(log_base[i].index_select(0, b).unsqueeze(1));
        o.push_back(obs[i].index_select(0, b));
        d.push_back(digits[i].index_select(0, b));
        weight.push_back(row_weight[i].index_select(0, b));
        log_q.push_back(base.back() + models->q[i]->forward(o.back(), d.back()));  // [B, K]
      }
      torch::Tensor loss = torch::zeros({});
      std::vector<torch::Tensor> agent_q;  // revenue / scale, for the central loss
      for (size_t i = 0; i < n_agents; ++i) {
        torch::Tensor y = r;
        if (i + 1 < n_agents && options.td_lambda < 1) {
          torch::NoGradGuard no_grad;
          const torch::Tensor next =
              (base[i + 1].squeeze(1) + target->q[i + 1]->forward(o[i + 1], d[i + 1]).mean(1))
                  .exp();
          y = options.td_lambda * r + (1 - options.td_lambda) * options.gamma * next;
        }
        const torch::Tensor head_loss =
            MaskedPoisson(log_q[i], y.unsqueeze(1).expand_as(log_q[i]), weight[i].unsqueeze(1),
                          /*per_column=*/true);  // [K]
        loss = loss + credit[i] * head_loss.mean();
        // Error-proportional weights: heads that fit worse count more in the agent's Q.
        const torch::Tensor eta = (head_loss / head_loss.sum().clamp_min(1e-12)).detach();
        agent_q.push_back((log_q[i].exp() * eta).sum(1));
      }
      if (method->mixer != Mixer::kNone) {
        const torch::Tensor full = full_chain.index_select(0, b);
        // The forward value is the agents' Q; the gradient reaching them is scaled.
        const torch::Tensor q_raw = torch::stack(agent_q, 1);
        const torch::Tensor q_all = mixer_weight * q_raw + (1 - mixer_weight) * q_raw.detach();
        const torch::Tensor q_tot = method->mixer == Mixer::kSum
                                        ? q_all.mean(1)
                                        : models->mixer->forward(q_all, state.index_select(0, b));
        const torch::Tensor central = ((q_tot - r).pow(2) * full).sum() / full.sum().clamp_min(1.0);
        loss = loss + central;
      }
      opt.zero_grad();
      loss.backward();
      opt.step();
      if (++step % options.target_update == 0) CopyParameters(*models, *target);
      done += static_cast<size_t>(b.size(0));
      progress.Update(done, loss.item<double>());
    }
  }
  summary.transitions_per_second = done / std::max(1e-9, progress.seconds());
  summary.metrics["train_transitions_per_second"] = summary.transitions_per_second;
}

// Calibration and checks on the validation split (serving uses the plain head mean). The
// calibration is one multiplicative factor per agent: it corrects the overall level and leaves
// the differences between one request's options as learned.
void CalibrateAndCheck(TrainingRun& run) {
  auto& log = run.log;
  auto& config = run.config;
  auto& out = run.out;
  auto& models = run.models;
  auto& n_agents = run.n_agents;
  auto& digits = run.digits;
  auto& present = run.present;
  auto& val_rows = run.val_rows;
  auto& reward = run.reward;
  auto& scale = run.scale;
  auto& summary = run.summary;
  auto& warnings = run.warnings;
  auto& obs = run.obs;
  auto& log_base = run.log_base;
  auto& calib_a = run.calib_a;
  auto& calib_b = run.calib_b;
  calib_a.assign(n_agents, 0.0);
  calib_b.assign(n_agents, 1.0);
  {
    torch::NoGradGuard no_grad;
    models->eval();
    for (size_t i = 0; i < n_agents; ++i) {
      const std::string agent = config.agents[i].name;
      const torch::Tensor val = PresentRows(val_rows, present[i]);
      const torch::Tensor r = reward.index_select(0, val).to(torch::kDouble);
      const torch::Tensor base = log_base[i].index_select(0, val).to(torch::kDouble);
      const torch::Tensor log_q =
          base + models->q[i]
                     ->forward(obs[i].index_select(0, val), digits[i].index_select(0, val))
                     .mean(1)
                     .to(torch::kDouble);
      calib_a[i] = std::clamp(
          std::log(r.mean().item<double>() / std::max(1e-12, log_q.exp().mean().item<double>())),
          -1.0, 1.0);
      const torch::Tensor fitted = (log_q + calib_a[i]).exp() * scale;
      const torch::Tensor truth = r * scale;
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
        CheckCollapse(*models, config, log, obs, log_base, present, val_rows, calib_a, scale);
    for (const auto& [k, v] : collapse.metrics) summary.metrics[k] = v;
    warnings.insert(warnings.end(), collapse.warnings.begin(), collapse.warnings.end());
  }
  for (const std::string& w : warnings) out << "allot-train: WARNING: " << w << std::endl;
  summary.warnings = warnings;
}

// Served user values are in revenue units: the scale the models trained in moves into the
// value networks' output bias (the action-value heads add to that base, so they follow).
void MoveRevenueScaleIntoValues(TrainingRun& run) {
  auto& models = run.models;
  auto& n_agents = run.n_agents;
  auto& log_scale = run.log_scale;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < n_agents; ++i) models->value[i]->head->bias.add_(log_scale);
}

// Write the bundle atomically.
// The bundle as the server would load it, replayed over the validation rows against the logging
// policy (offpolicy.h): what it would have earned, spent and netted at the logged prices.
OffPolicyReport EvaluateOnValidation(const TrainingRun& run, const std::string& bundle_dir) {
  AllotConfig config = run.config;
  config.models.min_offpolicy_ratio = 0.0;  // the floor reads what is being computed here
  const std::shared_ptr<const ActionScorer> scorer = LoadBundle(bundle_dir, config);
  const torch::Tensor rows = run.val_rows.contiguous();
  const std::vector<int64_t> val(rows.data_ptr<int64_t>(), rows.data_ptr<int64_t>() + rows.numel());
  return EvaluateOffPolicy(run.log, val, config, scorer);
}

TrainSummary WriteBundle(TrainingRun& run, const std::string& models_dir) {
  auto& log = run.log;
  auto& config = run.config;
  auto& options = run.options;
  auto& arch = run.arch;
  auto& models = run.models;
  auto& n_agents = run.n_agents;
  auto& scale = run.scale;
  auto& summary = run.summary;
  auto& warnings = run.warnings;
  auto& cost_map = run.cost_map;
  auto& cost_source = run.cost_source;
  auto& serve_reuse_model = run.serve_reuse_model;
  auto& mixer_weight = run.mixer_weight;
  auto& calib_a = run.calib_a;
  auto& calib_b = run.calib_b;
  std::filesystem::create_directories(models_dir);
  summary.version = NewVersion(models_dir, options.algorithm);
  const std::filesystem::path tmp = std::filesystem::path(models_dir) /
                                    (".tmp-" + summary.version + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(tmp);
  std::filesystem::create_directories(tmp);
  {
    torch::serialize::OutputArchive archive;
    models->save(archive);
    archive.save_to((tmp / kWeightsFile).string());
  }
  if (!cost_map.empty()) std::ofstream(tmp / kCostMapFile) << CostMapYaml(cost_map, config);
  BundleManifest manifest;
  manifest.version = summary.version;
  {
    const std::time_t now = std::time(nullptr);
    char created[32];
    std::strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    manifest.created = created;
  }
  manifest.config_version = config.version;
  manifest.input_hash = log.input_hash;
  manifest.input_files = static_cast<int64_t>(log.files.size());
  manifest.transitions = static_cast<int64_t>(log.rows);
  manifest.skipped_records = static_cast<int64_t>(log.skipped);
  manifest.schema = YAML::Load(SchemaYaml(config));
  manifest.architecture = arch;
  manifest.hyperparameters = {options.lr,
                              options.gamma,
                              mixer_weight,
                              options.td_lambda,
                              options.q_weighting,
                              options.batch,
                              options.epochs,
                              options.value_epochs,
                              options.target_update,
                              options.dropout,
                              options.validation_fraction,
                              options.seed,
                              scale};
  manifest.reuse_model = serve_reuse_model;
  if (!cost_map.empty()) manifest.cost_source = cost_source;
  manifest.fitted_range = MeasureFittedRanges(log);
  for (size_t i = 0; i < n_agents; ++i)
    manifest.calibration.push_back({config.agents[i].name, calib_a[i], calib_b[i]});
  manifest.warnings = warnings;
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
  require(o.q_weighting == "relative" || o.q_weighting == "revenue",
          "q-weighting: must be relative or revenue");
  require(std::isfinite(o.mixer_weight), "mixer-weight: must be finite (negative: the default)");
  require(o.batch >= 1, "batch: must be >= 1");
  require(o.epochs >= 1 && o.value_epochs >= 1, "epochs: must be >= 1");
  require(o.target_update >= 1, "target-update: must be >= 1");
  require(o.validation_fraction > 0 && o.validation_fraction < 1, "validation: must be in (0, 1)");
}

TrainSummary TrainBundle(const TrainingLog& log, const AllotConfig& config,
                         const TrainOptions& options, const std::string& models_dir,
                         std::ostream& out) {
  ValidateTrainOptions(options);
  if (log.rows < 20)
    throw std::runtime_error("need at least 20 transitions, got " + std::to_string(log.rows));
  if (log.agents.size() != config.agents.size())
    throw std::runtime_error("log and config disagree on agents");
  TrainingRun run(log, config, options, out);
  FitUserValues(run);
  ComputeObservations(run);
  FitCosts(run);
  FitCostMapWhereItPredictsBetter(run);
  FitReuseModel(run);
  ComputeCredit(run);
  FitActionValues(run);
  CalibrateAndCheck(run);
  MoveRevenueScaleIntoValues(run);
  return WriteBundle(run, models_dir);
}

}  // namespace allot::models
