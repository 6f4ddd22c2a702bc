// The analytic value/cost model from the config: the fallback and the DCAF-style baseline.
#pragma once

#include <memory>

#include "policy/action_space.h"
#include "policy/config.h"
#include "policy/scorer.h"

namespace allot {

// user value  v(s)   = exp(bias + sum_f w_f x_f)          (value_model.weights by feature name)
// value bucket b(s)  = number of value_model.bucket_bounds <= v(s)
// value(s, a)        = v(s) * sum_d gain[d][option][b(s)]  (LINK: sum over the selected channels)
// cost(a)            = sum_d cost_ms[d][option] * prod_d cost_multiplier[d][option]
//                                                          (a set of channels costs their sum)
// cost_m(a)          = sum_d module_cost_ms[d][option][m]  for every later module m
// Gains are additive across decisions, the rule that DCAF-style deployments use; costs may
// interact (a heavy model multiplies the queue's cost) and reach later modules.
class AnalyticScorer final : public ActionScorer {
 public:
  explicit AnalyticScorer(const AllotConfig& config);

  const std::string& version() const override { return version_; }
  const char* inference() const override { return "analytic"; }
  bool Score(size_t agent, std::span<const float> features, AgentScores* out) const override;

  // Shared by learned scorers that bucket their predicted user value the same way.
  static int Bucket(const ValueModelConfig& model, double user_value);

 private:
  struct AgentTables {
    std::vector<double> weights;       // per feature position
    std::vector<double> gain;          // joint action x bucket
    std::vector<double> cost;          // per joint action
    std::vector<size_t> cross_module;  // config module indices with a module_cost_ms
    std::vector<double> cross_cost;    // cross_module x joint action
  };
  std::string version_ = "analytic";
  ValueModelConfig value_model_;
  std::vector<AgentTables> agents_;
};

}  // namespace allot
