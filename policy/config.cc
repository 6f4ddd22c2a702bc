// YAML -> AllotConfig: every key is optional (defaults in config.h), unknown keys are errors, and
// every error names the dotted key path so an operator can fix the file without reading code.
#include "policy/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "policy/config_reference.h"
#include "policy/decision_rules.h"
#include "policy/queue_range.h"
#include "policy/yaml_map.h"

namespace allot {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  YamlMap::Fail(path, what);
}

void ReadOption(YamlMap& r, DecisionKind kind, OptionConfig& option) {
  if (kind == DecisionKind::kQueue) {
    r.Read("length", option.queue_length, Positive());
    option.label = std::to_string(option.queue_length);
  } else {
    r.Read("name", option.label);
  }
  r.ReadDoubles("gain", option.gain);
  r.Read("cost_ms", option.cost_ms, NonNegative());
  r.Read("cost_multiplier", option.cost_multiplier, Positive());
  r.ReadNumberMap("module_cost_ms", option.module_cost_ms);
}

void ReadDecision(YamlMap& r, DecisionConfig& decision) {
  r.Read("name", decision.name);
  r.ReadEnum("kind", decision.kind, kDecisionKinds);
  r.Read("min_selected", decision.min_selected);
  r.Read("max_selected", decision.max_selected);
  r.ReadStrings("safe_default", decision.safe_default);
  r.ReadList("options", [&](YamlMap& o, size_t) {
    OptionConfig option;
    ReadOption(o, decision.kind, option);
    decision.options.push_back(std::move(option));
  });
  const YAML::Node range_node = r.Get("range");
  QueueRangeConfig range;
  r.ReadMap("range", [&](YamlMap& m) { ReadQueueRange(m, range); });
  if (!range_node || range_node.IsNull()) return;
  const std::string path = r.Child("range");
  if (decision.kind != DecisionKind::kQueue) Fail(path, "only a queue decision has a range");
  if (!decision.options.empty())
    Fail(r.Child("options"), "a queue with a range has no options (they are its lengths)");
  CheckQueueRange(range, path);
  decision.options = ExpandQueueRange(range);
  decision.range = std::move(range);
}

// Each Read names a key, and its Range the values it accepts; defaults are in config.h. Rules
// that relate keys to each other are in Validate.
void ReadModels(YamlMap& s, ModelsConfig& c) {
  s.Read("dir", c.dir);
  s.Read("poll_s", c.poll_s, NonNegative());
  s.Read("serve_analytic", c.serve_analytic);
  s.Read("min_offpolicy_ratio", c.min_offpolicy_ratio, Closed(0, 10));
}

void ReadExperiments(YamlMap& s, ExperimentsConfig& c) {
  s.Read("shadow_bundle", c.shadow_bundle);
  s.Read("shadow_sample_rate", c.shadow_sample_rate, Closed(0, 1));
  s.ReadList("arms", [&](YamlMap& a, size_t) {
    ArmConfig arm;
    a.Read("name", arm.name);
    a.Read("bundle", arm.bundle);
    a.Read("weight", arm.weight, Open(0, 1));
    c.arms.push_back(std::move(arm));
  });
}

void ReadLambda(YamlMap& s, LambdaConfig& c) {
  s.Read("min", c.min, NonNegative());
  s.Read("max", c.max);
  s.Read("max_step", c.max_step, Positive());
  s.Read("max_step_ratio", c.max_step_ratio, NonNegative());
  s.Read("safe_value", c.safe_value);
  s.Read("stale_after_s", c.stale_after_s, Positive());
  s.Read("decay_half_life_s", c.decay_half_life_s, Positive());
  s.Read("consensus", c.consensus, ClosedOpen(0, 1));
}

void ReadMpc(YamlMap& s, MpcConfig& c) {
  s.Read("horizon", c.horizon, Closed(1, 100));
  s.Read("alpha", c.alpha, Fraction());
  s.Read("beta", c.beta, NonNegative());
  s.Read("critical_load", c.critical_load, Fraction());
  s.Read("samples", c.samples, AtLeast(1));
  s.Read("load_lag", c.load_lag, ClosedOpen(0, 1));
  s.Read("calibration_alpha", c.calibration_alpha, Fraction());
  s.Read("fallback_error", c.fallback_error, Positive());
  s.Read("overshoot_budget", c.overshoot_budget, Open(0, 1));
  s.Read("error_window", c.error_window, Closed(8, 100000));
  s.Read("state_gain", c.state_gain, Fraction());
  s.Read("max_backoff", c.max_backoff, ClosedOpen(0, 1));
  s.Read("move_penalty", c.move_penalty, NonNegative());
  s.Read("seed", c.seed);
}

void ReadPid(YamlMap& s, PidConfig& c) {
  s.Read("kp", c.kp, NonNegative());
  s.Read("ki", c.ki, NonNegative());
  s.Read("kd", c.kd, NonNegative());
}

void ReadForecast(YamlMap& s, ForecastConfig& c) {
  s.Read("day_length_s", c.day_length_s, Positive());
  s.Read("slots", c.slots, Closed(1, 10000));
  s.Read("level_alpha", c.level_alpha, Fraction());
  s.Read("trend_beta", c.trend_beta, Closed(0, 1));
  s.Read("seasonal_gamma", c.seasonal_gamma, Fraction());
}

// The controller's keys before they moved into per-kind sections (a clear error, not "unknown").
void RejectMovedControllerKeys(YamlMap& s) {
  for (const char* key : {"horizon", "alpha", "beta", "critical_load", "samples", "load_lag",
                          "calibration_alpha", "fallback_error", "overshoot_budget", "error_window",
                          "state_gain", "max_backoff", "seed"}) {
    s.Moved(key, std::string("mpc.") + key);
  }
  for (const char* key : {"kp", "ki", "kd"})
    s.Moved(std::string("pid_") + key, "pid." + std::string(key));
  s.Moved("day_length_s", "forecast.day_length_s");
  for (const char* key : {"slots", "level_alpha", "trend_beta", "seasonal_gamma"}) {
    s.Moved(std::string("forecast_") + key, "forecast." + std::string(key));
  }
}

void ReadController(YamlMap& s, ControllerConfig& c) {
  RejectMovedControllerKeys(s);
  s.ReadEnum("kind", c.kind, kControllerKinds);
  s.Read("period_s", c.period_s, Positive());
  s.Read("lambda_grid", c.lambda_grid, Closed(2, 1000));
  s.Read("reservoir_size", c.reservoir_size, AtLeast(1));
  s.Read("sample_every", c.sample_every, AtLeast(1));
  s.ReadMap("mpc", [&](YamlMap& m) { ReadMpc(m, c.mpc); });
  s.ReadMap("pid", [&](YamlMap& m) { ReadPid(m, c.pid); });
  s.ReadMap("forecast", [&](YamlMap& m) { ReadForecast(m, c.forecast); });
}

void ReadTelemetry(YamlMap& s, TelemetryConfig& c) {
  for (const char* key :
       {"reporter_window_s", "max_future_skew_s", "max_reporters", "reports_per_s", "reporters"}) {
    s.Moved(key, std::string("report_load.") + key);
  }
  s.Moved("prometheus_url", "prometheus.url");
  s.Moved("query_timeout_s", "prometheus.query_timeout_s");
  s.ReadEnum("source", c.source, kTelemetrySources);
  s.ReadMap("report_load", [&](YamlMap& r) {
    ReportLoadConfig& t = c.report_load;
    r.Read("reporter_window_s", t.reporter_window_s, Positive());
    r.Read("max_future_skew_s", t.max_future_skew_s, Closed(0, 3600));
    r.Read("max_reporters", t.max_reporters, Closed(1, 100000));
    r.Read("reports_per_s", t.reports_per_s, Positive());
    r.ReadStrings("reporters", t.reporters);
  });
  s.ReadMap("prometheus", [&](YamlMap& p) {
    p.Read("url", c.prometheus.url);
    p.Read("query_timeout_s", c.prometheus.query_timeout_s, Positive());
    p.Read("cpu_query", c.prometheus.cpu_query);
    p.Read("qps_query", c.prometheus.qps_query);
    p.Read("price_query", c.prometheus.price_query);
  });
}

// A module's own query wins; otherwise the template with every "{module}" replaced by its name.
void ExpandQueryTemplate(const std::string& tmpl, const std::string& module, std::string& query) {
  if (!query.empty() || tmpl.empty()) return;
  static const std::string kPlaceholder = "{module}";
  query = tmpl;
  for (size_t at = query.find(kPlaceholder); at != std::string::npos;
       at = query.find(kPlaceholder, at + module.size())) {
    query.replace(at, kPlaceholder.size(), module);
  }
}

void ExpandQueryTemplates(AllotConfig& c) {
  const PrometheusConfig& p = c.telemetry.prometheus;
  for (ModuleConfig& m : c.modules) {
    ExpandQueryTemplate(p.cpu_query, m.name, m.cpu_query);
    ExpandQueryTemplate(p.qps_query, m.name, m.qps_query);
    ExpandQueryTemplate(p.price_query, m.name, m.price_query);
  }
}

void ReadAgent(YamlMap& s, AgentConfig& a) {
  s.Read("name", a.name);
  s.Read("module", a.module);
  s.Read("max_cost_ms", a.max_cost_ms, NonNegative());
  s.ReadStrings("features", a.features);
  s.ReadList("feature_bounds", [&](YamlMap& b, size_t) {
    FeatureBoundConfig bound;
    b.Read("feature", bound.feature);
    b.Read("min", bound.min);
    b.Read("max", bound.max);
    b.ReadEnum("action", bound.action, kFeatureBoundActions);
    a.feature_bounds.push_back(std::move(bound));
  });
  s.ReadList("decisions", [&](YamlMap& d, size_t) {
    DecisionConfig decision;
    ReadDecision(d, decision);
    a.decisions.push_back(std::move(decision));
  });
}

void ReadCacheReuse(YamlMap& s, CacheReuseConfig& c) {
  s.Moved("decay_budget", "budget.decay_budget");
  s.Moved("window_s", "budget.window_s");
  s.Read("enabled", c.enabled);
  s.Read("max_age_s", c.max_age_s, Positive());
  s.ReadEnum("mode", c.mode, kCacheReuseModes);
  s.ReadMap("budget", [&](YamlMap& b) {
    b.Read("decay_budget", c.budget.decay_budget, Closed(0, 1));
    b.Read("window_s", c.budget.window_s, Positive());
  });
  s.ReadList("stages", [&](YamlMap& st, size_t) {
    CacheStageConfig stage;
    st.Read("stage", stage.stage);
    st.Read("module", stage.module);
    st.Read("half_life_s", stage.half_life_s, Positive());
    st.Read("stage_cost_ms", stage.stage_cost_ms, NonNegative());
    c.stages.push_back(std::move(stage));
  });
}

// The sections the host reads itself, or skips unread when it gave no reader.
void ReadHostSections(YamlMap& r, std::span<const HostSection> host) {
  for (const std::string_view key : kHostSectionKeys) {
    const auto own =
        std::find_if(host.begin(), host.end(), [&](const HostSection& h) { return h.key == key; });
    if (own != host.end()) {
      r.ReadMap(own->key, own->read);
    } else {
      r.Skip(std::string(key));
    }
  }
}

AllotConfig Parse(const YAML::Node& root, std::span<const HostSection> host,
                  ConfigKeyRecorder* recorder = nullptr) {
  AllotConfig c;
  YamlMap r(root, "", recorder);
  ReadHostSections(r, host);
  r.ReadMap("models", [&](YamlMap& s) { ReadModels(s, c.models); });
  r.ReadMap("experiments", [&](YamlMap& s) { ReadExperiments(s, c.experiments); });
  r.ReadMap("lambda", [&](YamlMap& s) { ReadLambda(s, c.lambda); });
  r.ReadMap("controller", [&](YamlMap& s) { ReadController(s, c.controller); });
  r.ReadMap("telemetry", [&](YamlMap& s) { ReadTelemetry(s, c.telemetry); });
  r.ReadMap("value_model", [&](YamlMap& s) {
    s.Read("bias", c.value_model.bias);
    s.ReadDoubles("bucket_bounds", c.value_model.bucket_bounds);
    s.ReadNumberMap("weights", c.value_model.weights);
  });
  r.ReadList("modules", [&](YamlMap& s, size_t) {
    ModuleConfig m;
    s.Read("name", m.name);
    s.Read("cpu_target", m.cpu_target, Fraction());
    s.Read("cpu_hard_limit", m.cpu_hard_limit);
    s.Read("initial_lambda", m.initial_lambda);
    s.Read("cpu_query", m.cpu_query);
    s.Read("qps_query", m.qps_query);
    s.Read("price_query", m.price_query);
    c.modules.push_back(std::move(m));
  });
  r.ReadList("agents", [&](YamlMap& s, size_t) {
    AgentConfig a;
    ReadAgent(s, a);
    c.agents.push_back(std::move(a));
  });
  r.ReadMap("cache_reuse", [&](YamlMap& s) { ReadCacheReuse(s, c.cache_reuse); });
  r.RejectUnknownKeys();
  ExpandQueryTemplates(c);
  return c;
}

std::string Indexed(const std::string& list, size_t i) {
  return list + "[" + std::to_string(i) + "]";
}

template <typename T, typename NameOf>
void CheckUniqueNonEmpty(const std::vector<T>& items, const std::string& list, NameOf name_of) {
  std::set<std::string> names;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& name = name_of(items[i]);
    if (name.empty()) Fail(Indexed(list, i) + ".name", "must not be empty");
    if (!names.insert(name).second) Fail(Indexed(list, i) + ".name", "duplicates '" + name + "'");
  }
}

// Each decision kind has its own shape; the safe default must name existing options.
void ValidateDecision(const DecisionConfig& d, const std::string& path, int buckets) {
  if (d.range) ValidateQueueRangeGains(*d.range, path + ".range", buckets);
  if (d.options.empty()) Fail(path + ".options", "must not be empty");
  CheckUniqueNonEmpty(d.options, path + ".options",
                      [](const OptionConfig& o) -> const std::string& { return o.label; });
  const int n = static_cast<int>(d.options.size());
  for (int i = 0; i < n; ++i) {
    const OptionConfig& o = d.options[i];
    const std::string opath = Indexed(path + ".options", i);
    if (static_cast<int>(o.gain.size()) != buckets) {
      Fail(opath + ".gain",
           "must have one entry per value bucket (" + std::to_string(buckets) + ")");
    }
    for (size_t b = 0; b < o.gain.size(); ++b) {
      if (o.gain[b] < 0) Fail(Indexed(opath + ".gain", b), "must be >= 0");
    }
    for (const auto& [module, cost] : o.module_cost_ms) {
      if (cost < 0) Fail(opath + ".module_cost_ms." + module, "must be >= 0");
    }
  }
  ValidateDecisionShape(d, path);
  const std::string dpath = path + ".safe_default";
  if (d.safe_default.empty()) Fail(dpath, "must not be empty");
  if (d.kind != DecisionKind::kLink && d.safe_default.size() != 1)
    Fail(dpath, "must name one option");
  std::set<std::string> seen;
  for (const std::string& label : d.safe_default) {
    bool found = false;
    for (const auto& o : d.options) found |= o.label == label;
    if (!found) Fail(dpath, "names unknown option '" + label + "'");
    if (!seen.insert(label).second) Fail(dpath, "repeats '" + label + "'");
  }
  if (d.kind == DecisionKind::kLink) {
    const int k = static_cast<int>(d.safe_default.size());
    if (k < d.min_selected || (d.max_selected && k > d.max_selected)) {
      Fail(dpath, "violates min_selected/max_selected");
    }
  }
}

}  // namespace

const AgentConfig* AllotConfig::FindAgent(const std::string& name) const {
  for (const auto& a : agents) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

int AllotConfig::ModuleIndex(const std::string& name) const {
  for (size_t i = 0; i < modules.size(); ++i) {
    if (modules[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

void Validate(const AllotConfig& c) {
  std::set<std::string> arm_names = {"main"};
  for (size_t i = 0; i < c.experiments.arms.size(); ++i) {
    const ArmConfig& arm = c.experiments.arms[i];
    const std::string p = Indexed("experiments.arms", i);
    if (arm.name.empty()) Fail(p + ".name", "must not be empty");
    if (!arm_names.insert(arm.name).second)
      Fail(p + ".name", "'" + arm.name + "' is not unique (\"main\" is the serving arm)");
    if (arm.bundle.empty()) Fail(p + ".bundle", "must name a bundle directory or \"analytic\"");
  }
  if (!(c.experiments.main_arm_weight() > 0.0))
    Fail("experiments.arms", "weights must sum to less than 1 (the main arm keeps the rest)");

  if (c.lambda.max <= c.lambda.min) Fail("lambda.max", "must be > lambda.min");
  if (c.lambda.safe_value < c.lambda.min || c.lambda.safe_value > c.lambda.max) {
    Fail("lambda.safe_value", "must be within [lambda.min, lambda.max]");
  }

  for (size_t i = 0; i < c.telemetry.report_load.reporters.size(); ++i) {
    if (c.telemetry.report_load.reporters[i].empty())
      Fail(Indexed("telemetry.report_load.reporters", i), "is empty");
  }
  if (c.telemetry.source == TelemetrySourceKind::kPrometheus) {
    const std::string& url = c.telemetry.prometheus.url;
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      Fail("telemetry.prometheus.url", "must start with http:// or https://");
    }
    for (size_t i = 0; i < c.modules.size(); ++i) {
      if (c.modules[i].cpu_query.empty()) {
        Fail(Indexed("modules", i) + ".cpu_query",
             "is required when telemetry.source is prometheus");
      }
    }
  }
  for (size_t i = 0; i < c.modules.size(); ++i) {
    if (!c.modules[i].price_query.empty() && c.telemetry.source != TelemetrySourceKind::kPrometheus)
      Fail(Indexed("modules", i) + ".price_query", "needs telemetry.source prometheus");
  }

  const auto& bounds = c.value_model.bucket_bounds;
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (bounds[i] <= 0 || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Fail(Indexed("value_model.bucket_bounds", i), "must be positive and increasing");
    }
  }

  if (c.modules.empty()) Fail("modules", "must list at least one module");
  CheckUniqueNonEmpty(c.modules, "modules",
                      [](const ModuleConfig& m) -> const std::string& { return m.name; });
  for (size_t i = 0; i < c.modules.size(); ++i) {
    const ModuleConfig& m = c.modules[i];
    const std::string p = Indexed("modules", i);
    if (!(m.cpu_hard_limit > m.cpu_target && m.cpu_hard_limit <= 1)) {
      Fail(p + ".cpu_hard_limit", "must be in (cpu_target, 1]");
    }
    if (m.initial_lambda < c.lambda.min || m.initial_lambda > c.lambda.max) {
      Fail(p + ".initial_lambda", "must be within [lambda.min, lambda.max]");
    }
  }

  if (c.agents.empty()) Fail("agents", "must list at least one agent");
  CheckUniqueNonEmpty(c.agents, "agents",
                      [](const AgentConfig& a) -> const std::string& { return a.name; });
  for (size_t i = 0; i < c.agents.size(); ++i) {
    const AgentConfig& a = c.agents[i];
    const std::string p = Indexed("agents", i);
    if (c.ModuleIndex(a.module) < 0) Fail(p + ".module", "names unknown module '" + a.module + "'");
    for (size_t d = 0; d < a.decisions.size(); ++d) {
      const std::string dpath = Indexed(p + ".decisions", d);
      for (size_t o = 0; o < a.decisions[d].options.size(); ++o) {
        for (const auto& [module, cost] : a.decisions[d].options[o].module_cost_ms) {
          // A continuous queue's options come from its range: name the key the operator wrote.
          const std::string at = a.decisions[d].range
                                     ? dpath + ".range.module_cost_per_item_ms." + module
                                     : Indexed(dpath + ".options", o) + ".module_cost_ms." + module;
          if (c.ModuleIndex(module) < 0) Fail(at, "names unknown module '" + module + "'");
          if (module == a.module) {
            Fail(at, std::string("is the agent's own module (use ") +
                         (a.decisions[d].range ? "cost_per_item_ms)" : "cost_ms)"));
          }
        }
      }
    }
    if (a.features.empty()) Fail(p + ".features", "must not be empty");
    std::set<std::string> features;
    for (size_t f = 0; f < a.features.size(); ++f) {
      if (a.features[f].empty() || !features.insert(a.features[f]).second) {
        Fail(Indexed(p + ".features", f), "must be a unique non-empty name");
      }
    }
    std::set<std::string> bounded;
    for (size_t b = 0; b < a.feature_bounds.size(); ++b) {
      const FeatureBoundConfig& bound = a.feature_bounds[b];
      const std::string at = Indexed(p + ".feature_bounds", b);
      if (!features.count(bound.feature))
        Fail(at + ".feature", "names no feature of the agent ('" + bound.feature + "')");
      if (!bounded.insert(bound.feature).second) Fail(at + ".feature", "is bounded twice");
      if (!(bound.min <= bound.max)) Fail(at, "min must be <= max");
    }
    if (a.decisions.empty()) Fail(p + ".decisions", "must not be empty");
    CheckUniqueNonEmpty(a.decisions, p + ".decisions",
                        [](const DecisionConfig& d) -> const std::string& { return d.name; });
    double joint = 1;
    for (size_t d = 0; d < a.decisions.size(); ++d) {
      const DecisionConfig& decision = a.decisions[d];
      ValidateDecision(decision, Indexed(p + ".decisions", d), c.value_model.num_buckets());
      joint *= ChoiceCount(decision);
    }
    if (joint > 4096) Fail(p + ".decisions", "more than 4096 joint actions");
  }

  const CacheReuseConfig& cr = c.cache_reuse;
  static const std::vector<std::string> kStages = {"recall", "prerank", "rank"};
  size_t last = 0;
  for (size_t i = 0; i < cr.stages.size(); ++i) {
    const CacheStageConfig& s = cr.stages[i];
    const std::string p = Indexed("cache_reuse.stages", i);
    auto it = std::find(kStages.begin(), kStages.end(), s.stage);
    if (it == kStages.end()) Fail(p + ".stage", "must be recall, prerank or rank");
    const size_t order = static_cast<size_t>(it - kStages.begin()) + 1;
    if (order <= last) Fail(p + ".stage", "stages must be in chain order without repeats");
    last = order;
    if (c.ModuleIndex(s.module) < 0) Fail(p + ".module", "names unknown module '" + s.module + "'");
  }
  if (cr.enabled && cr.stages.empty()) Fail("cache_reuse.stages", "must not be empty when enabled");
}

AllotConfig LoadConfigFromString(const std::string& yaml, const std::string& source,
                                 std::span<const HostSection> host) {
  const YAML::Node root = ParseYamlDocument(yaml);
  if (root && !root.IsNull() && !root.IsMap()) throw ConfigError("<root>: must be a mapping");
  AllotConfig config = Parse(root, host);
  Validate(config);
  config.source = source;
  config.version = ContentHash(yaml);
  return config;
}

std::vector<ConfigKeyRecord> RecordConfigKeys(std::span<const HostSection> host) {
  ConfigKeyRecorder recorder;
  YAML::Node root = ParseYamlDocument(EmbeddedDefaultConfigYaml());
  // The default config has no feature bound; one makes the parser read a bound's keys too.
  root["agents"][0]["feature_bounds"].push_back(
      YAML::Load("{feature: f, min: 0, max: 1, action: clip}"));
  root["experiments"]["arms"].push_back(YAML::Load("{name: a, bundle: b, weight: 0.1}"));
  // Nor a continuous queue; one makes it read a range's gain curve points too.
  YAML::Node range = YAML::Load(
      "{name: continuous, kind: queue, safe_default: '10', range: {min: 10, max: 20, "
      "granularity: 10, gain_curve: [{length: 10}, {length: 20}]}}");
  const YAML::Node gain = root["agents"][0]["decisions"][0]["options"][0]["gain"];
  for (size_t i = 0; i < 2; ++i) range["range"]["gain_curve"][i]["gain"] = YAML::Clone(gain);
  root["agents"][0]["decisions"].push_back(range);
  Parse(root, host, &recorder);
  std::vector<ConfigKeyRecord> keys;
  for (auto& [path, record] : recorder) keys.push_back(std::move(record));
  std::sort(keys.begin(), keys.end(),
            [](const ConfigKeyRecord& a, const ConfigKeyRecord& b) { return a.order < b.order; });
  return keys;
}

AllotConfig LoadConfigFromFile(const std::string& path, std::span<const HostSection> host) {
  return LoadConfigFromString(ReadConfigFile(path), path, host);
}

AllotConfig LoadEmbeddedDefaultConfig(std::span<const HostSection> host) {
  return LoadConfigFromString(EmbeddedDefaultConfigYaml(), "<embedded>", host);
}

}  // namespace allot
