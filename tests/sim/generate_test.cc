// generate writes sharded delimited Transition files that read back with consistent totals.
#include "sim/generate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "policy/action_space.h"
#include "policy/scorer.h"
#include "sim/transition_io.h"
#include "tests/sim/sim_test_util.h"

namespace allot::sim {
namespace {

std::string ManifestText(const GenerateSummary& summary) {
  std::ifstream manifest(summary.manifest);
  return {std::istreambuf_iterator<char>(manifest), std::istreambuf_iterator<char>()};
}

// Logging options writing into a fresh directory under /tmp (the test removes it).
GenerateOptions InFreshDirectory(int64_t requests, int shards, double epsilon) {
  char tmpl[] = "/tmp/allot-sim-gen-XXXXXX";
  GenerateOptions options;
  options.out_dir = mkdtemp(tmpl);
  options.requests = requests;
  options.shards = shards;
  options.epsilon = epsilon;
  return options;
}

TEST(GenerateTest, ShardsReadBackWithConsistentTotals) {
  const auto world = testing::MakeWorld();
  GenerateOptions options = InFreshDirectory(4000, 3, 0.2);
  const std::string dir = options.out_dir;
  options.seed = 9;
  const GenerateSummary summary = Generate(*world, options);
  ASSERT_EQ(summary.requests, 4000);
  ASSERT_EQ(summary.files.size(), 3u);

  int64_t n = 0, steps = 0, explored = 0, reuses = 0;
  double revenue = 0;
  std::vector<double> cost(world->config().agents.size(), 0.0);
  std::set<std::string> ids;
  std::map<std::string, size_t> shard_of_user;
  for (size_t s = 0; s < summary.files.size(); ++s) {
    const int64_t count = ReadTransitions(summary.files[s], [&](const v1::Transition& t) {
      ++n;
      revenue += t.revenue();
      EXPECT_TRUE(ids.insert(t.request_id()).second);
      const auto [it, inserted] = shard_of_user.emplace(t.user_id(), s);
      EXPECT_EQ(it->second, s) << "a user's requests stay in one shard";
      EXPECT_LT(t.time_slot(), 96u);
      EXPECT_GE(t.user_value(), 0.0);
      reuses += t.cache_reuse() != v1::CACHE_REUSE_NONE;
      // The reuse is drawn among "recompute" and every cached stage.
      const double reuse_choices = 1.0 + static_cast<double>(t.cache_size());
      if (t.cache_size() == 0)
        EXPECT_DOUBLE_EQ(t.cache_reuse_propensity(), 1.0);
      else
        EXPECT_TRUE(std::abs(t.cache_reuse_propensity() - (0.8 + 0.2 / reuse_choices)) < 1e-12 ||
                    std::abs(t.cache_reuse_propensity() - 0.2 / reuse_choices) < 1e-12)
            << t.cache_reuse_propensity();
      if (t.cache_reuse() != v1::CACHE_REUSE_NONE) {
        EXPECT_GT(t.cache_size(), 0);
      }
      for (const v1::AgentStep& step : t.steps()) {
        ++steps;
        explored += step.explored();
        const AllotConfig& config = world->config();
        const AgentConfig* agent = config.FindAgent(step.agent());
        ASSERT_NE(agent, nullptr);
        EXPECT_EQ(static_cast<size_t>(step.features_size()), agent->features.size());
        const size_t index = static_cast<size_t>(agent - config.agents.data());
        cost[index] += step.cost();
        for (const AgentLayout& layout : world->layout().chain()) {
          if (layout.agent == index) {
            EXPECT_LT(step.joint_action(), layout.space.size());
            // Epsilon-greedy: the base choice with 1 - eps + eps / n, any other with eps / n;
            // a step that did not explore kept the base choice.
            const double choices = static_cast<double>(layout.space.size());
            const double base = 0.8 + 0.2 / choices, other = 0.2 / choices;
            if (!step.explored()) {
              EXPECT_DOUBLE_EQ(step.propensity(), base);
            }
            EXPECT_TRUE(std::abs(step.propensity() - base) < 1e-12 ||
                        std::abs(step.propensity() - other) < 1e-12)
                << step.propensity();
          }
        }
      }
    });
    EXPECT_EQ(count, summary.shard_counts[s]);
  }
  EXPECT_EQ(n, summary.requests);
  EXPECT_EQ(steps, summary.steps);
  EXPECT_EQ(explored, summary.explored_steps);
  EXPECT_EQ(reuses, summary.cache_reuses);
  EXPECT_NEAR(revenue, summary.revenue, 1e-6 * summary.revenue);
  for (size_t a = 0; a < cost.size(); ++a)
    EXPECT_NEAR(cost[a], summary.agent_cost[a], 1e-6 * summary.agent_cost[a]);
  // Exploration happens at about the configured rate (per step, plus cache choices).
  EXPECT_NEAR(static_cast<double>(explored) / static_cast<double>(steps), 0.2, 0.05);
  EXPECT_GT(reuses, 0);

  const std::string text = ManifestText(summary);
  EXPECT_NE(text.find("\"requests\": 4000"), std::string::npos) << text;
  EXPECT_NE(text.find("\"policy\": \"analytic\""), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

// Scores one joint action per agent (its last) above every other, at no cost: a rule that always
// picks it, whatever the price.
class LastActionScorer : public ActionScorer {
 public:
  explicit LastActionScorer(const AllotConfig& config) {
    for (const AgentConfig& agent : config.agents) sizes_.push_back(ActionSpace(agent).size());
  }
  const std::string& version() const override { return version_; }
  const char* inference() const override { return "test"; }
  bool Score(size_t agent, std::span<const float>, AgentScores* out) const override {
    out->user_value = 1.0;
    out->value.assign(sizes_[agent], 0.5);
    out->value.back() = 1.0;
    out->cost.assign(sizes_[agent], 0.0);
    return true;
  }

 private:
  std::vector<size_t> sizes_;
  std::string version_ = "last-action";
};

// With a scorer, the logs are the decisions of the rule around it: the served policy logging for
// the next training. Every step that did not explore chose what that scorer ranks first, and the
// manifest names the policy.
TEST(GenerateTest, LogsTheRuleOfTheGivenScorer) {
  const auto world = testing::MakeWorld();
  GenerateOptions options = InFreshDirectory(1500, 1, 0.1);
  const std::string dir = options.out_dir;
  options.scorer = std::make_shared<LastActionScorer>(world->config());
  const GenerateSummary summary = Generate(*world, options);
  const AllotConfig& config = world->config();
  int64_t kept = 0;
  ReadTransitions(summary.files[0], [&](const v1::Transition& t) {
    for (const v1::AgentStep& step : t.steps()) {
      if (step.explored()) continue;
      const AgentConfig* agent = config.FindAgent(step.agent());
      ASSERT_NE(agent, nullptr);
      EXPECT_EQ(step.joint_action(), ActionSpace(*agent).size() - 1) << step.agent();
      ++kept;
    }
  });
  EXPECT_GT(kept, 1500);
  const std::string text = ManifestText(summary);
  EXPECT_NE(text.find("\"policy\": \"last-action\""), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

TEST(GenerateTest, CorruptFilesAreReported) {
  char tmpl[] = "/tmp/allot-sim-bad-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::ofstream(dir + "/bad.binpb", std::ios::binary) << "\x7f\x01\x02";  // length 127, 2 bytes
  EXPECT_THROW(ReadTransitions(dir + "/bad.binpb", [](const v1::Transition&) {}),
               std::runtime_error);
  EXPECT_THROW(ReadTransitions(dir + "/missing.binpb", [](const v1::Transition&) {}),
               std::runtime_error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace allot::sim
