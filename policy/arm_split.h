// Experiments with arms: traffic split by a hash of user_id into weighted arms, each deciding
// with its own policy and its own price of compute, and the share of each module's load an arm
// causes, so that each arm's controller holds the CPU target over its own traffic.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/telemetry_source.h"

namespace allot {

// A uniform draw in [0, 1) from a string: FNV-1a with a final mix, stable across processes,
// builds and replicas. `salt` separates independent uses (shadow sample, arm split).
double StableUnitHash(std::string_view salt, std::string_view key);

// The arm of a user: arm i (1-based among the experiment arms) owns [sum of earlier weights,
// + weight_i) of the hash; the rest is arm 0, the main one. No user_id: arm 0.
size_t ArmOf(std::string_view user_id, std::span<const double> arm_weights);

// Predicted cost of the decisions each arm made, per module, accumulated on the request path
// (one relaxed atomic add per decision) and read by each arm's controller once per period.
class ArmLoadShare {
 public:
  ArmLoadShare(size_t arms, size_t modules);
  void Add(size_t arm, size_t module, double cost_ms) {
    totals_[arm * modules_ + module].fetch_add(cost_ms, std::memory_order_relaxed);
  }
  double Total(size_t arm, size_t module) const {
    return totals_[arm * modules_ + module].load(std::memory_order_relaxed);
  }
  // Every arm's total for the module.
  double ModuleTotal(size_t module) const {
    double all = 0.0;
    for (size_t arm = 0; arm < arms_; ++arm) all += Total(arm, module);
    return all;
  }
  size_t arms() const { return arms_; }
  size_t modules() const { return modules_; }

 private:
  size_t arms_, modules_;
  std::unique_ptr<std::atomic<double>[]> totals_;
};

// The load an arm's controller sees: the module's measured CPU times the arm's share of the
// module's predicted cost since its last read, divided by the arm's traffic weight. So each arm
// holds the target "as if it served all traffic", and the arms together hold the module at it.
// QPS is the module's: the arm's controller prices its own requests against the whole rate.
class ArmShareSource final : public TelemetrySource {
 public:
  ArmShareSource(std::unique_ptr<TelemetrySource> inner, std::shared_ptr<const ArmLoadShare> share,
                 size_t arm, double weight, std::vector<std::string> modules);
  const char* name() const override { return inner_->name(); }
  std::optional<LoadSample> Latest(const std::string& module, std::string* error) override;
  // The cluster price (allot:module_price:avg) is the main loops' price: the main arm (0) joins
  // and is pulled towards it; another arm's price is its experiment's own and is not.
  std::optional<double> ClusterPrice(const std::string& module, std::string* error) override {
    return arm_ == 0 ? inner_->ClusterPrice(module, error) : std::nullopt;
  }
  // The share of `module`'s predicted cost this arm caused over its last read (for tests).
  double last_share(size_t module) const { return last_share_[module]; }

 private:
  std::unique_ptr<TelemetrySource> inner_;
  std::shared_ptr<const ArmLoadShare> share_;
  size_t arm_;
  double weight_;
  std::vector<std::string> modules_;
  std::vector<double> seen_arm_, seen_all_, last_share_;
};

}  // namespace allot
