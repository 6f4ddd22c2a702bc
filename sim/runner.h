// Plays requests through the chain under one policy: features -> decisions -> degraded actions ->
// stage outputs, costs and revenue; closes control periods (CPU, degradation, lambda updates).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "policy/lambda_controller.h"
#include "sim/chain_model.h"
#include "sim/module_load.h"
#include "sim/run_result.h"
#include "sim/sim_policy.h"
#include "sim/world.h"

namespace allot::sim {

// ControlInput.now_ms of simulated time 0 (any fixed epoch works; controllers compare times).
constexpr int64_t kSimEpochMs = 1'700'000'000'000;

struct RunOptions {
  bool online = false;          // lagged noisy CPU, degradation and timeouts; lambda updates
  double period_s = 1.0;        // control period, simulated seconds
  double scale = 200.0;         // real requests per simulated request
  std::vector<double> lambdas;  // initial lambda per config module (missing = 0)
  // Online only: called once per period with the simulated telemetry, the cost curves of the
  // policy's reservoir, and the production guard (rate limit, bounds, DCAF MaxPower cap) applied
  // to its output, as policy/control_loop.cc does; nullptr = fixed lambdas.
  LambdaController* controller = nullptr;
  // Scored samples the controller's cost curves are built from (0 = the whole reservoir, as the
  // server does). Curves cost a re-decision per sample and grid point every period; long runs
  // whose controller does not need precise curves (generate) use a strided subset.
  size_t curve_samples = 0;
  uint64_t noise_seed = 1;  // CPU measurement noise (same for every policy: common random numbers)
  std::function<void(const Request&)> before_request;    // e.g. pacing in drive
  std::function<void(const RequestRecord&)> on_request;  // e.g. the training-log writer
  std::function<void(const PeriodRecord&)> on_period;    // e.g. ReportLoad in drive
  bool record_features = false;                          // fill StepRecord::features for on_request
};

class Runner {
 public:
  Runner(const World& world, SimPolicy& policy, RunOptions options, std::string name = "");

  // Requests must come in time order.
  void Process(const Request& request);
  // Closes the last period and returns the totals.
  RunResult Finish();

  const std::vector<double>& lambdas() const { return lambdas_; }

 private:
  void AdvanceTo(double sim_s);
  void Control();
  void ClosePeriod(bool complete);
  StageResult RunStage(const Request& r, int stage, uint32_t applied, const StageOutput& in) const;
  int LevelOf(int stage) const;
  // Revenue and compute of the same request had it recomputed every stage.
  void PriceReuse(const Request& r, const std::array<std::optional<uint32_t>, kNumStages>& decided,
                  double* revenue, double* cost);

  const World& world_;
  SimPolicy& policy_;
  RunOptions options_;
  ModuleLoad load_;
  RunResult result_;
  std::vector<double> lambdas_;
  std::vector<double> max_cost_;  // per-request cost cap per module from the guard (0 = none)
  std::vector<double> grid_;      // lambdas the controller's cost curves are sampled at
  int64_t period_ = 0;
  PeriodRecord current_;
  std::vector<double> lambda_sum_, lambda_count_;
  std::vector<float> features_;
  std::vector<CachedStage> caches_;
  std::vector<ScoredSample> recent_;
  bool any_request_ = false;
};

}  // namespace allot::sim
