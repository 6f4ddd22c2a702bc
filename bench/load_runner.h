// Closed- and open-loop load against any async unary call, with coordinated-omission-free timing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace allot::bench {

// Starts one call; the runner passes the callback to invoke (from any thread) when it completes.
using IssueFn = std::function<void(std::function<void(bool ok)> done)>;

struct LoadOptions {
  bool open_loop = false;
  int concurrency = 16;      // closed loop: calls kept in flight
  double rate_qps = 1000.0;  // open loop: intended send rate
  std::chrono::duration<double> duration{5.0};
  std::chrono::duration<double> warmup{1.0};
};

struct LoadResult {
  uint64_t completed = 0;
  uint64_t errors = 0;
  double seconds = 0.0;
  double qps = 0.0;
  // Latency percentiles in microseconds. Open loop measures from the intended send time, so a
  // stalled server shows up as queueing delay instead of being hidden (no coordinated omission).
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  double ok_p99_us = 0;  // of the calls that succeeded only
};

LoadResult RunLoad(const IssueFn& issue, const LoadOptions& options);
std::string FormatResult(const std::string& name, const LoadOptions& options,
                         const LoadResult& result);

}  // namespace allot::bench
