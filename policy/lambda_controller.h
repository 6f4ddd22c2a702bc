// The lambda controllers' common interface: one call per control period, lambda per module out.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/config.h"
#include "policy/cost_curve.h"
#include "policy/score_reservoir.h"
#include "policy/telemetry_store.h"

namespace allot {

// What a controller sees each period. Vectors are indexed like config.modules.
struct ControlInput {
  int64_t now_ms = 0;
  double dt_s = 1.0;  // since the previous period (controller.period_s for the first)
  // Newest telemetry per module; nullopt when there is none or it is stale (the guard then holds
  // lambda, so controllers only ever see fresh load).
  std::vector<std::optional<LoadSample>> load;
  std::vector<double> lambda;  // lambda in force
  // Per module: expected cost per request at any lambda, from the recent scored requests.
  std::vector<CostCurve> curves;
};

// What it decided, for GetControlState and metrics.
struct ModuleDecision {
  double lambda = 0.0;
  double predicted_cpu = 0.0;    // what the controller expects at the new lambda (0 if unknown)
  double forecast_qps = 0.0;     // next period's forecast (0 if the controller does not forecast)
  std::vector<double> forecast;  // horizon forecast of QPS (may be empty)
  bool stale = false;            // telemetry older than lambda.stale_after_s
  bool capped = false;           // module above its hard limit: per-request cost caps apply
  double max_cost_ms = 0.0;      // the per-request cap while capped (0 = none)
  std::string controller;        // "mpc", "pid"; "hold" then "decay" while telemetry is stale
  std::string telemetry_error;   // why the telemetry source gave nothing usable this period
};

class LambdaController {
 public:
  virtual ~LambdaController() = default;
  virtual const char* name() const = 0;
  // Called once per control period. Returns one decision per module, in config order.
  virtual std::vector<ModuleDecision> Update(const ControlInput& input) = 0;
  // Takes new settings and targets for the same modules (same names, same order) and keeps what
  // it has learned. False when it cannot; the caller then starts a new controller.
  virtual bool Adopt(const AllotConfig& config) = 0;
};

}  // namespace allot
