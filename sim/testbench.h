// `allot-sim testbench` (AutoBucket, MaRCA appendix B): replayed traffic split into buckets of
// (value bucket x option of one decision), each run at a fixed QPS on n simulated machines of N
// cores; CPU% is read and cost per request = p% * n * N / QPS -- the data a cost map is fitted on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/world.h"

namespace allot::sim {

struct TestbenchRow {
  std::string agent;
  std::string module;
  std::string decision;
  std::string kind;    // link (one channel alone, or a set where channels cannot run alone), ...
  std::string option;  // channel ("collab+social" for a set), off/on, or the queue length
  int queue_length = 0;
  int value_bucket = 0;  // from the analytic value model's bucket bounds
  double qps = 0.0;
  int machines = 0;
  int cores = 0;
  double cpu_pct = 0.0;       // mean measured utilisation after warm-up, percent
  double cost_ms = 0.0;       // p% * n * N / QPS, core-ms per request
  double true_cost_ms = 0.0;  // mean of the world's per-request cost (for checking the fit)
  int64_t requests = 0;       // distinct replayed requests in the bucket
};

std::vector<TestbenchRow> RunTestbench(const World& world, uint64_t seed);
std::string TestbenchCsv(const std::vector<TestbenchRow>& rows);

}  // namespace allot::sim
