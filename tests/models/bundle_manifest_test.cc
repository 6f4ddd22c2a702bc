// The manifest's writer and reader are one typed struct: everything written reads back, and bad
// values are refused naming their key.
#include "models/bundle_manifest.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "models/bundle.h"
#include "policy/action_space.h"

namespace allot::models {
namespace {

class BundleManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/allot-manifest-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path() const { return dir_ + "/manifest.yaml"; }

  static BundleManifest Sample(const AllotConfig& config) {
    BundleManifest m;
    m.version = "20990101-000000-awrq";
    m.created = "2099-01-01T00:00:00Z";
    m.config_version = config.version;
    m.input_hash = "0123abcd";
    m.input_files = 8;
    m.transitions = 500000;
    m.skipped_records = 3;
    m.schema = YAML::Load(SchemaYaml(config));
    m.architecture.algorithm = "awrq";
    m.architecture.heads = 20;
    m.architecture.hidden = 32;
    m.architecture.head_hidden = {16, 8};
    m.architecture.deep = {64, 32};
    m.architecture.factorised = true;
    m.hyperparameters = {3e-3, 1.0, 0.0, 1.0, "relative",  512, 6, 4,  100,
                         0.0,  0.1, 7,   2.5, "distilled", 2,   8, 1.0};
    m.reuse_model = true;
    for (size_t i = 0; i < config.agents.size(); ++i) {
      m.cost_source.push_back(i == 0 ? "map" : "model");
      m.calibration.push_back({config.agents[i].name, 0.1 * i, 1.0 - 0.1 * i});
      m.fitted_range.emplace_back();
      for (size_t f = 0; f < config.agents[i].features.size(); ++f)
        m.fitted_range.back().push_back({-1.0f * f, 2.0f * f + 1});
    }
    m.logged_counts.resize(config.agents.size());
    for (size_t j = 0; j < ActionSpace(config.agents[0]).size(); ++j)
      m.logged_counts[0].push_back(static_cast<int64_t>(10 * j));
    m.warnings = {"agent rank: collapsed"};
    m.metrics = {{"q_rank_rank_corr", 0.9}, {"value_recall_rank_corr", 0.8}};
    return m;
  }

  std::string dir_;
};

TEST_F(BundleManifestTest, WhatIsWrittenReadsBack) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const BundleManifest m = Sample(config);
  WriteManifest(m, config, Path());
  const BundleManifest r = ReadManifest(Path(), config);
  EXPECT_EQ(r.version, m.version);
  EXPECT_EQ(r.created, m.created);
  EXPECT_EQ(r.model_format, kModelFormat);
  EXPECT_EQ(r.config_version, m.config_version);
  EXPECT_EQ(r.input_hash, m.input_hash);
  EXPECT_EQ(r.input_files, m.input_files);
  EXPECT_EQ(r.transitions, m.transitions);
  EXPECT_EQ(r.skipped_records, m.skipped_records);
  EXPECT_EQ(YAML::Dump(r.schema), YAML::Dump(m.schema));
  EXPECT_EQ(r.architecture.algorithm, "awrq");
  EXPECT_EQ(r.architecture.heads, 20);
  EXPECT_EQ(r.architecture.hidden, 32);
  EXPECT_EQ(r.architecture.head_hidden, (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(r.architecture.deep, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(r.architecture.mixer_embed, m.architecture.mixer_embed);
  EXPECT_EQ(r.architecture.cross_layers, m.architecture.cross_layers);
  EXPECT_TRUE(r.architecture.factorised);
  EXPECT_EQ(r.hyperparameters.q_weighting, "relative");
  EXPECT_EQ(r.hyperparameters.network, "distilled");
  EXPECT_EQ(r.hyperparameters.distil_epochs, 2);
  EXPECT_EQ(r.hyperparameters.distil_actions, 8);
  EXPECT_DOUBLE_EQ(r.hyperparameters.distil_pessimism, 1.0);
  EXPECT_EQ(r.hyperparameters.seed, 7u);
  EXPECT_DOUBLE_EQ(r.hyperparameters.lr, 3e-3);
  EXPECT_DOUBLE_EQ(r.hyperparameters.validation_fraction, 0.1);
  EXPECT_DOUBLE_EQ(r.hyperparameters.revenue_scale, 2.5);
  EXPECT_EQ(r.hyperparameters.batch, 512);
  EXPECT_EQ(r.hyperparameters.target_update, 100);
  EXPECT_TRUE(r.reuse_model);
  EXPECT_EQ(r.cost_source, m.cost_source);
  ASSERT_EQ(r.calibration.size(), config.agents.size());
  for (size_t i = 0; i < config.agents.size(); ++i) {
    EXPECT_EQ(r.calibration[i].agent, config.agents[i].name);
    EXPECT_DOUBLE_EQ(r.calibration[i].a, m.calibration[i].a);
    EXPECT_DOUBLE_EQ(r.calibration[i].b, m.calibration[i].b);
    ASSERT_EQ(r.fitted_range[i].size(), m.fitted_range[i].size());
    for (size_t f = 0; f < m.fitted_range[i].size(); ++f) {
      EXPECT_EQ(r.fitted_range[i][f].min, m.fitted_range[i][f].min);
      EXPECT_EQ(r.fitted_range[i][f].max, m.fitted_range[i][f].max);
    }
  }
  EXPECT_EQ(r.logged_counts, m.logged_counts);
  EXPECT_EQ(r.warnings, m.warnings);
  EXPECT_EQ(r.metrics, m.metrics);
}

TEST_F(BundleManifestTest, OptionalKeysOfOlderBundlesTakeTheirDefaults) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  BundleManifest m = Sample(config);
  m.cost_source.clear();
  m.fitted_range.clear();
  m.reuse_model = false;
  m.logged_counts.clear();
  WriteManifest(m, config, Path());
  {  // keys written by later versions
    std::ifstream in(Path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const std::string key :
         {"  factorised: true\n", "  network: distilled\n", "  distil_epochs: 2\n",
          "  distil_actions: 8\n", "  distil_pessimism: 1\n"}) {
      const size_t at = text.find(key);
      ASSERT_NE(at, std::string::npos) << key;
      text.erase(at, key.size());
    }
    std::ofstream(Path(), std::ios::trunc) << text;
  }
  const BundleManifest r = ReadManifest(Path(), config);
  EXPECT_FALSE(r.architecture.factorised);
  EXPECT_EQ(r.hyperparameters.network, "algorithm");
  EXPECT_EQ(r.hyperparameters.distil_epochs, 0);
  EXPECT_EQ(r.hyperparameters.distil_actions, 0);
  EXPECT_EQ(r.hyperparameters.distil_pessimism, 0.0);  // trained on the heads as they were
  EXPECT_TRUE(r.cost_source.empty());
  for (const auto& agent : r.fitted_range) EXPECT_TRUE(agent.empty());  // nothing clipped
  EXPECT_FALSE(r.reuse_model);
  for (const auto& agent : r.logged_counts) EXPECT_TRUE(agent.empty());  // nothing discounted
}

TEST_F(BundleManifestTest, ValuesOutOfTheirDomainAreRefusedByKey) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  WriteManifest(Sample(config), config, Path());
  std::ifstream in(Path());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto refused = [&](const std::string& from, const std::string& to) -> std::string {
    std::string changed = text;
    const size_t at = changed.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    changed.replace(at, from.size(), to);
    std::ofstream(Path(), std::ios::trunc) << changed;
    try {
      ReadManifest(Path(), config);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(refused("algorithm: awrq", "algorithm: ppo").find("algorithm: unknown 'ppo'"),
            std::string::npos);
  EXPECT_NE(refused("reuse_source: model", "reuse_source: always").find("reuse_source"),
            std::string::npos);
  EXPECT_NE(refused("recall: map", "recall: table").find("cost_source.recall"), std::string::npos);
  EXPECT_NE(refused("calibration:", "calibration: []\nold_calibration:").find("calibration"),
            std::string::npos);
  EXPECT_NE(refused("recall: [0, 10,", "recall: [-5, 10,").find("logged_counts.recall: '-5'"),
            std::string::npos);
  EXPECT_NE(refused("recall: [0, 10,", "recall: [").find("logged_counts.recall: a list of 62"),
            std::string::npos);
  EXPECT_NE(refused("recall: [0, 10,", "recall: [x, 10,").find("'x' is not a count"),
            std::string::npos);
}

}  // namespace
}  // namespace allot::models
