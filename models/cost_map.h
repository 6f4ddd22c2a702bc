// The AutoBucket cost map (ALGORITHMS.md section 3, MaRCA appendix B): TestBench measurements of
// the stage cost with one decision moved off its safe default (`allot-sim testbench` CSV) become
// the cost of every joint action per value bucket. No LibTorch here.
//
// Per agent and value bucket, with R_d(o) the measured cost with decision d at option o and every
// other decision at its safe default, and R0 the cost of the safe default itself:
//   queue:  R_d over queue lengths made non-decreasing (monotone regression, pool adjacent
//           violators weighted by the bucket's request count);
//   switch: R_d(off) and R_d(on) as measured;
//   link:   a set of channels costs the stage's fixed part F plus the sum of its channels'
//           increments, fitted by least squares over the measured sets (link_cost_fit.h). With
//           channels measured alone, R_d({c}) = F + inc_c, and F is identified from the default
//           set D (|D| >= 2) and R0 as (sum over c in D of R_d({c}) - R0) / (|D| - 1), clamped to
//           [0, min R_d({c})]; a chain whose channels cannot run alone is measured at sets around
//           D (sim/testbench.cc);
//   joint:  R0 + sum over decisions of (cost with that decision's choice - R0).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/config.h"

namespace allot::models {

class CostMapError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CostMap {
  // cost[agent][bucket][joint]: core-ms per request of the agent's module.
  std::vector<std::vector<std::vector<double>>> cost;

  bool empty() const { return cost.empty(); }
  double At(size_t agent, int bucket, size_t joint) const { return Row(agent, bucket)[joint]; }
  // Every joint action's cost for one agent and bucket.
  std::span<const double> Row(size_t agent, int bucket) const {
    return cost[agent][static_cast<size_t>(bucket)];
  }
};

// The agents whose costs a bundle serves from its cost map; the others use the learned cost model
// (the trainer picks, per agent, whichever predicts the logged costs better on validation data).
struct ServedCostMap {
  std::shared_ptr<const CostMap> map;
  std::vector<bool> use;  // per agent
  bool Uses(size_t agent) const { return map && agent < use.size() && use[agent]; }
};

// Fits the map from a testbench CSV. Throws CostMapError naming the source, line and column of a
// malformed row, or the agent, decision, option and bucket of a missing measurement.
CostMap FitCostMap(const std::string& csv, const std::string& source, const AllotConfig& config);

// The bundle file: YAML with one table per agent (buckets x joint actions), checked against the
// config's action space when read back.
std::string CostMapYaml(const CostMap& map, const AllotConfig& config);
CostMap ParseCostMapYaml(const std::string& yaml, const std::string& source,
                         const AllotConfig& config);

}  // namespace allot::models
