// Local policy implementations; the remote one (a live server) lives in drive.cc.
#include "sim/policies.h"

#include <algorithm>
#include <stdexcept>

#include "policy/decision_rule.h"

namespace allot::sim {

FixedPolicy::FixedPolicy(std::string name, std::vector<uint32_t> joint_by_position)
    : name_(std::move(name)), joints_(std::move(joint_by_position)) {}

AgentChoice FixedPolicy::Decide(const AgentView& view) {
  AgentChoice c;
  c.joint = joints_[view.position];
  c.lambda = view.module < view.lambdas.size() ? view.lambdas[view.module] : 0.0;
  return c;
}

ScorerPolicy::ScorerPolicy(std::string name, std::shared_ptr<const AllotConfig> config,
                           std::shared_ptr<const ActionScorer> scorer)
    : name_(std::move(name)),
      snapshot_(MakePolicySnapshot(config, std::move(scorer))),
      engine_(snapshot_, static_cast<size_t>(config->controller.reservoir_size),
              static_cast<uint32_t>(config->controller.sample_every)) {}

void ScorerPolicy::SyncPrices(std::span<const double> lambdas, std::span<const double> max_cost) {
  const auto same = [](const std::vector<double>& a, std::span<const double> b) {
    return a.size() == b.size() && std::equal(b.begin(), b.end(), a.begin());
  };
  if (same(lambdas_, lambdas) && same(max_cost_, max_cost)) return;
  lambdas_.assign(lambdas.begin(), lambdas.end());
  max_cost_.assign(max_cost.begin(), max_cost.end());
  auto table = std::make_shared<LambdaTable>();
  const auto& modules = snapshot_->config->modules;
  for (size_t m = 0; m < modules.size() && m < lambdas_.size(); ++m) {
    table->modules.push_back(
        {modules[m].name, lambdas_[m], m < max_cost_.size() ? max_cost_[m] : 0.0});
  }
  engine_.SetLambdas(std::move(table));
}

WindowedLambdaPolicy::WindowedLambdaPolicy(std::unique_ptr<SimPolicy> inner, double window_s,
                                           std::vector<std::vector<double>> lambda)
    : inner_(std::move(inner)), window_s_(window_s), lambda_(std::move(lambda)) {
  if (!(window_s_ > 0) || lambda_.empty())
    throw std::invalid_argument("WindowedLambdaPolicy needs a window and lambdas");
}

AgentView WindowedLambdaPolicy::Priced(const AgentView& view) const {
  const double t = view.request ? std::max(0.0, view.request->sim_s) : 0.0;
  const size_t k = std::min(static_cast<size_t>(t / window_s_), lambda_.size() - 1);
  AgentView priced = view;
  priced.lambdas = lambda_[k];
  return priced;
}

AgentChoice ScorerPolicy::Decide(const AgentView& view) {
  SyncPrices(view.lambdas, view.max_cost);
  const Allocation a = engine_.Decide(snapshot_, view.agent, view.features, view.caches);
  AgentChoice c;
  c.joint = static_cast<uint32_t>(a.joint);
  c.cache_reuse = a.cache.reuse;
  if (a.cache.reuse > 0) c.reuse_retained = a.cache.value_retained;
  c.lambda = a.lambda;
  c.predicted_value = a.value;
  c.predicted_cost = a.cost;
  c.user_value = a.user_value;
  c.fallback = a.fallback;
  return c;
}

std::optional<uint32_t> ScorerPolicy::Counterfactual(const AgentView& view) {
  scores_.cross_module.clear();
  scores_.cross_cost.clear();
  if (!snapshot_->scorer->Score(view.agent, view.features, &scores_) || scores_.value.empty())
    return std::nullopt;
  const AgentConfig& agent = snapshot_->config->agents[view.agent];
  const int module = snapshot_->config->ModuleIndex(agent.module);
  const double lambda =
      module >= 0 && static_cast<size_t>(module) < view.lambdas.size() ? view.lambdas[module] : 0.0;
  const double cap = module >= 0 && static_cast<size_t>(module) < view.max_cost.size()
                         ? view.max_cost[module]
                         : 0.0;
  const double max_cost =
      cap > 0 && (agent.max_cost_ms <= 0 || cap < agent.max_cost_ms) ? cap : agent.max_cost_ms;
  return static_cast<uint32_t>(DecideJoint(*snapshot_->scorer, view.agent, view.features, scores_,
                                           lambda, view.lambdas, max_cost, priced_)
                                   .joint);
}

EpsilonGreedyPolicy::EpsilonGreedyPolicy(const World& world, std::unique_ptr<SimPolicy> base,
                                         double epsilon, uint64_t seed)
    : world_(world),
      base_(std::move(base)),
      epsilon_(epsilon),
      name_(base_->name() + "+eps"),
      rng_(seed) {}

AgentChoice EpsilonGreedyPolicy::Decide(const AgentView& view) {
  AgentChoice c = base_->Decide(view);
  const uint32_t base_joint = c.joint;
  const int base_reuse = c.cache_reuse;
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  const size_t n = world_.layout().chain()[view.position].space.size();
  if (coin(rng_) < epsilon_) {
    c.joint = static_cast<uint32_t>(std::uniform_int_distribution<size_t>(0, n - 1)(rng_));
    c.explored = true;
  }
  // The base choice is kept with probability 1 - epsilon, and every option is drawn with
  // epsilon / options (the base one included).
  const auto propensity = [&](bool is_base, size_t options) {
    return (is_base ? 1.0 - epsilon_ : 0.0) + epsilon_ / static_cast<double>(options);
  };
  c.propensity = propensity(c.joint == base_joint, n);
  if (!view.caches.empty()) {
    if (coin(rng_) < epsilon_) {
      // Recompute, or reuse any stage that has something cached.
      const size_t pick = std::uniform_int_distribution<size_t>(0, view.caches.size())(rng_);
      c.cache_reuse = pick == view.caches.size() ? 0 : view.caches[pick].stage;
      c.explored = true;
    }
    c.cache_propensity = propensity(c.cache_reuse == base_reuse, view.caches.size() + 1);
  }
  return c;
}

}  // namespace allot::sim
