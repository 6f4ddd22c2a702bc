// Latest CPU-load telemetry per module, aggregated over the reporters of that module.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "policy/clock.h"

namespace allot {

struct LoadSample {
  double cpu_utilization = 0.0;  // [0, 1]
  double qps = 0.0;
  uint32_t degradation_level = 0;
  int64_t timestamp_ms = 0;  // when measured
};

// Keeps the newest sample of each (module, reporter). The module's load is the mean CPU of the
// reporters heard from within `window_ms` of the newest one, their summed QPS and the highest
// degradation level: replicas of a module each report their own share.
class TelemetryStore {
 public:
  explicit TelemetryStore(const Clock& clock, int64_t window_ms = 10'000)
      : clock_(clock), window_ms_(window_ms) {}

  // sample.timestamp_ms == 0 means "now". Older samples than the stored one are ignored
  // (reports may arrive out of order); returns false then.
  bool Report(const std::string& module, const std::string& reporter, LoadSample sample);
  std::optional<LoadSample> Latest(const std::string& module) const;
  const Clock& clock() const { return clock_; }

 private:
  const Clock& clock_;
  const int64_t window_ms_;
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, LoadSample>> samples_;  // guarded by mu_
};

}  // namespace allot
