// What one policy's run through the world produced: totals and the per-period series.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "policy/cache_reuse.h"
#include "sim/request.h"

namespace allot::sim {

struct PeriodRecord {
  int64_t index = 0;
  double start_s = 0.0;        // simulated seconds
  std::vector<double> lambda;  // mean lambda of the decisions taken, per module
  std::vector<double> cpu;     // utilisation per module as monitoring shows it
  std::vector<double> qps;     // real requests per second per module
  std::vector<int> level;      // degradation level per module during the period
  double revenue = 0.0;        // expected revenue of the period's requests
  int64_t requests = 0;
  bool complete = true;  // false for a last period the stream ended inside
};

// Per request, what the runner hands to loggers.
struct StepRecord {
  size_t agent = 0;       // index into config.agents
  bool decided = false;   // the agent was asked (false when a reuse skipped it before deciding)
  bool executed = false;  // false when a cache reuse skipped the stage
  uint32_t chosen = 0;    // the policy's joint action
  uint32_t applied = 0;   // after elastic degradation
  double cost = 0.0;      // measured core-ms
  double lambda = 0.0;
  bool explored = false;
  double propensity = 1.0;  // of `chosen` under the policy
  std::vector<float> features;
};

struct RequestRecord {
  const Request* request = nullptr;
  std::vector<StepRecord> steps;  // chain order
  std::vector<CachedStage> caches;
  int cache_reuse = 0;
  double cache_propensity = 1.0;  // of the reuse the policy chose
  double expected_revenue = 0.0;  // after timeouts (in expectation)
  double revenue = 0.0;           // realised
  double saved_cost = 0.0;        // compute the reuse saved vs the counterfactual chain
  double reuse_revenue_cost = 0.0;
  int degradation = 0;  // highest level among the modules
  bool timed_out = false;
};

// The requests that reused one stage's cached output: what they saved and lost against
// recomputing (the runner's counterfactual chain), and, for a policy that estimates its reuses,
// what it predicted: the fresh value it gave up and the share of it the reuse would keep.
struct ReuseTally {
  int64_t reuses = 0;
  double saved_cost = 0.0;              // core-ms
  double revenue_cost = 0.0;            // counterfactual revenue - revenue made
  double counterfactual_revenue = 0.0;  // what recomputing would have made
  int64_t estimated = 0;                // reuses the policy estimated (ScorerPolicy: every one)
  double predicted_fresh = 0.0;         // over those: the chosen action's predicted value
  double predicted_kept = 0.0;          // and that value times the predicted retained share
};

struct RunResult {
  std::string name;
  bool online = false;
  bool hindsight = false;         // an oracle's replay
  double revenue = 0.0;           // expected, the table's revenue
  double realised_revenue = 0.0;  // with click noise and drawn timeouts
  std::vector<double> cost;       // core-ms per module (simulated requests)
  double cache_saved_cost = 0.0;
  double cache_revenue_cost = 0.0;
  std::array<ReuseTally, kNumStages> reuse_by_stage{};  // by the reused stage, chain order
  int64_t requests = 0;
  int64_t reuses = 0;
  int64_t explored_steps = 0;
  int64_t fallbacks = 0;
  int64_t timeouts = 0;
  std::vector<double> final_lambda;
  std::vector<PeriodRecord> periods;
};

}  // namespace allot::sim
