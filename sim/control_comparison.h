// Closed-loop comparison of the lambda controllers on one held-out stream: the same world, seed
// and traffic for each, quality of control per module over the whole run and split into the
// promotion windows and the rest (where a controller's spike handling shows).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/control_quality.h"
#include "sim/world.h"

namespace allot::sim {

struct ControlOptions {
  uint64_t seed = 1;
  size_t requests = 0;  // 0 = world evaluate.requests
};

struct ControlRow {
  std::string controller;                // pid | mpc
  std::vector<QualityOfControl> all;     // per module with cores
  std::vector<QualityOfControl> spikes;  // periods that start inside a promotion
  std::vector<QualityOfControl> rest;
  std::vector<double> mean_lambda;
};

struct ControlComparison {
  std::vector<std::string> modules;  // the modules the chain runs on, config order
  std::vector<ControlRow> rows;
  double duration_s = 0.0;  // simulated seconds
  int spike_periods = 0;
};

// Analytic scorer under PID and under MPC, both from the DCAF lambdas of the stream.
ControlComparison CompareControllers(const World& world, const ControlOptions& options);
std::string FormatControlComparison(const ControlComparison& comparison);
std::string FormatControlComparisonCsv(const ControlComparison& comparison);

// Whether the control period starting `start_s` simulated seconds into a run begins inside a
// promotion of the world's traffic.
bool InPromotion(const World& world, double start_s);

}  // namespace allot::sim
