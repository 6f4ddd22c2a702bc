// The local policies: a fixed allocation, any ActionScorer behind the production decision path,
// and epsilon-greedy exploration around another policy.
#pragma once

#include <memory>
#include <random>
#include <vector>

#include "policy/allocation_engine.h"
#include "policy/scorer.h"
#include "sim/sim_policy.h"
#include "sim/world.h"

namespace allot::sim {

// One fixed joint action per agent for every request; never reuses a cache.
class FixedPolicy final : public SimPolicy {
 public:
  FixedPolicy(std::string name, std::vector<uint32_t> joint_by_position);
  const std::string& name() const override { return name_; }
  AgentChoice Decide(const AgentView& view) override;
  std::optional<uint32_t> Counterfactual(const AgentView& view) override {
    return joints_[view.position];
  }

 private:
  std::string name_;
  std::vector<uint32_t> joints_;
};

// The server's decision path (AllocationEngine: argmax value - lambda cost under the per-request
// caps, ComRecycle reuse choice, reservoir sampling) around any scorer: the analytic model for
// `dcaf`, a learned bundle for the bundle rows.
class ScorerPolicy final : public SimPolicy {
 public:
  ScorerPolicy(std::string name, std::shared_ptr<const AllotConfig> config,
               std::shared_ptr<const ActionScorer> scorer);
  const std::string& name() const override { return name_; }
  AgentChoice Decide(const AgentView& view) override;
  std::optional<uint32_t> Counterfactual(const AgentView& view) override;
  const ScoreReservoir* reservoir() const override { return &engine_.reservoir(); }

 private:
  void SyncPrices(std::span<const double> lambdas, std::span<const double> max_cost);

  std::string name_;
  std::shared_ptr<const PolicySnapshot> snapshot_;
  AllocationEngine engine_;
  std::vector<double> lambdas_, max_cost_;
  AgentScores scores_;          // scratch for counterfactuals
  std::vector<double> priced_;  // scratch for counterfactuals
};

// `inner` deciding at a schedule of lambdas: request r prices compute at lambda[k], k its window
// of `window_s` simulated seconds (the last window takes every later request). Hindsight rows.
class WindowedLambdaPolicy final : public SimPolicy {
 public:
  WindowedLambdaPolicy(std::unique_ptr<SimPolicy> inner, double window_s,
                       std::vector<std::vector<double>> lambda);
  const std::string& name() const override { return inner_->name(); }
  AgentChoice Decide(const AgentView& view) override { return inner_->Decide(Priced(view)); }
  std::optional<uint32_t> Counterfactual(const AgentView& view) override {
    return inner_->Counterfactual(Priced(view));
  }

 private:
  AgentView Priced(const AgentView& view) const;

  std::unique_ptr<SimPolicy> inner_;
  double window_s_;
  std::vector<std::vector<double>> lambda_;  // per window, per config module
};

// With probability epsilon per agent step a uniformly random joint action (and, for the first
// agent, a random usable cache reuse), flagged explored; otherwise the base policy's choice.
class EpsilonGreedyPolicy final : public SimPolicy {
 public:
  EpsilonGreedyPolicy(const World& world, std::unique_ptr<SimPolicy> base, double epsilon,
                      uint64_t seed);
  const std::string& name() const override { return name_; }
  AgentChoice Decide(const AgentView& view) override;
  std::optional<uint32_t> Counterfactual(const AgentView& view) override {
    return base_->Counterfactual(view);
  }
  const ScoreReservoir* reservoir() const override { return base_->reservoir(); }

 private:
  const World& world_;
  std::unique_ptr<SimPolicy> base_;
  double epsilon_;
  std::string name_;
  std::mt19937_64 rng_;
};

}  // namespace allot::sim
