// One decision: read the snapshots once, score all joint actions, take the priced argmax.
#include "policy/allocation_engine.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <limits>

#include "policy/score_scans.h"

namespace allot {
namespace {

std::shared_ptr<const LambdaTable> InitialLambdas(const AllotConfig& config,
                                                  const LambdaTable* previous) {
  auto table = std::make_shared<LambdaTable>();
  table->layout = ModuleLayout(config);
  for (const ModuleConfig& m : config.modules) {
    const double initial = previous ? previous->Get(m.name, m.initial_lambda) : m.initial_lambda;
    table->modules.push_back({m.name, initial, 0.0});
  }
  return table;
}

std::shared_ptr<CacheBudget> MakeCacheBudget(const AllotConfig& config) {
  if (!config.cache_reuse.enabled || config.cache_reuse.mode != CacheReuseMode::kBudget)
    return nullptr;
  return std::make_shared<CacheBudget>(config.cache_reuse);
}

// A bundle's reuse estimates for this request: what each reuse keeps as a share of the chosen
// action's value `fresh_value`, and the compute each reusable stage would cost as the bundle
// predicts it for the chosen actions (when it predicts every module's cost). Empty spans where
// it has neither.
// The reuse model predicts a reuse's revenue as a share of the user value, as it was trained.
// The cached output is what it is whatever this request would choose, so that revenue does not
// scale with the chosen action's value: a cache filled at richer settings than a cheap choice can
// keep more than 1 of it. (Default world, seed 1, reused pre-rank outputs: the chosen value times
// the share predicted 0.75 kept where 0.80 was, and reused rank outputs 0.74 where 1.16 was.)
ReuseEstimates LearnedReuse(const PolicySnapshot& policy, size_t agent,
                            std::span<const float> features, const AgentScores& scores,
                            size_t joint, double fresh_value, std::span<const CachedStage> caches) {
  thread_local std::vector<double> retained, stage_cost;
  ReuseEstimates out;
  retained.resize(caches.size());
  if (policy.scorer->ScoreReuse(agent, features, scores, caches, retained) && fresh_value > 0) {
    for (double& share : retained) share *= scores.user_value / fresh_value;
    out.retained = retained;
  }
  if (scores.cross_module.empty()) return out;
  const AllotConfig& config = *policy.config;
  const size_t n = scores.value.size();
  stage_cost.clear();
  for (const std::string& module : policy.stage_module) {
    double cost = -1.0;
    if (module == policy.agent_module[agent]) cost = scores.cost[joint];
    for (size_t k = 0; k < scores.cross_module.size() && cost < 0; ++k) {
      if (config.modules[scores.cross_module[k]].name == module)
        cost = scores.cross_cost[k * n + joint];
    }
    if (cost < 0) return out;  // a stage the bundle does not price: keep the configured costs
    stage_cost.push_back(cost);
  }
  out.stage_cost = stage_cost;
  return out;
}

// A scorer's answer is served, and enters the reservoir the controllers learn from, only when
// every number in it is finite and no cost is negative: one poisoned request must not reach the
// caller or the price of compute.
bool ServableScores(const AgentScores& s) {
  using score_scans::AllFinite;
  return std::isfinite(s.user_value) && AllFinite(s.value.data(), s.value.size(), false) &&
         AllFinite(s.cost.data(), s.cost.size(), true) &&
         AllFinite(s.cross_cost.data(), s.cross_cost.size(), true);
}

uint64_t NextEngineId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

uint64_t ModuleLayout(const AllotConfig& config) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the names, each ended by a 0 byte
  for (const ModuleConfig& m : config.modules) {
    for (const char c : m.name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h *= 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

int PolicySnapshot::AgentIndex(std::string_view name) const {
  for (size_t i = 0; i < config->agents.size(); ++i) {
    if (config->agents[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::shared_ptr<const PolicySnapshot> MakePolicySnapshot(
    std::shared_ptr<const AllotConfig> config, std::shared_ptr<const ActionScorer> scorer) {
  auto snap = std::make_shared<PolicySnapshot>();
  auto index_of = [&](const std::string& module) {
    size_t i = 0;
    while (i < config->modules.size() && config->modules[i].name != module) ++i;
    return i;  // == size for an unknown module: Price falls back to the name
  };
  for (const AgentConfig& agent : config->agents) {
    snap->feature_guards.push_back(FeatureGuards(agent));
    snap->spaces.emplace_back(agent);
    snap->agent_module.push_back(agent.module);
    snap->agent_module_index.push_back(index_of(agent.module));
  }
  for (const CacheStageConfig& stage : config->cache_reuse.stages) {
    snap->stage_module.push_back(stage.module);
    snap->stage_module_index.push_back(index_of(stage.module));
  }
  snap->module_layout = ModuleLayout(*config);
  snap->config = std::move(config);
  snap->scorer = std::move(scorer);
  return snap;
}

const ModulePrice* LambdaTable::Find(std::string_view module) const {
  for (const ModulePrice& m : modules) {
    if (m.module == module) return &m;
  }
  return nullptr;
}

double LambdaTable::Get(std::string_view module, double fallback) const {
  const ModulePrice* m = Find(module);
  return m ? m->lambda : fallback;
}

AllocationEngine::AllocationEngine(std::shared_ptr<const PolicySnapshot> policy,
                                   size_t reservoir_size, uint32_t sample_every)
    : id_(NextEngineId()), reservoir_(reservoir_size, sample_every) {
  StoreLambdas(InitialLambdas(*policy->config, nullptr));
  cache_budget_.store(MakeCacheBudget(*policy->config));
  policy_.store(std::move(policy));
}

void AllocationEngine::SetPolicy(std::shared_ptr<const PolicySnapshot> policy) {
  StoreLambdas(InitialLambdas(*policy->config, lambdas_.load().get()));
  // The budget's multiplier and statistics window survive a swap that leaves cache reuse as it was
  // (a new bundle, another section reloaded).
  if (policy_.load()->config->cache_reuse != policy->config->cache_reuse)
    cache_budget_.store(MakeCacheBudget(*policy->config));
  policy_.store(std::move(policy));
}

void AllocationEngine::StoreLambdas(std::shared_ptr<const LambdaTable> lambdas) {
  lambdas_.store(std::move(lambdas));
  lambdas_version_.fetch_add(1, std::memory_order_release);
}

const LambdaTable& AllocationEngine::ThreadLambdas() const {
  struct Copy {
    uint64_t engine = 0, version = 0;
    std::shared_ptr<const LambdaTable> table;
  };
  // A few engines per thread (experiment arms decide with engines of their own).
  thread_local std::array<Copy, 4> copies;
  thread_local size_t next_replaced = 0;
  // Acquire: a version read after a store sees that store's table, or a newer one.
  const uint64_t version = lambdas_version_.load(std::memory_order_acquire);
  Copy* mine = nullptr;
  for (Copy& c : copies) {
    if (c.engine == id_) mine = &c;
  }
  if (mine != nullptr && mine->version == version) return *mine->table;
  if (mine == nullptr) mine = &copies[next_replaced++ % copies.size()];
  *mine = {id_, version, lambdas_.load()};
  return *mine->table;
}

Allocation AllocationEngine::SafeDefault(const std::shared_ptr<const PolicySnapshot>& policy,
                                         size_t agent, const char* reason) const {
  Allocation out;
  out.policy = policy;
  out.agent = agent;
  out.joint = policy->spaces[agent].safe_default();
  out.lambda = ThreadLambdas().Lambda(policy->module_layout, policy->agent_module_index[agent],
                                      policy->agent_module[agent]);
  out.fallback = true;
  out.fallback_reason = reason;
  return out;
}

double CostCap(const AgentConfig& agent, const ModulePrice* price) {
  double cap = agent.max_cost_ms;
  if (price && price->max_cost_ms > 0 && (cap <= 0 || price->max_cost_ms < cap))
    cap = price->max_cost_ms;
  return cap;
}

Allocation AllocationEngine::Decide(const std::shared_ptr<const PolicySnapshot>& policy,
                                    size_t agent, std::span<const float> request_features,
                                    std::span<const CachedStage> caches, DecisionUse use) const {
  // Requests out of a reject bound were refused before they got here (the simulator clips them).
  thread_local std::vector<float> clipped;
  const std::span<const float> features =
      ClipFeatures(policy->feature_guards[agent], request_features, clipped);
  // Reused per thread: scoring allocates nothing in steady state.
  thread_local AgentScores scores;
  // A scorer that models no later module, or excludes nothing, may leave these untouched: none
  // from an earlier call (another scorer's mask on this thread once excluded options here).
  scores.cross_module.clear();
  scores.cross_cost.clear();
  scores.excluded.clear();
  bool scored = false;
  try {
    scored = policy->scorer->Score(agent, features, &scores) &&
             scores.value.size() == policy->spaces[agent].size() &&
             scores.cost.size() == scores.value.size() &&
             scores.cross_cost.size() == scores.cross_module.size() * scores.value.size();
  } catch (const std::exception&) {
    scored = false;
  }
  if (!scored) return SafeDefault(policy, agent, "scorer_failed");
  if (!ServableScores(scores)) return SafeDefault(policy, agent, "scorer_output_invalid");

  const LambdaTable* lambdas = &ThreadLambdas();
  const AllotConfig& config = *policy->config;
  Allocation out;
  out.policy = policy;
  out.agent = agent;
  const ModulePrice* price = lambdas->Price(
      policy->module_layout, policy->agent_module_index[agent], policy->agent_module[agent]);
  out.lambda = price ? price->lambda : 0.0;
  const double cap = CostCap(config.agents[agent], price);
  // Every module's price (by config module index): the later modules this agent's choice loads
  // are priced too, and an actor reads them all.
  thread_local std::vector<double> module_lambda, priced;
  module_lambda.clear();
  for (size_t m = 0; m < config.modules.size(); ++m)
    module_lambda.push_back(lambdas->Lambda(policy->module_layout, m, config.modules[m].name));
  const ChosenAction chosen =
      DecideJoint(*policy->scorer, agent, features, scores, out.lambda, module_lambda, cap, priced);
  out.joint = chosen.joint;
  out.value = chosen.value;
  out.cost = chosen.cost;
  out.capped = chosen.capped;
  out.proposed = chosen.proposed;
  out.user_value = scores.user_value;
  out.value_bucket = scores.value_bucket;
  if (!caches.empty()) {
    double stage_lambda[8];
    const size_t n = std::min<size_t>(policy->stage_module.size(), 8);
    for (size_t i = 0; i < n; ++i) {
      stage_lambda[i] = lambdas->Lambda(policy->module_layout, policy->stage_module_index[i],
                                        policy->stage_module[i]);
    }
    const std::shared_ptr<CacheBudget> budget = cache_budget_.load();
    double mu = -1.0;
    // What a reuse puts at stake is what recomputing would make: the chosen action's predicted
    // value, not the user's value alone. Priced against the compute of that same action, it
    // keeps the reuse choice one comparison of net values (default world, seed 1: awrq+dcaf
    // 95.24 -> 95.39, second world 90.99 -> 91.35).
    if (budget) {
      if (use == DecisionUse::kServe) budget->Record(out.value, caches);
      mu = budget->mu();
    }
    out.cache = ChooseCacheReuse(
        config.cache_reuse, out.value, {stage_lambda, n}, caches, mu,
        LearnedReuse(*policy, agent, features, scores, out.joint, out.value, caches));
  }
  if (use == DecisionUse::kServe) reservoir_.MaybeRecord(agent, scores);
  return out;
}

}  // namespace allot
