// YAML -> WorldConfig: every key optional, unknown keys rejected, errors name the dotted key.
#include "sim/world_config.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "policy/yaml_map.h"

namespace allot::sim {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  YamlMap::Fail(path, what);
}

std::string Indexed(const std::string& list, size_t i) {
  return list + "[" + std::to_string(i) + "]";
}

void Positive(double v, const std::string& path) {
  if (!(v > 0)) Fail(path, "must be > 0");
}
void NonNegative(double v, const std::string& path) {
  if (!(v >= 0)) Fail(path, "must be >= 0");
}
void Fraction(double v, const std::string& path) {  // [0, 1]
  if (!(v >= 0 && v <= 1)) Fail(path, "must be in [0, 1]");
}
void OpenFraction(double v, const std::string& path) {  // (0, 1)
  if (!(v > 0 && v < 1)) Fail(path, "must be in (0, 1)");
}

void ReadStage(YamlMap& m, StageConfig& s) {
  m.Read("module", s.module);
  m.Read("fixed_cost_ms", s.fixed_cost_ms);
  m.Read("cost_per_candidate_ms", s.cost_per_candidate_ms);
  m.Read("scale", s.scale);
  m.Read("scale_activity", s.scale_activity);
  m.Read("score_noise_sigma", s.score_noise_sigma);
  m.Read("precision", s.precision);
}

WorldConfig Parse(const YAML::Node& root) {
  WorldConfig w;
  YamlMap r(root, "");
  r.ReadMap("time", [&](YamlMap& m) {
    m.Read("day_length_s", w.time.day_length_s);
    m.Read("start_hour", w.time.start_hour);
  });
  r.ReadMap("traffic", [&](YamlMap& m) {
    m.Read("mean_qps", w.traffic.mean_qps);
    m.Read("scale", w.traffic.scale);
    m.ReadDoubles("hourly_profile", w.traffic.hourly_profile);
    m.Read("day_noise_sigma", w.traffic.day_noise_sigma);
    m.Read("minute_noise_sigma", w.traffic.minute_noise_sigma);
    m.ReadList("spikes", [&](YamlMap& s, size_t) {
      SpikeConfig spike;
      s.Read("start_hour", spike.start_hour);
      s.Read("duration_min", spike.duration_min);
      s.Read("multiplier", spike.multiplier);
      s.Read("day", spike.day);
      w.traffic.spikes.push_back(spike);
    });
  });
  r.ReadMap("users", [&](YamlMap& m) {
    UserConfig& u = w.users;
    m.Read("value_log_mean", u.value_log_mean);
    m.Read("value_log_sigma", u.value_log_sigma);
    m.Read("new_user_fraction", u.new_user_fraction);
    m.Read("activity_weight", u.activity_weight);
    m.Read("ctr_weight", u.ctr_weight);
    m.Read("ctr_median", u.ctr_median);
    m.Read("hist_value_ratio", u.hist_value_ratio);
    m.Read("hist_noise_sigma", u.hist_noise_sigma);
    m.Read("new_user_hist_noise_sigma", u.new_user_hist_noise_sigma);
    m.Read("new_user_hist_shrink", u.new_user_hist_shrink);
    m.Read("request_noise_sigma", u.request_noise_sigma);
    m.Read("query_fraction", u.query_fraction);
    m.Read("query_len_mean", u.query_len_mean);
    m.Read("query_value_bonus", u.query_value_bonus);
    m.Read("page_decay", u.page_decay);
    m.Read("hour_value_amplitude", u.hour_value_amplitude);
    m.Read("hour_value_peak", u.hour_value_peak);
  });
  r.ReadMap("repeats", [&](YamlMap& m) {
    m.Read("fraction", w.repeats.fraction);
    m.ReadList("gaps", [&](YamlMap& g, size_t) {
      GapBand band;
      g.Read("weight", band.weight);
      g.Read("min_s", band.min_s);
      g.Read("max_s", band.max_s);
      w.repeats.gaps.push_back(band);
    });
    m.Read("drift_time_median_s", w.repeats.drift_time_median_s);
    m.Read("drift_time_sigma", w.repeats.drift_time_sigma);
    m.Read("session_gap_s", w.repeats.session_gap_s);
    m.Read("max_page_index", w.repeats.max_page_index);
  });
  r.ReadMap("recall", [&](YamlMap& m) {
    RecallConfig& c = w.recall;
    m.Read("module", c.module);
    m.Read("dedup", c.dedup);
    m.Read("yield_noise_sigma", c.yield_noise_sigma);
    m.Read("coverage_noise_sigma", c.coverage_noise_sigma);
    m.Read("max_coverage", c.max_coverage);
    m.Read("score_noise_sigma", c.score_noise_sigma);
    m.ReadList("channels", [&](YamlMap& ch, size_t) {
      ChannelConfig channel;
      ch.Read("name", channel.name);
      ch.Read("yield", channel.yield);
      ch.Read("cost_ms", channel.cost_ms);
      ch.Read("coverage", channel.coverage);
      ch.Read("activity", channel.activity);
      ch.Read("value", channel.value);
      ch.Read("new_user", channel.new_user);
      ch.Read("query", channel.query);
      c.channels.push_back(std::move(channel));
    });
  });
  r.ReadMap("prerank", [&](YamlMap& m) { ReadStage(m, w.prerank); });
  r.ReadMap("rank", [&](YamlMap& m) { ReadStage(m, w.rank); });
  r.ReadList("switches", [&](YamlMap& m, size_t) {
    SwitchConfig s;
    m.Read("name", s.name);
    m.Read("effect", s.effect);
    m.Read("cost_ms", s.cost_ms);
    m.Read("yield_multiplier", s.yield_multiplier);
    m.Read("coverage", s.coverage);
    m.Read("coverage_value", s.coverage_value);
    m.Read("cost_multiplier", s.cost_multiplier);
    m.Read("gain", s.gain);
    m.Read("gain_half_value", s.gain_half_value);
    w.switches.push_back(std::move(s));
  });
  r.ReadMap("revenue", [&](YamlMap& m) {
    m.Read("noise_sigma", w.revenue.noise_sigma);
    m.Read("cost_noise_sigma", w.revenue.cost_noise_sigma);
  });
  r.ReadMap("cache", [&](YamlMap& m) {
    m.Read("ttl_s", w.cache.ttl_s);
    m.Read("no_exposure_fraction", w.cache.no_exposure_fraction);
    m.Read("exposure_slots", w.cache.exposure_slots);
    m.ReadStrings("reference_channels", w.cache.reference_channels);
    m.ReadStrings("reference_switches", w.cache.reference_switches);
    m.Read("reference_prerank_queue", w.cache.reference_prerank_queue);
    m.Read("reference_rank_queue", w.cache.reference_rank_queue);
    m.ReadList("stages", [&](YamlMap& s, size_t) {
      CacheStageWorld stage;
      s.Read("stage", stage.stage);
      s.Read("half_life_s", stage.half_life_s);
      s.Read("drift_sensitivity", stage.drift_sensitivity);
      s.Read("exposure_scale", stage.exposure_scale);
      w.cache.stages.push_back(std::move(stage));
    });
  });
  r.ReadMap("load", [&](YamlMap& m) {
    m.ReadList("modules", [&](YamlMap& s, size_t) {
      ModuleCapacity module;
      s.Read("name", module.name);
      s.Read("cores", module.cores);
      w.load.modules.push_back(std::move(module));
    });
    m.Read("lag_s", w.load.lag_s);
    m.Read("noise_sigma", w.load.noise_sigma);
  });
  r.ReadMap("overload", [&](YamlMap& m) {
    m.Read("degrade_above", w.overload.degrade_above);
    m.Read("recover_below", w.overload.recover_below);
    m.ReadList("levels", [&](YamlMap& s, size_t) {
      DegradationLevel level;
      s.Read("switches_off", level.switches_off);
      s.Read("queue_steps_down", level.queue_steps_down);
      w.overload.levels.push_back(level);
    });
    m.Read("timeout_start", w.overload.timeout_start);
    m.Read("timeout_max", w.overload.timeout_max);
  });
  r.ReadMap("testbench", [&](YamlMap& m) {
    m.Read("machines", w.testbench.machines);
    m.Read("cores", w.testbench.cores);
    m.Read("qps", w.testbench.qps);
    m.Read("seconds", w.testbench.seconds);
    m.Read("warmup_s", w.testbench.warmup_s);
    m.Read("requests_per_bucket", w.testbench.requests_per_bucket);
  });
  r.ReadMap("evaluate", [&](YamlMap& m) { m.Read("requests", w.evaluate.requests); });
  r.RejectUnknownKeys();
  return w;
}

template <typename T, typename NameOf>
void UniqueNames(const std::vector<T>& items, const std::string& list, const std::string& field,
                 NameOf name_of) {
  std::set<std::string> names;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& name = name_of(items[i]);
    if (name.empty()) Fail(Indexed(list, i) + "." + field, "must not be empty");
    if (!names.insert(name).second)
      Fail(Indexed(list, i) + "." + field, "duplicates '" + name + "'");
  }
}

void ValidateStage(const StageConfig& s, const std::string& p) {
  if (s.module.empty()) Fail(p + ".module", "must not be empty");
  NonNegative(s.fixed_cost_ms, p + ".fixed_cost_ms");
  NonNegative(s.cost_per_candidate_ms, p + ".cost_per_candidate_ms");
  Positive(s.scale, p + ".scale");
  if (!(std::abs(s.scale_activity) < 2)) Fail(p + ".scale_activity", "must be in (-2, 2)");
  NonNegative(s.score_noise_sigma, p + ".score_noise_sigma");
  if (!(s.precision > 0 && s.precision <= 1)) Fail(p + ".precision", "must be in (0, 1]");
}

}  // namespace

const ChannelConfig* WorldConfig::FindChannel(const std::string& name) const {
  for (const auto& c : recall.channels) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const SwitchConfig* WorldConfig::FindSwitch(const std::string& name) const {
  for (const auto& s : switches) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const CacheStageWorld* WorldConfig::FindCacheStage(const std::string& stage) const {
  for (const auto& s : cache.stages) {
    if (s.stage == stage) return &s;
  }
  return nullptr;
}

double WorldConfig::Cores(const std::string& module) const {
  for (const auto& m : load.modules) {
    if (m.name == module) return m.cores;
  }
  return 0.0;
}

void Validate(const WorldConfig& w) {
  Positive(w.time.day_length_s, "time.day_length_s");
  if (!(w.time.start_hour >= 0 && w.time.start_hour < 24))
    Fail("time.start_hour", "must be in [0, 24)");

  const TrafficConfig& t = w.traffic;
  Positive(t.mean_qps, "traffic.mean_qps");
  Positive(t.scale, "traffic.scale");
  if (t.hourly_profile.size() != 24)
    Fail("traffic.hourly_profile", "must have 24 entries (one per hour)");
  for (size_t i = 0; i < t.hourly_profile.size(); ++i) {
    Positive(t.hourly_profile[i], Indexed("traffic.hourly_profile", i));
  }
  NonNegative(t.day_noise_sigma, "traffic.day_noise_sigma");
  NonNegative(t.minute_noise_sigma, "traffic.minute_noise_sigma");
  for (size_t i = 0; i < t.spikes.size(); ++i) {
    const SpikeConfig& s = t.spikes[i];
    const std::string p = Indexed("traffic.spikes", i);
    if (!(s.start_hour >= 0 && s.start_hour < 24)) Fail(p + ".start_hour", "must be in [0, 24)");
    Positive(s.duration_min, p + ".duration_min");
    Positive(s.multiplier, p + ".multiplier");
    if (s.day < -1) Fail(p + ".day", "must be >= 0, or -1 for every day");
  }

  const UserConfig& u = w.users;
  Positive(u.value_log_sigma, "users.value_log_sigma");
  Fraction(u.new_user_fraction, "users.new_user_fraction");
  if (!(u.activity_weight * u.activity_weight + u.ctr_weight * u.ctr_weight < 1)) {
    Fail("users.activity_weight", "activity_weight^2 + ctr_weight^2 must be < 1");
  }
  OpenFraction(u.ctr_median, "users.ctr_median");
  Positive(u.hist_value_ratio, "users.hist_value_ratio");
  NonNegative(u.hist_noise_sigma, "users.hist_noise_sigma");
  NonNegative(u.new_user_hist_noise_sigma, "users.new_user_hist_noise_sigma");
  Fraction(u.new_user_hist_shrink, "users.new_user_hist_shrink");
  NonNegative(u.request_noise_sigma, "users.request_noise_sigma");
  Fraction(u.query_fraction, "users.query_fraction");
  NonNegative(u.query_len_mean, "users.query_len_mean");
  NonNegative(u.query_value_bonus, "users.query_value_bonus");
  if (!(u.page_decay > 0 && u.page_decay <= 1)) Fail("users.page_decay", "must be in (0, 1]");
  if (!(u.hour_value_amplitude >= 0 && u.hour_value_amplitude < 1)) {
    Fail("users.hour_value_amplitude", "must be in [0, 1)");
  }

  const RepeatConfig& rp = w.repeats;
  if (!(rp.fraction >= 0 && rp.fraction < 1)) Fail("repeats.fraction", "must be in [0, 1)");
  if (rp.gaps.empty()) Fail("repeats.gaps", "must list at least one band");
  double weights = 0;
  for (size_t i = 0; i < rp.gaps.size(); ++i) {
    const GapBand& g = rp.gaps[i];
    const std::string p = Indexed("repeats.gaps", i);
    Positive(g.weight, p + ".weight");
    Positive(g.min_s, p + ".min_s");
    if (!(g.max_s > g.min_s)) Fail(p + ".max_s", "must be > min_s");
    if (g.max_s > 86400) Fail(p + ".max_s", "must be at most a day (86400)");
    weights += g.weight;
  }
  if (std::abs(weights - 1.0) > 1e-6) Fail("repeats.gaps", "weights must sum to 1");
  Positive(rp.drift_time_median_s, "repeats.drift_time_median_s");
  NonNegative(rp.drift_time_sigma, "repeats.drift_time_sigma");
  Positive(rp.session_gap_s, "repeats.session_gap_s");
  if (rp.max_page_index < 0) Fail("repeats.max_page_index", "must be >= 0");

  const RecallConfig& rc = w.recall;
  if (rc.module.empty()) Fail("recall.module", "must not be empty");
  if (!(rc.dedup > 0 && rc.dedup <= 1)) Fail("recall.dedup", "must be in (0, 1]");
  NonNegative(rc.yield_noise_sigma, "recall.yield_noise_sigma");
  NonNegative(rc.coverage_noise_sigma, "recall.coverage_noise_sigma");
  OpenFraction(rc.max_coverage, "recall.max_coverage");
  NonNegative(rc.score_noise_sigma, "recall.score_noise_sigma");
  if (rc.channels.empty()) Fail("recall.channels", "must list at least one channel");
  if (rc.channels.size() > 12) Fail("recall.channels", "at most 12 channels");
  UniqueNames(rc.channels, "recall.channels", "name",
              [](const ChannelConfig& c) -> const std::string& { return c.name; });
  for (size_t i = 0; i < rc.channels.size(); ++i) {
    const ChannelConfig& c = rc.channels[i];
    const std::string p = Indexed("recall.channels", i);
    Positive(c.yield, p + ".yield");
    NonNegative(c.cost_ms, p + ".cost_ms");
    OpenFraction(c.coverage, p + ".coverage");
  }
  ValidateStage(w.prerank, "prerank");
  ValidateStage(w.rank, "rank");
  if (rc.module == w.prerank.module || rc.module == w.rank.module ||
      w.prerank.module == w.rank.module) {
    Fail("rank.module", "recall, prerank and rank must run on different modules");
  }

  UniqueNames(w.switches, "switches", "name",
              [](const SwitchConfig& s) -> const std::string& { return s.name; });
  for (size_t i = 0; i < w.switches.size(); ++i) {
    const SwitchConfig& s = w.switches[i];
    const std::string p = Indexed("switches", i);
    if (s.effect != "recall_expansion" && s.effect != "heavy_rank") {
      Fail(p + ".effect", "must be recall_expansion or heavy_rank (got '" + s.effect + "')");
    }
    NonNegative(s.cost_ms, p + ".cost_ms");
    if (!(s.yield_multiplier >= 1)) Fail(p + ".yield_multiplier", "must be >= 1");
    Fraction(s.coverage, p + ".coverage");
    Fraction(s.coverage_value, p + ".coverage_value");
    if (!(s.cost_multiplier >= 1)) Fail(p + ".cost_multiplier", "must be >= 1");
    NonNegative(s.gain, p + ".gain");
    Positive(s.gain_half_value, p + ".gain_half_value");
  }

  NonNegative(w.revenue.noise_sigma, "revenue.noise_sigma");
  NonNegative(w.revenue.cost_noise_sigma, "revenue.cost_noise_sigma");

  Positive(w.cache.ttl_s, "cache.ttl_s");
  Fraction(w.cache.no_exposure_fraction, "cache.no_exposure_fraction");
  if (w.cache.exposure_slots < 1) Fail("cache.exposure_slots", "must be >= 1");
  static const std::set<std::string> kStages = {"recall", "prerank", "rank"};
  UniqueNames(w.cache.stages, "cache.stages", "stage",
              [](const CacheStageWorld& s) -> const std::string& { return s.stage; });
  for (size_t i = 0; i < w.cache.stages.size(); ++i) {
    const CacheStageWorld& s = w.cache.stages[i];
    const std::string p = Indexed("cache.stages", i);
    if (!kStages.count(s.stage)) Fail(p + ".stage", "must be recall, prerank or rank");
    Positive(s.half_life_s, p + ".half_life_s");
    Fraction(s.drift_sensitivity, p + ".drift_sensitivity");
    Positive(s.exposure_scale, p + ".exposure_scale");
  }

  for (size_t i = 0; i < w.cache.reference_channels.size(); ++i) {
    if (!w.FindChannel(w.cache.reference_channels[i])) {
      Fail(Indexed("cache.reference_channels", i),
           "names unknown channel '" + w.cache.reference_channels[i] + "'");
    }
  }
  for (size_t i = 0; i < w.cache.reference_switches.size(); ++i) {
    if (!w.FindSwitch(w.cache.reference_switches[i])) {
      Fail(Indexed("cache.reference_switches", i),
           "names unknown switch '" + w.cache.reference_switches[i] + "'");
    }
  }
  NonNegative(w.cache.reference_prerank_queue, "cache.reference_prerank_queue");
  NonNegative(w.cache.reference_rank_queue, "cache.reference_rank_queue");

  UniqueNames(w.load.modules, "load.modules", "name",
              [](const ModuleCapacity& m) -> const std::string& { return m.name; });
  for (size_t i = 0; i < w.load.modules.size(); ++i)
    Positive(w.load.modules[i].cores, Indexed("load.modules", i) + ".cores");
  for (const std::string* module : {&rc.module, &w.prerank.module, &w.rank.module}) {
    if (w.Cores(*module) <= 0)
      Fail("load.modules", "must give the cores of module '" + *module + "'");
  }
  Positive(w.load.lag_s, "load.lag_s");
  NonNegative(w.load.noise_sigma, "load.noise_sigma");

  const OverloadConfig& o = w.overload;
  OpenFraction(o.recover_below, "overload.recover_below");
  if (!(o.degrade_above > o.recover_below))
    Fail("overload.degrade_above", "must be > recover_below");
  for (size_t i = 0; i < o.levels.size(); ++i) {
    if (o.levels[i].queue_steps_down < 0)
      Fail(Indexed("overload.levels", i) + ".queue_steps_down", "must be >= 0");
  }
  OpenFraction(o.timeout_start, "overload.timeout_start");
  Fraction(o.timeout_max, "overload.timeout_max");

  const TestbenchConfig& tb = w.testbench;
  if (tb.machines < 1) Fail("testbench.machines", "must be >= 1");
  if (tb.cores < 1) Fail("testbench.cores", "must be >= 1");
  Positive(tb.qps, "testbench.qps");
  Positive(tb.seconds, "testbench.seconds");
  if (!(tb.warmup_s >= 0 && tb.warmup_s < tb.seconds))
    Fail("testbench.warmup_s", "must be in [0, seconds)");
  if (tb.requests_per_bucket < 1) Fail("testbench.requests_per_bucket", "must be >= 1");
  if (w.evaluate.requests < 1) Fail("evaluate.requests", "must be >= 1");
}

WorldConfig LoadWorldConfigFromString(const std::string& yaml, const std::string& source) {
  const YAML::Node root = ParseYamlDocument(yaml);
  WorldConfig world = Parse(root);
  Validate(world);
  world.source = source;
  world.version = ContentHash(yaml);
  return world;
}

WorldConfig LoadWorldConfigFromFile(const std::string& path) {
  return LoadWorldConfigFromString(ReadConfigFile(path), path);
}

WorldConfig LoadEmbeddedWorldConfig() {
  return LoadWorldConfigFromString(EmbeddedWorldYaml(), "<embedded world>");
}

}  // namespace allot::sim
