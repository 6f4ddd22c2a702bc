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
#include "policy/yaml_map.h"

namespace allot {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  YamlMap::Fail(path, what);
}

DecisionKind ParseKind(const std::string& text, const std::string& path) {
  if (const auto kind = ParseDecisionKind(text)) return *kind;
  Fail(path, "must be one of link, switch, queue (got '" + text + "')");
}

void ReadOption(YamlMap& r, DecisionKind kind, OptionConfig& option) {
  if (kind == DecisionKind::kQueue) {
    r.Read("length", option.queue_length);
    option.label = std::to_string(option.queue_length);
  } else {
    r.Read("name", option.label);
  }
  r.ReadDoubles("gain", option.gain);
  r.Read("cost_ms", option.cost_ms);
  r.Read("cost_multiplier", option.cost_multiplier);
  r.ReadNumberMap("module_cost_ms", option.module_cost_ms);
}

void ReadDecision(YamlMap& r, DecisionConfig& decision) {
  r.Read("name", decision.name);
  std::string kind = "queue";
  r.Read("kind", kind);
  decision.kind = ParseKind(kind, r.Child("kind"));
  r.Read("min_selected", decision.min_selected);
  r.Read("max_selected", decision.max_selected);
  r.ReadStrings("safe_default", decision.safe_default);
  r.ReadList("options", [&](YamlMap& o, size_t) {
    OptionConfig option;
    ReadOption(o, decision.kind, option);
    decision.options.push_back(std::move(option));
  });
}

AllotConfig Parse(const YAML::Node& root, ConfigKeyRecorder* recorder = nullptr) {
  AllotConfig c;
  YamlMap r(root, "", recorder);
  r.ReadMap("server", [&](YamlMap& s) {
    s.Read("listen", c.server.listen);
    s.Read("metrics_listen", c.server.metrics_listen);
    s.Read("min_deadline_ms", c.server.min_deadline_ms);
    s.Read("max_features", c.server.max_features);
    s.Read("max_behavior_ids", c.server.max_behavior_ids);
    s.Read("max_id_length", c.server.max_id_length);
    s.Read("max_cache_entries", c.server.max_cache_entries);
    s.Read("drain_delay_s", c.server.drain_delay_s);
    s.Read("shutdown_timeout_s", c.server.shutdown_timeout_s);
    s.Read("reload_poll_s", c.server.reload_poll_s);
    s.Read("explain_per_caller_per_s", c.server.explain_per_caller_per_s);
  });
  r.ReadMap("logging", [&](YamlMap& s) {
    s.Read("level", c.logging.level);
    s.Read("format", c.logging.format);
  });
  r.ReadMap("models", [&](YamlMap& s) {
    s.Read("dir", c.models.dir);
    s.Read("poll_s", c.models.poll_s);
    s.Read("serve_analytic", c.models.serve_analytic);
    s.Read("min_offpolicy_ratio", c.models.min_offpolicy_ratio);
  });
  r.ReadMap("experiments", [&](YamlMap& s) {
    s.Read("shadow_bundle", c.experiments.shadow_bundle);
    s.Read("shadow_sample_rate", c.experiments.shadow_sample_rate);
    s.ReadList("arms", [&](YamlMap& a, size_t) {
      ArmConfig arm;
      a.Read("name", arm.name);
      a.Read("bundle", arm.bundle);
      a.Read("weight", arm.weight);
      c.experiments.arms.push_back(std::move(arm));
    });
  });
  r.ReadMap("lambda", [&](YamlMap& s) {
    s.Read("min", c.lambda.min);
    s.Read("max", c.lambda.max);
    s.Read("max_step", c.lambda.max_step);
    s.Read("max_step_ratio", c.lambda.max_step_ratio);
    s.Read("safe_value", c.lambda.safe_value);
    s.Read("stale_after_s", c.lambda.stale_after_s);
    s.Read("decay_half_life_s", c.lambda.decay_half_life_s);
  });
  r.ReadMap("controller", [&](YamlMap& s) {
    s.Read("kind", c.controller.kind);
    s.Read("period_s", c.controller.period_s);
    s.Read("horizon", c.controller.horizon);
    s.Read("alpha", c.controller.alpha);
    s.Read("beta", c.controller.beta);
    s.Read("critical_load", c.controller.critical_load);
    s.Read("samples", c.controller.samples);
    s.Read("pid_kp", c.controller.pid_kp);
    s.Read("pid_ki", c.controller.pid_ki);
    s.Read("pid_kd", c.controller.pid_kd);
    s.Read("reservoir_size", c.controller.reservoir_size);
    s.Read("sample_every", c.controller.sample_every);
    s.Read("load_lag", c.controller.load_lag);
    s.Read("calibration_alpha", c.controller.calibration_alpha);
    s.Read("fallback_error", c.controller.fallback_error);
    s.Read("overshoot_budget", c.controller.overshoot_budget);
    s.Read("error_window", c.controller.error_window);
    s.Read("state_gain", c.controller.state_gain);
    s.Read("max_backoff", c.controller.max_backoff);
    s.Read("lambda_grid", c.controller.lambda_grid);
    s.Read("seed", c.controller.seed);
    s.Read("day_length_s", c.controller.day_length_s);
    s.Read("forecast_slots", c.controller.forecast_slots);
    s.Read("forecast_level_alpha", c.controller.forecast_level_alpha);
    s.Read("forecast_trend_beta", c.controller.forecast_trend_beta);
    s.Read("forecast_seasonal_gamma", c.controller.forecast_seasonal_gamma);
  });
  r.ReadMap("telemetry", [&](YamlMap& s) {
    s.Read("source", c.telemetry.source);
    s.Read("prometheus_url", c.telemetry.prometheus_url);
    s.Read("query_timeout_s", c.telemetry.query_timeout_s);
    s.Read("reporter_window_s", c.telemetry.reporter_window_s);
    s.Read("max_future_skew_s", c.telemetry.max_future_skew_s);
    s.Read("max_reporters", c.telemetry.max_reporters);
    s.Read("reports_per_s", c.telemetry.reports_per_s);
    s.ReadStrings("reporters", c.telemetry.reporters);
  });
  r.ReadMap("value_model", [&](YamlMap& s) {
    s.Read("bias", c.value_model.bias);
    s.ReadDoubles("bucket_bounds", c.value_model.bucket_bounds);
    s.ReadNumberMap("weights", c.value_model.weights);
  });
  r.ReadList("modules", [&](YamlMap& s, size_t) {
    ModuleConfig m;
    s.Read("name", m.name);
    s.Read("cpu_target", m.cpu_target);
    s.Read("cpu_hard_limit", m.cpu_hard_limit);
    s.Read("initial_lambda", m.initial_lambda);
    s.Read("cpu_query", m.cpu_query);
    s.Read("qps_query", m.qps_query);
    c.modules.push_back(std::move(m));
  });
  r.ReadList("agents", [&](YamlMap& s, size_t) {
    AgentConfig a;
    s.Read("name", a.name);
    s.Read("module", a.module);
    s.Read("max_cost_ms", a.max_cost_ms);
    s.ReadStrings("features", a.features);
    s.ReadList("feature_bounds", [&](YamlMap& b, size_t) {
      FeatureBoundConfig bound;
      std::string action = "clip";
      b.Read("feature", bound.feature);
      b.Read("min", bound.min);
      b.Read("max", bound.max);
      b.Read("action", action);
      if (action != "clip" && action != "reject") Fail(b.Child("action"), "must be clip or reject");
      bound.action = action == "clip" ? FeatureBoundConfig::Action::kClip
                                      : FeatureBoundConfig::Action::kReject;
      a.feature_bounds.push_back(std::move(bound));
    });
    s.ReadList("decisions", [&](YamlMap& d, size_t) {
      DecisionConfig decision;
      ReadDecision(d, decision);
      a.decisions.push_back(std::move(decision));
    });
    c.agents.push_back(std::move(a));
  });
  r.ReadMap("cache_reuse", [&](YamlMap& s) {
    s.Read("enabled", c.cache_reuse.enabled);
    s.Read("max_age_s", c.cache_reuse.max_age_s);
    s.Read("mode", c.cache_reuse.mode);
    s.Read("decay_budget", c.cache_reuse.decay_budget);
    s.Read("window_s", c.cache_reuse.window_s);
    s.ReadList("stages", [&](YamlMap& st, size_t) {
      CacheStageConfig stage;
      st.Read("stage", stage.stage);
      st.Read("module", stage.module);
      st.Read("half_life_s", stage.half_life_s);
      st.Read("stage_cost_ms", stage.stage_cost_ms);
      c.cache_reuse.stages.push_back(std::move(stage));
    });
  });
  r.RejectUnknownKeys();
  return c;
}

std::string Indexed(const std::string& list, size_t i) {
  return list + "[" + std::to_string(i) + "]";
}

void CheckPositive(double v, const std::string& path) {
  if (!(v > 0)) Fail(path, "must be > 0");
}

void CheckFraction(double v, const std::string& path) {
  if (!(v > 0 && v <= 1)) Fail(path, "must be in (0, 1]");
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
    if (o.cost_ms < 0) Fail(opath + ".cost_ms", "must be >= 0");
    if (!(o.cost_multiplier > 0)) Fail(opath + ".cost_multiplier", "must be > 0");
    for (const auto& [module, cost] : o.module_cost_ms) {
      if (cost < 0) Fail(opath + ".module_cost_ms." + module, "must be >= 0");
    }
    if (d.kind == DecisionKind::kQueue && o.queue_length <= 0)
      Fail(opath + ".length", "must be > 0");
  }
  switch (d.kind) {
    case DecisionKind::kLink:
      if (n > 12) Fail(path + ".options", "at most 12 channels (subsets are enumerated)");
      if (d.min_selected < 0 || d.min_selected > n) Fail(path + ".min_selected", "out of range");
      if (d.max_selected < 0 || d.max_selected > n) Fail(path + ".max_selected", "out of range");
      if (d.max_selected != 0 && d.max_selected < d.min_selected) {
        Fail(path + ".max_selected", "must be >= min_selected");
      }
      break;
    case DecisionKind::kSwitch:
      if (n != 2 || d.options[0].label != "off" || d.options[1].label != "on") {
        Fail(path + ".options", "a switch has exactly two options named off, on (in that order)");
      }
      break;
    case DecisionKind::kQueue:
      break;
  }
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
  if (c.server.listen.empty()) Fail("server.listen", "must not be empty");
  if (c.server.min_deadline_ms < 0) Fail("server.min_deadline_ms", "must be >= 0");
  if (c.server.max_features <= 0) Fail("server.max_features", "must be > 0");
  if (c.server.max_behavior_ids < 0) Fail("server.max_behavior_ids", "must be >= 0");
  if (c.server.max_id_length <= 0) Fail("server.max_id_length", "must be > 0");
  if (c.server.max_cache_entries < 0) Fail("server.max_cache_entries", "must be >= 0");
  if (c.server.drain_delay_s < 0) Fail("server.drain_delay_s", "must be >= 0");
  CheckPositive(c.server.shutdown_timeout_s, "server.shutdown_timeout_s");
  if (c.server.reload_poll_s < 0) Fail("server.reload_poll_s", "must be >= 0");
  if (!(c.server.explain_per_caller_per_s >= 0 && c.server.explain_per_caller_per_s <= 1e6))
    Fail("server.explain_per_caller_per_s", "must be in [0, 1e6]");

  static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  if (!kLevels.count(c.logging.level)) Fail("logging.level", "must be one of trace..off");
  if (c.logging.format != "text" && c.logging.format != "json") {
    Fail("logging.format", "must be text or json");
  }
  if (c.models.poll_s < 0) Fail("models.poll_s", "must be >= 0");
  if (!(c.models.min_offpolicy_ratio >= 0 && c.models.min_offpolicy_ratio <= 10))
    Fail("models.min_offpolicy_ratio", "must be in [0, 10]");
  if (!(c.experiments.shadow_sample_rate >= 0 && c.experiments.shadow_sample_rate <= 1))
    Fail("experiments.shadow_sample_rate", "must be in [0, 1]");
  std::set<std::string> arm_names = {"main"};
  for (size_t i = 0; i < c.experiments.arms.size(); ++i) {
    const ArmConfig& arm = c.experiments.arms[i];
    const std::string p = Indexed("experiments.arms", i);
    if (arm.name.empty()) Fail(p + ".name", "must not be empty");
    if (!arm_names.insert(arm.name).second)
      Fail(p + ".name", "'" + arm.name + "' is not unique (\"main\" is the serving arm)");
    if (arm.bundle.empty()) Fail(p + ".bundle", "must name a bundle directory or \"analytic\"");
    if (!(arm.weight > 0 && arm.weight < 1)) Fail(p + ".weight", "must be in (0, 1)");
  }
  if (!(c.experiments.main_arm_weight() > 0.0))
    Fail("experiments.arms", "weights must sum to less than 1 (the main arm keeps the rest)");

  if (c.lambda.min < 0) Fail("lambda.min", "must be >= 0");
  if (c.lambda.max <= c.lambda.min) Fail("lambda.max", "must be > lambda.min");
  CheckPositive(c.lambda.max_step, "lambda.max_step");
  if (c.lambda.max_step_ratio < 0) Fail("lambda.max_step_ratio", "must be >= 0");
  if (c.lambda.safe_value < c.lambda.min || c.lambda.safe_value > c.lambda.max) {
    Fail("lambda.safe_value", "must be within [lambda.min, lambda.max]");
  }
  CheckPositive(c.lambda.stale_after_s, "lambda.stale_after_s");
  CheckPositive(c.lambda.decay_half_life_s, "lambda.decay_half_life_s");

  if (c.controller.kind != "mpc" && c.controller.kind != "pid") {
    Fail("controller.kind", "must be mpc or pid");
  }
  CheckPositive(c.controller.period_s, "controller.period_s");
  if (c.controller.horizon < 1 || c.controller.horizon > 100)
    Fail("controller.horizon", "must be in [1, 100]");
  CheckFraction(c.controller.alpha, "controller.alpha");
  if (c.controller.beta < 0) Fail("controller.beta", "must be >= 0");
  CheckFraction(c.controller.critical_load, "controller.critical_load");
  if (c.controller.samples < 1) Fail("controller.samples", "must be >= 1");
  if (c.controller.reservoir_size < 1) Fail("controller.reservoir_size", "must be >= 1");
  if (c.controller.sample_every < 1) Fail("controller.sample_every", "must be >= 1");
  if (!(c.controller.load_lag >= 0 && c.controller.load_lag < 1))
    Fail("controller.load_lag", "must be in [0, 1)");
  CheckFraction(c.controller.calibration_alpha, "controller.calibration_alpha");
  CheckPositive(c.controller.fallback_error, "controller.fallback_error");
  if (!(c.controller.overshoot_budget > 0 && c.controller.overshoot_budget < 1))
    Fail("controller.overshoot_budget", "must be in (0, 1)");
  if (c.controller.error_window < 8 || c.controller.error_window > 100000)
    Fail("controller.error_window", "must be in [8, 100000]");
  if (!(c.controller.state_gain > 0 && c.controller.state_gain <= 1))
    Fail("controller.state_gain", "must be in (0, 1]");
  if (!(c.controller.max_backoff >= 0 && c.controller.max_backoff < 1))
    Fail("controller.max_backoff", "must be in [0, 1)");
  if (c.controller.lambda_grid < 2 || c.controller.lambda_grid > 1000) {
    Fail("controller.lambda_grid", "must be in [2, 1000]");
  }
  CheckPositive(c.controller.day_length_s, "controller.day_length_s");
  if (c.controller.forecast_slots < 1 || c.controller.forecast_slots > 10000) {
    Fail("controller.forecast_slots", "must be in [1, 10000]");
  }
  CheckFraction(c.controller.forecast_level_alpha, "controller.forecast_level_alpha");
  if (!(c.controller.forecast_trend_beta >= 0 && c.controller.forecast_trend_beta <= 1)) {
    Fail("controller.forecast_trend_beta", "must be in [0, 1]");
  }
  CheckFraction(c.controller.forecast_seasonal_gamma, "controller.forecast_seasonal_gamma");

  if (c.telemetry.source != "report_load" && c.telemetry.source != "prometheus") {
    Fail("telemetry.source", "must be report_load or prometheus");
  }
  CheckPositive(c.telemetry.query_timeout_s, "telemetry.query_timeout_s");
  CheckPositive(c.telemetry.reporter_window_s, "telemetry.reporter_window_s");
  if (!(c.telemetry.max_future_skew_s >= 0 && c.telemetry.max_future_skew_s <= 3600))
    Fail("telemetry.max_future_skew_s", "must be in [0, 3600]");
  if (c.telemetry.max_reporters < 1 || c.telemetry.max_reporters > 100000)
    Fail("telemetry.max_reporters", "must be in [1, 100000]");
  CheckPositive(c.telemetry.reports_per_s, "telemetry.reports_per_s");
  for (size_t i = 0; i < c.telemetry.reporters.size(); ++i) {
    if (c.telemetry.reporters[i].empty()) Fail(Indexed("telemetry.reporters", i), "is empty");
  }
  if (c.telemetry.source == "prometheus") {
    if (c.telemetry.prometheus_url.rfind("http://", 0) != 0 &&
        c.telemetry.prometheus_url.rfind("https://", 0) != 0) {
      Fail("telemetry.prometheus_url", "must start with http:// or https://");
    }
    for (size_t i = 0; i < c.modules.size(); ++i) {
      if (c.modules[i].cpu_query.empty()) {
        Fail(Indexed("modules", i) + ".cpu_query",
             "is required when telemetry.source is prometheus");
      }
    }
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
    CheckFraction(m.cpu_target, p + ".cpu_target");
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
      for (size_t o = 0; o < a.decisions[d].options.size(); ++o) {
        for (const auto& [module, cost] : a.decisions[d].options[o].module_cost_ms) {
          const std::string at =
              Indexed(Indexed(p + ".decisions", d) + ".options", o) + ".module_cost_ms." + module;
          if (c.ModuleIndex(module) < 0) Fail(at, "names unknown module '" + module + "'");
          if (module == a.module) Fail(at, "is the agent's own module (use cost_ms)");
        }
      }
    }
    if (a.features.empty()) Fail(p + ".features", "must not be empty");
    if (static_cast<int>(a.features.size()) > c.server.max_features) {
      Fail(p + ".features", "exceeds server.max_features");
    }
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
    if (a.max_cost_ms < 0) Fail(p + ".max_cost_ms", "must be >= 0");
    if (a.decisions.empty()) Fail(p + ".decisions", "must not be empty");
    CheckUniqueNonEmpty(a.decisions, p + ".decisions",
                        [](const DecisionConfig& d) -> const std::string& { return d.name; });
    double joint = 1;
    for (size_t d = 0; d < a.decisions.size(); ++d) {
      const DecisionConfig& decision = a.decisions[d];
      ValidateDecision(decision, Indexed(p + ".decisions", d), c.value_model.num_buckets());
      joint *= decision.kind == DecisionKind::kLink ? std::pow(2.0, decision.options.size())
                                                    : static_cast<double>(decision.options.size());
    }
    if (joint > 4096) Fail(p + ".decisions", "more than 4096 joint actions");
  }

  const CacheReuseConfig& cr = c.cache_reuse;
  if (cr.mode != "lambda" && cr.mode != "budget")
    Fail("cache_reuse.mode", "must be lambda or budget");
  if (!(cr.decay_budget >= 0 && cr.decay_budget <= 1))
    Fail("cache_reuse.decay_budget", "must be in [0, 1]");
  CheckPositive(cr.window_s, "cache_reuse.window_s");
  CheckPositive(cr.max_age_s, "cache_reuse.max_age_s");
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
    CheckPositive(s.half_life_s, p + ".half_life_s");
    if (s.stage_cost_ms < 0) Fail(p + ".stage_cost_ms", "must be >= 0");
  }
  if (cr.enabled && cr.stages.empty()) Fail("cache_reuse.stages", "must not be empty when enabled");
}

AllotConfig LoadConfigFromString(const std::string& yaml, const std::string& source) {
  const YAML::Node root = ParseYamlDocument(yaml);
  if (root && !root.IsNull() && !root.IsMap()) throw ConfigError("<root>: must be a mapping");
  AllotConfig config = Parse(root);
  Validate(config);
  config.source = source;
  config.version = ContentHash(yaml);
  return config;
}

std::vector<ConfigKeyRecord> RecordConfigKeys() {
  ConfigKeyRecorder recorder;
  YAML::Node root = ParseYamlDocument(EmbeddedDefaultConfigYaml());
  // The default config has no feature bound; one makes the parser read a bound's keys too.
  root["agents"][0]["feature_bounds"].push_back(
      YAML::Load("{feature: f, min: 0, max: 1, action: clip}"));
  root["experiments"]["arms"].push_back(YAML::Load("{name: a, bundle: b, weight: 0.1}"));
  Parse(root, &recorder);
  std::vector<ConfigKeyRecord> keys;
  for (auto& [path, record] : recorder) keys.push_back(std::move(record));
  std::sort(keys.begin(), keys.end(),
            [](const ConfigKeyRecord& a, const ConfigKeyRecord& b) { return a.order < b.order; });
  return keys;
}

AllotConfig LoadConfigFromFile(const std::string& path) {
  return LoadConfigFromString(ReadConfigFile(path), path);
}

AllotConfig LoadEmbeddedDefaultConfig() {
  return LoadConfigFromString(EmbeddedDefaultConfigYaml(), "<embedded>");
}

}  // namespace allot
