// YAML -> WorldConfig: every key optional, unknown keys rejected, errors name the dotted key.
// Each Read declares its key and the values it accepts; Validate keeps the rules across keys.
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

void ReadStage(YamlMap& m, StageConfig& s) {
  m.Read("module", s.module);
  m.Read("fixed_cost_ms", s.fixed_cost_ms, NonNegative());
  m.Read("cost_per_candidate_ms", s.cost_per_candidate_ms, NonNegative());
  m.Read("scale", s.scale, Positive());
  m.Read("scale_activity", s.scale_activity, Open(-2, 2));
  m.Read("score_noise_sigma", s.score_noise_sigma, NonNegative());
  m.Read("precision", s.precision, Fraction());
}

WorldConfig Parse(const YAML::Node& root) {
  WorldConfig w;
  YamlMap r(root, "");
  r.ReadMap("time", [&](YamlMap& m) {
    m.Read("day_length_s", w.time.day_length_s, Positive());
    m.Read("start_hour", w.time.start_hour, ClosedOpen(0, 24));
  });
  r.ReadMap("traffic", [&](YamlMap& m) {
    m.Read("mean_qps", w.traffic.mean_qps, Positive());
    m.Read("scale", w.traffic.scale, Positive());
    m.ReadDoubles("hourly_profile", w.traffic.hourly_profile);
    m.Read("day_noise_sigma", w.traffic.day_noise_sigma, NonNegative());
    m.Read("minute_noise_sigma", w.traffic.minute_noise_sigma, NonNegative());
    m.ReadList("spikes", [&](YamlMap& s, size_t) {
      SpikeConfig spike;
      s.Read("start_hour", spike.start_hour, ClosedOpen(0, 24));
      s.Read("duration_min", spike.duration_min, Positive());
      s.Read("multiplier", spike.multiplier, Positive());
      s.Read("day", spike.day, AtLeast(-1));
      w.traffic.spikes.push_back(spike);
    });
  });
  r.ReadMap("users", [&](YamlMap& m) {
    UserConfig& u = w.users;
    m.Read("value_log_mean", u.value_log_mean);
    m.Read("value_log_sigma", u.value_log_sigma, Positive());
    m.Read("new_user_fraction", u.new_user_fraction, Closed(0, 1));
    m.Read("activity_weight", u.activity_weight);
    m.Read("ctr_weight", u.ctr_weight);
    m.Read("ctr_median", u.ctr_median, Open(0, 1));
    m.Read("hist_value_ratio", u.hist_value_ratio, Positive());
    m.Read("hist_noise_sigma", u.hist_noise_sigma, NonNegative());
    m.Read("new_user_hist_noise_sigma", u.new_user_hist_noise_sigma, NonNegative());
    m.Read("new_user_hist_shrink", u.new_user_hist_shrink, Closed(0, 1));
    m.Read("request_noise_sigma", u.request_noise_sigma, NonNegative());
    m.Read("query_fraction", u.query_fraction, Closed(0, 1));
    m.Read("query_len_mean", u.query_len_mean, NonNegative());
    m.Read("query_value_bonus", u.query_value_bonus, NonNegative());
    m.Read("page_decay", u.page_decay, Fraction());
    m.Read("hour_value_amplitude", u.hour_value_amplitude, ClosedOpen(0, 1));
    m.Read("hour_value_peak", u.hour_value_peak);
  });
  r.ReadMap("repeats", [&](YamlMap& m) {
    m.Read("fraction", w.repeats.fraction, ClosedOpen(0, 1));
    m.ReadList("gaps", [&](YamlMap& g, size_t) {
      GapBand band;
      g.Read("weight", band.weight, Positive());
      g.Read("min_s", band.min_s, Positive());
      g.Read("max_s", band.max_s);
      w.repeats.gaps.push_back(band);
    });
    m.Read("drift_time_median_s", w.repeats.drift_time_median_s, Positive());
    m.Read("drift_time_sigma", w.repeats.drift_time_sigma, NonNegative());
    m.Read("session_gap_s", w.repeats.session_gap_s, Positive());
    m.Read("max_page_index", w.repeats.max_page_index, NonNegative());
  });
  r.ReadMap("recall", [&](YamlMap& m) {
    RecallConfig& c = w.recall;
    m.Read("module", c.module);
    m.Read("dedup", c.dedup, Fraction());
    m.Read("yield_noise_sigma", c.yield_noise_sigma, NonNegative());
    m.Read("coverage_noise_sigma", c.coverage_noise_sigma, NonNegative());
    m.Read("max_coverage", c.max_coverage, Open(0, 1));
    m.Read("score_noise_sigma", c.score_noise_sigma, NonNegative());
    m.ReadList("channels", [&](YamlMap& ch, size_t) {
      ChannelConfig channel;
      ch.Read("name", channel.name);
      ch.Read("yield", channel.yield, Positive());
      ch.Read("cost_ms", channel.cost_ms, NonNegative());
      ch.Read("coverage", channel.coverage, Open(0, 1));
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
    m.Read("cost_ms", s.cost_ms, NonNegative());
    m.Read("yield_multiplier", s.yield_multiplier, AtLeast(1));
    m.Read("coverage", s.coverage, Closed(0, 1));
    m.Read("coverage_value", s.coverage_value, Closed(0, 1));
    m.Read("cost_multiplier", s.cost_multiplier, AtLeast(1));
    m.Read("gain", s.gain, NonNegative());
    m.Read("gain_half_value", s.gain_half_value, Positive());
    w.switches.push_back(std::move(s));
  });
  r.ReadMap("revenue", [&](YamlMap& m) {
    m.Read("noise_sigma", w.revenue.noise_sigma, NonNegative());
    m.Read("cost_noise_sigma", w.revenue.cost_noise_sigma, NonNegative());
  });
  r.ReadMap("cache", [&](YamlMap& m) {
    m.Read("ttl_s", w.cache.ttl_s, Positive());
    m.Read("no_exposure_fraction", w.cache.no_exposure_fraction, Closed(0, 1));
    m.Read("exposure_slots", w.cache.exposure_slots, AtLeast(1));
    m.ReadStrings("reference_channels", w.cache.reference_channels);
    m.ReadStrings("reference_switches", w.cache.reference_switches);
    m.Read("reference_prerank_queue", w.cache.reference_prerank_queue, NonNegative());
    m.Read("reference_rank_queue", w.cache.reference_rank_queue, NonNegative());
    m.ReadList("stages", [&](YamlMap& s, size_t) {
      CacheStageWorld stage;
      s.Read("stage", stage.stage);
      s.Read("half_life_s", stage.half_life_s, Positive());
      s.Read("drift_sensitivity", stage.drift_sensitivity, Closed(0, 1));
      s.Read("exposure_scale", stage.exposure_scale, Positive());
      w.cache.stages.push_back(std::move(stage));
    });
  });
  r.ReadMap("load", [&](YamlMap& m) {
    m.ReadList("modules", [&](YamlMap& s, size_t) {
      ModuleCapacity module;
      s.Read("name", module.name);
      s.Read("cores", module.cores, Positive());
      w.load.modules.push_back(std::move(module));
    });
    m.Read("lag_s", w.load.lag_s, Positive());
    m.Read("noise_sigma", w.load.noise_sigma, NonNegative());
  });
  r.ReadMap("overload", [&](YamlMap& m) {
    m.Read("degrade_above", w.overload.degrade_above);
    m.Read("recover_below", w.overload.recover_below, Open(0, 1));
    m.ReadList("levels", [&](YamlMap& s, size_t) {
      DegradationLevel level;
      s.Read("switches_off", level.switches_off);
      s.Read("queue_steps_down", level.queue_steps_down, NonNegative());
      w.overload.levels.push_back(level);
    });
    m.Read("timeout_start", w.overload.timeout_start, Open(0, 1));
    m.Read("timeout_max", w.overload.timeout_max, Closed(0, 1));
  });
  r.ReadMap("testbench", [&](YamlMap& m) {
    m.Read("machines", w.testbench.machines, AtLeast(1));
    m.Read("cores", w.testbench.cores, AtLeast(1));
    m.Read("qps", w.testbench.qps, Positive());
    m.Read("seconds", w.testbench.seconds, Positive());
    m.Read("warmup_s", w.testbench.warmup_s);
    m.Read("requests_per_bucket", w.testbench.requests_per_bucket, AtLeast(1));
  });
  r.ReadMap("evaluate", [&](YamlMap& m) { m.Read("requests", w.evaluate.requests, AtLeast(1)); });
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
  const TrafficConfig& t = w.traffic;
  if (t.hourly_profile.size() != 24)
    Fail("traffic.hourly_profile", "must have 24 entries (one per hour)");
  for (size_t i = 0; i < t.hourly_profile.size(); ++i) {
    if (!(t.hourly_profile[i] > 0)) Fail(Indexed("traffic.hourly_profile", i), "must be > 0");
  }

  const UserConfig& u = w.users;
  if (!(u.activity_weight * u.activity_weight + u.ctr_weight * u.ctr_weight < 1)) {
    Fail("users.activity_weight", "activity_weight^2 + ctr_weight^2 must be < 1");
  }

  const RepeatConfig& rp = w.repeats;
  if (rp.gaps.empty()) Fail("repeats.gaps", "must list at least one band");
  double weights = 0;
  for (size_t i = 0; i < rp.gaps.size(); ++i) {
    const GapBand& g = rp.gaps[i];
    const std::string p = Indexed("repeats.gaps", i);
    if (!(g.max_s > g.min_s)) Fail(p + ".max_s", "must be > min_s");
    if (g.max_s > 86400) Fail(p + ".max_s", "must be at most a day (86400)");
    weights += g.weight;
  }
  if (std::abs(weights - 1.0) > 1e-6) Fail("repeats.gaps", "weights must sum to 1");

  const RecallConfig& rc = w.recall;
  if (rc.module.empty()) Fail("recall.module", "must not be empty");
  if (rc.channels.empty()) Fail("recall.channels", "must list at least one channel");
  if (rc.channels.size() > 12) Fail("recall.channels", "at most 12 channels");
  UniqueNames(rc.channels, "recall.channels", "name",
              [](const ChannelConfig& c) -> const std::string& { return c.name; });
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
  }

  static const std::set<std::string> kStages = {"recall", "prerank", "rank"};
  UniqueNames(w.cache.stages, "cache.stages", "stage",
              [](const CacheStageWorld& s) -> const std::string& { return s.stage; });
  for (size_t i = 0; i < w.cache.stages.size(); ++i) {
    const CacheStageWorld& s = w.cache.stages[i];
    const std::string p = Indexed("cache.stages", i);
    if (!kStages.count(s.stage)) Fail(p + ".stage", "must be recall, prerank or rank");
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

  UniqueNames(w.load.modules, "load.modules", "name",
              [](const ModuleCapacity& m) -> const std::string& { return m.name; });
  for (const std::string* module : {&rc.module, &w.prerank.module, &w.rank.module}) {
    if (w.Cores(*module) <= 0)
      Fail("load.modules", "must give the cores of module '" + *module + "'");
  }

  const OverloadConfig& o = w.overload;
  if (!(o.degrade_above > o.recover_below))
    Fail("overload.degrade_above", "must be > recover_below");

  const TestbenchConfig& tb = w.testbench;
  if (!(tb.warmup_s >= 0 && tb.warmup_s < tb.seconds))
    Fail("testbench.warmup_s", "must be in [0, seconds)");
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
