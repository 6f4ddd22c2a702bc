// A two-agent chain with a known best joint action, and Transition log writing, for model tests.
#pragma once

#include <google/protobuf/util/delimited_message_util.h>

#include <cmath>
#include <fstream>
#include <random>
#include <string>

#include "allot/v1/transition.pb.h"
#include "models/trainer.h"
#include "policy/config.h"

namespace allot::testing {

// Agents "first" and "second", one queue decision of three options each, two features each.
inline std::string TwoAgentConfigYaml() {
  return R"(
modules:
  - {name: m1, cpu_target: 0.5, cpu_hard_limit: 0.9, initial_lambda: 0.0}
  - {name: m2, cpu_target: 0.5, cpu_hard_limit: 0.9, initial_lambda: 0.0}
value_model: {bias: 0.0, bucket_bounds: [1.0, 3.0], weights: {}}
agents:
  - name: first
    module: m1
    features: [f0, f1]
    decisions:
      - name: q
        kind: queue
        safe_default: "10"
        options:
          - {length: 10, gain: [0.1, 0.1, 0.1], cost_ms: 1}
          - {length: 20, gain: [0.1, 0.1, 0.1], cost_ms: 2}
          - {length: 30, gain: [0.1, 0.1, 0.1], cost_ms: 3}
  - name: second
    module: m2
    features: [g0, g1]
    decisions:
      - name: q
        kind: queue
        safe_default: "10"
        options:
          - {length: 10, gain: [0.1, 0.1, 0.1], cost_ms: 1}
          - {length: 20, gain: [0.1, 0.1, 0.1], cost_ms: 2}
          - {length: 30, gain: [0.1, 0.1, 0.1], cost_ms: 3}
cache_reuse: {enabled: false}
)";
}

// Revenue = 1 + 1.0 [a = 2] + 0.6 [b = 1] + 0.4 [a = 2 and b = 1] + noise: the best joint action
// is (2, 1); under uniform exploration E[R | a = 2] = 1 + 1 + 0.6/3 + 0.4/3 = 2.333.
inline double SyntheticRevenue(int a, int b, std::mt19937_64& rng) {
  std::normal_distribution<double> noise(0.0, 0.05);
  return std::max(0.0,
                  1.0 + (a == 2) * 1.0 + (b == 1) * 0.6 + (a == 2 && b == 1) * 0.4 + noise(rng));
}

// One agent step of the two-agent chain: two N(0, 1) features, the choice, cost 1 + choice.
inline v1::AgentStep* AddStep(v1::Transition& t, const char* agent, int choice,
                              std::mt19937_64& rng) {
  std::normal_distribution<float> feature(0.0f, 1.0f);
  v1::AgentStep* s = t.add_steps();
  s->set_agent(agent);
  s->add_features(feature(rng));
  s->add_features(feature(rng));
  s->set_joint_action(static_cast<uint32_t>(choice));
  s->set_cost(1.0 + choice);
  s->set_propensity(1.0 / 3.0);  // every writer below draws the choice uniformly
  return s;
}

inline void WriteSyntheticLog(const std::string& path, int rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> action(0, 2);
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < rows; ++i) {
    v1::Transition t;
    t.set_request_id("r" + std::to_string(i));
    t.set_timestamp_ms(1'700'000'000'000 + i);
    const int a = action(rng), b = action(rng);
    AddStep(t, "first", a, rng);
    AddStep(t, "second", b, rng);
    t.set_revenue(SyntheticRevenue(a, b, rng));
    google::protobuf::util::SerializeDelimitedToOstream(t, &out);
  }
}

// A heavy-tailed chain: the user value is e^(1.5 f0) (the first feature of both agents), so a
// few requests earn most of the revenue, and the first agent's longer queues pay in proportion
// (x1.15, x1.3) for users worth less than 1 and cost the rest (x0.85, x0.7). Multiplicative
// lognormal noise; uniform actions. What the second agent chooses does not matter.
inline double TailUplift(double value, int a) {
  const double step = value < 1.0 ? 0.15 : -0.15;
  return 1.0 + step * a;
}

inline void WriteValueTailLog(const std::string& path, int rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> action(0, 2);
  std::normal_distribution<float> feature(0.0f, 1.0f);
  std::normal_distribution<double> noise(0.0, 0.3);
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < rows; ++i) {
    v1::Transition t;
    t.set_request_id("tail" + std::to_string(i));
    const float f0 = feature(rng);
    const double value = std::exp(1.5 * f0);
    const int a = action(rng);
    for (const char* agent : {"first", "second"}) {
      v1::AgentStep* s = t.add_steps();
      s->set_agent(agent);
      s->add_features(f0);
      s->add_features(feature(rng));
      s->set_joint_action(static_cast<uint32_t>(agent[0] == 'f' ? a : action(rng)));
      s->set_cost(1.0);
    }
    t.set_revenue(value * TailUplift(value, a) * std::exp(noise(rng) - 0.045));
    google::protobuf::util::SerializeDelimitedToOstream(t, &out);
  }
}

// Repeat requests of the two-agent chain, each with a cached output of stage 1 (the first agent's
// stage) of age U[0, 300] s. Half of them reuse it: the first agent's step is then marked
// served_from_cache (its stage did not run) and the revenue keeps 0.7 * e^(-age / 200) of what
// recomputing would have earned: an immediate loss no half-life expresses.
inline double SyntheticRetained(double age_s) { return 0.7 * std::exp(-age_s / 200.0); }

// `retained` replaces SyntheticRetained: what a reuse keeps, as a function of the cache's age.
inline void WriteReuseLog(const std::string& path, int rows, uint64_t seed,
                          double (*retained)(double) = SyntheticRetained) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> action(0, 2);
  std::uniform_real_distribution<double> age(0.0, 300.0);
  std::bernoulli_distribution reuse(0.5);
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < rows; ++i) {
    v1::Transition t;
    t.set_request_id("reuse" + std::to_string(i));
    const int a = action(rng), b = action(rng);
    const double cache_age = age(rng);
    const bool reused = reuse(rng);
    v1::AgentStep* first = AddStep(t, "first", a, rng);
    AddStep(t, "second", b, rng)->set_compute_price(0.05);
    first->set_compute_price(0.05);
    if (reused) {  // the first agent's stage was served from the cache
      first->set_served_from_cache(true);
      first->set_cost(0.0);
    }
    v1::StageCache* cache = t.add_cache();
    cache->set_stage(v1::STAGE_RECALL);
    cache->set_present(true);
    cache->set_age_seconds(cache_age);
    cache->set_size(100);
    t.set_cache_reuse(reused ? v1::CACHE_REUSE_RECALL : v1::CACHE_REUSE_NONE);
    t.set_cache_reuse_propensity(0.5);
    t.set_revenue(SyntheticRevenue(a, b, rng) * (reused ? retained(cache_age) : 1.0));
    google::protobuf::util::SerializeDelimitedToOstream(t, &out);
  }
}

}  // namespace allot::testing

namespace allot::testing {

// Random transitions for any config: uniform joint actions, revenue rising with the first feature
// and the joint action index. Enough to train a small bundle for serving tests.
inline void WriteRandomLog(const AllotConfig& config, const std::string& path, int rows,
                           uint64_t seed);

// Training options for such a bundle: `heads` x `hidden` action-value nets, one epoch of each
// model, no progress lines.
inline models::TrainOptions SmallBundleOptions(int heads, int hidden) {
  models::TrainOptions o;
  o.heads = heads;
  o.hidden = hidden;
  o.epochs = 1;
  o.value_epochs = 1;
  o.progress = false;
  return o;
}

}  // namespace allot::testing

#include "policy/action_space.h"

inline void allot::testing::WriteRandomLog(const AllotConfig& config, const std::string& path,
                                           int rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> feature(0.0f, 1.0f);
  std::vector<ActionSpace> spaces;
  for (const AgentConfig& a : config.agents) spaces.emplace_back(a);
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < rows; ++i) {
    v1::Transition t;
    double revenue = 0.5;
    for (size_t a = 0; a < config.agents.size(); ++a) {
      v1::AgentStep* s = t.add_steps();
      s->set_agent(config.agents[a].name);
      for (size_t f = 0; f < config.agents[a].features.size(); ++f) s->add_features(feature(rng));
      const uint32_t joint = static_cast<uint32_t>(
          std::uniform_int_distribution<size_t>(0, spaces[a].size() - 1)(rng));
      s->set_joint_action(joint);
      s->set_cost(1.0 + 0.1 * joint);
      revenue +=
          0.1 * std::exp(s->features(0)) * (1.0 + static_cast<double>(joint) / spaces[a].size());
    }
    t.set_revenue(revenue);
    google::protobuf::util::SerializeDelimitedToOstream(t, &out);
  }
}
