// Interpolated daily profile and spike windows (a spike may wrap past midnight).
#include "sim/traffic.h"

#include <cmath>
#include <numeric>

namespace allot::sim {

TrafficShape::TrafficShape(const TrafficConfig& config)
    : profile_(config.hourly_profile), spikes_(config.spikes) {
  const double mean =
      std::accumulate(profile_.begin(), profile_.end(), 0.0) / static_cast<double>(profile_.size());
  for (double& p : profile_) p /= mean;
}

double TrafficShape::Profile(double hour) const {
  // Entry i describes the hour [i, i + 1), i.e. its centre i + 0.5.
  const double x = hour - 0.5;
  const double lo = std::floor(x);
  const double frac = x - lo;
  const int n = static_cast<int>(profile_.size());
  const int i = ((static_cast<int>(lo) % n) + n) % n;
  return profile_[i] * (1.0 - frac) + profile_[(i + 1) % n] * frac;
}

double TrafficShape::Spike(int day, double hour) const {
  double m = 1.0;
  for (const SpikeConfig& s : spikes_) {
    if (s.day >= 0 && s.day != day) continue;
    const double since = std::fmod(hour - s.start_hour + 24.0, 24.0);
    if (since * 60.0 < s.duration_min) m *= s.multiplier;
  }
  return m;
}

}  // namespace allot::sim
