// Metric names follow DESIGN.md: allot_ prefix, base units, _total counters, histograms.
#include "server/metrics.h"

#include <grpcpp/support/status.h>

#include <mutex>

namespace allot {
namespace {

const char* kMethodNames[kNumRpcMethods] = {"Allocate", "ReportLoad", "GetControlState"};
const char* kCodeNames[kNumGrpcCodes] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
const char* kCacheChoices[4] = {"none", "recall", "prerank", "rank"};

// Latency buckets around the sub-millisecond decisions we target, up to a second for outliers.
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {25e-6, 50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3,
          2e-3,  5e-3,  10e-3,  25e-3,  50e-3,  100e-3, 250e-3, 1.0};
}

// Predicted cost per request in CPU core-seconds (config tables are in core-ms).
prometheus::Histogram::BucketBoundaries CostBuckets() {
  return {0.5e-3, 1e-3, 2e-3, 3e-3, 5e-3, 7.5e-3, 10e-3, 15e-3, 20e-3, 30e-3, 50e-3};
}

}  // namespace

ServerMetrics::ServerMetrics(const std::string& bind_address)
    : registry_(std::make_shared<prometheus::Registry>()),
      rpc_seconds_(prometheus::BuildHistogram()
                       .Name("allot_rpc_duration_seconds")
                       .Help("Server-side latency of Allocator RPCs by method and status code")
                       .Register(*registry_)),
      invalid_requests_(prometheus::BuildCounter()
                            .Name("allot_invalid_requests_total")
                            .Help("Requests rejected with INVALID_ARGUMENT, by method and field")
                            .Register(*registry_)),
      decision_seconds_(prometheus::BuildHistogram()
                            .Name("allot_decision_duration_seconds")
                            .Help("Time to score and decide one Allocate request, by agent")
                            .Register(*registry_)),
      predicted_cost_(prometheus::BuildHistogram()
                          .Name("allot_predicted_cost_core_seconds")
                          .Help("Predicted CPU cost of the chosen action per request")
                          .Register(*registry_)),
      actions_(prometheus::BuildCounter()
                   .Name("allot_actions_total")
                   .Help("Options chosen, by agent, action kind, decision and option")
                   .Register(*registry_)),
      fallbacks_(prometheus::BuildCounter()
                     .Name("allot_fallbacks_total")
                     .Help("Allocate answers given by the safe default, by agent and reason")
                     .Register(*registry_)),
      arm_decisions_(prometheus::BuildCounter()
                         .Name("allot_arm_decisions_total")
                         .Help("Allocate decisions by experiment arm and agent")
                         .Register(*registry_)),
      arm_predicted_value_(prometheus::BuildCounter()
                               .Name("allot_arm_predicted_value_total")
                               .Help("Predicted revenue of the chosen actions, by arm and agent")
                               .Register(*registry_)),
      arm_predicted_cost_(
          prometheus::BuildCounter()
              .Name("allot_arm_predicted_cost_core_ms_total")
              .Help("Predicted own-module cost of the chosen actions (core-ms), by arm and agent")
              .Register(*registry_)),
      arm_fallbacks_(prometheus::BuildCounter()
                         .Name("allot_arm_fallbacks_total")
                         .Help("Allocate answers given by the safe default, by arm and agent")
                         .Register(*registry_)),
      arm_lambda_(prometheus::BuildGauge()
                      .Name("allot_arm_lambda")
                      .Help("An experiment arm's own price of compute, by arm and module")
                      .Register(*registry_)),
      shadow_decisions_(
          prometheus::BuildCounter()
              .Name("allot_shadow_decisions_total")
              .Help("Decisions of the shadow candidate, by agent and outcome: agree (the same "
                    "joint action as the serving policy), differ, failed (could not score)")
              .Register(*registry_)),
      shadow_info_(prometheus::BuildGauge()
                       .Name("allot_shadow_info")
                       .Help("1 for the bundle deciding in shadow (none: no shadow)")
                       .Register(*registry_)),
      cache_reuse_(prometheus::BuildCounter()
                       .Name("allot_cache_reuse_total")
                       .Help("Cache-reuse choices for requests that carried cache state")
                       .Register(*registry_)),
      cache_saved_(prometheus::BuildCounter()
                       .Name("allot_cache_saved_core_seconds_total")
                       .Help("CPU core-seconds not spent because a cached stage output was reused")
                       .Register(*registry_)),
      lambda_(prometheus::BuildGauge()
                  .Name("allot_lambda")
                  .Help("Price of compute per module (revenue per core-ms)")
                  .Register(*registry_)),
      cpu_target_(prometheus::BuildGauge()
                      .Name("allot_module_cpu_target_ratio")
                      .Help("CPU utilisation target per module")
                      .Register(*registry_)),
      cpu_hard_limit_(prometheus::BuildGauge()
                          .Name("allot_module_cpu_hard_limit_ratio")
                          .Help("CPU utilisation above which requests get a cost cap, per module")
                          .Register(*registry_)),
      cpu_utilization_(prometheus::BuildGauge()
                           .Name("allot_module_cpu_utilization_ratio")
                           .Help("Last reported CPU utilisation per module")
                           .Register(*registry_)),
      module_qps_(prometheus::BuildGauge()
                      .Name("allot_module_qps")
                      .Help("Last reported requests per second per module")
                      .Register(*registry_)),
      telemetry_timestamp_(prometheus::BuildGauge()
                               .Name("allot_telemetry_last_timestamp_seconds")
                               .Help("Unix time of the newest load report per module")
                               .Register(*registry_)),
      config_info_(prometheus::BuildGauge()
                       .Name("allot_config_info")
                       .Help("Version of the config in force (value 1)")
                       .Register(*registry_)),
      bundle_info_(prometheus::BuildGauge()
                       .Name("allot_bundle_info")
                       .Help("Version of the model bundle in force (value 1)")
                       .Register(*registry_)),
      config_reloads_(prometheus::BuildCounter()
                          .Name("allot_config_reloads_total")
                          .Help("Config reload attempts by result")
                          .Register(*registry_)),
      bundle_reloads_(
          prometheus::BuildCounter()
              .Name("allot_bundle_reloads_total")
              .Help("Model bundle load attempts by result (error: refused, old one kept)")
              .Register(*registry_)),
      predicted_cpu_(
          prometheus::BuildGauge()
              .Name("allot_module_cpu_predicted_ratio")
              .Help("CPU utilisation the controller expects next period at the new lambda")
              .Register(*registry_)),
      forecast_qps_(prometheus::BuildGauge()
                        .Name("allot_forecast_qps")
                        .Help("Traffic forecast for the next control period per module")
                        .Register(*registry_)),
      controller_active_(prometheus::BuildGauge()
                             .Name("allot_controller_active")
                             .Help("1 for the controller that set the module's lambda this period "
                                   "(mpc, pid, hold, decay)")
                             .Register(*registry_)),
      telemetry_stale_(
          prometheus::BuildGauge()
              .Name("allot_telemetry_stale")
              .Help("1 while the module's telemetry is older than lambda.stale_after_s")
              .Register(*registry_)),
      cost_cap_(
          prometheus::BuildGauge()
              .Name("allot_cost_cap_core_seconds")
              .Help("Per-request cost cap while the module is above its hard CPU limit (0 = none)")
              .Register(*registry_)),
      telemetry_errors_(
          prometheus::BuildCounter()
              .Name("allot_telemetry_errors_total")
              .Help("Telemetry readings rejected (failed query, malformed or out of range)")
              .Register(*registry_)),
      control_step_seconds_(
          prometheus::BuildHistogram()
              .Name("allot_control_step_duration_seconds")
              .Help("Time of one control-loop period's computation")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2,
                                                               0.1, 0.5, 1.0})),
      cache_budget_mu_(
          prometheus::BuildGauge()
              .Name("allot_cache_budget_mu")
              .Help("ComRecycle budget-mode multiplier in force (core-ms per unit of value lost)")
              .Register(*registry_)
              .Add({})),
      model_dir_exists_(prometheus::BuildGauge()
                            .Name("allot_model_dir_exists")
                            .Help("1 while the configured models.dir exists, else 0")
                            .Register(*registry_)
                            .Add({})),
      calls_in_flight_(prometheus::BuildGauge()
                           .Name("allot_calls_in_flight")
                           .Help("Calls the server holds, from the handler's start until the "
                                 "answer is written (server.max_in_flight bounds them)")
                           .Register(*registry_)
                           .Add({{"method", "Allocate"}})),
      shed_calls_(prometheus::BuildCounter()
                      .Name("allot_shed_calls_total")
                      .Help("Calls answered at once, without scoring, beyond server.max_in_flight")
                      .Register(*registry_)
                      .Add({{"method", "Allocate"}})),
      reservoir_samples_(
          prometheus::BuildCounter()
              .Name("allot_reservoir_samples_total")
              .Help("Scored requests offered to the controller's reservoir, by result")
              .Register(*registry_)),
      reservoir_recorded_(reservoir_samples_.Add({{"result", "recorded"}})),
      reservoir_dropped_(reservoir_samples_.Add({{"result", "dropped"}})),
      load_report_family_(prometheus::BuildCounter()
                              .Name("allot_load_reports_total")
                              .Help("ReportLoad samples by outcome: accepted, outlier (accepted, "
                                    "far from the module's other reporters) or why refused")
                              .Register(*registry_)) {
  for (int i = 0; i < kNumReportOutcomes; ++i) {
    load_reports_[i] =
        &load_report_family_.Add({{"outcome", ReportOutcomeName(static_cast<ReportOutcome>(i))}});
  }
  config_reloads_.Add({{"result", "ok"}});
  config_reloads_.Add({{"result", "error"}});
  bundle_reloads_.Add({{"result", "ok"}});
  bundle_reloads_.Add({{"result", "error"}});
  if (!bind_address.empty()) {
    http_ = std::make_unique<MetricsHttpServer>(bind_address, registry_, [this] {
      calls_in_flight_.Set(allocate_in_flight_.count());
      counts_.Flush();
    });
  }
}

int ServerMetrics::metrics_port() const { return http_ ? http_->port() : 0; }

void ServerMetrics::ObserveRpc(RpcMethod method, int code, double seconds) {
  if (code < 0 || code >= kNumGrpcCodes) code = grpc::StatusCode::UNKNOWN;
  auto& slot = rpc_[static_cast<int>(method)][code];
  const ThreadCounts::Histogram* h = slot.load(std::memory_order_acquire);
  if (h == nullptr) {
    // Family::Add and Wrap are idempotent and locked, so a race here only finds the same series
    // twice.
    h = counts_.Wrap(rpc_seconds_.Add({{"method", kMethodNames[static_cast<int>(method)]},
                                       {"code", kCodeNames[code]}},
                                      LatencyBuckets()),
                     LatencyBuckets());
    slot.store(h, std::memory_order_release);
  }
  h->Observe(seconds);
}

void ServerMetrics::CountInvalid(RpcMethod method, const std::string& field) {
  invalid_requests_.Add({{"method", kMethodNames[static_cast<int>(method)]}, {"field", field}})
      .Increment();
}

std::vector<AgentMetrics> ServerMetrics::ForPolicy(const PolicySnapshot& policy) {
  std::vector<AgentMetrics> out;
  for (const AgentConfig& agent : policy.config->agents) {
    AgentMetrics m;
    const prometheus::Labels a = {{"agent", agent.name}};
    const auto counter = [&](prometheus::Family<prometheus::Counter>& family,
                             const prometheus::Labels& labels) {
      return counts_.Wrap(family.Add(labels));
    };
    m.decision_seconds = counts_.Wrap(decision_seconds_.Add(a, LatencyBuckets()), LatencyBuckets());
    m.predicted_cost = counts_.Wrap(predicted_cost_.Add(a, CostBuckets()), CostBuckets());
    m.fallback_deadline = counter(fallbacks_, {{"agent", agent.name}, {"reason", "deadline"}});
    m.fallback_scorer = counter(fallbacks_, {{"agent", agent.name}, {"reason", "scorer_failed"}});
    m.fallback_invalid_output =
        counter(fallbacks_, {{"agent", agent.name}, {"reason", "scorer_output_invalid"}});
    m.fallback_overload = counter(fallbacks_, {{"agent", agent.name}, {"reason", "overload"}});
    for (int c = 0; c < 4; ++c) {
      m.cache_reuse[c] =
          counter(cache_reuse_, {{"agent", agent.name}, {"choice", kCacheChoices[c]}});
    }
    m.cache_saved_core_seconds = counter(cache_saved_, a);
    for (const DecisionConfig& d : agent.decisions) {
      std::vector<const ThreadCounts::Counter*> options;
      for (const OptionConfig& o : d.options) {
        options.push_back(counter(actions_, {{"agent", agent.name},
                                             {"kind", DecisionKindName(d.kind)},
                                             {"decision", d.name},
                                             {"option", o.label}}));
      }
      m.actions.push_back(std::move(options));
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<ArmMetrics> ServerMetrics::ForArm(const std::string& arm, const AllotConfig& config) {
  std::vector<ArmMetrics> out;
  for (const AgentConfig& agent : config.agents) {
    const prometheus::Labels labels = {{"arm", arm}, {"agent", agent.name}};
    out.push_back({&arm_decisions_.Add(labels), &arm_predicted_value_.Add(labels),
                   &arm_predicted_cost_.Add(labels), &arm_fallbacks_.Add(labels)});
  }
  std::lock_guard<std::mutex> lock(arm_mu_);
  for (size_t a = 0; a < out.size(); ++a) arm_series_[arm][config.agents[a].name] = out[a];
  return out;
}

void ServerMetrics::SetArmLambda(const std::string& arm, const std::string& module, double lambda) {
  prometheus::Gauge& gauge = arm_lambda_.Add({{"arm", arm}, {"module", module}});
  gauge.Set(lambda);
  std::lock_guard<std::mutex> lock(arm_mu_);
  arm_gauges_[arm].insert(&gauge);
}

void ServerMetrics::RemoveArm(const std::string& arm) {
  std::lock_guard<std::mutex> lock(arm_mu_);
  for (const auto& [agent, m] : arm_series_[arm]) {
    arm_decisions_.Remove(m.decisions);
    arm_predicted_value_.Remove(m.predicted_value);
    arm_predicted_cost_.Remove(m.predicted_cost_ms);
    arm_fallbacks_.Remove(m.fallbacks);
  }
  for (prometheus::Gauge* g : arm_gauges_[arm]) arm_lambda_.Remove(g);
  arm_series_.erase(arm);
  arm_gauges_.erase(arm);
}

std::vector<ShadowMetrics> ServerMetrics::ForShadow(const PolicySnapshot& policy) {
  std::vector<ShadowMetrics> out;
  for (const AgentConfig& agent : policy.config->agents) {
    ShadowMetrics m;
    m.agree = &shadow_decisions_.Add({{"agent", agent.name}, {"outcome", "agree"}});
    m.differ = &shadow_decisions_.Add({{"agent", agent.name}, {"outcome", "differ"}});
    m.failed = &shadow_decisions_.Add({{"agent", agent.name}, {"outcome", "failed"}});
    out.push_back(m);
  }
  return out;
}

void ServerMetrics::SetShadowInfo(const std::string& bundle_version) {
  if (shadow_info_current_) {
    shadow_info_.Remove(shadow_info_current_);
    shadow_info_current_ = nullptr;
  }
  if (bundle_version.empty()) return;
  shadow_info_current_ = &shadow_info_.Add({{"bundle", bundle_version}});
  shadow_info_current_->Set(1);
}

void ServerMetrics::RecordAllocation(const AgentMetrics& m, const Allocation& a,
                                     const PolicySnapshot& policy) {
  const AgentConfig& agent = policy.config->agents[a.agent];
  const ActionSpace& space = policy.spaces[a.agent];
  for (size_t d = 0; d < agent.decisions.size(); ++d) {
    ForEachSelected(agent.decisions[d].kind, space.Choice(a.joint, d),
                    static_cast<uint32_t>(m.actions[d].size()),
                    [&](uint32_t i) { m.actions[d][i]->Increment(); });
  }
  if (a.fallback) {
    const std::string_view reason = a.fallback_reason;
    (reason == "deadline"                ? m.fallback_deadline
     : reason == "overload"              ? m.fallback_overload
     : reason == "scorer_output_invalid" ? m.fallback_invalid_output
                                         : m.fallback_scorer)
        ->Increment();
  } else {
    m.predicted_cost->Observe(a.cost / 1000.0);
  }
}

void ServerMetrics::SetLambda(const std::string& module, double lambda) {
  lambda_.Add({{"module", module}}).Set(lambda);
}

void ServerMetrics::SetModuleTarget(const std::string& module, double target, double hard_limit) {
  cpu_target_.Add({{"module", module}}).Set(target);
  cpu_hard_limit_.Add({{"module", module}}).Set(hard_limit);
}

void ServerMetrics::SetModuleLoad(const std::string& module, double cpu, double qps,
                                  double timestamp_s) {
  cpu_utilization_.Add({{"module", module}}).Set(cpu);
  module_qps_.Add({{"module", module}}).Set(qps);
  telemetry_timestamp_.Add({{"module", module}}).Set(timestamp_s);
}

void ServerMetrics::SetPolicyInfo(const std::string& config_version,
                                  const std::string& bundle_version, const std::string& inference) {
  static std::mutex mu;  // reloads are rare; serialise the remove-then-add of info series
  std::lock_guard<std::mutex> lock(mu);
  if (config_info_current_) config_info_.Remove(config_info_current_);
  if (bundle_info_current_) bundle_info_.Remove(bundle_info_current_);
  config_info_current_ = &config_info_.Add({{"version", config_version}});
  bundle_info_current_ = &bundle_info_.Add({{"version", bundle_version}, {"inference", inference}});
  config_info_current_->Set(1);
  bundle_info_current_->Set(1);
}

void ServerMetrics::CountConfigReload(bool ok) {
  config_reloads_.Add({{"result", ok ? "ok" : "error"}}).Increment();
}

void ServerMetrics::SetControl(const std::string& module, const ModuleDecision& d) {
  const prometheus::Labels labels = {{"module", module}};
  lambda_.Add(labels).Set(d.lambda);
  predicted_cpu_.Add(labels).Set(d.predicted_cpu);
  forecast_qps_.Add(labels).Set(d.forecast_qps);
  telemetry_stale_.Add(labels).Set(d.stale ? 1 : 0);
  cost_cap_.Add(labels).Set(d.max_cost_ms / 1000.0);
  // Every controller kind, and the guard's states while telemetry is stale.
  const auto set_active = [&](std::string_view kind) {
    controller_active_.Add({{"module", module}, {"controller", std::string(kind)}})
        .Set(d.controller == kind ? 1 : 0);
  };
  for (const auto& entry : kControllerKinds) set_active(entry.second);
  for (const std::string_view state : {"hold", "decay"}) set_active(state);
  auto& errors = telemetry_errors_.Add(labels);
  if (!d.telemetry_error.empty()) errors.Increment();
}

void ServerMetrics::ObserveControlStep(double seconds) { control_step_seconds_.Observe(seconds); }

void ServerMetrics::SetCacheBudgetMu(double mu) { cache_budget_mu_.Set(mu); }

void ServerMetrics::CountBundleReload(bool ok) {
  bundle_reloads_.Add({{"result", ok ? "ok" : "error"}}).Increment();
}

void ServerMetrics::SetReservoir(uint64_t recorded, uint64_t dropped) {
  std::lock_guard<std::mutex> lock(reservoir_mu_);
  if (recorded > reservoir_recorded_seen_)
    reservoir_recorded_.Increment(recorded - reservoir_recorded_seen_);
  if (dropped > reservoir_dropped_seen_)
    reservoir_dropped_.Increment(dropped - reservoir_dropped_seen_);
  reservoir_recorded_seen_ = recorded;
  reservoir_dropped_seen_ = dropped;
}

}  // namespace allot
