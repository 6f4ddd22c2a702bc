// Request validation: bounded sizes, known names, finite numbers. Nothing here changes state.
#include "server/request_validation.h"

#include <cmath>
#include <cstdio>

namespace allot {
namespace {

// No module serves more; a larger figure is a bug or an attack on the forecast.
constexpr double kMaxReportedQps = 1e9;

std::string FormatSeconds(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", s);
  return text;
}

ValidationResult Invalid(const std::string& field, const std::string& message) {
  return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, field + ": " + message), field};
}

}  // namespace

ValidationResult ValidateAllocateRequest(const v1::AllocateRequest& request,
                                         const PolicySnapshot& policy, const ServerConfig& limits,
                                         size_t* agent, std::vector<CachedStage>* caches) {
  if (static_cast<int>(request.request_id().size()) > limits.max_id_length) {
    return Invalid("request_id", "longer than " + std::to_string(limits.max_id_length) + " bytes");
  }
  if (static_cast<int>(request.user_id().size()) > limits.max_id_length) {
    return Invalid("user_id", "longer than " + std::to_string(limits.max_id_length) + " bytes");
  }
  if (request.agent().empty()) return Invalid("agent", "is required");
  const int index = policy.AgentIndex(request.agent());
  if (index < 0) {
    std::string known;
    for (const AgentConfig& a : policy.config->agents)
      known += (known.empty() ? "" : ", ") + a.name;
    const std::string name = request.agent().substr(0, 64);
    return Invalid("agent", "unknown agent '" + name + "' (known: " + known + ")");
  }
  const AgentConfig& config = policy.config->agents[index];
  if (static_cast<size_t>(request.features_size()) != config.features.size()) {
    return Invalid("features", "agent '" + config.name + "' expects " +
                                   std::to_string(config.features.size()) + " features, got " +
                                   std::to_string(request.features_size()));
  }
  for (int i = 0; i < request.features_size(); ++i) {
    if (!std::isfinite(request.features(i))) {
      return Invalid("features", "features[" + std::to_string(i) + "] (" + config.features[i] +
                                     ") is not finite");
    }
  }
  for (const FeatureGuard& g : policy.feature_guards[index]) {
    const float x = request.features(static_cast<int>(g.index));
    if (g.reject && (x < g.min || x > g.max)) {
      char range[64];
      std::snprintf(range, sizeof range, "[%g, %g]", g.min, g.max);
      return Invalid("features", "features[" + std::to_string(g.index) + "] (" +
                                     config.features[g.index] + ") is outside its bounds " + range);
    }
  }
  if (request.behavior_ids_size() > limits.max_behavior_ids) {
    return Invalid("behavior_ids",
                   "more than " + std::to_string(limits.max_behavior_ids) + " entries");
  }
  if (request.cache_size() > limits.max_cache_entries) {
    return Invalid("cache", "more than " + std::to_string(limits.max_cache_entries) + " entries");
  }
  caches->clear();
  for (int i = 0; i < request.cache_size(); ++i) {
    const v1::StageCache& c = request.cache(i);
    const std::string at = "cache[" + std::to_string(i) + "]";
    if (c.stage() < v1::STAGE_RECALL || c.stage() > v1::STAGE_RANK) {
      return Invalid("cache", at + ".stage must be RECALL, PRERANK or RANK");
    }
    if (!std::isfinite(c.age_seconds()) || c.age_seconds() < 0) {
      return Invalid("cache", at + ".age_seconds must be finite and >= 0");
    }
    for (const CachedStage& earlier : *caches) {
      if (earlier.stage == static_cast<int>(c.stage()))
        return Invalid("cache", at + ".stage repeats an earlier entry's stage");
    }
    caches->push_back({static_cast<int>(c.stage()), c.present(), c.age_seconds(), c.size()});
  }
  *agent = static_cast<size_t>(index);
  return {};
}

ValidationResult ValidateLoadReport(const v1::LoadReport& report, const AllotConfig& config,
                                    const ServerConfig& limits, int64_t now_ms) {
  if (report.module().empty()) return Invalid("module", "is required");
  if (config.ModuleIndex(report.module()) < 0) {
    return Invalid("module", "unknown module '" + report.module().substr(0, 64) + "'");
  }
  if (!std::isfinite(report.cpu_utilization()) || report.cpu_utilization() < 0 ||
      report.cpu_utilization() > 1) {
    return Invalid("cpu_utilization", "must be a fraction in [0, 1]");
  }
  if (!std::isfinite(report.qps()) || report.qps() < 0 || report.qps() > kMaxReportedQps)
    return Invalid("qps", "must be in [0, 1e9]");
  if (report.timestamp_ms() < 0) return Invalid("timestamp_ms", "must be >= 0 (0 = now)");
  const ReportLoadConfig& t = config.telemetry.report_load;
  switch (TimestampOutcome(t, report.timestamp_ms(), now_ms)) {
    case ReportOutcome::kFuture:
      return Invalid("timestamp_ms", "is more than telemetry.report_load.max_future_skew_s (" +
                                         FormatSeconds(t.max_future_skew_s) +
                                         ") ahead of the server's clock");
    case ReportOutcome::kExpired:
      return Invalid("timestamp_ms", "is older than telemetry.report_load.reporter_window_s (" +
                                         FormatSeconds(t.reporter_window_s) + ")");
    default:
      break;
  }
  if (static_cast<int>(report.reporter().size()) > limits.max_id_length) {
    return Invalid("reporter", "longer than " + std::to_string(limits.max_id_length) + " bytes");
  }
  return {};
}

}  // namespace allot
