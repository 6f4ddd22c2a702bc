// Traffic forecast for the MPC horizon: a daily profile of QPS by time slot (learned over past
// days) scaled by today's deviation from it, with Holt exponential smoothing of level and trend.
#pragma once

#include <vector>

#include "policy/config.h"

namespace allot {

// Holt's linear exponential smoothing of one series.
class HoltSmoother {
 public:
  HoltSmoother(double alpha, double beta) : alpha_(alpha), beta_(beta) {}
  void Observe(double t_s, double y);
  double At(double t_s) const;  // level + trend * (t_s - last time)
  bool ready() const { return ready_; }
  double level() const { return level_; }
  double trend_per_s() const { return trend_; }

 private:
  double alpha_, beta_;
  double level_ = 0.0, trend_ = 0.0, last_t_ = 0.0;
  bool ready_ = false;
};

class TrafficForecast {
 public:
  explicit TrafficForecast(ForecastConfig options);

  // One QPS observation at unix time t_s; call once per control period, in time order.
  void Observe(double t_s, double qps);
  // Expected QPS at t_s (at or after the last observation); 0 before any observation.
  double At(double t_s) const;
  // Expected QPS at t_s + i * period_s for i = 1..horizon.
  std::vector<double> Horizon(double t_s, double period_s, int horizon) const;

  int SlotOf(double t_s) const;
  // The learned profile value of a slot (QPS), or 0 while it has not been observed.
  double Profile(int slot) const { return seen_[slot] ? profile_[slot] : 0.0; }

 private:
  // Profile interpolated between slot centres; 0 when the neighbouring slots are not known.
  double ProfileAt(double t_s) const;
  void CloseSlot();

  ForecastConfig options_;
  std::vector<double> profile_;
  std::vector<bool> seen_;
  HoltSmoother raw_;             // QPS itself: used where no profile is known yet
  HoltSmoother deseasonalised_;  // QPS / profile: today's deviation from a usual day
  int slot_ = -1;
  double slot_sum_ = 0.0;
  int slot_count_ = 0;
};

}  // namespace allot
