// What a bundle serves of the joint actions its logs hardly held (models/unlogged_actions.h),
// around the real analytic scorer.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "models/unlogged_actions.h"
#include "policy/action_space.h"
#include "policy/analytic_scorer.h"
#include "policy/config.h"
#include "policy/decision_rule.h"

namespace allot::models {
namespace {

std::vector<size_t> SpaceSizes(const AllotConfig& config) {
  std::vector<size_t> sizes;
  for (const AgentConfig& agent : config.agents) sizes.push_back(ActionSpace(agent).size());
  return sizes;
}

TEST(LoggedEvidenceTest, AValueIsServedOneStandardErrorLow) {
  EXPECT_NEAR(LoggedEvidenceShare(100), std::exp(-0.1), 1e-12);
  EXPECT_NEAR(LoggedEvidenceShare(10000), std::exp(-0.01), 1e-12);
  EXPECT_NEAR(LoggedEvidenceShare(0), std::exp(-1.0), 1e-12);  // as once
  EXPECT_LT(LoggedEvidenceShare(99), LoggedEvidenceShare(100));
}

// Each value keeps its joint action's share, costs are untouched, and an action the model rates a
// little higher loses to one the logs held far more often.
TEST(LoggedEvidenceTest, ThinlyLoggedActionsAreDiscountedAndLoseCloseCalls) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const auto analytic = std::make_shared<AnalyticScorer>(config);
  const std::vector<float> features(config.agents[2].features.size(), 0.0f);
  AgentScores plain;
  ASSERT_TRUE(analytic->Score(2, features, &plain));
  const size_t n = plain.value.size();
  const ChosenAction chosen_plain = ChooseAction(plain, 0.0);

  LoggedEvidence evidence;
  evidence.logged_counts.resize(config.agents.size());
  evidence.logged_counts[2].assign(n, 100000);
  evidence.logged_counts[2][chosen_plain.joint] = 4;  // the best by the model, hardly logged
  const auto served = ServeWithinLoggedEvidence(analytic, evidence, SpaceSizes(config));
  AgentScores s;
  ASSERT_TRUE(served->Score(2, features, &s));
  ASSERT_EQ(s.value.size(), n);
  for (size_t j = 0; j < n; ++j) {
    EXPECT_NEAR(s.value[j], plain.value[j] * LoggedEvidenceShare(evidence.logged_counts[2][j]),
                1e-9);
    EXPECT_EQ(s.cost[j], plain.cost[j]);
  }
  EXPECT_TRUE(s.excluded.empty());
  EXPECT_NE(ChooseAction(s, 0.0).joint, chosen_plain.joint);

  // Another agent without counts scores as before.
  AgentScores recall_plain, recall;
  const std::vector<float> recall_features(config.agents[0].features.size(), 0.0f);
  ASSERT_TRUE(analytic->Score(0, recall_features, &recall_plain));
  ASSERT_TRUE(served->Score(0, recall_features, &recall));
  EXPECT_EQ(recall.value, recall_plain.value);
}

TEST(LoggedEvidenceTest, NothingToApplyServesTheScorerItself) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const auto analytic = std::make_shared<AnalyticScorer>(config);
  LoggedEvidence wrong_size;
  wrong_size.logged_counts.assign(config.agents.size(), std::vector<int64_t>(3, 50));
  EXPECT_EQ(ServeWithinLoggedEvidence(analytic, {}, SpaceSizes(config)), analytic);
  AgentScores s, plain;
  const auto served = ServeWithinLoggedEvidence(analytic, wrong_size, SpaceSizes(config));
  const std::vector<float> features(config.agents[1].features.size(), 0.0f);
  ASSERT_TRUE(served->Score(1, features, &s));
  ASSERT_TRUE(analytic->Score(1, features, &plain));
  EXPECT_EQ(s.value, plain.value);
}

}  // namespace
}  // namespace allot::models
