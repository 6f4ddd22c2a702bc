// Where the control loop reads module load: the ReportLoad store, or a shared metrics backend.
#pragma once

#include <optional>
#include <string>

#include "policy/telemetry_store.h"

namespace allot {

class TelemetrySource {
 public:
  virtual ~TelemetrySource() = default;
  virtual const char* name() const = 0;
  // Newest load of the module (any age; the loop judges staleness), or nullopt when there is
  // none. When the source failed or its answer was unusable, also sets *error to why.
  virtual std::optional<LoadSample> Latest(const std::string& module, std::string* error) = 0;
  // The price of compute the module's other replicas use now, for a replica that starts (or
  // restarts) to join at instead of modules[].initial_lambda. nullopt when the source cannot
  // know it; also sets *error when it tried and failed.
  virtual std::optional<double> ClusterPrice(const std::string& module, std::string* error) {
    return std::nullopt;
  }
};

// Load reported to this replica through the ReportLoad RPC.
class ReportLoadSource final : public TelemetrySource {
 public:
  explicit ReportLoadSource(const TelemetryStore& store) : store_(store) {}
  const char* name() const override { return "report_load"; }
  std::optional<LoadSample> Latest(const std::string& module, std::string*) override {
    return store_.Latest(module);
  }

 private:
  const TelemetryStore& store_;
};

}  // namespace allot
