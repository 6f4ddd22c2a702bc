// MADDPG (maddpg.h): the actors' and the critic's shapes, the gradient that reaches the actors
// through the critic and the cost models, decisions on a continuous queue's grid, the bundle's
// round trip with the fast path equal to the reference, and actors that follow the price on a
// task with a known answer.
#include "models/maddpg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>

#include "models/bundle.h"
#include "models/served_scores.h"
#include "models/trainer.h"
#include "policy/action_space.h"
#include "policy/decision_rule.h"
#include "tests/models/synthetic.h"

namespace allot::models {
namespace {

AllotConfig ContinuousConfig() {
  return LoadConfigFromFile(std::string(ALLOT_SOURCE_DIR) + "/config/allot-continuous.yaml");
}

Architecture MaddpgArchitecture() {
  Architecture arch;
  arch.algorithm = "maddpg";
  arch.heads = 2;
  arch.hidden = 8;
  return arch;
}

// The continuous queue's decision index and its length in joint action `joint` of `agent`.
int QueueLength(const AgentConfig& agent, const ActionSpace& space, size_t joint,
                size_t* decision) {
  for (size_t d = 0; d < agent.decisions.size(); ++d) {
    if (!agent.decisions[d].range) continue;
    *decision = d;
    return agent.decisions[d].options[space.Choice(joint, d)].queue_length;
  }
  ADD_FAILURE() << agent.name << " has no continuous queue";
  return 0;
}

TEST(MaddpgTest, ActorAndCriticShapes) {
  const AllotConfig config = ContinuousConfig();
  BundleModels models(config, MaddpgArchitecture());
  const int64_t rows = 5;
  const auto agents = static_cast<int64_t>(config.agents.size());
  ASSERT_EQ(models->actor.size(), config.agents.size());
  std::vector<torch::Tensor> obs, codes;
  int64_t state_dim = 0;
  for (size_t i = 0; i < config.agents.size(); ++i) {
    const ActionSpace space(config.agents[i]);
    // A continuous queue is one output; every other decision one logit per choice.
    int64_t outputs = 0;
    for (size_t d = 0; d < space.num_decisions(); ++d)
      outputs +=
          config.agents[i].decisions[d].range ? 1 : static_cast<int64_t>(space.NumChoices(d));
    EXPECT_EQ(models->actor_outputs[i], outputs) << config.agents[i].name;
    obs.push_back(torch::randn({rows, models->obs_dim(i)}));
    const torch::Tensor raw = ActorRaw(*models, i, obs.back(), torch::zeros({rows, agents}));
    EXPECT_EQ(raw.sizes(), (std::vector<int64_t>{rows, outputs}));
    codes.push_back(RelaxedActorCode(*models, i, raw, /*explore=*/true));
    EXPECT_EQ(codes.back().sizes(), (std::vector<int64_t>{rows, models->action_dim(i)}));
    state_dim += models->obs_dim(i) + models->action_dim(i);
  }
  EXPECT_EQ(models->JointState(obs, codes).size(1), state_dim);
  // Revenue, then the core-ms of every agent's step.
  const torch::Tensor outputs = CriticOutputs(*models, torch::zeros({rows}), obs, codes);
  EXPECT_EQ(outputs.sizes(), (std::vector<int64_t>{rows, 1 + agents}));
}

// The actors learn only through the critic: its revenue and its cost outputs must each pass a
// gradient to every actor weight, through the continuous queue's interpolation and the
// Gumbel-softmax.
TEST(MaddpgTest, GradientReachesEveryActorThroughTheCriticAndTheCosts) {
  const AllotConfig config = ContinuousConfig();
  torch::manual_seed(3);
  BundleModels models(config, MaddpgArchitecture());
  const int64_t rows = 64;
  const auto agents = static_cast<int64_t>(config.agents.size());
  for (const char* through : {"revenue", "costs"}) {
    models->zero_grad();
    std::vector<torch::Tensor> obs, codes;
    torch::Tensor loss;
    for (size_t i = 0; i < config.agents.size(); ++i) {
      obs.push_back(torch::randn({rows, models->obs_dim(i)}));
      codes.push_back(RelaxedActorCode(
          *models, i, ActorRaw(*models, i, obs.back(), torch::rand({rows, agents}) * 2 - 1),
          /*explore=*/true));
    }
    const torch::Tensor out = CriticOutputs(*models, torch::zeros({rows}), obs, codes).exp();
    loss = std::string(through) == "revenue" ? -out.select(1, 0).sum() : out.slice(1, 1).sum();
    loss.backward();
    for (size_t i = 0; i < config.agents.size(); ++i) {
      for (const auto& p : models->actor[i]->named_parameters()) {
        ASSERT_TRUE(p.value().grad().defined()) << through << " actor" << i << " " << p.key();
        EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0)
            << through << " actor" << i << " " << p.key();
      }
    }
  }
}

// Whatever an actor outputs, the served length is on the range's grid: the ends of the sigmoid
// are min and max, and every length in between is reachable.
TEST(MaddpgTest, ActorDecisionsStayOnTheRangesGrid) {
  const AllotConfig config = ContinuousConfig();
  const AgentConfig& agent = *config.FindAgent("rank");
  const ActionSpace space(agent);
  const DecisionRanges continuous = ContinuousDecisions(agent);
  const size_t outputs = ActorOutputs(space, continuous);
  size_t queue = 0;
  QueueLength(agent, space, 0, &queue);
  const QueueRangeConfig& range = *agent.decisions[queue].range;
  // The queue's output column: every decision before it takes 1 or its choices.
  size_t column = 0;
  for (size_t d = 0; d < queue; ++d) column += continuous[d] ? 1 : space.NumChoices(d);
  std::mt19937 rng(5);
  std::normal_distribution<float> raw_value(0.0f, 4.0f);
  std::set<int> lengths;
  for (int i = 0; i < 2000; ++i) {
    std::vector<float> raw(outputs);
    for (float& x : raw) x = raw_value(rng);
    if (i == 0) raw[column] = -1e9f;
    if (i == 1) raw[column] = 1e9f;
    if (i == 2) raw[column] = std::nanf("");
    const size_t joint = ActorJoint(space, continuous, raw.data());
    ASSERT_LT(joint, space.size());
    const int length = QueueLength(agent, space, joint, &queue);
    EXPECT_GE(length, range.min);
    EXPECT_LE(length, range.max);
    EXPECT_EQ((length - range.min) % range.granularity, 0) << length;
    if (i == 0) {
      EXPECT_EQ(length, range.min);
    } else if (i == 1) {
      EXPECT_EQ(length, range.max);
    } else if (i == 2) {
      EXPECT_EQ(length, range.min) << "a NaN output must give the shortest, cheapest length";
    }
    lengths.insert(length);
  }
  EXPECT_EQ(lengths.size(), agent.decisions[queue].options.size()) << "a length is unreachable";
}

TEST(MaddpgTest, PricesAreReadAsPositionsInTheTrainedRange) {
  AllotConfig config = LoadConfigFromString(testing::TwoAgentConfigYaml(), "two-agent");
  const ActorServing prices(config, {std::log(1.0f), std::log(1.0f)}, {std::log(10.0f), 1.0f});
  float out[2];
  prices.WritePrices(std::vector<double>{10.0, 1.0}, out);
  EXPECT_NEAR(out[0], 1.0, 1e-6);
  EXPECT_NEAR(out[1], 0.0, 1e-6);
  prices.WritePrices(std::vector<double>{1e6, 0.0}, out);  // beyond the range; zero
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -1.0f);
  prices.WritePrices(std::vector<double>{std::nan(""), 0.5}, out);
  EXPECT_EQ(out[0], -1.0f);
  EXPECT_NEAR(out[1], std::log(0.5), 1e-6);
}

class MaddpgTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/allot-maddpg-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // testing::SmallBundleOptions with two heads, batches of 128.
  static TrainOptions Small(const std::string& algorithm, int hidden) {
    TrainOptions o = testing::SmallBundleOptions(2, hidden);
    o.algorithm = algorithm;
    o.batch = 128;
    return o;
  }
  TrainSummary Train(const TrainingLog& log, const AllotConfig& config,
                     const TrainOptions& o) const {
    std::ostringstream progress;
    return TrainBundle(log, config, o, dir_ + "/models", progress);
  }

  std::string dir_;
};

// Revenue = 1 + [a = 2] + 0.6 [b = 1] + 0.4 [a = 2 and b = 1] (synthetic.h), cost 1 + choice
// core-ms per agent. Cheap compute (lambda 0.1): the extra 2 core-ms of a = 2 cost 0.2 for a gain
// of 1.1-1.4, and b = 1 costs 0.1 for 0.6-1.0, so (2, 1). Dear compute (lambda 8): a = 2 costs 16
// more and b = 1 costs 8 more for at most 1.4, so (0, 0). The logs carry no prices, so the
// actors train over 0.1 x/ 10 around the modules' unset initial price of 1.
TEST_F(MaddpgTrainingTest, ActorsFollowThePriceOnAKnownTask) {
  const AllotConfig config = LoadConfigFromString(testing::TwoAgentConfigYaml(), "two-agent");
  std::filesystem::create_directories(dir_ + "/logs");
  testing::WriteSyntheticLog(dir_ + "/logs/a.binpb", 4000, 1);
  const TrainingLog log = ReadTrainingLog({dir_ + "/logs"}, config, false);
  TrainOptions o = Small("maddpg", 16);
  o.epochs = 8;
  o.value_epochs = 3;
  o.lr = 5e-3;
  const TrainSummary summary = Train(log, config, o);
  EXPECT_GT(summary.metrics.at("critic_deviance_user_value_only"),
            summary.metrics.at("critic_deviance"));
  const auto scorer = LoadBundle(summary.bundle_dir, config);
  std::mt19937 rng(9);
  std::normal_distribution<float> f(0.0f, 1.0f);
  int cheap_right = 0, dear_right = 0;
  for (int i = 0; i < 50; ++i) {
    const std::vector<float> x = {f(rng), f(rng)};
    std::vector<size_t> cheap, dear;
    for (size_t agent = 0; agent < 2; ++agent) {
      AgentScores s;
      ASSERT_TRUE(scorer->Score(agent, x, &s));
      size_t joint = 9;
      ASSERT_TRUE(scorer->Propose(agent, x, s, std::vector<double>{0.1, 0.1}, &joint));
      cheap.push_back(joint);
      ASSERT_TRUE(scorer->Propose(agent, x, s, std::vector<double>{8.0, 8.0}, &joint));
      dear.push_back(joint);
    }
    cheap_right += cheap == std::vector<size_t>{2, 1};
    dear_right += dear == std::vector<size_t>{0, 0};
  }
  EXPECT_GE(cheap_right, 45);
  EXPECT_GE(dear_right, 45);
}

// A maddpg bundle on the continuous config: written, loaded on both paths, and the fast path's
// proposals equal the reference's at random prices. The engine's rule serves the proposal.
TEST_F(MaddpgTrainingTest, BundleRoundTripsAndTheFastPathProposesAsTheReference) {
  const AllotConfig config = ContinuousConfig();
  testing::WriteRandomLog(config, dir_ + "/log.binpb", 1500, 4);
  const TrainingLog log = ReadTrainingLog({dir_ + "/log.binpb"}, config, false);
  TrainOptions o = Small("maddpg", 12);
  o.distil_epochs = 1;
  const TrainSummary summary = Train(log, config, o);
  for (const AgentConfig& agent : config.agents)
    EXPECT_TRUE(summary.metrics.count("actor_" + agent.name + "_distinct_actions")) << agent.name;
  const auto fast = LoadBundle(summary.bundle_dir, config, Inference::kFast);
  const auto reference = LoadBundle(summary.bundle_dir, config, Inference::kTorch);
  EXPECT_STREQ(fast->inference(), "fast");
  std::mt19937 rng(3);
  std::normal_distribution<float> f(0.0f, 1.5f);
  std::uniform_real_distribution<double> log_price(std::log(1e-3), std::log(30.0));
  std::vector<double> priced;
  for (int i = 0; i < 30; ++i) {
    std::vector<double> module_lambda;
    for (size_t m = 0; m < config.modules.size(); ++m)
      module_lambda.push_back(std::exp(log_price(rng)));
    for (size_t agent = 0; agent < config.agents.size(); ++agent) {
      std::vector<float> x(config.agents[agent].features.size());
      for (float& v : x) v = f(rng);
      AgentScores a, b;
      ASSERT_TRUE(fast->Score(agent, x, &a));
      ASSERT_TRUE(reference->Score(agent, x, &b));
      size_t fast_joint = 0, reference_joint = 1;
      ASSERT_TRUE(fast->Propose(agent, x, a, module_lambda, &fast_joint));
      ASSERT_TRUE(reference->Propose(agent, x, b, module_lambda, &reference_joint));
      EXPECT_EQ(fast_joint, reference_joint) << config.agents[agent].name;
      const ChosenAction chosen =
          DecideJoint(*fast, agent, x, a, module_lambda[0], module_lambda, 0.0, priced);
      EXPECT_EQ(chosen.joint, fast_joint);
      EXPECT_EQ(chosen.cost, a.cost[fast_joint]);
      EXPECT_TRUE(chosen.proposed);
      // A cap below the proposal's cost is a hard limit: the rule decides under it.
      const double cap = a.cost[fast_joint] * 0.999;
      if (*std::min_element(a.cost.begin(), a.cost.end()) <= cap) {
        const ChosenAction capped =
            DecideJoint(*fast, agent, x, a, module_lambda[0], module_lambda, cap, priced);
        EXPECT_LE(capped.cost, cap);
        EXPECT_NE(capped.joint, fast_joint);
        EXPECT_FALSE(capped.proposed);
      }
    }
  }
}

TEST_F(MaddpgTrainingTest, BundlesWithoutActorsProposeNothing) {
  const AllotConfig config = LoadConfigFromString(testing::TwoAgentConfigYaml(), "two-agent");
  testing::WriteSyntheticLog(dir_ + "/a.binpb", 600, 1);
  const TrainingLog log = ReadTrainingLog({dir_ + "/a.binpb"}, config, false);
  TrainOptions o = Small("awrq", 8);
  o.distil_epochs = 1;
  const TrainSummary summary = Train(log, config, o);
  const auto scorer = LoadBundle(summary.bundle_dir, config);
  AgentScores s;
  ASSERT_TRUE(scorer->Score(0, std::vector<float>{0.1f, 0.2f}, &s));
  size_t joint = 7;
  EXPECT_FALSE(
      scorer->Propose(0, std::vector<float>{0.1f, 0.2f}, s, std::vector<double>{1, 1}, &joint));
  EXPECT_EQ(joint, 7u);
  std::vector<double> priced;
  EXPECT_FALSE(DecideJoint(*scorer, 0, std::vector<float>{0.1f, 0.2f}, s, 1.0,
                           std::vector<double>{1, 1}, 0.0, priced)
                   .proposed);
}

}  // namespace
}  // namespace allot::models
