// ComRecycle's budget mode: the multiplier mu that trades compute saved by cache reuse against
// value lost, set so that the value lost stays within a fraction of the total value.
#pragma once

#include <atomic>
#include <mutex>
#include <span>
#include <vector>

#include "policy/cache_reuse.h"
#include "policy/config.h"

namespace allot {

// Per request: j* = argmax_j [saved_ms_j - mu * v * (1 - retained_j)] (equivalently
// argmin_j compute_j + mu * decay_j). Requests with cache state seen during a window of
// window_s are kept (up to a bound); when the window closes, mu is set by bisection to the
// smallest value whose total decay over those requests is at most decay_budget * total value,
// and is applied during the next window. Until the first window closes, mu is conservative.
class CacheBudget {
 public:
  CacheBudget(const CacheReuseConfig& config, size_t max_samples = 8192);

  double mu() const { return mu_.load(std::memory_order_relaxed); }
  // Request path: remembers the request for the current window; never waits for a lock.
  void Record(double fresh_value, std::span<const CachedStage> caches);
  // Closes the window if now_s has passed its end; returns true when mu changed.
  bool MaybeRoll(double now_s);

  // mu for a set of requests (exposed for tests): the smallest mu meeting the decay budget.
  static double SolveMu(const CacheReuseConfig& config, const std::vector<double>& values,
                        const std::vector<std::vector<CachedStage>>& caches);

  // Requests remembered in the current window.
  size_t window_requests() {
    std::lock_guard<std::mutex> lock(mu_lock_);
    return values_.size();
  }

  static constexpr double kInitialMu = 1e3;

 private:
  const CacheReuseConfig config_;
  const size_t max_samples_;
  std::atomic<double> mu_{kInitialMu};
  std::mutex mu_lock_;
  std::vector<double> values_;                    // guarded by mu_lock_
  std::vector<std::vector<CachedStage>> caches_;  // guarded by mu_lock_
  double window_end_s_ = -1;                      // guarded by mu_lock_
};

}  // namespace allot
