// Typed Allot configuration: every field has a default; Load* parses YAML and validates it once.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/decision_kind.h"

namespace allot {

// Thrown by the loaders: the message starts with the dotted key path at fault.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One option of a decision in the analytic model: revenue gain per value bucket, CPU cost.
struct OptionConfig {
  std::string label;         // channel name, "off"/"on", or the queue length as text
  int queue_length = 0;      // QUEUE only
  std::vector<double> gain;  // multiplier of the user value, one entry per value bucket
  double cost_ms = 0.0;      // CPU core-milliseconds per request
  // Interaction: the agent's whole own-module cost is multiplied by this when the option is
  // chosen (a heavy rank model makes every candidate of the rank queue dearer).
  double cost_multiplier = 1.0;
  // Compute the option causes in later modules, by module name (more recall channels give
  // pre-rank more candidates to score). Priced at those modules' lambdas.
  std::map<std::string, double> module_cost_ms;
};

struct DecisionConfig {
  std::string name;
  DecisionKind kind = DecisionKind::kQueue;
  // LINK: one option per channel (a subset is chosen). SWITCH: exactly off, on. QUEUE: lengths.
  std::vector<OptionConfig> options;
  int min_selected = 1;  // LINK only: per-request constraint on the number of channels
  int max_selected = 0;  // LINK only: 0 = all channels allowed
  // Safe default: option labels (LINK: channels; SWITCH/QUEUE: exactly one label).
  std::vector<std::string> safe_default;
};

// Range a feature is trusted in. Out of range, a request is refused (kReject, INVALID_ARGUMENT
// naming the feature) or the feature is clipped into the range before scoring (kClip).
struct FeatureBoundConfig {
  enum class Action { kClip, kReject };
  std::string feature;
  double min = -std::numeric_limits<double>::max();
  double max = std::numeric_limits<double>::max();
  Action action = Action::kClip;
};

struct AgentConfig {
  std::string name;
  std::string module;
  std::vector<std::string> features;
  std::vector<FeatureBoundConfig> feature_bounds;  // optional; features not listed are unbounded
  std::vector<DecisionConfig> decisions;
  // Per-request cap on the agent's cost in core-ms (0 = none); the DCAF-style MaxPower backstop.
  double max_cost_ms = 0.0;
};

struct ModuleConfig {
  std::string name;
  double cpu_target = 0.46;      // fraction of the module's CPU the controller aims at
  double cpu_hard_limit = 0.85;  // above this, per-request cost caps apply
  double initial_lambda = 1.0;
  // PromQL for the prometheus telemetry source (instant queries returning one sample each).
  std::string cpu_query;
  std::string qps_query;

  bool operator==(const ModuleConfig&) const = default;
};

// Analytic user-value model: value = exp(bias + sum_f weight_f * x_f); bucket by upper bounds.
struct ValueModelConfig {
  double bias = 0.0;
  std::map<std::string, double> weights;
  std::vector<double> bucket_bounds = {0.5, 2.0, 8.0};  // N bounds -> N+1 buckets
  int num_buckets() const { return static_cast<int>(bucket_bounds.size()) + 1; }
};

struct LambdaConfig {
  double min = 0.0;
  double max = 20.0;
  // Largest change per control period: max(max_step, max_step_ratio * lambda). The relative part
  // lets lambda cross orders of magnitude quickly; the absolute part lets it leave zero.
  double max_step = 0.05;
  double max_step_ratio = 0.5;
  double safe_value = 1.0;  // decayed to when telemetry is stale
  double stale_after_s = 10.0;
  double decay_half_life_s = 30.0;

  bool operator==(const LambdaConfig&) const = default;
};

struct ControllerConfig {
  std::string kind = "mpc";  // "mpc" or "pid"
  double period_s = 1.0;
  int horizon = 10;
  double alpha = 0.4;
  double beta = 8.0;
  double critical_load = 0.44;
  int samples = 100;
  // PID (velocity form, on log lambda and the relative CPU error); the MPC's fallback.
  double pid_kp = 2.0;
  double pid_ki = 1.5;  // per second
  double pid_kd = 0.0;  // seconds
  int reservoir_size = 4096;
  int sample_every = 8;  // record one scored request in this many
  // MPC load model: cpu[t+1] = load_lag * cpu[t] + (1 - load_lag) * k * qps * cost(lambda),
  // with k (CPU per core-ms per second) learned online by exponential smoothing.
  double load_lag = 0.5;
  double calibration_alpha = 0.2;
  // MPC hands the module to PID while its smoothed relative prediction error exceeds this.
  double fallback_error = 0.25;
  // MPC back-off: it steers to target * (1 - b), with b such that the load it cannot predict
  // (judged from its last error_window one-period prediction errors) overshoots the target by
  // overshoot_budget on average, as a fraction of the target; b is at most max_backoff. Load that
  // cannot be predicted spreads around whatever level is aimed at: aiming at the target itself
  // overshoots half the time. The overshoot measured after periods planned at the aim corrects b
  // until it averages overshoot_budget (heavier tails than a Gaussian need more).
  double overshoot_budget = 0.0035;
  int error_window = 60;
  // MPC state observer: the load a plan starts from is predicted + state_gain * (measured -
  // predicted); 1 takes the measurement as it is.
  double state_gain = 0.5;
  double max_backoff = 0.1;
  int lambda_grid = 48;  // candidate constant lambdas per period (plus random shooting)
  uint64_t seed = 1;     // random shooting
  // Traffic forecast: Holt-Winters level/trend smoothing and a seasonal profile by time slot.
  double day_length_s = 86400.0;  // shorter in compressed simulations
  int forecast_slots = 96;
  double forecast_level_alpha = 0.6;
  double forecast_trend_beta = 0.05;
  double forecast_seasonal_gamma = 0.5;

  bool operator==(const ControllerConfig&) const = default;
};

// Where the controller reads per-module load.
struct TelemetryConfig {
  std::string source =
      "report_load";  // "report_load" (the RPC) or "prometheus" (shared by replicas)
  std::string prometheus_url = "http://127.0.0.1:9090";
  double query_timeout_s = 0.5;
  // Trust in ReportLoad (the threat model is in deploy/README.md). A module's load is the median
  // over its reporters, so a minority of wrong or hostile reporters cannot move it.
  double reporter_window_s = 10.0;  // a reporter counts while its newest report is this recent
  double max_future_skew_s = 2.0;   // reports stamped further ahead of this server are refused
  int max_reporters = 64;           // per module; new names are refused beyond it until some expire
  double reports_per_s = 10.0;      // per reporter, sustained; bursts of twice that pass
  std::vector<std::string> reporters;  // allow-list of reporter names; empty = any name

  bool operator==(const TelemetryConfig&) const = default;
};

struct CacheStageConfig {
  std::string stage;           // "recall", "prerank" or "rank"
  std::string module;          // module whose compute reuse saves (with all earlier stages)
  double half_life_s = 60.0;   // value retention halves after this age
  double stage_cost_ms = 1.0;  // compute of this stage for a request

  bool operator==(const CacheStageConfig&) const = default;
};

struct CacheReuseConfig {
  bool enabled = true;
  double max_age_s = 300.0;
  // "lambda": reuse priced by the modules' lambdas. "budget" (ComRecycle): minimise compute
  // subject to the value lost to reuse staying under decay_budget (a fraction of value), with a
  // multiplier found by bisection over each window_s and applied to the next window.
  std::string mode = "lambda";
  double decay_budget = 0.02;
  double window_s = 900.0;
  std::vector<CacheStageConfig> stages;  // in chain order

  bool operator==(const CacheReuseConfig&) const = default;
};

struct ServerConfig {
  std::string listen = "0.0.0.0:50051";
  std::string metrics_listen = "0.0.0.0:9464";
  double min_deadline_ms = 1.0;  // answer with the safe default when less time remains
  int max_features = 1024;
  int max_behavior_ids = 512;
  int max_id_length = 256;
  int max_cache_entries = 8;
  double drain_delay_s = 0.0;        // NOT_SERVING before shutdown, for load balancers to notice
  double shutdown_timeout_s = 10.0;  // at most this long for calls in the handlers to finish
  double reload_poll_s = 2.0;        // config file change check interval (0 = SIGHUP only)
  // Allocate calls with explain set, per caller (peer address) and second; 0 refuses them all.
  // Explaining scores the request twice and answers with every option, so it is rate-limited.
  double explain_per_caller_per_s = 2.0;
};

struct LoggingConfig {
  std::string level = "info";
  std::string format = "text";  // "text" or "json"

  bool operator==(const LoggingConfig&) const = default;
};

struct ModelsConfig {
  std::string dir = "var/models";
  double poll_s = 10.0;
  bool serve_analytic = true;  // ready (and answering from the analytic model) with no bundle
  // Refuse a bundle unless the 95% lower bound of its doubly robust off-policy estimate of net
  // return per request (manifest `offpolicy.net.dr`) is at least this fraction of the logging
  // policy's; 0 = no floor.
  double min_offpolicy_ratio = 0.0;
};

// A candidate decides beside the serving policy on a sample of requests: its choice is counted
// (allot_shadow_decisions_total) and logged at debug level, never returned.
// An experiment arm: the users whose user_id hashes into its weight are decided by its bundle,
// at its own price of compute, kept by its own controller over its own share of each module.
struct ArmConfig {
  std::string name;
  std::string bundle;   // a bundle directory (relative: under models.dir) or "analytic"
  double weight = 0.0;  // share of users, in (0, 1); the main arm keeps 1 - the sum

  bool operator==(const ArmConfig&) const = default;
};

struct ExperimentsConfig {
  // A bundle directory (relative paths are under models.dir), "analytic" for the config's
  // analytic model, or "" for no shadow.
  std::string shadow_bundle;
  double shadow_sample_rate = 0.01;  // share of Allocate calls the shadow also decides
  std::vector<ArmConfig> arms;       // besides the main arm (the serving bundle)

  // The main arm's share of users: what the experiment arms leave.
  double main_arm_weight() const {
    double weight = 1.0;
    for (const ArmConfig& arm : arms) weight -= arm.weight;
    return weight;
  }
};

struct AllotConfig {
  ServerConfig server;
  LoggingConfig logging;
  ModelsConfig models;
  ExperimentsConfig experiments;
  LambdaConfig lambda;
  ControllerConfig controller;
  TelemetryConfig telemetry;
  ValueModelConfig value_model;
  std::vector<ModuleConfig> modules;
  std::vector<AgentConfig> agents;
  CacheReuseConfig cache_reuse;
  std::string source;   // file path or "<embedded>"
  std::string version;  // content hash, so reloads are visible

  const AgentConfig* FindAgent(const std::string& name) const;
  int ModuleIndex(const std::string& name) const;  // -1 when unknown
};

// Parses and validates; throws ConfigError naming the key.
AllotConfig LoadConfigFromString(const std::string& yaml, const std::string& source);
AllotConfig LoadConfigFromFile(const std::string& path);
// The config compiled into the binary (config/allot.yaml at build time).
const std::string& EmbeddedDefaultConfigYaml();
AllotConfig LoadEmbeddedDefaultConfig();
// Checks cross-field rules; throws ConfigError naming the key.
void Validate(const AllotConfig& config);

}  // namespace allot
