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
#include "policy/analytic_scorer.h"
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

double Spearman(const std::vector<double>& a, const std::vector<double>& b) {
  auto ranks = [](const std::vector<double>& x) {
    std::vector<size_t> idx(x.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t i, size_t j) { return x[i] < x[j]; });
    std::vector<double> r(x.size());
    for (size_t k = 0; k < idx.size(); ++k) r[idx[k]] = static_cast<double>(k);
    return r;
  };
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  const double mean = (n - 1) / 2;
  double cov = 0, va = 0, vb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    cov += (ra[i] - mean) * (rb[i] - mean);
    va += (ra[i] - mean) * (ra[i] - mean);
    vb += (rb[i] - mean) * (rb[i] - mean);
  }
  return va > 0 && vb > 0 ? cov / std::sqrt(va * vb) : 0.0;
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

}  // namespace

const std::vector<std::string>& Algorithms() {
  static const std::vector<std::string> names = {"dqn", "drqn", "vdn", "qmix", "awrq"};
  return names;
}

TrainSummary TrainBundle(const TrainingLog& log, const AllotConfig& config,
                         const TrainOptions& options, const std::string& models_dir,
                         std::ostream& out) {
  const auto& names = Algorithms();
  if (std::find(names.begin(), names.end(), options.algorithm) == names.end()) {
    throw std::runtime_error("unknown algorithm '" + options.algorithm +
                             "' (dqn, drqn, vdn, qmix, awrq)");
  }
  if (log.rows < 20)
    throw std::runtime_error("need at least 20 transitions, got " + std::to_string(log.rows));
  if (log.agents.size() != config.agents.size())
    throw std::runtime_error("log and config disagree on agents");
  torch::manual_seed(options.seed);
  at::set_num_threads(std::max(1, options.threads));
  std::mt19937_64 rng(options.seed);

  Architecture arch;
  arch.algorithm = options.algorithm;
  arch.heads = options.algorithm == "awrq" ? std::max(1, options.heads) : 1;
  arch.hidden = options.hidden;
  arch.head_hidden = options.head_hidden;
  arch.mixer_embed = options.mixer_embed;
  arch.dropout = options.dropout;
  BundleModels models(config, arch);
  BundleModels target(config, arch);
  const size_t n_agents = config.agents.size();
  const int64_t rows = static_cast<int64_t>(log.rows);

  std::vector<torch::Tensor> features, digits, cost;
  for (size_t i = 0; i < n_agents; ++i) {
    const AgentColumns& c = log.agents[i];
    features.push_back(FloatTensor(c.features, {rows, static_cast<int64_t>(c.width)}));
    digits.push_back(LongTensor(c.digits, {rows, static_cast<int64_t>(c.decisions)}));
    cost.push_back(FloatTensor(c.cost, {rows}));
  }
  const torch::Tensor revenue = FloatTensor(log.revenue, {rows});

  // Deterministic split: a seeded permutation, the last validation_fraction held out.
  std::vector<int64_t> order(static_cast<size_t>(rows));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const int64_t n_val =
      std::clamp<int64_t>(static_cast<int64_t>(rows * options.validation_fraction), 1, rows - 1);
  const torch::Tensor all = LongTensor(order, {rows});
  const torch::Tensor train_rows = all.slice(0, 0, rows - n_val);
  const torch::Tensor val_rows = all.slice(0, rows - n_val, rows);
  TrainSummary summary;

  // 1. User value: DCN with Poisson loss on revenue (log-rate output).
  {
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
          loss = loss + torch::poisson_nll_loss(log_rate, revenue.index_select(0, b), true, false,
                                                1e-8, at::Reduction::Mean);
        }
        opt.zero_grad();
        loss.backward();
        opt.step();
        done += static_cast<size_t>(b.size(0));
        progress.Update(done, loss.item<double>() / n_agents);
      }
    }
  }

  // Observations: features and the predicted value bucket.
  std::vector<torch::Tensor> obs, buckets;
  {
    torch::NoGradGuard no_grad;
    const auto& bounds = config.value_model.bucket_bounds;
    const torch::Tensor bounds_t =
        torch::tensor(std::vector<double>(bounds.begin(), bounds.end()), torch::kFloat);
    for (size_t i = 0; i < n_agents; ++i) {
      const torch::Tensor v =
          models->value[i]->forward(features[i]).squeeze(1).clamp(-30, 30).exp();
      const torch::Tensor bucket =
          torch::bucketize(v, bounds_t, /*out_int32=*/false, /*right=*/true);
      obs.push_back(models->Observation(features[i], bucket));
      buckets.push_back(bucket);
      const torch::Tensor val_v = v.index_select(0, val_rows);
      const torch::Tensor val_r = revenue.index_select(0, val_rows);
      summary.metrics["value_" + config.agents[i].name + "_rank_corr"] = Spearman(
          std::vector<double>(val_v.data_ptr<float>(), val_v.data_ptr<float>() + val_v.numel()),
          std::vector<double>(val_r.data_ptr<float>(), val_r.data_ptr<float>() + val_r.numel()));
    }
  }

  // 2. Cost: DCN on (observation, action) -> measured core-ms, MSE.
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
              {obs[i].index_select(0, b), models->ActionOneHot(i, digits[i].index_select(0, b))},
              1);
          loss = loss + torch::mse_loss(models->cost[i]->forward(in).squeeze(1),
                                        cost[i].index_select(0, b));
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
      const torch::Tensor in =
          torch::cat({obs[i].index_select(0, val_rows),
                      models->ActionOneHot(i, digits[i].index_select(0, val_rows))},
                     1);
      summary.metrics["cost_" + config.agents[i].name + "_mae_ms"] =
          (models->cost[i]->forward(in).squeeze(1).clamp_min(0) - cost[i].index_select(0, val_rows))
              .abs()
              .mean()
              .item<double>();
    }
  }

  // The AutoBucket cost map, served per agent where it predicts the logged costs better than
  // the learned cost model on the validation rows.
  CostMap cost_map;
  std::vector<std::string> cost_source(n_agents, "model");
  if (!options.testbench_csv.empty()) {
    cost_map = FitCostMap(ReadConfigFile(options.testbench_csv), options.testbench_csv, config);
    const int64_t* val = val_rows.data_ptr<int64_t>();
    for (size_t i = 0; i < n_agents; ++i) {
      const std::string& agent = config.agents[i].name;
      const torch::Tensor val_buckets = buckets[i].index_select(0, val_rows).contiguous();
      const int64_t* bucket = val_buckets.data_ptr<int64_t>();
      double error = 0;
      for (int64_t k = 0; k < n_val; ++k) {
        const auto row = static_cast<size_t>(val[k]);
        error += std::abs(cost_map.At(i, static_cast<int>(bucket[k]),
                                      static_cast<size_t>(log.agents[i].joint[row])) -
                          log.agents[i].cost[row]);
      }
      const double mae = error / static_cast<double>(n_val);  // n_val >= 1
      summary.metrics["cost_map_" + agent + "_mae_ms"] = mae;
      if (mae < summary.metrics["cost_" + agent + "_mae_ms"]) cost_source[i] = "map";
    }
  }

  // Revenue is heavy-tailed: train on revenue / mean so one learning rate suits every log; the
  // calibration below restores revenue units.
  const double scale = std::max(1e-9, revenue.index_select(0, train_rows).mean().item<double>());
  const torch::Tensor reward = revenue / scale;

  // VGCA credit: w_t = Var_j E[R | a_t = j] over the agent's joint actions, normalised to sum 1.
  std::vector<double> credit(n_agents, 1.0 / n_agents);
  if (options.algorithm == "awrq") {
    double total = 0;
    for (size_t i = 0; i < n_agents; ++i) {
      std::map<int64_t, std::pair<double, double>> by_action;  // joint -> (sum, count)
      const auto* tr = train_rows.data_ptr<int64_t>();
      for (int64_t k = 0; k < train_rows.size(0); ++k) {
        auto& s = by_action[log.agents[i].joint[tr[k]]];
        s.first += log.revenue[tr[k]] / scale;
        s.second += 1;
      }
      double mean = 0, n = 0, var = 0;
      for (auto& [a, s] : by_action) {
        mean += s.first;
        n += s.second;
      }
      mean /= n;
      for (auto& [a, s] : by_action) var += s.second * std::pow(s.first / s.second - mean, 2);
      credit[i] = var / n;
      total += credit[i];
    }
    for (double& w : credit) w = total > 0 ? w / total : 1.0 / n_agents;
    for (size_t i = 0; i < n_agents; ++i)
      summary.metrics["vgca_credit_" + config.agents[i].name] = credit[i];
  }

  // 3. Action values.
  {
    std::vector<torch::Tensor> params = ParametersOf(models->q);
    if (arch.mixed()) {
      auto p = models->mixer->parameters();
      params.insert(params.end(), p.begin(), p.end());
    }
    torch::optim::Adam opt(params, torch::optim::AdamOptions(options.lr));
    CopyParameters(*models, *target);
    const torch::Tensor state = models->MixerState(obs, digits);
    Progress progress(out, options.algorithm,
                      static_cast<size_t>(options.epochs * train_rows.size(0)), options.progress);
    size_t done = 0;
    int64_t step = 0;
    const double gamma = options.gamma;
    for (int epoch = 0; epoch < options.epochs; ++epoch) {
      for (const torch::Tensor& b : Batches(train_rows, options.batch, rng)) {
        const torch::Tensor r = reward.index_select(0, b);
        std::vector<torch::Tensor> q, o, d;
        for (size_t i = 0; i < n_agents; ++i) {
          o.push_back(obs[i].index_select(0, b));
          d.push_back(digits[i].index_select(0, b));
          q.push_back(models->q[i]->forward(o.back(), d.back()));  // [B, K]
        }
        // Chain TD targets from the target network: y_t = r_t + gamma * Q'_{t+1}(o_{t+1}, a_{t+1}).
        auto next_q = [&](size_t i) {
          torch::NoGradGuard no_grad;
          return target->q[i + 1]->forward(o[i + 1], d[i + 1]);
        };
        torch::Tensor loss = torch::zeros({});
        if (options.algorithm == "dqn" || options.algorithm == "drqn") {
          for (size_t i = 0; i < n_agents; ++i) {
            const torch::Tensor y = i + 1 < n_agents ? gamma * next_q(i).mean(1) : r;
            loss = loss + torch::mse_loss(q[i].mean(1), y);
          }
        } else if (options.algorithm == "vdn") {
          torch::Tensor total = torch::zeros_like(r);
          for (auto& qi : q) total = total + qi.mean(1);
          loss = torch::mse_loss(total, r);
        } else if (options.algorithm == "qmix") {
          std::vector<torch::Tensor> qs;
          for (auto& qi : q) qs.push_back(qi.mean(1));
          loss = torch::mse_loss(
              models->mixer->forward(torch::stack(qs, 1), state.index_select(0, b)), r);
        } else {  // awrq
          std::vector<torch::Tensor> agent_q;
          for (size_t i = 0; i < n_agents; ++i) {
            const torch::Tensor own = credit[i] * r;
            const torch::Tensor y = i + 1 < n_agents ? own.unsqueeze(1) + gamma * next_q(i)
                                                     : own.unsqueeze(1).expand_as(q[i]);
            const torch::Tensor head_loss = (y - q[i]).pow(2).mean(0);  // [K]
            // Error-proportional weights: heads that fit worse count more in the agent's Q.
            const torch::Tensor eta = (head_loss / head_loss.sum().clamp_min(1e-12)).detach();
            agent_q.push_back((q[i] * eta).sum(1));
            loss = loss + head_loss.mean();
          }
          loss = loss +
                 torch::mse_loss(
                     models->mixer->forward(torch::stack(agent_q, 1), state.index_select(0, b)), r);
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

  // 4. Calibration to revenue units on the validation split (serving uses the plain head mean).
  std::vector<double> calib_a(n_agents), calib_b(n_agents);
  {
    torch::NoGradGuard no_grad;
    models->eval();
    const torch::Tensor r = revenue.index_select(0, val_rows).to(torch::kDouble);
    for (size_t i = 0; i < n_agents; ++i) {
      const torch::Tensor qv =
          models->q[i]
              ->forward(obs[i].index_select(0, val_rows), digits[i].index_select(0, val_rows))
              .mean(1)
              .to(torch::kDouble);
      const double mq = qv.mean().item<double>(), mr = r.mean().item<double>();
      const double var = (qv - mq).pow(2).mean().item<double>();
      const double cov = ((qv - mq) * (r - mr)).mean().item<double>();
      // A non-positive slope would invert the ranking of actions: keep it positive but tiny.
      calib_b[i] = var > 0 ? std::max(cov / var, 1e-6) : 1e-6;
      calib_a[i] = mr - calib_b[i] * mq;
      const torch::Tensor fitted = calib_a[i] + calib_b[i] * qv;
      const std::string agent = config.agents[i].name;
      summary.metrics["q_" + agent + "_rank_corr"] =
          Spearman(std::vector<double>(fitted.data_ptr<double>(),
                                       fitted.data_ptr<double>() + fitted.numel()),
                   std::vector<double>(r.data_ptr<double>(), r.data_ptr<double>() + r.numel()));
      summary.metrics["q_" + agent + "_rmse"] = (fitted - r).pow(2).mean().sqrt().item<double>();
    }
  }

  // 5. Write the bundle atomically.
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
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "version" << YAML::Value << summary.version;
  {
    const std::time_t now = std::time(nullptr);
    char created[32];
    std::strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    y << YAML::Key << "created" << YAML::Value << created;
  }
  y << YAML::Key << "algorithm" << YAML::Value << options.algorithm;
  y << YAML::Key << "config_version" << YAML::Value << config.version;
  y << YAML::Key << "input_hash" << YAML::Value << log.input_hash;
  y << YAML::Key << "input_files" << YAML::Value << log.files.size();
  y << YAML::Key << "transitions" << YAML::Value << log.rows;
  y << YAML::Key << "skipped_records" << YAML::Value << log.skipped;
  y << YAML::Key << "schema" << YAML::Value << YAML::Load(SchemaYaml(config));
  y << YAML::Key << "architecture" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "heads" << YAML::Value << arch.heads << YAML::Key << "hidden" << YAML::Value
    << arch.hidden;
  y << YAML::Key << "head_hidden" << YAML::Value << YAML::Flow << arch.head_hidden;
  y << YAML::Key << "mixer_embed" << YAML::Value << arch.mixer_embed;
  y << YAML::Key << "cross_layers" << YAML::Value << arch.cross_layers;
  y << YAML::Key << "deep" << YAML::Value << YAML::Flow << arch.deep;
  y << YAML::Key << "recurrent" << YAML::Value << arch.recurrent() << YAML::Key << "mixer"
    << YAML::Value
    << (arch.mixed()                 ? "monotone"
        : options.algorithm == "vdn" ? "sum"
                                     : "none");
  y << YAML::EndMap;
  y << YAML::Key << "hyperparameters" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "lr" << YAML::Value << options.lr << YAML::Key << "gamma" << YAML::Value
    << options.gamma;
  y << YAML::Key << "batch" << YAML::Value << options.batch << YAML::Key << "epochs" << YAML::Value
    << options.epochs;
  y << YAML::Key << "value_epochs" << YAML::Value << options.value_epochs;
  y << YAML::Key << "target_update" << YAML::Value << options.target_update;
  y << YAML::Key << "dropout" << YAML::Value << options.dropout;
  y << YAML::Key << "validation_fraction" << YAML::Value << options.validation_fraction;
  y << YAML::Key << "seed" << YAML::Value << options.seed << YAML::Key << "revenue_scale"
    << YAML::Value << scale;
  y << YAML::EndMap;
  if (!cost_map.empty()) {
    y << YAML::Key << "cost_source" << YAML::Value << YAML::BeginMap;
    for (size_t i = 0; i < n_agents; ++i)
      y << YAML::Key << config.agents[i].name << YAML::Value << cost_source[i];
    y << YAML::EndMap;
  }
  y << YAML::Key << "calibration" << YAML::Value << YAML::BeginSeq;
  for (size_t i = 0; i < n_agents; ++i) {
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "agent" << YAML::Value
      << config.agents[i].name << YAML::Key << "a" << YAML::Value << calib_a[i] << YAML::Key << "b"
      << YAML::Value << calib_b[i] << YAML::EndMap;
  }
  y << YAML::EndSeq;
  y << YAML::Key << "metrics" << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : summary.metrics) y << YAML::Key << k << YAML::Value << v;
  y << YAML::EndMap << YAML::EndMap;
  std::ofstream(tmp / kManifestFile) << y.c_str() << "\n";
  const std::filesystem::path final_dir = std::filesystem::path(models_dir) / summary.version;
  std::filesystem::rename(tmp, final_dir);  // fails rather than overwrite if it appeared meanwhile
  summary.bundle_dir = final_dir.string();
  return summary;
}

}  // namespace allot::models
