// `allot-sim generate`: training logs from an epsilon-greedy exploration policy around a decision
// rule (the analytic model's, or a bundle's: the served policy logging for the next training),
// whose lambda the PID controller (policy/) keeps near the CPU target.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "allot/v1/transition.pb.h"
#include "policy/scorer.h"
#include "sim/run_result.h"
#include "sim/world.h"

namespace allot::sim {

struct GenerateOptions {
  std::string out_dir;
  int64_t requests = 200000;
  int shards = 4;
  uint64_t seed = 1;
  double epsilon = 0.1;  // per agent step: probability of a uniformly random joint action
  // The scores the explored rule maximises (a bundle's); null: the analytic model's.
  std::shared_ptr<const ActionScorer> scorer;
};

struct GenerateSummary {
  int64_t requests = 0;
  int64_t explored_steps = 0;
  int64_t steps = 0;
  int64_t cache_reuses = 0;
  double revenue = 0.0;  // realised, as logged
  double expected_revenue = 0.0;
  std::vector<double> agent_cost;  // per config agent, core-ms as logged
  std::vector<int64_t> shard_counts;
  std::vector<std::string> files;
  std::string manifest;  // path of manifest.json
};

// One request as the generator logs it: request_id "gen-<seed>-<index>", the decided steps with
// their propensities, the cache the first agent saw and the revenue.
void ToTransition(const World& world, const RequestRecord& rec, uint64_t seed, int64_t index,
                  v1::Transition* t);

// Throws std::runtime_error on I/O errors.
GenerateSummary Generate(const World& world, const GenerateOptions& options);

}  // namespace allot::sim
