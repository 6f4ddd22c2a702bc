// The closed loop. Everything random about a request was drawn when it was generated, so a run is
// a deterministic function of (requests, policy, options).
#include "sim/runner.h"

#include <algorithm>
#include <cmath>

#include "sim/features.h"

namespace allot::sim {

Runner::Runner(const World& world, SimPolicy& policy, RunOptions options, std::string name)
    : world_(world),
      policy_(policy),
      options_(std::move(options)),
      load_(world, options_.online, options_.period_s, options_.scale, options_.noise_seed) {
  const size_t n = world.num_modules();
  lambdas_ = options_.lambdas;
  lambdas_.resize(n, 0.0);
  max_cost_.assign(n, 0.0);
  if (options_.online && options_.controller) {
    // The world outlives the runner: a non-owning pointer to its config.
    std::shared_ptr<const AllotConfig> config(std::shared_ptr<const AllotConfig>(),
                                              &world.config());
    control_ = std::make_unique<ControlLoop>(config, ControlPorts{this, this, this, &clock_},
                                             *options_.controller);
  }
  result_.name = name.empty() ? policy.name() : std::move(name);
  result_.online = options_.online;
  result_.cost.assign(n, 0.0);
  lambda_sum_.assign(n, 0.0);
  lambda_count_.assign(n, 0.0);
}

int Runner::LevelOf(int stage) const {
  return options_.online ? load_.level(static_cast<size_t>(world_.layout().stage_module(stage)))
                         : 0;
}

StageResult Runner::RunStage(const Request& r, int stage, uint32_t applied,
                             const StageOutput& in) const {
  return world_.model().Run(stage, r, in, world_.layout().at_stage(stage).settings[applied]);
}

void Runner::PriceReuse(const Request& r,
                        const std::array<std::optional<uint32_t>, kNumStages>& decided,
                        double* revenue, double* cost) {
  const ChainLayout& layout = world_.layout();
  Upstream up;
  StageOutput current;
  double survive = 1.0;
  *cost = 0.0;
  for (int s = 0; s < kNumStages; ++s) {
    const AgentLayout& agent = layout.at_stage(s);
    // The first agent's decision stands; later agents would have seen fresh upstream outputs.
    std::optional<uint32_t> joint = s == 0 ? decided[0] : std::nullopt;
    if (s > 0) {
      features_.resize(agent.features.size());
      ComputeFeatures(agent.features, r, up, features_);
      const AgentView view{&r,          static_cast<size_t>(s),
                           agent.agent, static_cast<size_t>(agent.module),
                           features_,   {},
                           lambdas_,    max_cost_};
      joint = policy_.Counterfactual(view);
      if (!joint) joint = decided[static_cast<size_t>(s)];
    }
    if (!joint) joint = static_cast<uint32_t>(agent.space.safe_default());
    const StageResult res =
        RunStage(r, s, layout.Degrade(static_cast<size_t>(s), *joint, LevelOf(s)), current);
    current = res.out;
    *cost += res.cost;
    if (s == kRecall) up.recall = current;
    if (s == kPrerank) up.prerank = current;
    if (options_.online)
      survive *= 1.0 - load_.timeout(static_cast<size_t>(layout.stage_module(s)));
  }
  *revenue = ChainModel::Revenue(r, current) * survive;
}

void Runner::Process(const Request& r) {
  AdvanceTo(r.sim_s);
  any_request_ = true;
  if (options_.before_request) options_.before_request(r);
  const ChainLayout& layout = world_.layout();
  const ChainModel& model = world_.model();

  std::array<StageOutput, kNumStages> cached{};
  caches_.clear();
  if (r.cache.present) {
    for (int s = 0; s < kNumStages; ++s) {
      if (!layout.reusable(s)) continue;
      cached[s] = model.Cached(r, s);
      if (cached[s].count > 0) {
        caches_.push_back(
            {s + 1, true, r.cache.age_s, static_cast<uint32_t>(std::lround(cached[s].count))});
      }
    }
  }

  const bool record = static_cast<bool>(options_.on_request);
  RequestRecord rec;
  if (record) {
    rec.request = &r;
    rec.caches = caches_;
    rec.steps.resize(kNumStages);
  }
  Upstream up;
  StageOutput current;
  std::array<double, kNumStages> cost{};
  std::array<bool, kNumStages> ran{};
  std::array<std::optional<uint32_t>, kNumStages> decided;
  int reuse = 0;
  AgentChoice first_choice;
  for (int s = 0; s < kNumStages; ++s) {
    const AgentLayout& agent = layout.at_stage(s);
    const size_t module = static_cast<size_t>(layout.stage_module(s));
    const bool skipped_before_deciding = s > 0 && s < reuse;
    if (record) rec.steps[static_cast<size_t>(s)].agent = agent.agent;
    AgentChoice choice;
    if (!skipped_before_deciding) {
      features_.resize(agent.features.size());
      ComputeFeatures(agent.features, r, up, features_);
      const AgentView view{
          &r,
          static_cast<size_t>(s),
          agent.agent,
          module,
          features_,
          s == 0 ? std::span<const CachedStage>(caches_) : std::span<const CachedStage>(),
          lambdas_,
          max_cost_};
      choice = policy_.Decide(view);
      lambda_sum_[module] += choice.lambda;
      lambda_count_[module] += 1;
      result_.explored_steps += choice.explored;
      result_.fallbacks += choice.fallback;
      decided[static_cast<size_t>(s)] = choice.joint;
      if (s == 0) {
        const bool usable = std::any_of(caches_.begin(), caches_.end(), [&](const CachedStage& c) {
          return c.stage == choice.cache_reuse;
        });
        reuse = usable ? choice.cache_reuse : 0;
        first_choice = choice;
        if (record) rec.cache_propensity = choice.cache_propensity;
      }
      if (record) {
        StepRecord& step = rec.steps[static_cast<size_t>(s)];
        step.decided = true;
        step.chosen = choice.joint;
        step.lambda = choice.lambda;
        step.explored = choice.explored;
        step.propensity = choice.propensity;
        if (options_.record_features) step.features = features_;
      }
    }
    if (s < reuse) {  // served from the cache
      if (s == reuse - 1) current = cached[s];
      if (s == kRecall) up.recall = cached[kRecall];
      if (s == kPrerank) up.prerank = cached[kPrerank];
      continue;
    }
    const uint32_t applied = layout.Degrade(static_cast<size_t>(s), choice.joint, LevelOf(s));
    const StageResult res = RunStage(r, s, applied, current);
    current = res.out;
    cost[s] = res.cost;
    ran[s] = true;
    if (s == kRecall) up.recall = current;
    if (s == kPrerank) up.prerank = current;
    if (record) {
      rec.steps[static_cast<size_t>(s)].executed = true;
      rec.steps[static_cast<size_t>(s)].applied = applied;
      rec.steps[static_cast<size_t>(s)].cost = res.cost;
    }
  }

  double survive = 1.0;
  for (int s = 0; s < kNumStages; ++s) {
    if (!ran[s]) continue;
    const size_t module = static_cast<size_t>(layout.stage_module(s));
    load_.Add(module, cost[s]);
    load_.Count(module);
    result_.cost[module] += cost[s];
    if (options_.online) survive *= 1.0 - load_.timeout(module);
  }
  const double nominal = ChainModel::Revenue(r, current);
  const double expected = nominal * survive;
  const bool timed_out = options_.online && r.timeout_u >= survive;
  const double realised = timed_out ? 0.0 : nominal * r.revenue_noise;
  result_.revenue += expected;
  result_.realised_revenue += realised;
  result_.timeouts += timed_out;
  result_.requests += 1;
  current_.revenue += expected;
  current_.requests += 1;

  double saved = 0.0;
  double revenue_cost = 0.0;
  if (reuse > 0) {
    double cf_revenue = 0.0;
    double cf_cost = 0.0;
    PriceReuse(r, decided, &cf_revenue, &cf_cost);
    saved = cf_cost - (cost[0] + cost[1] + cost[2]);
    revenue_cost = cf_revenue - expected;
    result_.reuses += 1;
    result_.cache_saved_cost += saved;
    result_.cache_revenue_cost += revenue_cost;
    ReuseTally& tally = result_.reuse_by_stage[static_cast<size_t>(reuse - 1)];
    tally.reuses += 1;
    tally.saved_cost += saved;
    tally.revenue_cost += revenue_cost;
    tally.counterfactual_revenue += cf_revenue;
    if (first_choice.reuse_retained >= 0) {
      tally.estimated += 1;
      tally.predicted_fresh += first_choice.predicted_value;
      tally.predicted_kept += first_choice.predicted_value * first_choice.reuse_retained;
    }
  }
  if (record) {
    rec.cache_reuse = reuse;
    rec.expected_revenue = expected;
    rec.revenue = realised;
    rec.saved_cost = saved;
    rec.reuse_revenue_cost = revenue_cost;
    rec.degradation = options_.online ? load_.max_level() : 0;
    rec.timed_out = timed_out;
    options_.on_request(rec);
  }
}

void Runner::AdvanceTo(double sim_s) {
  const auto target = static_cast<int64_t>(std::floor(sim_s / options_.period_s));
  while (period_ < target) ClosePeriod(true);
}

void Runner::ClosePeriod(bool complete) {
  const size_t n = world_.num_modules();
  current_.index = period_;
  current_.start_s = static_cast<double>(period_) * options_.period_s;
  current_.complete = complete;
  current_.level.resize(n);
  for (size_t m = 0; m < n; ++m) current_.level[m] = load_.level(m);  // in force during the period
  load_.ClosePeriod();
  current_.lambda.resize(n);
  current_.cpu.resize(n);
  current_.qps.resize(n);
  for (size_t m = 0; m < n; ++m) {
    current_.lambda[m] = lambda_count_[m] > 0 ? lambda_sum_[m] / lambda_count_[m] : lambdas_[m];
    current_.cpu[m] = load_.utilization(m);
    current_.qps[m] = load_.qps(m);
  }
  result_.periods.push_back(current_);
  if (options_.on_period) options_.on_period(current_);

  if (control_) {
    clock_.SetMs(kSimEpochMs + static_cast<int64_t>(std::llround(static_cast<double>(period_ + 1) *
                                                                 options_.period_s * 1000.0)));
    control_->Step();
  }
  current_ = PeriodRecord();
  std::fill(lambda_sum_.begin(), lambda_sum_.end(), 0.0);
  std::fill(lambda_count_.begin(), lambda_count_.end(), 0.0);
  ++period_;
}

std::optional<LoadSample> Runner::Latest(const std::string& module, std::string*) {
  const std::vector<ModuleConfig>& modules = world_.config().modules;
  const size_t m =
      static_cast<size_t>(std::find_if(modules.begin(), modules.end(),
                                       [&](const ModuleConfig& c) { return c.name == module; }) -
                          modules.begin());
  if (m >= modules.size() || world_.cores(m) <= 0) return std::nullopt;
  LoadSample sample;
  sample.cpu_utilization = load_.utilization(m);
  sample.qps = load_.qps(m);
  sample.degradation_level = static_cast<uint32_t>(load_.level(m));
  sample.timestamp_ms = clock_.NowMs();
  return sample;
}

std::vector<double> Runner::Current(const AllotConfig&) const { return lambdas_; }

void Runner::Publish(const AllotConfig&, std::span<const ModuleDecision> decisions) {
  for (size_t m = 0; m < decisions.size() && m < lambdas_.size(); ++m) {
    lambdas_[m] = decisions[m].lambda;
    max_cost_[m] = decisions[m].max_cost_ms;
  }
}

std::vector<ScoredSample> Runner::Recent() const {
  const ScoreReservoir* reservoir = policy_.reservoir();
  if (!reservoir) return {};
  std::vector<ScoredSample> recent = reservoir->Snapshot();
  if (options_.curve_samples > 0 && recent.size() > options_.curve_samples) {
    const size_t stride = (recent.size() + options_.curve_samples - 1) / options_.curve_samples;
    size_t out = 0;
    for (size_t i = 0; i < recent.size(); i += stride) recent[out++] = std::move(recent[i]);
    recent.resize(out);
  }
  return recent;
}

RunResult Runner::Finish() {
  if (any_request_) ClosePeriod(false);
  any_request_ = false;
  result_.final_lambda = lambdas_;
  return std::move(result_);
}

}  // namespace allot::sim
