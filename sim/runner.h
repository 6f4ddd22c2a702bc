// Plays requests through the chain under one policy: features -> decisions -> degraded actions ->
// stage outputs, costs and revenue; closes control periods (CPU, degradation, lambda updates).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "policy/clock.h"
#include "policy/control_loop.h"
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
  // Online only: run once per period by the server's ControlLoop, reading the simulated
  // telemetry and the policy's reservoir and publishing to the runner's lambdas; nullptr = fixed
  // lambdas.
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

// The runner is the control loop's world: it measures module load (TelemetrySource), holds the
// prices its policy decides with (PriceBoard) and hands over the policy's scored samples
// (SampleSource).
class Runner final : private TelemetrySource, private PriceBoard, private SampleSource {
 public:
  Runner(const World& world, SimPolicy& policy, RunOptions options, std::string name = "");

  // Requests must come in time order.
  void Process(const Request& request);
  // Closes the last period and returns the totals.
  RunResult Finish();

  const std::vector<double>& lambdas() const { return lambdas_; }

 private:
  void AdvanceTo(double sim_s);
  // The control loop's ports.
  const char* name() const override { return "simulated"; }
  std::optional<LoadSample> Latest(const std::string& module, std::string* error) override;
  std::vector<double> Current(const AllotConfig& config) const override;
  void Publish(const AllotConfig& config, std::span<const ModuleDecision> decisions) override;
  std::vector<ScoredSample> Recent() const override;
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
  ManualClock clock_;             // simulated time: the end of the period being closed
  std::unique_ptr<ControlLoop> control_;  // online with a controller only
  int64_t period_ = 0;
  PeriodRecord current_;
  std::vector<double> lambda_sum_, lambda_count_;
  std::vector<float> features_;
  std::vector<CachedStage> caches_;
  bool any_request_ = false;
};

}  // namespace allot::sim
