// The shape of traffic over a day: hourly profile (normalised to mean 1) and promotion spikes.
#pragma once

#include <vector>

#include "sim/world_config.h"

namespace allot::sim {

class TrafficShape {
 public:
  explicit TrafficShape(const TrafficConfig& config);

  // Profile at hour h in [0, 24), linear between hour centres (cyclic); its daily mean is 1.
  double Profile(double hour) const;
  // Product of the spikes active on `day` at `hour` (1 when none).
  double Spike(int day, double hour) const;
  double At(int day, double hour) const { return Profile(hour) * Spike(day, hour); }

 private:
  std::vector<double> profile_;  // normalised
  std::vector<SpikeConfig> spikes_;
};

}  // namespace allot::sim
