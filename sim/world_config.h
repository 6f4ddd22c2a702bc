// Typed configuration of the simulated world (config/sim/world.yaml): a default for every field.
#pragma once

#include <string>
#include <vector>

#include "policy/config.h"

namespace allot::sim {

// Time compression: a simulated day of 86400 real seconds lasts day_length_s simulated seconds.
// User behaviour (repeat gaps, cache ages, drift) is in real seconds; CPU dynamics and control
// periods are in simulated seconds (the server's wall clock in `drive`).
struct TimeConfig {
  double day_length_s = 600.0;
  double start_hour = 0.0;  // time of day at which a stream starts
};

struct SpikeConfig {
  double start_hour = 20.0;
  double duration_min = 30.0;  // real minutes
  double multiplier = 1.5;
  int day = -1;  // day index it happens on; -1 = every day
};

struct TrafficConfig {
  double mean_qps = 50.0;  // simulated requests per simulated second, day average without spikes
  double scale = 200.0;    // real requests each simulated request stands for (CPU load, QPS)
  // Relative traffic per hour of day (normalised to mean 1, interpolated between hour centres).
  std::vector<double> hourly_profile = std::vector<double>(24, 1.0);
  double day_noise_sigma = 0.05;     // log-normal multiplier per day
  double minute_noise_sigma = 0.08;  // log-normal multiplier per real minute
  std::vector<SpikeConfig> spikes;
};

struct UserConfig {
  double value_log_mean = 0.0;  // latent user value U ~ lognormal(value_log_mean, value_log_sigma)
  double value_log_sigma = 1.0;
  double new_user_fraction = 0.15;
  double activity_weight = 0.5;  // correlation of user_activity with log U
  double ctr_weight = 0.4;       // correlation of ctr_7d with log U
  double ctr_median = 0.03;
  double hist_value_ratio = 0.6;           // observed revenue history per unit of U
  double hist_noise_sigma = 0.3;           // log-noise of the history of returning users
  double new_user_hist_noise_sigma = 0.9;  // new users have little history
  double new_user_hist_shrink = 0.6;       // weight of the population prior in their history
  double request_noise_sigma = 0.25;       // per-request value variation no feature shows
  double query_fraction = 0.25;            // share of chains that are searches
  double query_len_mean = 2.5;
  double query_value_bonus = 0.06;  // value multiplier per query token (up to 5)
  double page_decay = 0.92;         // value multiplier per page deeper into a session
  double hour_value_amplitude = 0.15;
  double hour_value_peak = 21.0;
};

// Repeat gaps: a mixture of log-uniform bands so the published shares are checkable.
struct GapBand {
  double weight = 1.0;
  double min_s = 1.0;
  double max_s = 10.0;
};

struct RepeatConfig {
  double fraction = 0.74;  // share of requests that repeat a same-day request of the same user
  std::vector<GapBand> gaps;
  double drift_time_median_s = 900.0;  // per-user interest drift time constant (lognormal)
  double drift_time_sigma = 0.7;
  double session_gap_s = 120.0;  // a longer gap restarts page_index
  int max_page_index = 10;
};

struct ChannelConfig {
  std::string name;
  double yield = 300.0;   // candidates returned
  double cost_ms = 1.0;   // CPU core-ms per request
  double coverage = 0.2;  // share of the user's value the channel finds, before modifiers
  double activity = 0.0;  // coverage change per unit of (user_activity - 0.5)
  double value = 0.0;     // coverage change per unit of tanh(log U)
  double new_user = 0.0;  // coverage change for new users
  double query = 0.0;     // coverage change for search requests
};

struct RecallConfig {
  std::string module = "recall";
  double dedup = 0.9;  // candidate count factor per extra channel (overlap)
  double yield_noise_sigma = 0.25;
  double coverage_noise_sigma = 0.25;
  double max_coverage = 0.95;
  double score_noise_sigma = 0.3;
  std::vector<ChannelConfig> channels;
};

struct StageConfig {
  std::string module;
  double fixed_cost_ms = 0.2;
  double cost_per_candidate_ms = 0.01;
  // Value depth (candidates) of the order this stage's queue truncates: recall's merge order for
  // pre-rank, pre-rank's order for rank. Active users' value goes deeper:
  // scale * (1 + scale_activity * (activity - 0.5)).
  double scale = 40.0;
  double scale_activity = 0.5;
  double score_noise_sigma = 0.3;
  double precision = 0.85;  // rank only: share of the ranked value that exposure captures
};

// effect: recall_expansion (recall stage) or heavy_rank (rank stage).
struct SwitchConfig {
  std::string name;
  std::string effect;
  double cost_ms = 0.0;           // recall_expansion: fixed extra cost
  double yield_multiplier = 1.3;  // recall_expansion
  double coverage = 0.05;         // recall_expansion: extra coverage
  double coverage_value = 0.1;    // recall_expansion: extra coverage per tanh(log U)
  double cost_multiplier = 1.35;  // heavy_rank: per-candidate cost factor
  double gain = 0.2;              // heavy_rank: max precision gain, reached by high-value users
  double gain_half_value = 2.0;   // heavy_rank: value at which half the gain is reached
};

struct RevenueConfig {
  double noise_sigma = 0.6;        // realised revenue = expected * lognormal(mean 1)
  double cost_noise_sigma = 0.12;  // per request and module, lognormal(mean 1)
};

struct CacheStageWorld {
  std::string stage;               // recall, prerank or rank
  double half_life_s = 120.0;      // real seconds
  double drift_sensitivity = 0.5;  // share of value lost per unit of interest drift
  double exposure_scale = 40.0;    // candidates: exposing e items keeps exp(-e / scale) of value
};

struct CacheWorldConfig {
  double ttl_s = 300.0;  // real seconds a stage output stays cached
  double no_exposure_fraction = 0.41;
  int exposure_slots = 10;
  std::vector<CacheStageWorld> stages;
  // The chain whose outputs a request leaves in the cache (the serving system's usual
  // configuration; independent of the policy under test, so the hindsight oracle stays a
  // per-request problem). Empty / 0 = the config's safe defaults.
  std::vector<std::string> reference_channels;
  std::vector<std::string> reference_switches;
  int reference_prerank_queue = 0;
  int reference_rank_queue = 0;
};

struct ModuleCapacity {
  std::string name;
  double cores = 100.0;
};

struct LoadConfig {
  std::vector<ModuleCapacity> modules;
  double lag_s = 3.0;         // first-order lag of utilisation (simulated seconds)
  double noise_sigma = 0.01;  // absolute noise of utilisation per control period
};

struct DegradationLevel {
  bool switches_off = true;
  // Queue lengths drop this many configured options (a continuous queue halves per step).
  int queue_steps_down = 0;
};

struct OverloadConfig {
  double degrade_above = 0.75;  // utilisation that raises a module's degradation level
  double recover_below = 0.60;
  std::vector<DegradationLevel> levels;  // level 1 = levels[0]
  double timeout_start = 0.85;
  double timeout_max = 0.6;  // timeout probability at 100% utilisation
};

struct TestbenchConfig {
  int machines = 4;
  int cores = 16;
  double qps = 4000.0;  // real requests per second per bucket
  double seconds = 30.0;
  double warmup_s = 15.0;  // let the lagged CPU settle before reading it
  int requests_per_bucket = 2000;
};

struct EvaluateConfig {
  int requests = 30000;
};

struct WorldConfig {
  TimeConfig time;
  TrafficConfig traffic;
  UserConfig users;
  RepeatConfig repeats;
  RecallConfig recall;
  StageConfig prerank{"prerank", 0.15, 0.0068, 300.0, 0.5, 0.3, 1.0};
  StageConfig rank{"rank", 0.2, 0.026, 40.0, 0.5, 0.3, 0.85};
  std::vector<SwitchConfig> switches;
  RevenueConfig revenue;
  CacheWorldConfig cache;
  LoadConfig load;
  OverloadConfig overload;
  TestbenchConfig testbench;
  EvaluateConfig evaluate;
  std::string source;
  std::string version;

  double compression() const { return 86400.0 / time.day_length_s; }
  const ChannelConfig* FindChannel(const std::string& name) const;
  const SwitchConfig* FindSwitch(const std::string& name) const;
  const CacheStageWorld* FindCacheStage(const std::string& stage) const;
  double Cores(const std::string& module) const;  // 0 when unknown
};

// Parse and validate; errors throw allot::ConfigError naming the dotted key.
WorldConfig LoadWorldConfigFromString(const std::string& yaml, const std::string& source);
WorldConfig LoadWorldConfigFromFile(const std::string& path);
const std::string& EmbeddedWorldYaml();  // config/sim/world.yaml at build time
WorldConfig LoadEmbeddedWorldConfig();
void Validate(const WorldConfig& world);

}  // namespace allot::sim
