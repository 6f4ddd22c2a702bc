// The profile is updated once per slot, from the slot's mean QPS, so it converges to "a usual
// day" while the smoothers follow today's level and trend.
#include "policy/traffic_forecast.h"

#include <algorithm>
#include <cmath>

namespace allot {

void HoltSmoother::Observe(double t_s, double y) {
  if (!ready_) {
    level_ = y;
    trend_ = 0.0;
    ready_ = true;
  } else {
    const double dt = std::max(1e-9, t_s - last_t_);
    const double level = alpha_ * y + (1 - alpha_) * (level_ + trend_ * dt);
    trend_ = beta_ * (level - level_) / dt + (1 - beta_) * trend_;
    level_ = level;
  }
  last_t_ = t_s;
}

double HoltSmoother::At(double t_s) const { return level_ + trend_ * std::max(0.0, t_s - last_t_); }

TrafficForecast::TrafficForecast(ForecastConfig options)
    : options_(options),
      profile_(static_cast<size_t>(std::max(1, options.slots)), 0.0),
      seen_(profile_.size(), false),
      raw_(options.level_alpha, options.trend_beta),
      deseasonalised_(options.level_alpha, options.trend_beta) {}

int TrafficForecast::SlotOf(double t_s) const {
  const double day = options_.day_length_s;
  const double in_day = std::fmod(std::fmod(t_s, day) + day, day);
  const int n = static_cast<int>(profile_.size());
  return std::min(n - 1, static_cast<int>(in_day / day * n));
}

double TrafficForecast::ProfileAt(double t_s) const {
  const int n = static_cast<int>(profile_.size());
  const double slot_len = options_.day_length_s / n;
  // Position relative to slot centres: between centre i and centre i + 1.
  const double x = (t_s - 0.5 * slot_len) / slot_len;
  const double base = std::floor(x);
  const double w = x - base;
  const int i = ((static_cast<long long>(base) % n) + n) % n;
  const int j = (i + 1) % n;
  if (seen_[i] && seen_[j]) return (1 - w) * profile_[i] + w * profile_[j];
  const int own = SlotOf(t_s);
  return seen_[own] ? profile_[own] : 0.0;
}

void TrafficForecast::CloseSlot() {
  if (slot_ < 0 || slot_count_ == 0) return;
  const double mean = slot_sum_ / slot_count_;
  const double gamma = seen_[slot_] ? options_.seasonal_gamma : 1.0;
  profile_[slot_] = gamma * mean + (1 - gamma) * profile_[slot_];
  seen_[slot_] = true;
}

void TrafficForecast::Observe(double t_s, double qps) {
  if (!std::isfinite(qps) || qps < 0) return;
  const int slot = SlotOf(t_s);
  if (slot != slot_) {
    CloseSlot();
    slot_ = slot;
    slot_sum_ = 0;
    slot_count_ = 0;
  }
  slot_sum_ += qps;
  ++slot_count_;
  raw_.Observe(t_s, qps);
  const double usual = ProfileAt(t_s);
  if (usual > 0) deseasonalised_.Observe(t_s, qps / usual);
}

double TrafficForecast::At(double t_s) const {
  const double usual = ProfileAt(t_s);
  if (usual > 0 && deseasonalised_.ready()) return std::max(0.0, usual * deseasonalised_.At(t_s));
  return raw_.ready() ? std::max(0.0, raw_.At(t_s)) : 0.0;
}

std::vector<double> TrafficForecast::Horizon(double t_s, double period_s, int horizon) const {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(std::max(0, horizon)));
  for (int i = 1; i <= horizon; ++i) out.push_back(At(t_s + i * period_s));
  return out;
}

}  // namespace allot
