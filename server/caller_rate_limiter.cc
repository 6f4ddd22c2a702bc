#include "server/caller_rate_limiter.h"

#include <algorithm>

namespace allot {

CallerRateLimiter::CallerRateLimiter(const Clock& clock, size_t max_callers)
    : clock_(clock), max_callers_(std::max<size_t>(1, max_callers)) {}

bool CallerRateLimiter::Allow(const std::string& caller, double per_second) {
  if (!(per_second > 0.0)) return false;
  const double capacity = std::max(1.0, per_second);
  const int64_t now = clock_.NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(caller);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_callers_) ForgetRefilled(now, per_second, capacity);
    if (buckets_.size() >= max_callers_) return false;
    it = buckets_.emplace(caller, Bucket{capacity, now}).first;
  }
  Bucket& b = it->second;
  const double elapsed_s = static_cast<double>(std::max<int64_t>(0, now - b.last_ms)) / 1000.0;
  b.tokens = std::min(capacity, b.tokens + elapsed_s * per_second);
  b.last_ms = std::max(b.last_ms, now);
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

void CallerRateLimiter::ForgetRefilled(int64_t now_ms, double per_second, double capacity) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const double idle_s = static_cast<double>(now_ms - it->second.last_ms) / 1000.0;
    if (it->second.tokens + idle_s * per_second >= capacity)
      it = buckets_.erase(it);
    else
      ++it;
  }
}

size_t CallerRateLimiter::callers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buckets_.size();
}

std::string CallerOfPeer(std::string_view peer) {
  const size_t scheme = peer.find(':');
  const size_t port = peer.rfind(':');
  if (scheme == std::string_view::npos || port == scheme) return std::string(peer);
  if (peer.substr(0, scheme) != "ipv4" && peer.substr(0, scheme) != "ipv6")
    return std::string(peer);
  return std::string(peer.substr(0, port));
}

}  // namespace allot
