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
  // Newest load of the module (any age; the loop judges staleness), or nullopt when unknown or
  // when the source failed (it logs why).
  virtual std::optional<LoadSample> Latest(const std::string& module) = 0;
};

// Load reported to this replica through the ReportLoad RPC.
class ReportLoadSource final : public TelemetrySource {
 public:
  explicit ReportLoadSource(const TelemetryStore& store) : store_(store) {}
  const char* name() const override { return "report_load"; }
  std::optional<LoadSample> Latest(const std::string& module) override {
    return store_.Latest(module);
  }

 private:
  const TelemetryStore& store_;
};

}  // namespace allot
