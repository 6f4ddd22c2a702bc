// A closed control loop for tests: the real ControlLoop and AllocationEngine over a simulated
// three-module plant, with a manual clock.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "policy/analytic_scorer.h"
#include "policy/control_loop.h"

namespace allot::testing {

// Three modules whose CPU follows compute demand with a lag, plus measurement noise. Demand comes
// from deciding real requests with the engine at the lambdas in force, so the loop sees the same
// reservoir a server would.
class ClosedLoop {
 public:
  ClosedLoop(const std::string& kind, double noise = 0.0, uint64_t seed = 3,
             double overshoot_budget = 0.004,
             const std::function<void(AllotConfig&)>& adjust = nullptr)
      : config_(MakeConfig(kind, overshoot_budget, adjust)),
        policy_(MakePolicySnapshot(config_, std::make_shared<const AnalyticScorer>(*config_))),
        engine_(policy_, 2048, 1),
        telemetry_(clock_),
        source_(telemetry_),
        ports_(engine_),
        loop_(config_, ControlPorts{&source_, &ports_, &ports_, &clock_}),
        rng_(seed),
        noise_(noise) {
    std::normal_distribution<float> feature(0.0f, 0.8f);
    for (int i = 0; i < 300; ++i) {
      std::vector<float> x(8);
      for (float& v : x) v = feature(rng_);
      requests_.push_back(x);
    }
    // Capacity such that the target is met at lambda = 0.3 with base traffic.
    for (size_t m = 0; m < 3; ++m) {
      capacity_.push_back(kBaseQps * DemandPerRequest(m, 0.3) / config_->modules[m].cpu_target);
      cpu_.push_back(config_->modules[m].cpu_target);
    }
  }

  static std::shared_ptr<const AllotConfig> MakeConfig(
      const std::string& kind, double overshoot_budget,
      const std::function<void(AllotConfig&)>& adjust = nullptr) {
    AllotConfig c = LoadEmbeddedDefaultConfig();
    c.controller.kind = ParseName(kControllerKinds, kind).value();
    c.controller.mpc.overshoot_budget = overshoot_budget;
    c.controller.forecast.day_length_s = 3600;
    if (adjust) adjust(c);
    return std::make_shared<const AllotConfig>(c);
  }

  // Mean core-ms per request the module's agent spends at lambda.
  double DemandPerRequest(size_t module, double lambda) {
    const AnalyticScorer& scorer = static_cast<const AnalyticScorer&>(*policy_->scorer);
    AgentScores s;
    double total = 0;
    for (const auto& x : requests_) {
      scorer.Score(module, x, &s);
      total += ChooseAction(s, lambda).cost;
    }
    return total / requests_.size();
  }

  // Swaps in a config made the same way, as a server's reload does: policy, then control loop.
  void Reconfigure(const std::string& kind,
                   const std::function<void(AllotConfig&)>& adjust = nullptr) {
    config_ = MakeConfig(kind, config_->controller.mpc.overshoot_budget, adjust);
    policy_ = MakePolicySnapshot(config_, std::make_shared<const AnalyticScorer>(*config_));
    engine_.SetPolicy(policy_);
    loop_.Reconfigure(config_);
  }

  // One second: serve traffic, move the plant, report load (unless `report` is false), control.
  void Tick(double qps_factor, bool report = true) {
    const auto lambdas = engine_.lambdas();
    for (size_t m = 0; m < 3; ++m) {
      for (int i = 0; i < 20; ++i)
        engine_.Decide(policy_, m, requests_[(tick_ * 20 + i) % requests_.size()], {});
      const double demand = kBaseQps * qps_factor *
                            DemandPerRequest(m, lambdas->Get(config_->modules[m].name, 0)) /
                            capacity_[m];
      cpu_[m] = kLag * cpu_[m] + (1 - kLag) * demand;
      std::normal_distribution<double> n(0.0, noise_);
      const double measured = std::clamp(cpu_[m] + (noise_ > 0 ? n(rng_) : 0.0), 0.0, 1.0);
      if (report)
        telemetry_.Report(config_->modules[m].name, "",
                          {measured, kBaseQps * qps_factor, 0, clock_.NowMs()});
    }
    decisions_ = loop_.Step();
    clock_.AdvanceMs(1000);
    ++tick_;
  }

  double cpu(size_t m) const { return cpu_[m]; }
  double lambda(size_t m) const { return engine_.lambdas()->Get(config_->modules[m].name, -1); }
  const std::vector<ModuleDecision>& decisions() const { return decisions_; }
  const ControlLoop& loop() const { return loop_; }
  const AllotConfig& config() const { return *config_; }
  AllocationEngine& engine() { return engine_; }
  std::shared_ptr<const PolicySnapshot> policy() const { return policy_; }
  const std::vector<float>& request(size_t i) const { return requests_[i]; }
  void SetCpuForTest(size_t m, double cpu) { cpu_[m] = cpu; }

  static constexpr double kBaseQps = 1000;
  static constexpr double kLag = 0.5;

 private:
  ManualClock clock_;
  std::shared_ptr<const AllotConfig> config_;
  std::shared_ptr<const PolicySnapshot> policy_;
  AllocationEngine engine_;
  TelemetryStore telemetry_;
  ReportLoadSource source_;
  EnginePorts ports_;
  ControlLoop loop_;
  std::mt19937_64 rng_;
  double noise_;
  std::vector<std::vector<float>> requests_;
  std::vector<double> capacity_;
  std::vector<double> cpu_;
  std::vector<ModuleDecision> decisions_;
  int tick_ = 0;
};

}  // namespace allot::testing
