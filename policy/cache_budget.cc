// Total decay is non-increasing in mu (a larger mu values lost revenue more), so bisection on
// log mu finds the budget's multiplier in a few dozen passes over the window's requests.
#include "policy/cache_budget.h"

#include <cmath>

namespace allot {
namespace {

double TotalDecay(const CacheReuseConfig& config, double mu, const std::vector<double>& values,
                  const std::vector<std::vector<CachedStage>>& caches) {
  double decay = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const CacheReuseChoice c = ChooseCacheReuse(config, values[i], {}, caches[i], mu);
    decay += values[i] * (1 - c.value_retained);
  }
  return decay;
}

}  // namespace

CacheBudget::CacheBudget(const CacheReuseConfig& config, size_t max_samples)
    : config_(config), max_samples_(max_samples) {}

void CacheBudget::Record(double fresh_value, std::span<const CachedStage> caches) {
  std::unique_lock<std::mutex> lock(mu_lock_, std::try_to_lock);
  if (!lock.owns_lock() || values_.size() >= max_samples_) return;
  values_.push_back(fresh_value);
  caches_.emplace_back(caches.begin(), caches.end());
}

double CacheBudget::SolveMu(const CacheReuseConfig& config, const std::vector<double>& values,
                            const std::vector<std::vector<CachedStage>>& caches) {
  double total_value = 0;
  for (double v : values) total_value += v;
  const double budget = config.budget.decay_budget * total_value;
  double lo = 1e-6, hi = 1e6;  // core-ms per unit of value lost
  if (TotalDecay(config, lo, values, caches) <= budget) return lo;
  if (TotalDecay(config, hi, values, caches) > budget) return hi;
  for (int i = 0; i < 50; ++i) {
    const double mid = std::sqrt(lo * hi);
    (TotalDecay(config, mid, values, caches) <= budget ? hi : lo) = mid;
  }
  return hi;
}

bool CacheBudget::MaybeRoll(double now_s) {
  std::vector<double> values;
  std::vector<std::vector<CachedStage>> caches;
  {
    std::lock_guard<std::mutex> lock(mu_lock_);
    if (window_end_s_ < 0) window_end_s_ = now_s + config_.budget.window_s;
    if (now_s < window_end_s_) return false;
    while (window_end_s_ <= now_s) window_end_s_ += config_.budget.window_s;
    values.swap(values_);
    caches.swap(caches_);
  }
  if (values.empty()) return false;  // no repeat traffic: keep the multiplier in force
  mu_.store(SolveMu(config_, values, caches), std::memory_order_relaxed);
  return true;
}

}  // namespace allot
