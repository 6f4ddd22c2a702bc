// `allot-sim drive`: plays the serving stages against a live Allot server in closed loop -- it
// calls Allocate per stage and request, applies the answers in the world, turns them into module
// CPU and revenue, reports load with ReportLoad every simulated second, and scores the run.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/evaluation.h"
#include "sim/replica_prices.h"
#include "sim/world.h"

namespace allot::sim {

struct DriveOptions {
  // HOST:PORT on the loopback interface, or several 127.x.y.z:PORT replicas separated by commas:
  // Allocate calls are spread over them with gRPC's round_robin policy, as a serving stage's
  // client would, and ReportLoad goes to each of them.
  std::string target;
  double qps = 200.0;  // simulated requests per second (the world's daily shape still applies)
  double duration_s = 30.0;
  uint64_t seed = 1;
  double start_hour = 12.0;  // time of day the drive starts at
  int64_t max_requests = 1'000'000;
  std::chrono::milliseconds allocate_timeout{50};
  // Loopback HOST:PORT: serve the modules' load at /metrics for a Prometheus to scrape instead of
  // calling ReportLoad, for replicas with telemetry.source prometheus.
  std::string export_load;
  // Called once per simulated second with the time since the drive started (e.g. to stop and
  // restart a replica at a planned moment).
  std::function<void(double sim_s)> on_second;
  bool evaluate = true;  // score against the oracle and the offline baselines afterwards
};

struct DriveSummary {
  Evaluation evaluation;  // the live run is the row named "server"
  int64_t requests = 0;
  int64_t allocate_calls = 0;
  int64_t allocate_ok = 0;
  int64_t fallbacks = 0;   // answers marked fallback (by the server or the client)
  int64_t unmappable = 0;  // answers whose actions are not in the config's action space
  int64_t report_calls = 0;
  int64_t report_ok = 0;
  double wall_s = 0.0;
  double max_behind_s = 0.0;  // how far the loop fell behind its schedule
  // Every replica's compute prices, polled with GetControlState once per simulated second.
  std::vector<PricePoll> prices;
};

// Throws std::invalid_argument for a non-loopback target or bad options, std::runtime_error when
// the server cannot be reached or serves a different schema than the config.
DriveSummary Drive(const World& world, const DriveOptions& options);

// Whether HOST:PORT names the loopback interface (127.0.0.0/8, localhost, [::1]); for a list of
// replicas, whether every one is a numeric 127.x.y.z:PORT.
bool IsLoopbackTarget(const std::string& target);
// The replicas of a target: its comma-separated parts.
std::vector<std::string> SplitTargets(const std::string& target);

}  // namespace allot::sim
