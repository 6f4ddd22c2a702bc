// Telemetry from the Prometheus HTTP query API, so that every replica behind a load balancer
// prices compute from the same cluster-wide load.
#pragma once

#include <optional>
#include <string>

#include "policy/clock.h"
#include "policy/config.h"
#include "policy/telemetry_source.h"

namespace allot {

// Parses an instant-query response (/api/v1/query) holding exactly one sample: a one-element
// vector or a scalar. Throws std::runtime_error saying what is wrong.
struct PromSample {
  double value = 0.0;
  int64_t timestamp_ms = 0;
};
PromSample ParsePrometheusInstant(const std::string& body);

// Per module: the config's cpu_query (required, a fraction in [0, 1]) and qps_query (optional,
// >= 0). A failed query, a malformed answer or an out-of-range value yields nullopt and an error
// naming the query; it never reaches the controller.
class PrometheusSource final : public TelemetrySource {
 public:
  explicit PrometheusSource(const AllotConfig& config);
  const char* name() const override { return "prometheus"; }
  std::optional<LoadSample> Latest(const std::string& module, std::string* error) override;
  // The module's price_query: a finite price >= 0, else nullopt with *error naming the query.
  std::optional<double> ClusterPrice(const std::string& module, std::string* error) override;

 private:
  PromSample Query(const std::string& promql) const;

  std::string url_;
  long timeout_ms_;
  AllotConfig config_;
};

}  // namespace allot
