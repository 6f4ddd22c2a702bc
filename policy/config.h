// Typed Allot configuration: every field has a default; Load* parses YAML and validates it once.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "policy/decision_kind.h"
#include "policy/named_enum.h"

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

// A continuous queue: any length from min to max in steps of `granularity`, with a cost rule per
// item instead of a list of options. The config loader expands it into one QUEUE option per
// length, so every scorer and algorithm sees an ordinary queue; a continuous-action trainer
// (MADDPG) reads the range to scale its actor's output.
struct QueueRangeConfig {
  // The analytic model's value curve: gains per value bucket at anchor lengths (the first at
  // min, the last at max), linear in length between anchors.
  struct GainPoint {
    int length = 0;
    std::vector<double> gain;
  };
  int min = 1;  // min and max are required; CheckQueueRange asks for max > min
  int max = 1;
  int granularity = 1;
  double fixed_cost_ms = 0.0;     // core-ms a request costs at any length
  double cost_per_item_ms = 0.0;  // core-ms per queued item, >= 0: cost never falls with length
  // Per-item compute the length causes in later modules (a longer pre-rank queue hands rank
  // more candidates), by module name.
  std::map<std::string, double> module_cost_per_item_ms;
  std::vector<GainPoint> gain_curve;

  int num_lengths() const { return (max - min) / granularity + 1; }
  int Length(int index) const { return min + index * granularity; }
  // Index of the grid length nearest to `length` (clamped into [min, max]; halves round up;
  // NaN gives the shortest).
  int NearestIndex(double length) const;
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
  // QUEUE only: set when the queue is continuous (its options were expanded from this range).
  std::optional<QueueRangeConfig> range;
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
inline constexpr EnumNames<FeatureBoundConfig::Action, 2> kFeatureBoundActions{
    {{FeatureBoundConfig::Action::kClip, "clip"}, {FeatureBoundConfig::Action::kReject, "reject"}}};

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
  // The price of compute the module's replicas use now (e.g. avg(allot_lambda{module="rank"})):
  // a replica that starts joins at it instead of initial_lambda. Optional.
  std::string price_query;

  bool operator==(const ModuleConfig&) const = default;
};

// Analytic user-value model: value = exp(bias + sum_f weight_f * x_f); bucket by upper bounds.
struct ValueModelConfig {
  double bias = 0.0;
  std::map<std::string, double> weights;
  std::vector<double> bucket_bounds = {0.5, 2.0, 8.0};  // N bounds -> N+1 buckets
  int num_buckets() const { return static_cast<int>(bucket_bounds.size()) + 1; }
};

// The smallest lambda that log-space steps and grids use: a lambda below it counts as it. With
// lambda.min 0 that is max * 1e-4, since log 0 is not a number.
inline double LogLambdaFloor(double min_lambda, double max_lambda) {
  return std::max(min_lambda, max_lambda * 1e-4);
}

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
  // Each period a replica first moves this fraction of the way (in log) from its own price to its
  // module's cluster price (modules[].price_query), then takes its controller's step from there.
  double consensus = 0.3;

  bool operator==(const LambdaConfig&) const = default;
};

// Which controller re-prices compute. Each kind is one row of kControllerKinds and one case of
// MakeController (policy/control_loop.cc); its settings are its own sub-config below.
enum class ControllerKind { kMpc, kPid };
inline constexpr EnumNames<ControllerKind, 2> kControllerKinds{
    {{ControllerKind::kMpc, "mpc"}, {ControllerKind::kPid, "pid"}}};

// PID (velocity form, on log lambda and the relative CPU error): a controller kind of its own and
// the MPC's fallback.
struct PidConfig {
  double kp = 2.0;
  double ki = 1.5;  // per second
  double kd = 0.0;  // seconds

  bool operator==(const PidConfig&) const = default;
};

// The MPC's load model, objective, search and back-off (see mpc_controller.h).
struct MpcConfig {
  int horizon = 10;
  double alpha = 0.4;
  double beta = 8.0;
  double critical_load = 0.44;
  int samples = 100;
  // Load model: cpu[t+1] = load_lag * cpu[t] + (1 - load_lag) * k * qps * cost(lambda), with k
  // (CPU per core-ms per second) learned online by exponential smoothing.
  double load_lag = 0.5;
  double calibration_alpha = 0.2;
  // Hands the module to PID while its smoothed relative prediction error exceeds this.
  double fallback_error = 0.25;
  // Back-off: it steers to target * (1 - b), with b such that the load it cannot predict (judged
  // from its last error_window one-period prediction errors) overshoots the target by
  // overshoot_budget on average, as a fraction of the target; b is at most max_backoff. Load that
  // cannot be predicted spreads around whatever level is aimed at: aiming at the target itself
  // overshoots half the time. The overshoot measured after periods planned at the aim corrects b
  // until it averages overshoot_budget (heavier tails than a Gaussian need more).
  double overshoot_budget = 0.0035;
  int error_window = 60;
  // State observer: the load a plan starts from is predicted + state_gain * (measured -
  // predicted); 1 takes the measurement as it is.
  double state_gain = 0.5;
  double max_backoff = 0.1;
  // Move suppression: weight of each period's squared change of log lambda, against the squared
  // load error in units of the load's unpredictable scatter (see mpc_controller.h). Without it a
  // plan chases per-period noise, and a lambda that swings every period allocates compute worse
  // than a steady one at the same mean load.
  double move_penalty = 5.0;
  uint64_t seed = 1;  // random shooting

  bool operator==(const MpcConfig&) const = default;
};

// Traffic forecast: Holt-Winters level/trend smoothing and a seasonal profile by time slot.
struct ForecastConfig {
  double day_length_s = 86400.0;  // shorter in compressed simulations
  int slots = 96;
  double level_alpha = 0.6;     // weight of the newest observation in the smoothed level
  double trend_beta = 0.05;     // weight of the newest level change in the smoothed trend
  double seasonal_gamma = 0.5;  // weight of the newest day in a slot's profile value

  bool operator==(const ForecastConfig&) const = default;
};

struct ControllerConfig {
  ControllerKind kind = ControllerKind::kMpc;
  double period_s = 1.0;
  int lambda_grid = 48;  // candidate lambdas per period: cost curves and the MPC's constant paths
  int reservoir_size = 4096;
  int sample_every = 8;  // record one scored request in this many
  MpcConfig mpc;
  PidConfig pid;
  ForecastConfig forecast;

  bool operator==(const ControllerConfig&) const = default;
};

// Where the controller reads per-module load. Each source is one row of kTelemetrySources and
// one case of the server's MakeTelemetrySource.
enum class TelemetrySourceKind { kReportLoad, kPrometheus };
inline constexpr EnumNames<TelemetrySourceKind, 2> kTelemetrySources{
    {{TelemetrySourceKind::kReportLoad, "report_load"},
     {TelemetrySourceKind::kPrometheus, "prometheus"}}};

// Trust in ReportLoad (the threat model is in deploy/README.md). A module's load is the median
// over its reporters, so a minority of wrong or hostile reporters cannot move it.
struct ReportLoadConfig {
  double reporter_window_s = 10.0;  // a reporter counts while its newest report is this recent
  double max_future_skew_s = 2.0;   // reports stamped further ahead of this server are refused
  int max_reporters = 64;           // per module; new names are refused beyond it until some expire
  double reports_per_s = 10.0;      // per reporter, sustained; bursts of twice that pass
  std::vector<std::string> reporters;  // allow-list of reporter names; empty = any name

  bool operator==(const ReportLoadConfig&) const = default;
};

// Load shared by replicas, read with PromQL (each module's cpu_query and qps_query).
struct PrometheusConfig {
  std::string url = "http://127.0.0.1:9090";
  double query_timeout_s = 0.5;
  // Defaults of modules[].cpu_query, qps_query and price_query with "{module}" standing for the
  // module's name: modules that share one exporter and label scheme need no query of their own.
  std::string cpu_query;
  std::string qps_query;
  std::string price_query;

  bool operator==(const PrometheusConfig&) const = default;
};

struct TelemetryConfig {
  TelemetrySourceKind source = TelemetrySourceKind::kReportLoad;
  // ReportLoad calls are accepted (and checked) whatever the source; only this source uses them.
  ReportLoadConfig report_load;
  PrometheusConfig prometheus;

  bool operator==(const TelemetryConfig&) const = default;
};

struct CacheStageConfig {
  std::string stage;           // "recall", "prerank" or "rank"
  std::string module;          // module whose compute reuse saves (with all earlier stages)
  double half_life_s = 60.0;   // value retention halves after this age
  double stage_cost_ms = 1.0;  // compute of this stage for a request

  bool operator==(const CacheStageConfig&) const = default;
};

// How cache reuse is priced. kLambda: by the modules' lambdas. kBudget (ComRecycle): minimise
// compute subject to the value lost to reuse staying under a budget.
enum class CacheReuseMode { kLambda, kBudget };
inline constexpr EnumNames<CacheReuseMode, 2> kCacheReuseModes{
    {{CacheReuseMode::kLambda, "lambda"}, {CacheReuseMode::kBudget, "budget"}}};

// The budget mode's settings: the value lost to reuse stays under decay_budget (a fraction of
// value), with a multiplier found by bisection over each window_s and applied to the next window.
struct CacheBudgetConfig {
  double decay_budget = 0.02;
  double window_s = 900.0;

  bool operator==(const CacheBudgetConfig&) const = default;
};

struct CacheReuseConfig {
  bool enabled = true;
  double max_age_s = 300.0;
  CacheReuseMode mode = CacheReuseMode::kLambda;
  CacheBudgetConfig budget;
  std::vector<CacheStageConfig> stages;  // in chain order

  bool operator==(const CacheReuseConfig&) const = default;
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

class YamlMap;

// A top-level section of the config file that a layer above policy/ owns, such as the server's
// `server` and `logging`: how to read it, and what its keys are for (the config reference).
// policy/ does not know what is inside. A loader given no reader for one of kHostSectionKeys
// skips that section unread, so the simulator and the trainer take the server's file as it is.
struct HostSection {
  std::string key;
  std::function<void(YamlMap&)> read;
  const std::map<std::string, std::string>* docs = nullptr;  // by key path, as in ConfigKeyDocs
};
inline constexpr std::array<std::string_view, 2> kHostSectionKeys = {"server", "logging"};

// Parses and validates; throws ConfigError naming the key. `host` reads its own sections.
AllotConfig LoadConfigFromString(const std::string& yaml, const std::string& source,
                                 std::span<const HostSection> host = {});
AllotConfig LoadConfigFromFile(const std::string& path, std::span<const HostSection> host = {});
// The config compiled into the binary (config/allot.yaml at build time).
const std::string& EmbeddedDefaultConfigYaml();
AllotConfig LoadEmbeddedDefaultConfig(std::span<const HostSection> host = {});
// Checks cross-field rules; throws ConfigError naming the key.
void Validate(const AllotConfig& config);

}  // namespace allot
