// allot-train's engine end to end on small logs: schema checks, a task with a known optimum,
// determinism, bundles on disk, and the serving fast path against the LibTorch reference.
#include "models/trainer.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "models/bundle.h"
#include "models/bundle_manifest.h"
#include "models/fitted_range.h"
#include "models/policy_checks.h"
#include "models/training_log.h"
#include "policy/cost_order.h"
#include "policy/decision_rule.h"
#include "tests/models/synthetic.h"
#include "tests/models/synthetic_testbench.h"

namespace allot::models {
namespace {

// The synthetic test bench of the config without one agent's rows.
std::string TestbenchWithout(const std::string& agent, const AllotConfig& config) {
  const int buckets = static_cast<int>(config.value_model.bucket_bounds.size()) + 1;
  std::istringstream rows(testing::testbench::TestbenchCsv(buckets));
  std::ostringstream csv;
  for (std::string line; std::getline(rows, line);) {
    if (line.rfind(agent + ",", 0) != 0) csv << line << "\n";
  }
  return csv.str();
}

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

  // Small() at its smallest: one epoch of a 12-wide network (shape checks, not quality).
  TrainOptions Tiny(const std::string& algorithm) const {
    TrainOptions o = Small(algorithm);
    o.hidden = 12;
    o.epochs = 1;
    o.value_epochs = 1;
    return o;
  }

  // A random log of `config` (`rows` requests from `seed`), written under dir_ and read back.
  TrainingLog RandomLog(const AllotConfig& config, int rows, int seed) const {
    testing::WriteRandomLog(config, dir_ + "/logs/default.binpb", rows, seed);
    return ReadTrainingLog({dir_ + "/logs/default.binpb"}, config, false);
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
  EXPECT_TRUE(summary.warnings.empty()) << summary.warnings.front();
}

// The trained bundle is estimated against the (uniform) logging policy on the validation rows,
// the estimate is kept in the manifest, and models.min_offpolicy_ratio refuses bundles below it.
TEST_F(TrainerTest, BundlesCarryOffPolicyEstimatesAndAFloorRefusesThem) {
  const TrainingLog log = ReadTrainingLog({dir_ + "/logs"}, config_, false);
  std::ostringstream progress;
  const TrainSummary summary = TrainBundle(log, config_, Small("awrq"), dir_ + "/models", progress);
  ASSERT_TRUE(summary.offpolicy.has_value());
  const OffPolicyReport& ope = *summary.offpolicy;
  ASSERT_TRUE(ope.unusable.empty()) << ope.unusable;
  // The validation tenth of 4000, chosen by a hash of each request.
  const InMemorySource source(log, config_, SplitOptionsFor(Small("awrq")));
  EXPECT_EQ(ope.requests, static_cast<int64_t>(source.validation().rows));
  EXPECT_NEAR(ope.requests, 400, 60);
  EXPECT_GT(ope.matched, 20);
  // The optimum (2, 1) earns 3.0; uniform logging earns 1.58.
  EXPECT_NEAR(ope.revenue.snips.estimate, 3.0, 0.3);
  EXPECT_GT(ope.net.dr.lower, ope.net.logged);

  const BundleManifest manifest =
      ReadManifest((std::filesystem::path(summary.bundle_dir) / "manifest.yaml").string(), config_);
  ASSERT_TRUE(manifest.offpolicy.has_value());
  EXPECT_EQ(manifest.offpolicy->matched, ope.matched);
  EXPECT_DOUBLE_EQ(manifest.offpolicy->net.dr.estimate, ope.net.dr.estimate);
  EXPECT_DOUBLE_EQ(manifest.offpolicy->revenue.ips.upper, ope.revenue.ips.upper);

  // The floor is met with 95% confidence or not at all: against the interval's lower bound.
  AllotConfig strict = config_;
  const double certain = ope.net.dr.lower / ope.net.logged;
  ASSERT_GT(certain, 1.0);
  ASSERT_LT(certain * 1.02, ope.net.dr.estimate / ope.net.logged);
  strict.models.min_offpolicy_ratio = certain * 0.98;
  EXPECT_NE(LoadBundle(summary.bundle_dir, strict), nullptr);
  strict.models.min_offpolicy_ratio = certain * 1.02;  // the point estimate would pass
  try {
    LoadBundle(summary.bundle_dir, strict);
    ADD_FAILURE() << "a bundle below the floor loaded";
  } catch (const BundleError& e) {
    EXPECT_NE(std::string(e.what()).find("models.min_offpolicy_ratio"), std::string::npos)
        << e.what();
  }
  // A bundle without estimates (trained before propensities were logged) cannot meet a floor.
  std::filesystem::path manifest_path = std::filesystem::path(summary.bundle_dir) / "manifest.yaml";
  BundleManifest stripped = manifest;
  stripped.offpolicy.reset();
  WriteManifest(stripped, config_, manifest_path.string());
  strict.models.min_offpolicy_ratio = 0.5;
  EXPECT_THROW(LoadBundle(summary.bundle_dir, strict), BundleError);
  strict.models.min_offpolicy_ratio = 0.0;
  EXPECT_NE(LoadBundle(summary.bundle_dir, strict), nullptr);
}

// Share of users worth less than 1 (f0 < -0.2, V < 0.75) for whom the bundle's first agent
// prefers the longest queue, as it should (TailUplift).
double LowValueUsersRight(const ActionScorer& scorer) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> f0(-1.5f, -0.2f);
  std::normal_distribution<float> f1(0.0f, 1.0f);
  AgentScores s;
  int right = 0;
  constexpr int kUsers = 200;
  for (int i = 0; i < kUsers; ++i) {
    const std::vector<float> x = {f0(rng), f1(rng)};
    if (!scorer.Score(0, x, &s)) return 0.0;
    right += std::max_element(s.value.begin(), s.value.end()) - s.value.begin() == 2;
  }
  return static_cast<double>(right) / kUsers;
}

// Revenue is heavy-tailed and the action's effect differs between cheap and valuable users. The
// default (relative) weighting learns what pays for the many cheap users; plain revenue
// weighting lets the few valuable ones decide for everybody.
TEST_F(TrainerTest, RelativeWeightingLearnsWhatPaysForLowValueUsers) {
  testing::WriteValueTailLog(dir_ + "/tail.binpb", 6000, 21);
  const TrainingLog log = ReadTrainingLog({dir_ + "/tail.binpb"}, config_, false);
  std::ostringstream progress;
  TrainOptions relative = Small("awrq");
  ASSERT_EQ(relative.q_weighting, "relative");
  TrainOptions revenue = relative;
  revenue.q_weighting = "revenue";
  const auto relative_bundle = LoadBundle(
      TrainBundle(log, config_, relative, dir_ + "/relative", progress).bundle_dir, config_);
  const auto revenue_bundle = LoadBundle(
      TrainBundle(log, config_, revenue, dir_ + "/revenue", progress).bundle_dir, config_);
  const double relative_right = LowValueUsersRight(*relative_bundle);
  const double revenue_right = LowValueUsersRight(*revenue_bundle);
  EXPECT_GE(relative_right, 0.9);
  EXPECT_GT(relative_right, revenue_right + 0.2);
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

// The distilled student learns the teacher heads' lower bound. Same seed, so the same teacher:
// the pessimistic student's values lie below the plain one's before the calibration, which
// re-levels each agent on its logged actions and so keeps only the lowering where the heads
// disagree more than there.
TEST_F(TrainerTest, PessimisticDistillationServesTheHeadsLowerBound) {
  const TrainingLog log = ReadTrainingLog({dir_ + "/logs/b.binpb"}, config_, false);
  std::ostringstream progress;
  const auto mean_uncalibrated_value = [&](double pessimism) {
    TrainOptions o = Small("awrq");
    o.epochs = 2;
    o.distil_pessimism = pessimism;
    const TrainSummary summary = TrainBundle(log, config_, o, dir_ + "/models", progress);
    const BundleManifest manifest = ReadManifest(summary.bundle_dir + "/manifest.yaml", config_);
    EXPECT_DOUBLE_EQ(manifest.hyperparameters.distil_pessimism, pessimism);
    const auto scorer = LoadBundle(summary.bundle_dir, config_);
    double sum = 0;
    int n = 0;
    for (size_t agent = 0; agent < config_.agents.size(); ++agent) {
      const double level = std::exp(manifest.calibration[agent].a);
      for (float x = -1.0f; x <= 1.0f; x += 0.25f) {
        AgentScores scores;
        const size_t width = config_.agents[agent].features.size();
        EXPECT_TRUE(scorer->Score(agent, std::vector<float>(width, x), &scores));
        for (const double v : scores.value) sum += v / level, ++n;
      }
    }
    return sum / n;
  };
  const double plain = mean_uncalibrated_value(0.0);
  const double pessimistic = mean_uncalibrated_value(2.0);
  EXPECT_LT(pessimistic, 0.99 * plain);
}

// Every method trains, and its fast serving path matches the LibTorch reference on the round trip
// through disk.
TEST_F(TrainerTest, EveryAlgorithmRoundTripsAndFastPathMatchesLibTorch) {
  const TrainingLog log = ReadTrainingLog({dir_ + "/logs/b.binpb"}, config_, false);
  std::mt19937 rng(3);
  std::normal_distribution<float> f(0.0f, 1.5f);
  for (const AlgorithmTraits& method : AlgorithmTable()) {
    const std::string algorithm(method.name);
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
        // Only an algorithm with actors proposes, and then both paths propose alike.
        size_t fast_joint = 99, reference_joint = 98;
        const std::vector<double> prices = {0.05 * (i + 1), 0.5};
        EXPECT_EQ(fast->Propose(agent, x, a, prices, &fast_joint), method.actors) << algorithm;
        EXPECT_EQ(reference->Propose(agent, x, b, prices, &reference_joint), method.actors);
        if (method.actors) {
          EXPECT_EQ(fast_joint, reference_joint) << algorithm;
        }
      }
    }
  }
}

// The same check on the default config, whose shapes reach every branch of the fast path's
// blocked kernels: 62 joint actions and 31 GRU prefixes (row blocks of four plus leftovers),
// several decisions per agent, and a hidden size that is not a multiple of eight; for each
// algorithm's own networks and for the factorised ones.
TEST_F(TrainerTest, FastPathMatchesLibTorchOnTheDefaultConfig) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const TrainingLog log = RandomLog(config, 600, 5);
  std::mt19937 rng(4);
  std::normal_distribution<float> f(0.0f, 1.5f);
  for (const std::string network : {"algorithm", "factorised", "distilled"}) {
    for (const char* algorithm : {"awrq", "dqn"}) {
      TrainOptions o = Tiny(algorithm);
      o.network = network;
      std::ostringstream progress;
      const TrainSummary summary = TrainBundle(log, config, o, dir_ + "/models-default", progress);
      const auto fast = LoadBundle(summary.bundle_dir, config, Inference::kFast);
      const auto reference = LoadBundle(summary.bundle_dir, config, Inference::kTorch);
      EXPECT_STREQ(fast->inference(), "fast") << network;
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
                << network << " " << algorithm << " agent " << agent << " action " << j;
            EXPECT_NEAR(a.cost[j], b.cost[j], 1e-3 * (1 + b.cost[j]))
                << network << " " << algorithm << " agent " << agent << " action " << j;
          }
          EXPECT_EQ(a.cross_module, b.cross_module);
          ASSERT_EQ(a.cross_cost.size(), b.cross_cost.size());
          for (size_t k = 0; k < a.cross_cost.size(); ++k)
            EXPECT_NEAR(a.cross_cost[k], b.cross_cost[k], 1e-3 * (1 + b.cross_cost[k]));
        }
      }
    }
  }
}

// A probe's features[0] = 1e4 drove the default bundle's predicted cost to 6.5e7 core-ms, and
// 1e38 gave user_value NaN. A served bundle clips each feature into its fitted range widened by
// the range's span on either side, so its scores stay what they are at that edge.
TEST_F(TrainerTest, FeaturesFarOutsideTheFittedRangeAreClipped) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const TrainingLog log = RandomLog(config, 600, 5);
  const TrainOptions o = Tiny("awrq");
  std::ostringstream progress;
  const TrainSummary summary = TrainBundle(log, config, o, dir_ + "/models-default", progress);
  const FittedRanges ranges = MeasureFittedRanges(log);
  for (const Inference inference : {Inference::kFast, Inference::kTorch}) {
    const auto scorer = LoadBundle(summary.bundle_dir, config, inference);
    for (size_t agent = 0; agent < config.agents.size(); ++agent) {
      const size_t width = config.agents[agent].features.size();
      ASSERT_EQ(ranges[agent].size(), width);
      std::vector<float> edge(width), far(width, 1e4f), huge(width, 1e38f);
      for (size_t f = 0; f < width; ++f) {
        const FeatureRange& r = ranges[agent][f];
        edge[f] = r.max + std::max(r.max - r.min, 1.0f);
      }
      AgentScores at_edge, at_far, at_huge;
      ASSERT_TRUE(scorer->Score(agent, edge, &at_edge));
      ASSERT_TRUE(scorer->Score(agent, far, &at_far));
      ASSERT_TRUE(scorer->Score(agent, huge, &at_huge));
      EXPECT_EQ(at_far.value, at_edge.value) << agent;
      EXPECT_EQ(at_far.cost, at_edge.cost) << agent;
      EXPECT_EQ(at_huge.cost, at_edge.cost) << agent;
      EXPECT_TRUE(std::isfinite(at_huge.user_value)) << agent;
    }
  }
}

// What the priced argmax needs from any bundle, whatever it learned: values in revenue units
// (>= 0), costs >= 0 and never below the cost of a strictly cheaper option of the same decision
// (a shorter queue, a switch off, one channel fewer), in the agent's own module and in every later
// module its choice loads (recall's channels load pre-rank and rank).
TEST_F(TrainerTest, ServedValuesAreNonNegativeAndCostsMonotoneInEveryModule) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const TrainingLog log = RandomLog(config, 800, 8);
  TrainOptions o = Small("awrq");
  o.epochs = 2;
  std::ostringstream progress;
  const TrainSummary summary = TrainBundle(log, config, o, dir_ + "/models-default", progress);
  const auto scorer = LoadBundle(summary.bundle_dir, config);
  std::mt19937 rng(11);
  std::normal_distribution<float> f(0.0f, 3.0f);  // wider than the training features
  for (size_t agent = 0; agent < config.agents.size(); ++agent) {
    const ActionSpace space(config.agents[agent]);
    const CostOrder order(config.agents[agent], space);
    // Every later agent is in another module here: one cross cost per later agent.
    const size_t later = config.agents.size() - 1 - agent;
    for (int i = 0; i < 50; ++i) {
      std::vector<float> x(config.agents[agent].features.size());
      for (float& v : x) v = f(rng);
      AgentScores s;
      ASSERT_TRUE(scorer->Score(agent, x, &s));
      ASSERT_EQ(s.cross_module.size(), later);
      ASSERT_EQ(s.cross_cost.size(), later * space.size());
      for (size_t j = 0; j < space.size(); ++j) {
        EXPECT_TRUE(std::isfinite(s.value[j]));
        EXPECT_GE(s.value[j], 0.0);
        EXPECT_GE(s.cost[j], 0.0);
        for (uint32_t k : order.CheaperNeighbours(j)) {
          EXPECT_GE(s.cost[j], s.cost[k]) << "agent " << agent << " joint " << j;
          for (size_t m = 0; m < later; ++m) {
            const double* cross = s.cross_cost.data() + m * space.size();
            EXPECT_GE(cross[j], 0.0);
            EXPECT_GE(cross[j], cross[k]) << "agent " << agent << " module " << m;
          }
        }
      }
    }
  }
}

// With testbench measurements the bundle carries the cost map and serves it for the agents whose
// logged costs it predicts better. The synthetic log's costs are 1 + 0.1 * joint; pre-rank's
// testbench rows say exactly that (one queue decision), the other agents' rows do not.
// A cache-reuse request trains the agents whose stages ran, and the first agent's reuse decision
// trains ComRecycle's reuse model, which the bundle serves when it fits better than the config's
// rule (here the config has none: every reuse would count as free).
TEST_F(TrainerTest, CacheReuseRecordsTrainTheAgentsThatRanAndTheServedReuseModel) {
  testing::WriteReuseLog(dir_ + "/reuse.binpb", 6000, 12);
  const TrainingLog log = ReadTrainingLog({dir_ + "/reuse.binpb"}, config_, false);
  ASSERT_EQ(log.rows, 6000u);
  EXPECT_GT(log.partial, 2700u);
  EXPECT_LT(log.partial, 3300u);
  size_t skipped_first = 0;
  for (size_t r = 0; r < log.rows; ++r) {
    EXPECT_EQ(log.agents[1].present[r], 1);
    EXPECT_EQ(log.agents[0].decided[r], 1);
    skipped_first += log.agents[0].present[r] == 0;
    EXPECT_EQ(log.agents[0].present[r] == 0, log.cache_reuse[r] == v1::CACHE_REUSE_RECALL);
  }
  EXPECT_EQ(skipped_first, log.partial);

  TrainOptions o = Small("awrq");
  o.epochs = 4;
  std::ostringstream progress;
  const TrainSummary summary = TrainBundle(log, config_, o, dir_ + "/models", progress);
  EXPECT_EQ(YAML::LoadFile(summary.bundle_dir + "/manifest.yaml")["reuse_source"].as<std::string>(),
            "model");
  EXPECT_LT(summary.metrics.at("reuse_deviance"), summary.metrics.at("reuse_deviance_half_life"));
  const auto fast = LoadBundle(summary.bundle_dir, config_, Inference::kFast);
  const auto reference = LoadBundle(summary.bundle_dir, config_, Inference::kTorch);
  const std::vector<float> x = {0.2f, -0.4f};
  for (double age : {1.0, 150.0, 290.0}) {
    const std::vector<CachedStage> caches = {{1, true, age, 100}};
    AgentScores scores;
    std::vector<double> kept(1), kept_reference(1);
    ASSERT_TRUE(fast->Score(0, x, &scores));
    ASSERT_TRUE(fast->ScoreReuse(0, x, scores, caches, kept));
    ASSERT_TRUE(reference->ScoreReuse(0, x, scores, caches, kept_reference));
    EXPECT_NEAR(kept[0], testing::SyntheticRetained(age), 0.1) << "age " << age;
    EXPECT_NEAR(kept[0], kept_reference[0], 1e-4);
    // Only the agent that sees the cache has a reuse model.
    EXPECT_FALSE(fast->ScoreReuse(1, x, scores, caches, kept));
  }
}

// A cached output filled at richer settings than the usual fresh computation makes more than the
// user value: here every reuse earns 1.5 times what recomputing would. The served share says so;
// a bundle from before uncapped shares (its manifest without reuse_share_capped) reads the same
// weights as at most 1.
TEST_F(TrainerTest, AReuseCanMakeMoreThanTheUserValue) {
  testing::WriteReuseLog(dir_ + "/richer.binpb", 6000, 13, [](double) { return 1.5; });
  const TrainingLog log = ReadTrainingLog({dir_ + "/richer.binpb"}, config_, false);
  TrainOptions o = Small("awrq");
  o.epochs = 2;
  std::ostringstream progress;
  const TrainSummary summary = TrainBundle(log, config_, o, dir_ + "/models", progress);
  const std::filesystem::path manifest =
      std::filesystem::path(summary.bundle_dir) / "manifest.yaml";
  ASSERT_EQ(YAML::LoadFile(manifest.string())["reuse_source"].as<std::string>(), "model");
  const std::vector<float> x = {0.2f, -0.4f};
  const std::vector<CachedStage> caches = {{1, true, 30.0, 100}};
  auto kept = [&](Inference inference) {
    const auto scorer = LoadBundle(summary.bundle_dir, config_, inference);
    AgentScores scores;
    std::vector<double> share(1);
    EXPECT_TRUE(scorer->Score(0, x, &scores));
    EXPECT_TRUE(scorer->ScoreReuse(0, x, scores, caches, share));
    return share[0];
  };
  // Tolerance: the share is 1.5 +- 0.2 (the user value is learned from the same noisy rows).
  EXPECT_NEAR(kept(Inference::kFast), 1.5, 0.2);
  EXPECT_NEAR(kept(Inference::kTorch), kept(Inference::kFast), 1e-4);
  YAML::Node old = YAML::LoadFile(manifest.string());
  old["architecture"].remove("reuse_share_capped");
  std::ofstream(manifest) << old;
  EXPECT_LT(kept(Inference::kFast), 1.0);
  EXPECT_LT(kept(Inference::kTorch), 1.0);
}

// Logs from a policy that never randomised its first agent (queue 10 or 20 by the sign of a
// feature, never 30) while its second agent explored: the trained bundle will not choose queue 30
// for the first agent, says so in the manifest and the warnings, and on both inference paths.
TEST_F(TrainerTest, ABundleFromLogsThatNeverExploredAnActionNeverChoosesIt) {
  {
    std::mt19937_64 rng(4);
    std::uniform_int_distribution<int> uniform(0, 2);
    std::ofstream out(dir_ + "/deterministic.binpb", std::ios::binary);
    for (int i = 0; i < 3000; ++i) {
      v1::Transition t;
      t.set_request_id("r" + std::to_string(i));
      v1::AgentStep* first = testing::AddStep(t, "first", 0, rng);
      const int a = first->features(0) > 0 ? 1 : 0;
      first->set_joint_action(static_cast<uint32_t>(a));
      first->set_cost(1.0 + a);
      first->set_propensity(1.0);
      const int b = uniform(rng);
      testing::AddStep(t, "second", b, rng);
      t.set_revenue(testing::SyntheticRevenue(a, b, rng));
      google::protobuf::util::SerializeDelimitedToOstream(t, &out);
    }
  }
  TrainOptions o = Small("awrq");
  o.epochs = 2;
  std::ostringstream progress;
  const TrainSummary summary =
      TrainBundle(ReadTrainingLog({dir_ + "/deterministic.binpb"}, config_, false), config_, o,
                  dir_ + "/models", progress);
  const auto warned = [&](const std::string& what) {
    return std::any_of(summary.warnings.begin(), summary.warnings.end(),
                       [&](const std::string& w) { return w.find(what) != std::string::npos; });
  };
  EXPECT_TRUE(warned("agent first: the logs hardly explored (0 of 3000 requests randomised)"))
      << progress.str();
  EXPECT_FALSE(warned("agent second: the logs hardly explored")) << progress.str();
  const YAML::Node manifest = YAML::LoadFile(summary.bundle_dir + "/manifest.yaml");
  ASSERT_TRUE(manifest["unlogged_actions"]["first"]);
  EXPECT_EQ(manifest["unlogged_actions"]["first"].as<std::vector<uint32_t>>(),
            std::vector<uint32_t>{2});
  EXPECT_FALSE(manifest["unlogged_actions"]["second"]);
  // Every logged request counts once for its joint action; the never-logged one counts none.
  const auto counts = manifest["logged_counts"]["first"].as<std::vector<int64_t>>();
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts[0] + counts[1], 3000);
  EXPECT_EQ(counts[2], 0);
  EXPECT_EQ(manifest["logged_counts"]["second"].as<std::vector<int64_t>>().size(), 3u);

  for (const Inference inference : {Inference::kFast, Inference::kTorch}) {
    const auto scorer = LoadBundle(summary.bundle_dir, config_, inference);
    std::mt19937_64 rng(9);
    std::normal_distribution<float> feature(0.0f, 1.0f);
    for (int r = 0; r < 50; ++r) {
      const std::vector<float> x{feature(rng), feature(rng)};
      AgentScores s;
      ASSERT_TRUE(scorer->Score(0, x, &s));
      EXPECT_EQ(s.excluded, (std::vector<uint8_t>{0, 0, 1}));
      for (const double lambda : {0.0, 0.1, 1.0}) EXPECT_NE(ChooseAction(s, lambda).joint, 2u);
      ASSERT_TRUE(scorer->Score(1, x, &s));
      EXPECT_TRUE(s.excluded.empty());
    }
  }
}

// The collapse rule on the policy's choices: one action for nearly everyone, where the logging
// policy spread its choices and the logs show another action paying more, is a warning; the same
// concentration on the action the logs say pays best is not.
TEST(CollapseTest, OneActionForEveryoneWhereAnotherPaysIsWarned) {
  std::vector<int64_t> logged;
  std::vector<double> net;
  for (int r = 0; r < 300; ++r) {
    logged.push_back(r % 3);
    net.push_back(r % 3 == 2 ? 2.0 : 1.0);  // action 2 pays most
  }
  const auto label = [](int64_t a) { return "q=" + std::to_string(a); };
  const std::vector<int64_t> always0(300, 0), always2(300, 2);
  const CollapseCheck bad = DetectCollapse("rank", always0, logged, net, 3, label);
  EXPECT_DOUBLE_EQ(bad.top_share, 1.0);
  EXPECT_NEAR(bad.logged_top_share, 1.0 / 3, 1e-12);
  EXPECT_NE(bad.warning.find("agent rank: policy collapse"), std::string::npos) << bad.warning;
  EXPECT_NE(bad.warning.find("'q=2' paid more"), std::string::npos) << bad.warning;
  EXPECT_TRUE(DetectCollapse("rank", always2, logged, net, 3, label).warning.empty());
  // A policy that spreads its choices is no collapse, nor is one whose logs never spread.
  EXPECT_TRUE(DetectCollapse("rank", logged, logged, net, 3, label).warning.empty());
  EXPECT_TRUE(DetectCollapse("rank", always0, always0, net, 3, label).warning.empty());
  // Concentrating on an action the logs hardly ever tried is unsupported.
  std::vector<int64_t> never_logged(300, 3);
  EXPECT_NE(DetectCollapse("rank", never_logged, logged, net, 4, label).warning.find("hardly"),
            std::string::npos);
}

// A test bench that does not cover the config (here: no recall rows, as when channels never run
// alone) is a loud warning, and the learned cost model serves every agent.
TEST_F(TrainerTest, IncompleteTestbenchIsWarnedAndTheLearnedCostsServe) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  testing::WriteRandomLog(config, dir_ + "/logs/default.binpb", 400, 6);
  std::ofstream(dir_ + "/partial.csv") << TestbenchWithout("recall", config);
  TrainOptions o = Small("awrq");
  o.epochs = 1;
  o.testbench_csv = dir_ + "/partial.csv";
  std::ostringstream progress;
  const TrainSummary summary =
      TrainBundle(ReadTrainingLog({dir_ + "/logs/default.binpb"}, config, false), config, o,
                  dir_ + "/models-partial", progress);
  ASSERT_FALSE(summary.warnings.empty());
  EXPECT_NE(summary.warnings.front().find("cost map not fitted"), std::string::npos);
  EXPECT_NE(progress.str().find("WARNING: cost map not fitted"), std::string::npos);
  const YAML::Node manifest = YAML::LoadFile(summary.bundle_dir + "/manifest.yaml");
  EXPECT_FALSE(manifest["cost_source"]);
  EXPECT_FALSE(std::filesystem::exists(summary.bundle_dir + "/cost_map.yaml"));
  EXPECT_NE(manifest["warnings"][0].as<std::string>().find("no measurement for agent recall"),
            std::string::npos);
  EXPECT_NO_THROW(LoadBundle(summary.bundle_dir, config));
}

TEST_F(TrainerTest, TestbenchCostMapIsServedWhereItPredictsBetter) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  testing::WriteRandomLog(config, dir_ + "/logs/default.binpb", 600, 6);
  const int buckets = static_cast<int>(config.value_model.bucket_bounds.size()) + 1;
  std::ostringstream csv;
  csv << TestbenchWithout("prerank", config);
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
  // The fast path leaves out the model's own-module cost where the map serves it; every cost it
  // serves, the later modules' included, is still the reference's.
  for (size_t agent = 0; agent < config.agents.size(); ++agent) {
    const std::vector<float> x(config.agents[agent].features.size(), -0.2f);
    ASSERT_TRUE(fast->Score(agent, x, &a));
    ASSERT_TRUE(reference->Score(agent, x, &b));
    ASSERT_EQ(a.cost.size(), b.cost.size());
    for (size_t j = 0; j < a.cost.size(); ++j)
      EXPECT_NEAR(a.cost[j], b.cost[j], 1e-3 * (1 + b.cost[j])) << config.agents[agent].name;
    EXPECT_EQ(a.cross_module, b.cross_module);
    ASSERT_EQ(a.cross_cost.size(), b.cross_cost.size());
    for (size_t k = 0; k < a.cross_cost.size(); ++k)
      EXPECT_NEAR(a.cross_cost[k], b.cross_cost[k], 1e-3 * (1 + b.cross_cost[k]))
          << config.agents[agent].name;
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
