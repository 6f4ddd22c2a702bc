// Aggregation of per-reporter load samples; see telemetry_store.h.
#include "policy/telemetry_store.h"

#include <algorithm>

namespace allot {

bool TelemetryStore::Report(const std::string& module, const std::string& reporter,
                            LoadSample sample) {
  if (sample.timestamp_ms == 0) sample.timestamp_ms = clock_.NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  auto& by_reporter = samples_[module];
  auto it = by_reporter.find(reporter);
  if (it != by_reporter.end() && it->second.timestamp_ms > sample.timestamp_ms) return false;
  by_reporter[reporter] = sample;
  return true;
}

std::optional<LoadSample> TelemetryStore::Latest(const std::string& module) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = samples_.find(module);
  if (it == samples_.end() || it->second.empty()) return std::nullopt;
  int64_t newest = 0;
  for (const auto& [reporter, s] : it->second) newest = std::max(newest, s.timestamp_ms);
  LoadSample out;
  out.timestamp_ms = newest;
  int n = 0;
  for (const auto& [reporter, s] : it->second) {
    if (s.timestamp_ms < newest - window_ms_) continue;
    out.cpu_utilization += s.cpu_utilization;
    out.qps += s.qps;
    out.degradation_level = std::max(out.degradation_level, s.degradation_level);
    ++n;
  }
  out.cpu_utilization /= n;
  return out;
}

}  // namespace allot
