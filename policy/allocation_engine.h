// The decision path without any wire format: snapshot -> score -> argmax(value - lambda * cost).
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "policy/action_space.h"
#include "policy/cache_budget.h"
#include "policy/cache_reuse.h"
#include "policy/config.h"
#include "policy/decision_rule.h"
#include "policy/feature_guard.h"
#include "policy/score_reservoir.h"
#include "policy/scorer.h"

namespace allot {

// Everything a decision reads that changes only on reload: config, action spaces, scorer.
struct PolicySnapshot {
  std::shared_ptr<const AllotConfig> config;
  std::shared_ptr<const ActionScorer> scorer;
  std::vector<ActionSpace> spaces;        // per agent, config order
  std::vector<std::string> agent_module;  // per agent
  std::vector<std::string> stage_module;  // per cache_reuse stage
  // The same as indices into config->modules, for the lambda table (see LambdaTable::Price).
  uint64_t module_layout = 0;
  std::vector<size_t> agent_module_index;
  std::vector<size_t> stage_module_index;
  std::vector<std::vector<FeatureGuard>> feature_guards;  // per agent, from agents[].feature_bounds

  int AgentIndex(std::string_view name) const;  // -1 when unknown
};

std::shared_ptr<const PolicySnapshot> MakePolicySnapshot(
    std::shared_ptr<const AllotConfig> config, std::shared_ptr<const ActionScorer> scorer);

// The price of one module's compute, and the per-request cost cap in force (0 = none) while
// the module is above its hard CPU limit.
struct ModulePrice {
  std::string module;
  double lambda = 0.0;
  double max_cost_ms = 0.0;
};

// Identifies a config's module list (names in order); never 0.
uint64_t ModuleLayout(const AllotConfig& config);

// Prices per module, replaced as a whole by the controller.
struct LambdaTable {
  std::vector<ModulePrice> modules;
  // ModuleLayout of the config `modules` follows, index for index (0 = unknown: look up by name).
  uint64_t layout = 0;

  const ModulePrice* Find(std::string_view module) const;
  double Get(std::string_view module, double fallback) const;
  // The price of module `index` of a config with layout `for_layout`, named `module`: by index on
  // the request path, by name for a table built for another config (one published just before a
  // reload installed a new module list).
  const ModulePrice* Price(uint64_t for_layout, size_t index, std::string_view module) const {
    if (for_layout == layout && index < modules.size()) return &modules[index];
    return Find(module);
  }
  double Lambda(uint64_t for_layout, size_t index, std::string_view module) const {
    const ModulePrice* price = Price(for_layout, index, module);
    return price ? price->lambda : 0.0;
  }
};

// The own module's per-request cost cap in force (0 = none): the tighter of the agent's configured
// cap and the controller's overload cap in `price` (may be null).
double CostCap(const AgentConfig& agent, const ModulePrice* price);

struct Allocation {
  std::shared_ptr<const PolicySnapshot> policy;  // keeps the action space alive for rendering
  size_t agent = 0;
  size_t joint = 0;
  double lambda = 0.0;
  double value = 0.0;
  double cost = 0.0;
  double user_value = 0.0;
  int value_bucket = 0;
  bool capped = false;
  bool proposed = false;  // an actor chose the joint action (see DecideJoint)
  CacheReuseChoice cache;
  bool fallback = false;
  const char* fallback_reason = "";
};

// A serving decision feeds the control loop (the score reservoir) and the cache budget's
// statistics; a shadow decision (a candidate policy deciding beside the serving one) must not.
enum class DecisionUse { kServe, kShadow };

class AllocationEngine {
 public:
  AllocationEngine(std::shared_ptr<const PolicySnapshot> policy, size_t reservoir_size,
                   uint32_t sample_every);

  std::shared_ptr<const PolicySnapshot> policy() const { return policy_.load(); }
  std::shared_ptr<const LambdaTable> lambdas() const { return lambdas_.load(); }
  // Swaps in a new policy; lambdas of modules that still exist are kept, new ones start at their
  // configured initial value.
  void SetPolicy(std::shared_ptr<const PolicySnapshot> policy);
  void SetLambdas(std::shared_ptr<const LambdaTable> lambdas) { StoreLambdas(std::move(lambdas)); }

  // `agent` must index policy->spaces and `features` must have the agent's width (the caller
  // validates). Never throws: a scorer failure answers with the safe default, marked fallback.
  Allocation Decide(const std::shared_ptr<const PolicySnapshot>& policy, size_t agent,
                    std::span<const float> features, std::span<const CachedStage> caches,
                    DecisionUse use = DecisionUse::kServe) const;
  // The configured safe default, marked as a fallback with the given reason.
  Allocation SafeDefault(const std::shared_ptr<const PolicySnapshot>& policy, size_t agent,
                         const char* reason) const;

  ScoreReservoir& reservoir() { return reservoir_; }
  const ScoreReservoir& reservoir() const { return reservoir_; }
  // The ComRecycle multiplier in budget mode (null in lambda mode). Replaced on SetPolicy only
  // when the cache_reuse section changed; then a new statistics window starts.
  std::shared_ptr<CacheBudget> cache_budget() const { return cache_budget_.load(); }

 private:
  void StoreLambdas(std::shared_ptr<const LambdaTable> lambdas);
  // The prices in force, from this thread's copy while no new table has been stored: loading the
  // shared pointer takes its lock bit and its count, writes to lines that every deciding thread
  // shares. The copy may keep a replaced table alive until the thread's next decision.
  const LambdaTable& ThreadLambdas() const;

  std::atomic<std::shared_ptr<const PolicySnapshot>> policy_;
  const uint64_t id_;  // unique per engine, for the threads' copies of the prices
  std::atomic<std::shared_ptr<const LambdaTable>> lambdas_;
  std::atomic<uint64_t> lambdas_version_{0};  // advanced after every store to lambdas_
  mutable ScoreReservoir reservoir_;
  std::atomic<std::shared_ptr<CacheBudget>> cache_budget_;
};

}  // namespace allot
