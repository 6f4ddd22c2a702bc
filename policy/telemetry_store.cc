// Robust aggregation of per-reporter load samples; see telemetry_store.h.
#include "policy/telemetry_store.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace allot {
namespace {

// A report this far from the median of the module's other reporters is counted as an outlier.
constexpr double kOutlierCpuDistance = 0.25;

double Median(std::vector<double> v) {
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  if (v.size() % 2 == 1) return v[mid];
  const double upper = v[mid];
  return 0.5 * (*std::max_element(v.begin(), v.begin() + mid) + upper);
}

}  // namespace

const char* ReportOutcomeName(ReportOutcome outcome) {
  static const char* kNames[kNumReportOutcomes] = {
      "accepted", "outlier",      "out_of_order",       "future",
      "expired",  "rate_limited", "too_many_reporters", "not_allowed"};
  return kNames[static_cast<int>(outcome)];
}

ReportOutcome TimestampOutcome(const ReportLoadConfig& limits, int64_t timestamp_ms,
                               int64_t now_ms) {
  if (timestamp_ms == 0) return ReportOutcome::kAccepted;
  if (timestamp_ms > now_ms + static_cast<int64_t>(limits.max_future_skew_s * 1000.0))
    return ReportOutcome::kFuture;
  if (timestamp_ms < now_ms - static_cast<int64_t>(limits.reporter_window_s * 1000.0))
    return ReportOutcome::kExpired;
  return ReportOutcome::kAccepted;
}

void TelemetryStore::Configure(const ReportLoadConfig& limits) {
  std::lock_guard<std::mutex> lock(mu_);
  limits_ = limits;
}

ReportOutcome TelemetryStore::Report(const std::string& module, const std::string& reporter,
                                     LoadSample sample) {
  const int64_t now_ms = clock_.NowMs();
  if (sample.timestamp_ms == 0) sample.timestamp_ms = now_ms;
  std::lock_guard<std::mutex> lock(mu_);
  if (!limits_.reporters.empty() && std::find(limits_.reporters.begin(), limits_.reporters.end(),
                                              reporter) == limits_.reporters.end()) {
    return ReportOutcome::kNotAllowed;
  }
  if (const ReportOutcome stamped = TimestampOutcome(limits_, sample.timestamp_ms, now_ms);
      stamped != ReportOutcome::kAccepted) {
    return stamped;
  }
  Reporters& reporters = modules_[module];
  const ReportOutcome admitted = Admit(reporters, reporter, now_ms, sample);
  if (admitted != ReportOutcome::kAccepted) return admitted;

  const auto self = reporters.find(reporter);  // Admit made the entry
  const std::optional<LoadSample> others = Aggregate(reporters, &self->first);
  self->second.sample = sample;
  // With one other reporter there is no majority to be an outlier from.
  if (others && reporters.size() >= 3 &&
      std::abs(sample.cpu_utilization - others->cpu_utilization) > kOutlierCpuDistance) {
    return ReportOutcome::kOutlier;
  }
  return ReportOutcome::kAccepted;
}

// Expires silent reporters, then checks the sender's allowance. On kAccepted the sender has an
// entry in `reporters` whose sample the caller sets.
ReportOutcome TelemetryStore::Admit(Reporters& reporters, const std::string& name, int64_t now_ms,
                                    const LoadSample& sample) {
  const int64_t expired_before = now_ms - WindowMs();
  for (auto it = reporters.begin(); it != reporters.end();) {
    it = it->second.sample.timestamp_ms < expired_before && it->first != name ? reporters.erase(it)
                                                                              : std::next(it);
  }
  const double burst = 2.0 * limits_.reports_per_s;
  auto it = reporters.find(name);
  if (it == reporters.end()) {
    if (reporters.size() >= static_cast<size_t>(limits_.max_reporters))
      return ReportOutcome::kTooManyReporters;
    it = reporters.emplace(name, Reporter{{}, burst, now_ms}).first;
  } else if (it->second.sample.timestamp_ms > sample.timestamp_ms) {
    return ReportOutcome::kOutOfOrder;
  }
  Reporter& r = it->second;
  r.tokens = std::min(burst, r.tokens + limits_.reports_per_s *
                                            static_cast<double>(now_ms - r.refilled_ms) / 1000.0);
  r.refilled_ms = now_ms;
  if (r.tokens < 1.0) return ReportOutcome::kRateLimited;
  r.tokens -= 1.0;
  return ReportOutcome::kAccepted;
}

std::optional<LoadSample> TelemetryStore::Aggregate(const Reporters& reporters,
                                                    const std::string* skip) const {
  int64_t newest = 0;
  for (const auto& [name, r] : reporters) {
    if (&name != skip && r.sample.timestamp_ms > 0)
      newest = std::max(newest, r.sample.timestamp_ms);
  }
  if (newest == 0) return std::nullopt;
  std::vector<double> cpu, qps, level;
  for (const auto& [name, r] : reporters) {
    if (&name == skip || r.sample.timestamp_ms <= 0) continue;  // 0: admitted, not yet stored
    if (r.sample.timestamp_ms < newest - WindowMs()) continue;
    cpu.push_back(r.sample.cpu_utilization);
    qps.push_back(r.sample.qps);
    level.push_back(r.sample.degradation_level);
  }
  LoadSample out;
  out.timestamp_ms = newest;
  out.cpu_utilization = Median(cpu);
  out.qps = Median(qps) * static_cast<double>(qps.size());
  out.degradation_level = static_cast<uint32_t>(std::floor(Median(level)));
  return out;
}

std::optional<LoadSample> TelemetryStore::Latest(const std::string& module) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = modules_.find(module);
  if (it == modules_.end()) return std::nullopt;
  return Aggregate(it->second, nullptr);
}

size_t TelemetryStore::NumReporters(const std::string& module) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = modules_.find(module);
  return it == modules_.end() ? 0 : it->second.size();
}

}  // namespace allot
