// Prometheus metrics of the server: families and handles created once, read on the request path.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "policy/allocation_engine.h"
#include "policy/lambda_controller.h"
#include "policy/telemetry_store.h"
#include "server/in_flight.h"
#include "server/metrics_http.h"
#include "server/thread_counts.h"

namespace allot {

enum class RpcMethod { kAllocate = 0, kReportLoad = 1, kGetControlState = 2 };
constexpr int kNumRpcMethods = 3;
constexpr int kNumGrpcCodes = 17;

// Handles for one agent, resolved from the policy so the request path does no label lookups.
// Counted per thread (ThreadCounts), into the series at each scrape.
struct AgentMetrics {
  using Counter = ThreadCounts::Counter;
  using Histogram = ThreadCounts::Histogram;
  const Histogram* decision_seconds = nullptr;
  const Histogram* predicted_cost = nullptr;
  const Counter* fallback_deadline = nullptr;
  const Counter* fallback_scorer = nullptr;
  const Counter* fallback_invalid_output = nullptr;
  const Counter* fallback_overload = nullptr;   // shed beyond server.max_in_flight
  std::array<const Counter*, 4> cache_reuse{};  // by CacheReuse value
  const Counter* cache_saved_core_seconds = nullptr;
  // actions[d][i]: decision d, option i (LINK: channel i selected; SWITCH: 0 off / 1 on).
  std::vector<std::vector<const Counter*>> actions;
};

// Shadow decisions of one agent: the candidate chose the same joint action as the serving policy,
// another one, or could not score (its safe default).
struct ShadowMetrics {
  prometheus::Counter* agree = nullptr;
  prometheus::Counter* differ = nullptr;
  prometheus::Counter* failed = nullptr;
};

// What one experiment arm decided for one agent: decisions, and the predicted revenue and cost
// of its choices (the revenue proxy; the realised revenue is in the callers' logs, by
// AllocateResponse.arm).
struct ArmMetrics {
  prometheus::Counter* decisions = nullptr;
  prometheus::Counter* predicted_value = nullptr;
  prometheus::Counter* predicted_cost_ms = nullptr;
  prometheus::Counter* fallbacks = nullptr;  // answered with the safe default
};

class ServerMetrics {
 public:
  // bind_address "" = no HTTP exposer (the registry is still usable, e.g. in tests).
  explicit ServerMetrics(const std::string& bind_address);
  // The endpoint stops first: a scrape reads the members it would otherwise outlive.
  ~ServerMetrics() { http_.reset(); }
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  int metrics_port() const;
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void ObserveRpc(RpcMethod method, int code, double seconds);
  void CountInvalid(RpcMethod method, const std::string& field);
  std::vector<AgentMetrics> ForPolicy(const PolicySnapshot& policy);
  void RecordAllocation(const AgentMetrics& m, const Allocation& a, const PolicySnapshot& policy);
  // allot_shadow_decisions_total{agent, outcome} handles for the candidate's agents.
  std::vector<ShadowMetrics> ForShadow(const PolicySnapshot& policy);
  // allot_arm_*_total{arm, agent} handles, per agent of the config.
  std::vector<ArmMetrics> ForArm(const std::string& arm, const AllotConfig& config);
  void SetArmLambda(const std::string& arm, const std::string& module, double lambda);
  // Drops every allot_arm_* series of an arm that is no longer configured.
  void RemoveArm(const std::string& arm);
  // allot_shadow_info{bundle}: 1 for the candidate in shadow, none when there is no shadow.
  void SetShadowInfo(const std::string& bundle_version);

  void SetLambda(const std::string& module, double lambda);
  void SetModuleTarget(const std::string& module, double target, double hard_limit);
  void SetModuleLoad(const std::string& module, double cpu, double qps, double timestamp_s);
  // allot_bundle_info{version, inference}: inference="libtorch" marks a bundle served off the
  // fast path.
  void SetPolicyInfo(const std::string& config_version, const std::string& bundle_version,
                     const std::string& inference);
  void CountConfigReload(bool ok);
  void CountBundleReload(bool ok);
  // What the control loop decided for a module this period.
  void SetControl(const std::string& module, const ModuleDecision& decision);
  void ObserveControlStep(double seconds);
  void SetCacheBudgetMu(double mu);
  void SetModelDirExists(bool exists) { model_dir_exists_.Set(exists ? 1 : 0); }
  // Advances the reservoir counters to the reservoir's running totals.
  void SetReservoir(uint64_t recorded, uint64_t dropped);
  // Allocate calls the server holds now (allot_calls_in_flight, read at each scrape), and the
  // calls shed beyond server.max_in_flight (allot_shed_calls_total).
  InFlightCalls& allocate_in_flight() { return allocate_in_flight_; }
  void CountShed() { shed_calls_.Increment(); }
  void CountLoadReport(ReportOutcome outcome) {
    load_reports_[static_cast<size_t>(outcome)]->Increment();
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsHttpServer> http_;
  prometheus::Family<prometheus::Histogram>& rpc_seconds_;
  prometheus::Family<prometheus::Counter>& invalid_requests_;
  prometheus::Family<prometheus::Histogram>& decision_seconds_;
  prometheus::Family<prometheus::Histogram>& predicted_cost_;
  prometheus::Family<prometheus::Counter>& actions_;
  prometheus::Family<prometheus::Counter>& fallbacks_;
  prometheus::Family<prometheus::Counter>& arm_decisions_;
  prometheus::Family<prometheus::Counter>& arm_predicted_value_;
  prometheus::Family<prometheus::Counter>& arm_predicted_cost_;
  prometheus::Family<prometheus::Counter>& arm_fallbacks_;
  prometheus::Family<prometheus::Gauge>& arm_lambda_;
  prometheus::Family<prometheus::Counter>& shadow_decisions_;
  prometheus::Family<prometheus::Gauge>& shadow_info_;
  prometheus::Family<prometheus::Counter>& cache_reuse_;
  prometheus::Family<prometheus::Counter>& cache_saved_;
  prometheus::Family<prometheus::Gauge>& lambda_;
  prometheus::Family<prometheus::Gauge>& cpu_target_;
  prometheus::Family<prometheus::Gauge>& cpu_hard_limit_;
  prometheus::Family<prometheus::Gauge>& cpu_utilization_;
  prometheus::Family<prometheus::Gauge>& module_qps_;
  prometheus::Family<prometheus::Gauge>& telemetry_timestamp_;
  prometheus::Family<prometheus::Gauge>& config_info_;
  prometheus::Family<prometheus::Gauge>& bundle_info_;
  prometheus::Family<prometheus::Counter>& config_reloads_;
  prometheus::Family<prometheus::Counter>& bundle_reloads_;
  prometheus::Family<prometheus::Gauge>& predicted_cpu_;
  prometheus::Family<prometheus::Gauge>& forecast_qps_;
  prometheus::Family<prometheus::Gauge>& controller_active_;
  prometheus::Family<prometheus::Gauge>& telemetry_stale_;
  prometheus::Family<prometheus::Gauge>& cost_cap_;
  prometheus::Family<prometheus::Counter>& telemetry_errors_;
  prometheus::Histogram& control_step_seconds_;
  prometheus::Gauge& cache_budget_mu_;
  prometheus::Gauge& model_dir_exists_;
  InFlightCalls allocate_in_flight_;
  prometheus::Gauge& calls_in_flight_;
  prometheus::Counter& shed_calls_;
  prometheus::Family<prometheus::Counter>& reservoir_samples_;
  prometheus::Counter& reservoir_recorded_;
  prometheus::Counter& reservoir_dropped_;
  prometheus::Family<prometheus::Counter>& load_report_family_;
  std::array<prometheus::Counter*, kNumReportOutcomes> load_reports_{};  // by ReportOutcome
  std::mutex reservoir_mu_;
  uint64_t reservoir_recorded_seen_ = 0;  // guarded by reservoir_mu_
  uint64_t reservoir_dropped_seen_ = 0;   // guarded by reservoir_mu_
  // The request path's series, counted per thread; flushed into the registry before each scrape.
  ThreadCounts counts_;
  // Lazily created (method, code) histograms: the request path reads an atomic pointer.
  std::array<std::array<std::atomic<const ThreadCounts::Histogram*>, kNumGrpcCodes>, kNumRpcMethods>
      rpc_{};
  prometheus::Gauge* config_info_current_ = nullptr;
  prometheus::Gauge* bundle_info_current_ = nullptr;
  prometheus::Gauge* shadow_info_current_ = nullptr;
  std::mutex arm_mu_;
  // By arm and agent (guarded by arm_mu_): what RemoveArm drops.
  std::map<std::string, std::map<std::string, ArmMetrics>> arm_series_;
  std::map<std::string, std::set<prometheus::Gauge*>> arm_gauges_;  // guarded by arm_mu_
};

}  // namespace allot
