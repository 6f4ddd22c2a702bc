// Per-caller token buckets for calls that cost more than a decision (Allocate with explain). Such
// calls are rare, so one mutex guards the buckets; the decision path never takes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "policy/clock.h"

namespace allot {

class CallerRateLimiter {
 public:
  // At most `max_callers` buckets are kept: callers that have been idle long enough to refill are
  // forgotten first, and while every bucket is in use a new caller is refused (a flood of
  // distinct peers cannot grow memory).
  explicit CallerRateLimiter(const Clock& clock, size_t max_callers = 4096);

  // True when `caller` may make one more call at `per_second` (bursts up to one second's worth,
  // at least one call); false, and nothing is spent, otherwise. per_second <= 0 refuses all.
  bool Allow(const std::string& caller, double per_second);

  size_t callers() const;

 private:
  struct Bucket {
    double tokens = 0.0;
    int64_t last_ms = 0;
  };
  void ForgetRefilled(int64_t now_ms, double per_second, double capacity);

  const Clock& clock_;
  const size_t max_callers_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

// The caller a gRPC peer string names, without its port: "ipv4:10.0.0.7:51234" ->
// "ipv4:10.0.0.7", "ipv6:[::1]:5000" -> "ipv6:[::1]"; anything else as it is.
std::string CallerOfPeer(std::string_view peer);

}  // namespace allot
