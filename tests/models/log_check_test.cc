// allot-train --check-logs: the logged distribution per agent, and a wrong but in-range
// joint-action encoding flagged before training.
#include "models/log_check.h"

#include <gtest/gtest.h>

#include <random>

#include "allot/v1/transition.pb.h"
#include "policy/action_space.h"

namespace allot::models {
namespace {

// Every agent explores uniformly, except that `recall_index` (when set) replaces the recall
// agent's joint index the way a user who wrote the raw channel bitmask would.
TrainingLog ExploredLog(const AllotConfig& config, int rows, bool raw_bitmask) {
  TrainingLogBuilder builder(config);
  std::mt19937_64 rng(5);
  for (int i = 0; i < rows; ++i) {
    v1::Transition t;
    t.set_request_id("r" + std::to_string(i));
    for (const AgentConfig& agent : config.agents) {
      const ActionSpace space(agent);
      v1::AgentStep* s = t.add_steps();
      s->set_agent(agent.name);
      for (size_t f = 0; f < agent.features.size(); ++f) s->add_features(0.1f);
      size_t joint = std::uniform_int_distribution<size_t>(0, space.size() - 1)(rng);
      if (raw_bitmask && agent.name == "recall") {
        const uint32_t channels = 1u << agent.decisions[0].options.size();
        joint = std::uniform_int_distribution<uint32_t>(1, channels - 1)(rng);
      }
      s->set_joint_action(static_cast<uint32_t>(joint));
      s->set_cost(1.0);
      s->set_explored(true);
      s->set_propensity(1.0 / static_cast<double>(space.size()));
    }
    t.set_revenue(1.0);
    EXPECT_EQ(builder.Add(t), "");
  }
  return builder.Finish();
}

TEST(LogCheckTest, AUniformlyExploredLogCoversEveryOption) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const LogCheck check = CheckLogs(ExploredLog(config, 4000, false), config);
  ASSERT_EQ(check.agents.size(), config.agents.size());
  EXPECT_FALSE(check.flagged()) << FormatLogCheck(check);
  const AgentLogCheck& recall = check.agents[0];
  EXPECT_EQ(recall.decided, 4000);
  EXPECT_EQ(recall.explored, 4000);
  EXPECT_EQ(recall.propensity, 4000);
  int64_t total = 0;
  for (int64_t c : recall.joint_count) total += c;
  EXPECT_EQ(total, 4000);
  // A switch splits the requests between its two options.
  const DecisionCounts& elastic = recall.decisions[1];
  EXPECT_EQ(elastic.options[0].count + elastic.options[1].count, 4000);
  EXPECT_NE(FormatLogCheck(check).find("every option of every decision occurs"), std::string::npos);
}

TEST(LogCheckTest, ARawChannelBitmaskIsFlagged) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const LogCheck check = CheckLogs(ExploredLog(config, 4000, true), config);
  EXPECT_TRUE(check.flagged());
  const AgentLogCheck& recall = check.agents[0];
  // Masks 1..31 land on joint indices 1..31 of 62: the upper half never occurs.
  EXPECT_EQ(recall.never_joint.size(), ActionSpace(config.agents[0]).size() - 31);
  EXPECT_TRUE(recall.unexpected_gaps);
  EXPECT_FALSE(check.agents[1].unexpected_gaps);
  const std::string report = FormatLogCheck(check);
  EXPECT_NE(report.find("MISSING"), std::string::npos) << report;
  EXPECT_NE(report.find("agent recall"), std::string::npos);
}

// Every agent logs one of its first three joint actions, none marked explored, each with the
// propensity given (1: a deterministic logging policy).
TrainingLog ThreeActionLog(const AllotConfig& config, int rows, double propensity) {
  TrainingLogBuilder builder(config);
  for (int i = 0; i < rows; ++i) {
    v1::Transition t;
    t.set_request_id("r" + std::to_string(i));
    for (const AgentConfig& agent : config.agents) {
      v1::AgentStep* s = t.add_steps();
      s->set_agent(agent.name);
      for (size_t f = 0; f < agent.features.size(); ++f) s->add_features(0.1f);
      s->set_joint_action(static_cast<uint32_t>(i % 3));
      s->set_cost(1.0);
      s->set_propensity(propensity);
    }
    t.set_revenue(1.0);
    EXPECT_EQ(builder.Add(t), "");
  }
  return builder.Finish();
}

// Logs of a policy that never randomised hold only what it chose: the rest is unlogged, and a
// bundle trained on them will not choose it. A stochastic policy's unlikely draws are
// exploration even when nothing is marked explored.
TEST(LogCheckTest, WithoutExplorationTheJointActionsNeverLoggedAreUnlogged) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const size_t n = ActionSpace(config.agents[0]).size();
  const LogCheck deterministic = CheckLogs(ThreeActionLog(config, 3000, 1.0), config);
  const AgentLogCheck& recall = deterministic.agents[0];
  EXPECT_EQ(recall.randomised, 0);
  EXPECT_TRUE(recall.thin_exploration);
  ASSERT_EQ(recall.unlogged.size(), n - 3);
  EXPECT_EQ(recall.unlogged.front(), 3u);
  EXPECT_EQ(recall.unlogged.back(), n - 1);
  const std::string report = FormatLogCheck(deterministic);
  EXPECT_NE(report.find("THIN EXPLORATION"), std::string::npos) << report;
  EXPECT_TRUE(recall.exploration_recorded);
  EXPECT_EQ(report.find("records no exploration"), std::string::npos) << report;

  // The same log without propensities: exploration unknown, and the report says why it counts as
  // not randomised.
  const LogCheck unrecorded = CheckLogs(ThreeActionLog(config, 3000, 0.0), config);
  EXPECT_FALSE(unrecorded.agents[0].exploration_recorded);
  EXPECT_EQ(unrecorded.agents[0].unlogged, recall.unlogged);
  EXPECT_NE(FormatLogCheck(unrecorded).find("records no exploration"), std::string::npos);

  // Eight of the 3000 requests on a fourth action: still fewer than kMinLoggedPerAction.
  TrainingLog log = ThreeActionLog(config, 3000, 1.0);
  for (size_t r = 0; r < 8; ++r) log.agents[0].joint[r] = 3;
  EXPECT_EQ(CheckLogs(log, config).agents[0].unlogged.front(), 3u);

  const LogCheck stochastic = CheckLogs(ThreeActionLog(config, 3000, 0.3), config);
  EXPECT_EQ(stochastic.agents[0].randomised, 3000);
  EXPECT_FALSE(stochastic.agents[0].thin_exploration);
  EXPECT_TRUE(stochastic.agents[0].unlogged.empty());
  EXPECT_EQ(FormatLogCheck(stochastic).find("THIN EXPLORATION"), std::string::npos);
}

TEST(LogCheckTest, AnOptionNeverChosenIsNamed) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  TrainingLogBuilder builder(config);
  const AgentConfig& rank = config.agents[2];
  const ActionSpace space(rank);
  // Only joint action 0, never explored: every other option of every decision is missing, and
  // with no exploration the missing joint actions are expected.
  for (int i = 0; i < 50; ++i) {
    v1::Transition t;
    for (const AgentConfig& agent : config.agents) {
      v1::AgentStep* s = t.add_steps();
      s->set_agent(agent.name);
      for (size_t f = 0; f < agent.features.size(); ++f) s->add_features(0.0f);
      s->set_joint_action(0);
      s->set_cost(1.0);
    }
    t.set_revenue(1.0);
    ASSERT_EQ(builder.Add(t), "");
  }
  const LogCheck check = CheckLogs(builder.Finish(), config);
  EXPECT_TRUE(check.flagged());
  EXPECT_FALSE(check.agents[2].unexpected_gaps);
  EXPECT_EQ(check.agents[2].never_joint.size(), space.size() - 1);
  EXPECT_EQ(check.agents[2].decided, 50);
  EXPECT_EQ(check.agents[2].explored, 0);
  const std::string report = FormatLogCheck(check);
  const std::string& second_queue = rank.decisions[0].options[1].label;
  EXPECT_NE(report.find("NEVER LOGGED: " + rank.decisions[0].name + "=" + second_queue),
            std::string::npos)
      << report;
}

}  // namespace
}  // namespace allot::models
