// Latest CPU-load telemetry per module, aggregated robustly over the reporters of that module.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "policy/clock.h"
#include "policy/config.h"

namespace allot {

struct LoadSample {
  double cpu_utilization = 0.0;  // [0, 1]
  double qps = 0.0;
  uint32_t degradation_level = 0;
  int64_t timestamp_ms = 0;  // when measured
};

// What became of one report. Anyone who can reach ReportLoad can send one, so the store refuses
// what it cannot trust and counts what looks wrong.
enum class ReportOutcome {
  kAccepted,
  kOutlier,           // accepted, but far from the module's other reporters
  kOutOfOrder,        // older than the reporter's stored sample: ignored
  kFuture,            // stamped beyond max_future_skew_s ahead of this clock: refused
  kExpired,           // older than reporter_window_s: refused
  kRateLimited,       // the reporter exceeded reports_per_s: refused
  kTooManyReporters,  // the module already has max_reporters live reporters: refused
  kNotAllowed,        // not in the reporters allow-list: refused
};
inline constexpr int kNumReportOutcomes = 8;
const char* ReportOutcomeName(ReportOutcome outcome);
inline bool Refused(ReportOutcome o) {
  return o != ReportOutcome::kAccepted && o != ReportOutcome::kOutlier &&
         o != ReportOutcome::kOutOfOrder;
}

// Whether a sample stamped `timestamp_ms` (0 = now) may enter the store at `now_ms`: kAccepted,
// kFuture or kExpired. The store's rule, also used by request validation to name the field.
ReportOutcome TimestampOutcome(const ReportLoadConfig& limits, int64_t timestamp_ms,
                               int64_t now_ms);

// Keeps the newest sample of each (module, reporter). The module's load is the median CPU and
// degradation level of the reporters heard from within reporter_window_s of the newest one, and
// their median QPS times their number (replicas each report their own share): one reporter, or
// any minority, cannot set the price of compute for everybody. Reporters silent for longer than
// the window are dropped, so the map stays bounded by max_reporters per module.
class TelemetryStore {
 public:
  explicit TelemetryStore(const Clock& clock, ReportLoadConfig limits = {})
      : clock_(clock), limits_(std::move(limits)) {}

  // Takes the trust limits of a new config; the stored samples stay.
  void Configure(const ReportLoadConfig& limits);
  // sample.timestamp_ms == 0 means "now".
  ReportOutcome Report(const std::string& module, const std::string& reporter, LoadSample sample);
  std::optional<LoadSample> Latest(const std::string& module) const;
  size_t NumReporters(const std::string& module) const;
  const Clock& clock() const { return clock_; }

 private:
  struct Reporter {
    LoadSample sample;
    double tokens = 0.0;      // rate-limit bucket
    int64_t refilled_ms = 0;  // when `tokens` was last topped up
  };
  using Reporters = std::map<std::string, Reporter>;

  ReportOutcome Admit(Reporters& reporters, const std::string& name, int64_t now_ms,
                      const LoadSample& sample);
  // Over all reporters but `skip` (a key of `reporters`, or null).
  std::optional<LoadSample> Aggregate(const Reporters& reporters, const std::string* skip) const;
  int64_t WindowMs() const { return static_cast<int64_t>(limits_.reporter_window_s * 1000.0); }

  const Clock& clock_;
  mutable std::mutex mu_;
  ReportLoadConfig limits_;                   // guarded by mu_
  std::map<std::string, Reporters> modules_;  // guarded by mu_
};

}  // namespace allot
