// Config loading: defaults, the embedded default, and errors that name the bad key.
#include "policy/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "policy/config_reference.h"
#include "policy/yaml_map.h"

namespace allot {
namespace {

// Loads the embedded default with one line replaced, expecting a ConfigError mentioning `key`.
std::string ErrorFor(const std::string& from, const std::string& to) {
  std::string yaml = EmbeddedDefaultConfigYaml();
  const size_t at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << "fixture text not found: " << from;
  yaml.replace(at, from.size(), to);
  try {
    LoadConfigFromString(yaml, "test");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigTest, EmbeddedDefaultIsValidAndHasThreeAgents) {
  const AllotConfig c = LoadEmbeddedDefaultConfig();
  ASSERT_EQ(c.agents.size(), 3u);
  EXPECT_EQ(c.agents[0].name, "recall");
  EXPECT_EQ(c.agents[0].decisions[0].kind, DecisionKind::kLink);
  EXPECT_GE(c.agents[0].decisions[0].options.size(), 4u);
  EXPECT_EQ(c.agents[0].decisions[1].kind, DecisionKind::kSwitch);
  EXPECT_EQ(c.agents[1].decisions[0].kind, DecisionKind::kQueue);
  EXPECT_EQ(c.agents[2].decisions.size(), 2u);
  EXPECT_EQ(c.modules.size(), 3u);
  EXPECT_EQ(c.source, "<embedded>");
  EXPECT_FALSE(c.version.empty());
}

TEST(ConfigTest, EmptyDocumentFailsOnMissingModulesNotOnDefaults) {
  try {
    LoadConfigFromString("", "empty");
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "modules: must list at least one module");
  }
}

TEST(ConfigTest, VersionIsStableForTheSameText) {
  const AllotConfig a = LoadConfigFromString(EmbeddedDefaultConfigYaml(), "a");
  const AllotConfig b = LoadConfigFromString(EmbeddedDefaultConfigYaml(), "b");
  EXPECT_EQ(a.version, b.version);
  const AllotConfig c = LoadConfigFromString(EmbeddedDefaultConfigYaml() + "\n# changed\n", "c");
  EXPECT_NE(a.version, c.version);
}

TEST(ConfigTest, UnknownKeyIsNamedWithItsPath) {
  EXPECT_EQ(ErrorFor("  period_s: 1.0", "  period_sec: 1.0"),
            "controller.period_sec: is not a known key");
}

TEST(ConfigTest, WrongTypeIsNamed) {
  EXPECT_EQ(ErrorFor("  horizon: 10", "  horizon: ten"),
            "controller.mpc.horizon: has the wrong type (got 'ten')");
}

// The server's sections belong to the server (server/server_config.h): policy's loader skips
// them unread, so the simulator and the trainer take the server's file as it is.
TEST(ConfigTest, HostSectionsAreSkippedUnlessTheHostReadsThem) {
  std::string yaml = EmbeddedDefaultConfigYaml() + "\n";
  yaml.replace(yaml.find("server:\n"), 8, "server:\n  not_a_policy_key: 1\n");
  EXPECT_NO_THROW(LoadConfigFromString(yaml, "test"));
  int read = 0;
  const HostSection server{"server", [&](YamlMap& s) {
                             ++read;
                             int value = 0;
                             s.Read("not_a_policy_key", value);
                             s.Skip("listen");
                             s.Skip("metrics_listen");
                           }};
  try {
    LoadConfigFromString(yaml, "test", {&server, 1});
    FAIL() << "expected the host's reader to reject the keys it does not read";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("server.", 0), 0u) << e.what();
  }
  EXPECT_EQ(read, 1);
}

TEST(ConfigTest, RenamedKeysSayWhereTheyMoved) {
  EXPECT_EQ(ErrorFor("  period_s: 1.0\n", "  period_s: 1.0\n  pid_kp: 3\n"),
            "controller.pid_kp: moved to controller.pid.kp");
  EXPECT_EQ(ErrorFor("  period_s: 1.0\n", "  period_s: 1.0\n  horizon: 5\n"),
            "controller.horizon: moved to controller.mpc.horizon");
  EXPECT_EQ(ErrorFor("modules:\n", "telemetry: {reporters: [a]}\nmodules:\n"),
            "telemetry.reporters: moved to telemetry.report_load.reporters");
  EXPECT_EQ(ErrorFor("  mode: lambda\n", "  mode: lambda\n  decay_budget: 0.1\n"),
            "cache_reuse.decay_budget: moved to cache_reuse.budget.decay_budget");
}

TEST(ConfigTest, KindsParseToTheirEnums) {
  std::string yaml = EmbeddedDefaultConfigYaml();
  yaml.replace(yaml.find("kind: mpc"), 9, "kind: pid");
  yaml.replace(yaml.find("mode: lambda"), 12, "mode: budget");
  const AllotConfig c = LoadConfigFromString(yaml, "test");
  EXPECT_EQ(c.controller.kind, ControllerKind::kPid);
  EXPECT_EQ(c.cache_reuse.mode, CacheReuseMode::kBudget);
  EXPECT_EQ(c.telemetry.source, TelemetrySourceKind::kReportLoad);
  EXPECT_EQ(ErrorFor("  mode: lambda", "  mode: greedy"),
            "cache_reuse.mode: must be lambda or budget (got 'greedy')");
  EXPECT_EQ(ErrorFor("modules:\n", "telemetry: {source: statsd}\nmodules:\n"),
            "telemetry.source: must be report_load or prometheus (got 'statsd')");
}

// One query scheme for every module: "{module}" becomes each module's name; a module's own
// query wins, and a config without the source still refuses price queries.
TEST(ConfigTest, PrometheusQueryTemplatesExpandPerModule) {
  std::string yaml = EmbeddedDefaultConfigYaml();
  yaml.replace(yaml.find("modules:\n"), 9,
               "telemetry:\n  source: prometheus\n  prometheus:\n"
               "    cpu_query: 'cpu{m=\"{module}\", n=\"{module}\"}'\n"
               "    price_query: 'price{m=\"{module}\"}'\nmodules:\n");
  const std::string own = "{name: rank,    cpu_target: 0.46,";
  yaml.replace(yaml.find(own), own.size(), own + " cpu_query: mine,");
  const AllotConfig c = LoadConfigFromString(yaml, "test");
  EXPECT_EQ(c.modules[0].cpu_query, "cpu{m=\"recall\", n=\"recall\"}");
  EXPECT_EQ(c.modules[1].price_query, "price{m=\"prerank\"}");
  EXPECT_EQ(c.modules[2].cpu_query, "mine");
  EXPECT_EQ(c.modules[2].qps_query, "");  // no template, no query
  EXPECT_EQ(ErrorFor("modules:\n", "telemetry: {prometheus: {price_query: p}}\nmodules:\n"),
            "modules[0].price_query: needs telemetry.source prometheus");
}

TEST(ConfigTest, BadValuesNameTheirKeys) {
  EXPECT_EQ(ErrorFor("  max: 20.0", "  max: -1"), "lambda.max: must be > lambda.min");
  EXPECT_EQ(ErrorFor("kind: mpc", "kind: lqr"), "controller.kind: must be mpc or pid (got 'lqr')");
  EXPECT_EQ(ErrorFor("  state_gain: 0.5", "  state_gain: 0"),
            "controller.mpc.state_gain: must be in (0, 1]");
  EXPECT_EQ(ErrorFor("  overshoot_budget: 0.0035", "  overshoot_budget: 0"),
            "controller.mpc.overshoot_budget: must be in (0, 1)");
  EXPECT_EQ(ErrorFor("  error_window: 60", "  error_window: 3"),
            "controller.mpc.error_window: must be in [8, 100000]");
  EXPECT_EQ(ErrorFor("  max_backoff: 0.1", "  max_backoff: 1"),
            "controller.mpc.max_backoff: must be in [0, 1)");
  EXPECT_EQ(ErrorFor("{name: recall,  cpu_target: 0.46", "{name: recall,  cpu_target: 1.46"),
            "modules[0].cpu_target: must be in (0, 1]");
  EXPECT_EQ(
      ErrorFor("  - name: prerank\n    module: prerank", "  - name: prerank\n    module: gpu"),
      "agents[1].module: names unknown module 'gpu'");
}

TEST(ConfigTest, CrossModuleCostsAndMultipliersAreChecked) {
  const std::string i2i = "{name: i2i,       gain: [0.30, 0.32, 0.34, 0.36], cost_ms: 1.2}";
  EXPECT_EQ(ErrorFor(i2i,
                     "{name: i2i, gain: [0.3, 0.3, 0.3, 0.3], cost_ms: 1.2, "
                     "module_cost_ms: {ranking: 1.0}}"),
            "agents[0].decisions[0].options[0].module_cost_ms.ranking: names unknown module "
            "'ranking'");
  EXPECT_EQ(ErrorFor(i2i,
                     "{name: i2i, gain: [0.3, 0.3, 0.3, 0.3], cost_ms: 1.2, "
                     "module_cost_ms: {recall: 1.0}}"),
            "agents[0].decisions[0].options[0].module_cost_ms.recall: is the agent's own module "
            "(use cost_ms)");
  EXPECT_EQ(ErrorFor(i2i,
                     "{name: i2i, gain: [0.3, 0.3, 0.3, 0.3], cost_ms: 1.2, "
                     "module_cost_ms: {prerank: -1}}"),
            "agents[0].decisions[0].options[0].module_cost_ms.prerank: must be >= 0");
  EXPECT_EQ(ErrorFor(i2i,
                     "{name: i2i, gain: [0.3, 0.3, 0.3, 0.3], cost_ms: 1.2, "
                     "cost_multiplier: 0}"),
            "agents[0].decisions[0].options[0].cost_multiplier: must be > 0");
}

TEST(ConfigTest, FeatureBoundsNameAFeatureOnceWithAnOrderedRange) {
  const std::string module = "  - name: recall\n    module: recall\n";
  auto bounds = [&](const std::string& list) {
    return module + "    feature_bounds: " + list + "\n";
  };
  EXPECT_EQ(ErrorFor(module, bounds("[{feature: ltv, max: 10}]")),
            "agents[0].feature_bounds[0].feature: names no feature of the agent ('ltv')");
  EXPECT_EQ(ErrorFor(module, bounds("[{feature: ctr_7d, min: 2, max: 1}]")),
            "agents[0].feature_bounds[0]: min must be <= max");
  EXPECT_EQ(ErrorFor(module, bounds("[{feature: ctr_7d, action: drop}]")),
            "agents[0].feature_bounds[0].action: must be clip or reject (got 'drop')");
  EXPECT_EQ(ErrorFor(module, bounds("[{feature: ctr_7d}, {feature: ctr_7d}]")),
            "agents[0].feature_bounds[1].feature: is bounded twice");
}

TEST(ConfigTest, GainTablesMustCoverEveryBucket) {
  EXPECT_EQ(ErrorFor("{name: hot,       gain: [0.12, 0.10, 0.08, 0.06]",
                     "{name: hot,       gain: [0.12]"),
            "agents[0].decisions[0].options[2].gain: must have one entry per value bucket (4)");
}

TEST(ConfigTest, SafeDefaultMustNameAnOption) {
  EXPECT_EQ(ErrorFor("safe_default: [i2i, hot]", "safe_default: [i2i, nope]"),
            "agents[0].decisions[0].safe_default: names unknown option 'nope'");
  EXPECT_EQ(ErrorFor("safe_default: \"200\"", "safe_default: \"300\""),
            "agents[1].decisions[0].safe_default: names unknown option '300'");
}

TEST(ConfigTest, SwitchNeedsOffThenOn) {
  EXPECT_EQ(ErrorFor("- {name: \"off\", gain: [0.0, 0.0, 0.0, 0.0], cost_ms: 0.0}\n          - "
                     "{name: \"on\",  gain: "
                     "[0.01, 0.03",
                     "- {name: \"on\", gain: [0.0, 0.0, 0.0, 0.0], cost_ms: 0.0}\n          - "
                     "{name: \"off\",  gain: "
                     "[0.01, 0.03"),
            "agents[0].decisions[1].options: a switch has exactly two options named off, on (in "
            "that order)");
}

TEST(ConfigTest, DuplicateNamesAreRefused) {
  EXPECT_EQ(ErrorFor("{name: graph,", "{name: hot,"),
            "agents[0].decisions[0].options[3].name: duplicates 'hot'");
}

TEST(ConfigTest, YamlSyntaxErrorReportsTheLine) {
  try {
    LoadConfigFromString("server:\n  listen: [unclosed\n", "bad");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("parse error at line"), std::string::npos) << e.what();
  }
}

TEST(ConfigTest, MissingFileIsAClearError) {
  try {
    LoadConfigFromFile("/nonexistent/allot.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "<file>: cannot read '/nonexistent/allot.yaml'");
  }
}

TEST(ConfigTest, EmbeddedDefaultMatchesTheCheckedInFile) {
  const AllotConfig file = LoadConfigFromFile(std::string(ALLOT_SOURCE_DIR) + "/config/allot.yaml");
  EXPECT_EQ(file.version, LoadEmbeddedDefaultConfig().version);
}

}  // namespace
}  // namespace allot

namespace allot {
namespace {

TEST(ConfigTest, ArmsAreValidatedNamingTheField) {
  const auto with_arms = [](const std::string& arms) {
    std::string yaml = EmbeddedDefaultConfigYaml();
    yaml.replace(yaml.find("  arms: []"), 10, "  arms: " + arms);
    return yaml;
  };
  const auto error = [&](const std::string& arms) {
    try {
      LoadConfigFromString(with_arms(arms), "arms");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error("[{name: a, bundle: analytic, weight: 0.2}]"), "");
  EXPECT_EQ(
      error("[{name: main, bundle: analytic, weight: 0.2}]").rfind("experiments.arms[0].name", 0),
      0u);
  EXPECT_EQ(error("[{name: a, bundle: x, weight: 0.2}, {name: a, bundle: y, weight: 0.1}]")
                .rfind("experiments.arms[1].name", 0),
            0u);
  EXPECT_EQ(error("[{name: a, weight: 0.2}]").rfind("experiments.arms[0].bundle", 0), 0u);
  EXPECT_EQ(error("[{name: a, bundle: x, weight: 1.0}]").rfind("experiments.arms[0].weight", 0),
            0u);
  EXPECT_EQ(error("[{name: a, bundle: x, weight: 0.6}, {name: b, bundle: y, weight: 0.4}]")
                .rfind("experiments.arms:", 0),
            0u);
  EXPECT_EQ(error("[{name: a, bundle: x, weight: 0.2, colour: red}]")
                .rfind("experiments.arms[0].colour", 0),
            0u);
}

}  // namespace
}  // namespace allot
