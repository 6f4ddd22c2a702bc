// Quality of control over a run (ALGORITHMS.md section 4): use of the CPU target and overshoot.
#pragma once

#include <algorithm>

#include "sim/run_result.h"

namespace allot::sim {

struct QualityOfControl {
  double mu = 0.0;  // mean(min(C, target) / target)
  double nu = 0.0;  // mean(max(C - target, 0) / target)
  int periods = 0;  // complete control periods measured
};

// Quality of control of module m over the complete periods `keep` accepts.
template <typename Keep>
QualityOfControl MeasureControl(const RunResult& run, size_t m, double target, Keep keep) {
  QualityOfControl q;
  for (const PeriodRecord& p : run.periods) {
    if (!p.complete || m >= p.cpu.size() || !keep(p)) continue;
    q.mu += std::min(p.cpu[m], target) / target;
    q.nu += std::max(p.cpu[m] - target, 0.0) / target;
    ++q.periods;
  }
  if (q.periods > 0) {
    q.mu /= q.periods;
    q.nu /= q.periods;
  }
  return q;
}

// Mean over all periods of module m's mean lambda.
inline double MeanLambda(const RunResult& run, size_t m) {
  double sum = 0.0;
  for (const PeriodRecord& p : run.periods) sum += p.lambda[m];
  return run.periods.empty() ? 0.0 : sum / static_cast<double>(run.periods.size());
}

}  // namespace allot::sim
