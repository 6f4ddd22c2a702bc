// allot-train's engine end to end on small logs: schema checks, a task with a known optimum,
// determinism, bundles on disk, and the serving fast path against the LibTorch reference.
#include "models/trainer.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "models/bundle.h"
#include "models/training_log.h"
#include "tests/models/synthetic.h"
#include "tests/models/synthetic_testbench.h"

namespace allot::models {
namespace {

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/allot-train-XXXXXX";
    dir_ = mkdtemp(tmpl);
    config_ = LoadConfigFromString(testing::TwoAgentConfigYaml(), "two-agent");
    std::filesystem::create_directories(dir_ + "/logs");
    testing::WriteSyntheticLog(dir_ + "/logs/a.binpb", 3000, 1);
    testing::WriteSyntheticLog(dir_ + "/logs/b.binpb", 1000, 2);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  TrainOptions Small(const std::string& algorithm) const {
    TrainOptions o;
    o.algorithm = algorithm;
    o.heads = 4;
    o.hidden = 16;
    o.epochs = 8;
    o.value_epochs = 3;
    o.batch = 128;
    o.lr = 5e-3;
    o.progress = false;
    return o;
  }

  std::string dir_;
  AllotConfig config_;
};

TEST_F(TrainerTest, ReadsShardsFromADirectory) {
  std::ofstream(dir_ + "/logs/manifest.json") << "{}";  // not a shard: ignored
  const TrainingLog log = ReadTrainingLog({dir_ + "/logs"}, config_, false);
  EXPECT_EQ(log.rows, 4000u);
  EXPECT_EQ(log.files.size(), 2u);
  EXPECT_EQ(log.agents[1].digits.size(), 4000u);
  EXPECT_FALSE(log.input_hash.empty());
}

TEST_F(TrainerTest, BadRecordsAreNamedOrSkipped) {
  const std::string path = dir_ + "/bad.binpb";
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 3; ++i) {
      v1::Transition t;
      for (const char* name : {"first", "second"}) {
        v1::AgentStep* s = t.add_steps();
        s->set_agent(name);
        s->add_features(0.1f);
        s->add_features(i == 1 ? std::nanf("") : 0.2f);
        s->set_joint_action(1);
      }
      t.set_revenue(1.0);
      google::protobuf::util::SerializeDelimitedToOstream(t, &out);
    }
  }
  try {
    ReadTrainingLog({path}, config_, false);
    FAIL() << "expected a LogError";
  } catch (const LogError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": record 1: steps[0].features[1]: not finite");
  }
  const TrainingLog skipped = ReadTrainingLog({path}, config_, true);
  EXPECT_EQ(skipped.rows, 2u);
  EXPECT_EQ(skipped.skipped, 1u);
  EXPECT_THROW(ReadTrainingLog({dir_ + "/missing"}, config_, false), LogError);
  const AllotConfig other = LoadEmbeddedDefaultConfig();
  try {
    ReadTrainingLog({dir_ + "/logs/a.binpb"}, other, false);
    FAIL();
  } catch (const LogError& e) {
    EXPECT_NE(std::string(e.what()).find("record 0: steps: expected 3 agent steps, got 2"),
              std::string::npos);
  }
}

TEST_F(TrainerTest, AwrqRecoversTheBestJointActionOfAKnownTask) {
  const TrainingLog log = ReadTrainingLog({dir_ + "/logs"}, config_, false);
  std::ostringstream progress;
  const TrainSummary summary = TrainBundle(log, config_, Small("awrq"), dir_ + "/models", progress);
  const auto scorer = LoadBundle(summary.bundle_dir, config_);
  std::mt19937 rng(9);
  std::normal_distribution<float> f(0.0f, 1.0f);
  int first_right = 0, second_right = 0;
  AgentScores s;
  for (int i = 0; i < 50; ++i) {
    const std::vector<float> x = {f(rng), f(rng)};
    ASSERT_TRUE(scorer->Score(0, x, &s));
    first_right += std::max_element(s.value.begin(), s.value.end()) - s.value.begin() == 2;
    // Tolerance: the calibrated value of the best first action is E[R | a = 2] = 2.333 +- 0.3.
    EXPECT_NEAR(s.value[2], 2.333, 0.3);
    ASSERT_TRUE(scorer->Score(1, x, &s));
    second_right += std::max_element(s.value.begin(), s.value.end()) - s.value.begin() == 1;
  }
  EXPECT_GE(first_right, 45);
  EXPECT_GE(second_right, 45);
  EXPECT_GT(summary.metrics.at("q_first_rank_corr"), 0.5);
}

TEST_F(TrainerTest, SameSeedSameBundleAndNeverOverwrites) {
  const TrainingLog log = ReadTrainingLog({dir_ + "/logs/b.binpb"}, config_, false);
  TrainOptions o = Small("qmix");
  o.epochs = 2;
  std::ostringstream progress;
  const TrainSummary a = TrainBundle(log, config_, o, dir_ + "/models", progress);
  const TrainSummary b = TrainBundle(log, config_, o, dir_ + "/models", progress);
  EXPECT_NE(a.bundle_dir, b.bundle_dir);
  EXPECT_TRUE(std::filesystem::exists(a.bundle_dir + "/model.pt"));
  EXPECT_EQ(a.metrics.at("q_first_rmse"), b.metrics.at("q_first_rmse"));
  const auto sa = LoadBundle(a.bundle_dir, config_);
  const auto sb = LoadBundle(b.bundle_dir, config_);
  AgentScores x, y;
  ASSERT_TRUE(sa->Score(1, std::vector<float>{0.3f, -1.2f}, &x));
  ASSERT_TRUE(sb->Score(1, std::vector<float>{0.3f, -1.2f}, &y));
  EXPECT_EQ(x.value, y.value);
  EXPECT_EQ(x.cost, y.cost);
  // No temporary directories are left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/models")) {
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << e.path();
  }
}

// Every method trains, and its fast serving path matches the LibTorch reference on the round trip
// through disk.
TEST_F(TrainerTest, EveryAlgorithmRoundTripsAndFastPathMatchesLibTorch) {
  const TrainingLog log = ReadTrainingLog({dir_ + "/logs/b.binpb"}, config_, false);
  std::mt19937 rng(3);
  std::normal_distribution<float> f(0.0f, 1.5f);
  for (const std::string& algorithm : Algorithms()) {
    TrainOptions o = Small(algorithm);
    o.epochs = 1;
    std::ostringstream progress;
    const TrainSummary summary = TrainBundle(log, config_, o, dir_ + "/models", progress);
    const auto fast = LoadBundle(summary.bundle_dir, config_, Inference::kFast);
    const auto reference = LoadBundle(summary.bundle_dir, config_, Inference::kTorch);
    EXPECT_EQ(fast->version(), summary.version);
    for (int i = 0; i < 20; ++i) {
      const std::vector<float> x = {f(rng), f(rng)};
      for (size_t agent = 0; agent < 2; ++agent) {
        AgentScores a, b;
        ASSERT_TRUE(fast->Score(agent, x, &a));
        ASSERT_TRUE(reference->Score(agent, x, &b));
        EXPECT_NEAR(a.user_value, b.user_value, 1e-4 * (1 + b.user_value)) << algorithm;
        EXPECT_EQ(a.value_bucket, b.value_bucket);
        for (size_t j = 0; j < a.value.size(); ++j) {
          EXPECT_NEAR(a.value[j], b.value[j], 1e-3 * (1 + std::abs(b.value[j])))
              << algorithm << " action " << j;
          EXPECT_NEAR(a.cost[j], b.cost[j], 1e-3 * (1 + b.cost[j])) << algorithm << " action " << j;
        }
      }
    }
  }
}

// The same check on the default config, whose shapes reach every branch of the fast path's
// blocked kernels: 62 joint actions and 31 GRU prefixes (row blocks of four plus leftovers),
// several decisions per agent, and a hidden size that is not a multiple of eight.
TEST_F(TrainerTest, FastPathMatchesLibTorchOnTheDefaultConfig) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  testing::WriteRandomLog(config, dir_ + "/logs/default.binpb", 600, 5);
  const TrainingLog log = ReadTrainingLog({dir_ + "/logs/default.binpb"}, config, false);
  std::mt19937 rng(4);
  std::normal_distribution<float> f(0.0f, 1.5f);
  for (const char* algorithm : {"awrq", "dqn"}) {
    TrainOptions o = Small(algorithm);
    o.hidden = 12;
    o.epochs = 1;
    o.value_epochs = 1;
    std::ostringstream progress;
    const TrainSummary summary = TrainBundle(log, config, o, dir_ + "/models-default", progress);
    const auto fast = LoadBundle(summary.bundle_dir, config, Inference::kFast);
    const auto reference = LoadBundle(summary.bundle_dir, config, Inference::kTorch);
    for (int i = 0; i < 5; ++i) {
      for (size_t agent = 0; agent < config.agents.size(); ++agent) {
        std::vector<float> x(config.agents[agent].features.size());
        for (float& v : x) v = f(rng);
        AgentScores a, b;
        ASSERT_TRUE(fast->Score(agent, x, &a));
        ASSERT_TRUE(reference->Score(agent, x, &b));
        EXPECT_NEAR(a.user_value, b.user_value, 1e-4 * (1 + b.user_value)) << algorithm;
        ASSERT_EQ(a.value.size(), b.value.size());
        for (size_t j = 0; j < a.value.size(); ++j) {
          EXPECT_NEAR(a.value[j], b.value[j], 1e-3 * (1 + std::abs(b.value[j])))
              << algorithm << " agent " << agent << " action " << j;
          EXPECT_NEAR(a.cost[j], b.cost[j], 1e-3 * (1 + b.cost[j]))
              << algorithm << " agent " << agent << " action " << j;
        }
      }
    }
  }
}

// With testbench measurements the bundle carries the cost map and serves it for the agents whose
// logged costs it predicts better. The synthetic log's costs are 1 + 0.1 * joint; pre-rank's
// testbench rows say exactly that (one queue decision), the other agents' rows do not.
TEST_F(TrainerTest, TestbenchCostMapIsServedWhereItPredictsBetter) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  testing::WriteRandomLog(config, dir_ + "/logs/default.binpb", 600, 6);
  const int buckets = static_cast<int>(config.value_model.bucket_bounds.size()) + 1;
  std::istringstream rows(testing::testbench::TestbenchCsv(buckets));
  std::ostringstream csv;
  for (std::string line; std::getline(rows, line);) {
    if (line.rfind("prerank,", 0) != 0) csv << line << "\n";
  }
  const int lengths[] = {100, 200, 400, 800};
  for (int b = 0; b < buckets; ++b) {
    for (int q = 0; q < 4; ++q) {
      csv << "prerank,prerank,queue_length,queue," << lengths[q] << "," << lengths[q] << "," << b
          << "," << 1.0 + 0.1 * q << ",100\n";
    }
  }
  std::ofstream(dir_ + "/bench.csv") << csv.str();

  TrainOptions o = Small("awrq");
  o.epochs = 1;
  o.value_epochs = 1;
  o.testbench_csv = dir_ + "/bench.csv";
  std::ostringstream progress;
  const TrainSummary summary =
      TrainBundle(ReadTrainingLog({dir_ + "/logs/default.binpb"}, config, false), config, o,
                  dir_ + "/models-map", progress);
  EXPECT_NEAR(summary.metrics.at("cost_map_prerank_mae_ms"), 0.0, 1e-6);
  const YAML::Node manifest = YAML::LoadFile(summary.bundle_dir + "/manifest.yaml");
  for (const AgentConfig& agent : config.agents) {
    const bool map_better = summary.metrics.at("cost_map_" + agent.name + "_mae_ms") <
                            summary.metrics.at("cost_" + agent.name + "_mae_ms");
    EXPECT_EQ(manifest["cost_source"][agent.name].as<std::string>(), map_better ? "map" : "model")
        << agent.name;
  }
  ASSERT_EQ(manifest["cost_source"]["prerank"].as<std::string>(), "map");
  const auto fast = LoadBundle(summary.bundle_dir, config, Inference::kFast);
  const auto reference = LoadBundle(summary.bundle_dir, config, Inference::kTorch);
  AgentScores a, b;
  ASSERT_TRUE(fast->Score(1, std::vector<float>(8, 0.3f), &a));
  ASSERT_TRUE(reference->Score(1, std::vector<float>(8, 0.3f), &b));
  for (size_t j = 0; j < 4; ++j) {
    EXPECT_NEAR(a.cost[j], 1.0 + 0.1 * static_cast<double>(j), 1e-9);
    EXPECT_NEAR(b.cost[j], a.cost[j], 1e-9);
  }

  // A bundle whose map is gone is refused with the file named.
  std::filesystem::remove(summary.bundle_dir + "/cost_map.yaml");
  try {
    LoadBundle(summary.bundle_dir, config, Inference::kFast);
    FAIL() << "a bundle without its cost map was served";
  } catch (const BundleError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read cost_map.yaml"), std::string::npos)
        << e.what();
  }
}

TEST_F(TrainerTest, CorruptOrMismatchedBundlesAreRefusedWithAReason) {
  const TrainingLog log = ReadTrainingLog({dir_ + "/logs/b.binpb"}, config_, false);
  TrainOptions o = Small("awrq");
  o.epochs = 1;
  std::ostringstream progress;
  const TrainSummary summary = TrainBundle(log, config_, o, dir_ + "/models", progress);
  try {
    LoadBundle(summary.bundle_dir, LoadEmbeddedDefaultConfig());
    FAIL();
  } catch (const BundleError& e) {
    EXPECT_NE(std::string(e.what()).find("does not match the config: schema."), std::string::npos)
        << e.what();
  }
  const std::string broken = dir_ + "/models/zz-broken";
  std::filesystem::copy(summary.bundle_dir, broken);
  std::filesystem::resize_file(broken + "/model.pt", 100);
  try {
    LoadBundle(broken, config_);
    FAIL();
  } catch (const BundleError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot load model.pt"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ListBundles(dir_ + "/models").front(), broken);  // newest by name
}

}  // namespace
}  // namespace allot::models
