// The trainer's step loop and row tensors; see training_steps.h.
#include "models/training_steps.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "policy/cache_reuse.h"

namespace allot::models {
namespace {

using Clock = std::chrono::steady_clock;

// Progress on one line every couple of seconds: rate, loss and time left.
class Progress {
 public:
  Progress(std::ostream* out, std::string stage, size_t total)
      : out_(out), stage_(std::move(stage)), total_(total), start_(Clock::now()), last_(start_) {}
  void Update(size_t done, double loss) {
    const auto now = Clock::now();
    if (out_ == nullptr || (now - last_ < std::chrono::seconds(2) && done < total_)) return;
    last_ = now;
    const double s = seconds();
    const double rate = done / std::max(1e-9, s);
    const double eta = (total_ - std::min(done, total_)) / std::max(1e-9, rate);
    char line[256];
    std::snprintf(
        line, sizeof(line), "train %-14s %5.1f%% | %7.1fk transitions/s | loss %.5f | ETA %.0fs",
        stage_.c_str(), 100.0 * done / std::max<size_t>(1, total_), rate / 1000, loss, eta);
    *out_ << line << std::endl;
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  std::ostream* out_;
  std::string stage_;
  size_t total_;
  Clock::time_point start_, last_;
};

std::vector<torch::Tensor> Batches(const torch::Tensor& rows, int64_t batch, std::mt19937_64& rng) {
  if (rows.size(0) == 0) return {};
  std::vector<int64_t> order(static_cast<size_t>(rows.size(0)));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const torch::Tensor shuffled = rows.index_select(0, LongTensor(order, {rows.size(0)}));
  return shuffled.split(batch);
}

// Replaces every rank's gradients by their average over all ranks' rows of this step (rank r's
// gradient is the mean over its `rows`). Returns those rows; 0 means no rank had any. One
// process: the gradients as they are.
size_t AverageGradients(Collective& ranks, const std::vector<torch::Tensor>& parameters,
                        size_t rows) {
  if (ranks.world_size() == 1) return rows;
  std::vector<torch::Tensor> parts;
  for (const torch::Tensor& p : parameters) {
    parts.push_back(p.grad().defined() ? p.grad().reshape({-1}) * static_cast<double>(rows)
                                       : torch::zeros({p.numel()}));
  }
  parts.push_back(torch::full({1}, static_cast<float>(rows)));
  torch::Tensor flat = torch::cat(parts).contiguous();
  ranks.Sum(std::span<float>(flat.data_ptr<float>(), static_cast<size_t>(flat.numel())));
  const auto total = static_cast<size_t>(std::llround(flat[-1].item<double>()));
  if (total == 0) return 0;
  flat.div_(static_cast<double>(total));
  int64_t at = 0;
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& p : parameters) {
    torch::Tensor average = flat.slice(0, at, at + p.numel()).view_as(p);
    if (p.grad().defined())
      p.mutable_grad().copy_(average);
    else
      p.mutable_grad() = average.clone();
    at += p.numel();
  }
  return total;
}

}  // namespace

torch::Tensor FloatTensor(const std::vector<float>& data, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(data.data()), shape, torch::kFloat).clone();
}

torch::Tensor LongTensor(const std::vector<int64_t>& data, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<int64_t*>(data.data()), shape, torch::kInt64).clone();
}

RowTensors ToTensors(const TrainingLog& log, const AllotConfig& config, double scale) {
  RowTensors t;
  t.rows = static_cast<int64_t>(log.rows);
  for (const AgentColumns& c : log.agents) {
    t.features.push_back(FloatTensor(c.features, {t.rows, static_cast<int64_t>(c.width)}));
    t.digits.push_back(LongTensor(c.digits, {t.rows, static_cast<int64_t>(c.decisions)}));
    t.cost.push_back(FloatTensor(c.cost, {t.rows}));
    t.present.push_back(
        torch::from_blob(const_cast<uint8_t*>(c.present.data()), {t.rows}, torch::kUInt8)
            .to(torch::kFloat));
  }
  t.revenue = FloatTensor(log.revenue, {t.rows});
  t.reward = t.revenue / scale;
  t.full_chain = torch::ones({t.rows});
  for (const torch::Tensor& p : t.present) t.full_chain = t.full_chain * p;
  std::vector<int64_t> stage(log.rows, -1);
  std::vector<float> age(log.rows, 0.0f), size(log.rows, 0.0f), share(log.rows, 1.0f);
  for (size_t r = 0; r < log.rows; ++r) {
    if (!IsReuseRow(log, r)) continue;
    const int reused = log.cache_reuse[r];
    const size_t at = r * kCacheStages + static_cast<size_t>(reused - 1);
    stage[r] = reused - 1;
    age[r] = log.cache_age[at];
    size[r] = log.cache_size[at];
    for (const CacheStageConfig& c : config.cache_reuse.stages) {
      if (StageNumber(c.stage) == reused && c.half_life_s > 0)
        share[r] = static_cast<float>(std::exp2(-age[r] / c.half_life_s));
    }
  }
  t.reuse_stage = LongTensor(stage, {t.rows});
  t.reuse_age = FloatTensor(age, {t.rows});
  t.reuse_size = FloatTensor(size, {t.rows});
  t.half_life_share = FloatTensor(share, {t.rows});
  return t;
}

RowTensors Concat(std::vector<RowTensors>& parts) {
  if (parts.size() == 1) return std::move(parts.front());
  auto cat = [&](auto field) {
    std::vector<torch::Tensor> pieces;
    for (RowTensors& p : parts) pieces.push_back(field(p));
    return torch::cat(pieces);
  };
  RowTensors t;
  for (const RowTensors& p : parts) t.rows += p.rows;
  for (size_t i = 0; i < parts.front().features.size(); ++i) {
    t.features.push_back(cat([i](RowTensors& p) { return p.features[i]; }));
    t.digits.push_back(cat([i](RowTensors& p) { return p.digits[i]; }));
    t.cost.push_back(cat([i](RowTensors& p) { return p.cost[i]; }));
    t.present.push_back(cat([i](RowTensors& p) { return p.present[i]; }));
  }
  t.revenue = cat([](RowTensors& p) { return p.revenue; });
  t.reward = cat([](RowTensors& p) { return p.reward; });
  t.full_chain = cat([](RowTensors& p) { return p.full_chain; });
  t.reuse_stage = cat([](RowTensors& p) { return p.reuse_stage; });
  t.reuse_age = cat([](RowTensors& p) { return p.reuse_age; });
  t.reuse_size = cat([](RowTensors& p) { return p.reuse_size; });
  t.half_life_share = cat([](RowTensors& p) { return p.half_life_share; });
  return t;
}

void Derive(RowTensors& t, BundleModels& models, const AllotConfig& config, double log_scale) {
  torch::NoGradGuard no_grad;
  const auto& bounds = config.value_model.bucket_bounds;
  const torch::Tensor bounds_t =
      torch::tensor(std::vector<double>(bounds.begin(), bounds.end()), torch::kFloat);
  t.obs.clear();
  t.buckets.clear();
  t.log_base.clear();
  for (size_t i = 0; i < t.features.size(); ++i) {
    const torch::Tensor base = models->value[i]->forward(t.features[i]).squeeze(1).clamp(-30, 30);
    const torch::Tensor v = (base + log_scale).exp();  // revenue units
    const torch::Tensor bucket = torch::bucketize(v, bounds_t, /*out_int32=*/false, /*right=*/true);
    t.obs.push_back(models->Observation(t.features[i], bucket));
    t.buckets.push_back(bucket);
    t.log_base.push_back(base);
  }
}

// One epoch's batches on this rank: the chunks in a shuffled order, read in groups of at most
// kMixedChunks (of even sizes: 25 chunks are 6, 6, 6, 7, so no epoch ends on a lone chunk) whose
// selected rows are shuffled together. Mixing chunks from random places matters for a log sharded
// by user and written in time order, which would otherwise train on one user group or one
// stretch of the day at a time.
class EpochBatches {
 public:
  EpochBatches(const StepLoop& loop, int64_t batch, BundleModels* derive_with,
               const RowSelector& select)
      : loop_(loop),
        batch_(batch),
        derive_with_(derive_with),
        select_(select),
        order_(loop.source.chunks()) {
    std::iota(order_.begin(), order_.end(), 0);
    std::shuffle(order_.begin(), order_.end(), loop_.rng);
    groups_ = (order_.size() + kMixedChunks - 1) / kMixedChunks;
  }

  // Rows of chunk() for the next step; undefined when this rank is out of rows.
  torch::Tensor Next() {
    while (next_batch_ == batches_.size() && next_chunk_ < order_.size()) ReadGroup();
    return next_batch_ < batches_.size() ? batches_[next_batch_++] : torch::Tensor();
  }
  const RowTensors& chunk() const { return chunk_; }

 private:
  void ReadGroup() {
    std::vector<RowTensors> mixed;
    const size_t group_end = ++group_ * order_.size() / groups_;
    while (next_chunk_ < group_end) {
      mixed.push_back(
          ToTensors(loop_.source.ReadChunk(order_[next_chunk_++]), loop_.config, loop_.scale));
    }
    chunk_ = Concat(mixed);
    if (derive_with_ != nullptr) Derive(chunk_, *derive_with_, loop_.config, std::log(loop_.scale));
    batches_ = Batches(select_ ? select_(chunk_) : torch::arange(chunk_.rows), batch_, loop_.rng);
    next_batch_ = 0;
  }

  const StepLoop& loop_;
  int64_t batch_;
  BundleModels* derive_with_;
  const RowSelector& select_;
  std::vector<size_t> order_;
  size_t groups_ = 0, group_ = 0, next_chunk_ = 0, next_batch_ = 0;
  RowTensors chunk_;
  std::vector<torch::Tensor> batches_;
};

StepLoop::Result StepLoop::Run(const std::string& stage, int epochs,
                               torch::optim::Optimizer& optimizer,
                               const std::vector<torch::Tensor>& parameters, const BatchLoss& loss,
                               BundleModels* derive_with, const RowSelector& select,
                               const std::function<void()>& after_step) {
  const int world = ranks.world_size();
  const int64_t local_batch = std::max<int64_t>(1, (batch + world - 1) / world);
  Progress progress(progress_out, stage,
                    static_cast<size_t>(epochs) * source.statistics().train_rows);
  Result result;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    EpochBatches batches(*this, local_batch, derive_with, select);
    for (;;) {
      const torch::Tensor rows = batches.Next();
      const size_t n = rows.defined() ? static_cast<size_t>(rows.size(0)) : 0;
      optimizer.zero_grad();
      double value = 0;
      if (n > 0) {
        const torch::Tensor l = loss(batches.chunk(), rows);
        l.backward();
        value = l.item<double>();
      }
      const size_t total = AverageGradients(ranks, parameters, n);
      if (total == 0) break;  // every rank is out of rows: the epoch is over everywhere
      optimizer.step();
      if (after_step) after_step();
      result.rows += total;
      progress.Update(result.rows, value);
    }
  }
  result.seconds = progress.seconds();
  return result;
}

void CheckSameOnEveryRank(Collective& ranks, const std::string& what, const std::string& value) {
  if (!SameOnEveryRank(ranks, value))
    throw std::runtime_error("distributed: the ranks were given different " + what +
                             "; every rank needs the same");
}

void CheckRanksAgree(Collective& ranks, const std::vector<torch::Tensor>& parameters) {
  double sum = 0;
  for (const torch::Tensor& p : parameters)
    sum += p.detach().to(torch::kDouble).sum().item<double>();
  if (!SameOnEveryRank(ranks, std::string(reinterpret_cast<const char*>(&sum), sizeof(sum))))
    throw std::runtime_error(
        "distributed: the ranks' parameters diverged (their checksums differ)");
}

torch::Tensor MaskedPoisson(const torch::Tensor& log_rate, const torch::Tensor& target,
                            const torch::Tensor& mask, bool per_column) {
  const torch::Tensor weight = mask.expand_as(log_rate);
  const torch::Tensor nll = (log_rate.exp() - target * log_rate) * weight;
  if (per_column) return nll.sum(0) / weight.sum(0).clamp_min(1.0);
  return nll.sum() / weight.sum().clamp_min(1.0);
}

torch::Tensor LossWeight(const std::string& q_weighting, const torch::Tensor& log_base) {
  if (q_weighting == "revenue") return torch::ones_like(log_base);
  constexpr double kFloor = 0.05;  // weight at most 20x that of an average request
  return 1.0 / log_base.exp().clamp_min(kFloor);
}

torch::Tensor CentralLoss(const torch::Tensor& q_tot, const torch::Tensor& reward,
                          const torch::Tensor& full_chain, const torch::Tensor& log_base,
                          const std::string& q_weighting) {
  const torch::Tensor weight =
      full_chain * LossWeight(q_weighting, log_base) * LossWeight("relative", log_base);
  return ((q_tot - reward).pow(2) * weight).sum() / full_chain.sum().clamp_min(1.0);
}

torch::Tensor DistillationTarget(const torch::Tensor& q, double pessimism) {
  if (pessimism == 0.0 || q.size(1) < 2) return q;
  const torch::Tensor bound =
      q.mean(1, /*keepdim=*/true) - pessimism * q.std(1, /*unbiased=*/true, /*keepdim=*/true);
  return bound.expand_as(q);
}

double PoissonDeviance(const torch::Tensor& y, const torch::Tensor& log_rate) {
  const torch::Tensor mu = log_rate.exp();
  const torch::Tensor term = torch::where(y > 0, y * (y / mu).log(), torch::zeros_like(y));
  return (2 * (term - (y - mu))).mean().item<double>();
}

}  // namespace allot::models
