// The decision rule, the action space encoding and the analytic model.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "policy/action_space.h"
#include "policy/analytic_scorer.h"
#include "policy/cost_order.h"
#include "policy/decision_rule.h"
#include "policy/decision_rules.h"
#include "policy/score_scans.h"

namespace allot {
namespace {

AgentScores Scores(std::vector<double> value, std::vector<double> cost) {
  AgentScores s;
  s.value = std::move(value);
  s.cost = std::move(cost);
  return s;
}

DecisionConfig Decision(DecisionKind kind, const std::vector<int>& lengths_or_options) {
  DecisionConfig d;
  d.kind = kind;
  for (const int v : lengths_or_options) {
    OptionConfig o;
    o.queue_length = v;
    o.label = kind == DecisionKind::kSwitch ? (v ? "on" : "off") : std::to_string(v);
    d.options.push_back(o);
  }
  return d;
}

// Each kind's rules in one place: cheaper steps, levels, and the models' choice code.
TEST(DecisionKindRulesTest, CheaperStepsLevelsAndCodesFollowTheKind) {
  std::vector<uint32_t> cheaper;
  const DecisionConfig link = Decision(DecisionKind::kLink, {0, 1, 2});
  AppendCheaperChoices(link, 0b101, cheaper);
  EXPECT_EQ(cheaper, (std::vector<uint32_t>{0b100, 0b001}));
  EXPECT_EQ(CostLevel(link, 0b101), 2);
  std::vector<float> code(ChoiceCodeWidth(link));
  EncodeChoice(link, 0b101, code);
  EXPECT_EQ(code, (std::vector<float>{1, 0, 1}));

  const DecisionConfig queue = Decision(DecisionKind::kQueue, {200, 50, 100});
  cheaper.clear();
  AppendCheaperChoices(queue, 0, cheaper);  // 200: the next shorter is 100 (option 2)
  EXPECT_EQ(cheaper, (std::vector<uint32_t>{2}));
  cheaper.clear();
  AppendCheaperChoices(queue, 1, cheaper);  // 50 is the shortest
  EXPECT_TRUE(cheaper.empty());
  EXPECT_EQ(CostLevel(queue, 0), 2);
  code.assign(ChoiceCodeWidth(queue), -1.0f);
  EncodeChoice(queue, 2, code);  // 100: one shorter length
  EXPECT_EQ(code, (std::vector<float>{1, 0}));

  const DecisionConfig toggle = Decision(DecisionKind::kSwitch, {0, 1});
  cheaper.clear();
  AppendCheaperChoices(toggle, 1, cheaper);
  EXPECT_EQ(cheaper, (std::vector<uint32_t>{0}));
  EXPECT_EQ(ChoiceCodeWidth(toggle), 1u);
  EXPECT_DOUBLE_EQ(ChoiceCount(link), 8.0);
  EXPECT_DOUBLE_EQ(ChoiceCount(queue), 3.0);
  EXPECT_THROW(ValidateDecisionShape(Decision(DecisionKind::kSwitch, {1, 0}), "d"), ConfigError);
}

TEST(DecisionRuleTest, PicksArgmaxOfValueMinusPricedCost) {
  const AgentScores s = Scores({1.0, 2.0, 3.0}, {0.0, 1.0, 3.0});
  EXPECT_EQ(ChooseAction(s, 0.0).joint, 2u);  // free compute: most valuable
  EXPECT_EQ(ChooseAction(s, 0.6).joint, 1u);  // 1.0, 1.4, 1.2
  EXPECT_EQ(ChooseAction(s, 2.0).joint, 0u);  // expensive compute: cheapest
}

TEST(DecisionRuleTest, TiesGoToTheLowerIndex) {
  EXPECT_EQ(ChooseAction(Scores({1.0, 1.0}, {0.0, 0.0}), 1.0).joint, 0u);
}

// The uncapped rule's lane-wise scan picks what the one-by-one scan of the capped rule picks
// under a cap nothing reaches: on every length around the lane width, with many ties (values on
// a coarse grid), NaN values skipped, and the cheapest action when every value is NaN.
TEST(DecisionRuleTest, UncappedScanAgreesWithTheCappedScanIncludingTiesAndNaN) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> grid(0, 4);
  const double nan = std::nan("");
  for (size_t n = 1; n <= 13; ++n) {
    for (int trial = 0; trial < 50; ++trial) {
      AgentScores s;
      for (size_t j = 0; j < n; ++j) {
        s.value.push_back(trial % 5 == 0 && grid(rng) == 0 ? nan : grid(rng) * 0.5);
        s.cost.push_back(grid(rng) * 0.25);
      }
      const double lambda = 0.5 * (trial % 3);
      const ChosenAction fast = ChooseAction(s, lambda);
      const ChosenAction scan = ChooseAction(s, lambda, 1e300);
      ASSERT_EQ(fast.joint, scan.joint) << "n " << n << " trial " << trial;
      EXPECT_FALSE(fast.capped);
    }
  }
  const ChosenAction all_nan = ChooseAction(Scores({nan, nan, nan}, {2.0, 1.0, 3.0}), 1.0);
  EXPECT_EQ(all_nan.joint, 1u);
}

// The vector scans against plain loops: one odd number at every position of arrays of every
// length up to three vector steps and a tail.
TEST(ScoreScansTest, FiniteChecksCatchOneBadNumberAnywhere) {
  const double inf = std::numeric_limits<double>::infinity();
  const double max = std::numeric_limits<double>::max();
  for (size_t n = 0; n <= 14; ++n) {
    for (size_t at = 0; at < n; ++at) {
      for (const double odd : {std::nan(""), inf, -inf, -1e-300, -0.0, max, -max, 0.0}) {
        std::vector<double> x(n, 1.5);
        x[at] = odd;
        bool finite = true, finite_non_negative = true;
        for (const double v : x) {
          finite &= std::isfinite(v);
          finite_non_negative &= std::isfinite(v) && v >= 0.0;
        }
        EXPECT_EQ(score_scans::AllFinite(x.data(), n, false), finite)
            << n << " " << at << " " << odd;
        EXPECT_EQ(score_scans::AllFinite(x.data(), n, true), finite_non_negative)
            << n << " " << at << " " << odd;
      }
    }
    const std::vector<double> ones(n, 1.0);
    EXPECT_TRUE(score_scans::AllFinite(ones.data(), n, true));
  }
}

TEST(ScoreScansTest, MaxNetScoreIsThePlainMaximumIgnoringNaN) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (size_t n = 0; n <= 14; ++n) {
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<double> net(n), cost(n);
      for (size_t j = 0; j < n; ++j) {
        net[j] = trial % 4 == 0 && j % 3 == 1 ? std::nan("") : u(rng);
        cost[j] = std::abs(u(rng));
      }
      const double lambda = 0.25 * (trial % 5);
      double expected = -std::numeric_limits<double>::infinity();
      for (size_t j = 0; j < n; ++j) {
        const double score = net[j] - lambda * cost[j];
        if (score > expected) expected = score;
      }
      EXPECT_EQ(score_scans::MaxNetScore(net.data(), cost.data(), n, lambda), expected)
          << "n " << n << " trial " << trial;
    }
  }
}

TEST(DecisionRuleTest, CostCapExcludesExpensiveActions) {
  const AgentScores s = Scores({1.0, 2.0, 3.0}, {1.0, 2.0, 3.0});
  const ChosenAction a = ChooseAction(s, 0.0, 2.5);
  EXPECT_EQ(a.joint, 1u);
  EXPECT_TRUE(a.capped);
  EXPECT_DOUBLE_EQ(a.cost, 2.0);
  // Nothing fits: the cheapest action.
  EXPECT_EQ(ChooseAction(s, 0.0, 0.5).joint, 0u);
}

// A bundle trained on logs that hardly held some joint actions excludes them
// (AgentScores::excluded): never chosen, with or without a cap, not even as the cheapest when
// nothing fits, nor when an actor proposes one; a mask that excludes everything is ignored.
TEST(DecisionRuleTest, ExcludedActionsAreNeverChosen) {
  AgentScores s = Scores({1.0, 2.0, 3.0}, {1.0, 2.0, 3.0});
  s.excluded = {0, 0, 1};
  EXPECT_EQ(ChooseAction(s, 0.0).joint, 1u);  // 2 is the most valuable, and excluded
  EXPECT_EQ(ChooseAction(s, 0.0, 2.5).joint, 1u);

  class Proposing final : public ActionScorer {
   public:
    const std::string& version() const override { return version_; }
    const char* inference() const override { return "test"; }
    bool Score(size_t, std::span<const float>, AgentScores*) const override { return false; }
    bool Propose(size_t, std::span<const float>, const AgentScores&, std::span<const double>,
                 size_t* joint) const override {
      *joint = 2;
      return true;
    }

   private:
    std::string version_ = "proposing";
  } actor;
  std::vector<double> priced;
  EXPECT_EQ(DecideJoint(actor, 0, {}, s, 0.0, {}, 0.0, priced).joint, 1u);
  s.excluded.clear();
  EXPECT_EQ(DecideJoint(actor, 0, {}, s, 0.0, {}, 0.0, priced).joint, 2u);

  s.excluded = {1, 0, 0};
  EXPECT_EQ(ChooseAction(s, 5.0).joint, 1u);       // dear compute: 0 is the cheapest, excluded
  EXPECT_EQ(ChooseAction(s, 0.0, 0.5).joint, 1u);  // nothing fits: the cheapest allowed
  s.excluded = {1, 1, 1};
  EXPECT_EQ(ChooseAction(s, 0.0).joint, 2u);
}

TEST(DecisionRuleTest, TotalCostIsNonIncreasingInLambda) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  AgentScores s;
  for (int i = 0; i < 50; ++i) {
    s.value.push_back(u(rng));
    s.cost.push_back(u(rng));
  }
  double last = 1e9;
  for (double lambda = 0; lambda < 5; lambda += 0.05) {
    const double cost = ChooseAction(s, lambda).cost;
    EXPECT_LE(cost, last + 1e-12) << "lambda " << lambda;
    last = cost;
  }
}

// MaRCA's inter-stage dependency: an upstream option that is worth a little more but loads a
// later module heavily loses once that module's compute is priced.
TEST(DecisionRuleTest, CostInALaterModuleChangesTheUpstreamChoice) {
  AgentScores s = Scores({1.0, 1.2}, {1.0, 1.0});  // own module: the same cost
  s.cross_module = {1};
  s.cross_cost = {0.5, 3.0};  // module 1: option 1 loads it six times more
  std::vector<double> scratch;
  const std::vector<double> later_free = {0.1, 0.0};
  const std::vector<double> later_priced = {0.1, 0.2};
  EXPECT_EQ(ChooseActionAcrossModules(s, 0.1, later_free, 0.0, scratch).joint, 1u);
  const ChosenAction priced = ChooseActionAcrossModules(s, 0.1, later_priced, 0.0, scratch);
  EXPECT_EQ(priced.joint, 0u);          // 1.0 - 0.1 - 0.1 = 0.8 beats 1.2 - 0.1 - 0.6 = 0.5
  EXPECT_DOUBLE_EQ(priced.value, 1.0);  // values are reported unpriced
  EXPECT_DOUBLE_EQ(priced.cost, 1.0);   // and the cost is the own module's
  // Without cross costs the rule is the single-module one.
  EXPECT_EQ(
      ChooseActionAcrossModules(Scores({1.0, 1.2}, {1.0, 1.0}), 0.1, later_priced, 0.0, scratch)
          .joint,
      1u);
}

// Arrays back to back (one per later module, as FinishScores passes them) are each enforced as if
// alone: no maximum leaks from one module's costs into another's.
TEST(CostOrderTest, ArraysBackToBackAreEnforcedOneByOne) {
  const AgentConfig recall = LoadEmbeddedDefaultConfig().agents[0];
  const ActionSpace space(recall);
  const CostOrder order(recall, space);
  const size_t n = space.size();
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0.0, 10.0);
  std::vector<double> together(3 * n);
  for (double& c : together) c = u(rng);
  together[n] = 1e6;  // a high first entry of the second array
  std::vector<double> alone = together;
  order.Enforce(together);
  for (size_t a = 0; a < 3; ++a) order.Enforce(std::span<double>(alone.data() + a * n, n));
  EXPECT_EQ(together, alone);
  EXPECT_LT(together[0], 1e6);
  EXPECT_LT(together[2 * n + n - 1], 1e6);
}

// A learned cost model may predict a longer queue cheaper than a shorter one; served costs are
// raised so that no option is cheaper than a strictly cheaper option of the same decision.
TEST(CostOrderTest, ServedCostsAreMonotoneInEveryDecision) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  for (const AgentConfig& agent : config.agents) {
    const ActionSpace space(agent);
    const CostOrder order(agent, space);
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> u(0.0, 10.0);
    std::vector<double> cost(space.size());
    for (double& c : cost) c = u(rng);
    const std::vector<double> raw = cost;
    order.Enforce(cost);
    for (size_t j = 0; j < space.size(); ++j) {
      EXPECT_GE(cost[j], raw[j]);  // only ever raised
      for (uint32_t k : order.CheaperNeighbours(j)) EXPECT_GE(cost[j], cost[k]) << agent.name;
    }
  }
  // The neighbours are the intended ones: rank queue 400 + heavy model on (joint 7) has the
  // queue 200 with the model on and the queue 400 with it off below it.
  const AgentConfig& rank = config.agents[2];
  const ActionSpace space(rank);
  const CostOrder order(rank, space);
  const std::vector<uint32_t> q400_on = {3, 1}, q200_on = {2, 1}, q400_off = {3, 0};
  const auto below = order.CheaperNeighbours(space.IndexOf(q400_on));
  ASSERT_EQ(below.size(), 2u);
  EXPECT_EQ(below[0], space.IndexOf(q200_on));
  EXPECT_EQ(below[1], space.IndexOf(q400_off));
  // A channel set has every set with one channel fewer below it (when still feasible).
  const ActionSpace recall(config.agents[0]);
  const CostOrder recall_order(config.agents[0], recall);
  const std::vector<uint32_t> three = {0b00111, 0};
  EXPECT_EQ(recall_order.CheaperNeighbours(recall.IndexOf(three)).size(), 3u);
  const std::vector<uint32_t> one = {0b00001, 0};
  EXPECT_EQ(recall_order.CheaperNeighbours(recall.IndexOf(one)).size(), 0u);  // min_selected 1
}

// The analytic model can say what the learned one learns: a channel loads pre-rank, and the heavy
// rank model multiplies the cost of the whole rank queue instead of adding a constant.
TEST(AnalyticScorerTest, CostsReachLaterModulesAndInteract) {
  std::string yaml = EmbeddedDefaultConfigYaml();
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  };
  replace("{name: u2i_dnn,   gain: [0.18, 0.24, 0.30, 0.36], cost_ms: 2.0}",
          "{name: u2i_dnn, gain: [0.18, 0.24, 0.30, 0.36], cost_ms: 2.0, "
          "module_cost_ms: {prerank: 1.5, rank: 0.5}}");
  replace("{name: \"on\",  gain: [0.01, 0.04, 0.08, 0.14], cost_ms: 3.0}",
          "{name: \"on\", gain: [0.01, 0.04, 0.08, 0.14], cost_ms: 0.0, cost_multiplier: 1.5}");
  const AllotConfig config = LoadConfigFromString(yaml, "cross");
  const AnalyticScorer scorer(config);
  AgentScores s;
  ASSERT_TRUE(scorer.Score(0, std::vector<float>(8, 0.0f), &s));
  EXPECT_EQ(s.cross_module, (std::vector<size_t>{1, 2}));
  const ActionSpace recall(config.agents[0]);
  const std::vector<uint32_t> with_u2i = {0b00011, 0}, without = {0b00001, 0};
  const size_t n = recall.size();
  EXPECT_DOUBLE_EQ(s.cross_cost[recall.IndexOf(with_u2i)], 1.5);
  EXPECT_DOUBLE_EQ(s.cross_cost[n + recall.IndexOf(with_u2i)], 0.5);
  EXPECT_DOUBLE_EQ(s.cross_cost[recall.IndexOf(without)], 0.0);
  EXPECT_DOUBLE_EQ(s.cost[recall.IndexOf(with_u2i)], 1.2 + 2.0);  // own module: unchanged
  ASSERT_TRUE(scorer.Score(2, std::vector<float>(8, 0.0f), &s));
  EXPECT_TRUE(s.cross_module.empty());
  const ActionSpace rank(config.agents[2]);
  const std::vector<uint32_t> q400_on = {3, 1}, q400_off = {3, 0};
  EXPECT_DOUBLE_EQ(s.cost[rank.IndexOf(q400_off)], 10.8);
  EXPECT_DOUBLE_EQ(s.cost[rank.IndexOf(q400_on)], 10.8 * 1.5);
}

TEST(ActionSpaceTest, LinkEnumeratesSubsetsWithinSelectionBounds) {
  AgentConfig agent = LoadEmbeddedDefaultConfig().agents[0];  // recall: 5 channels x switch
  const ActionSpace space(agent);
  EXPECT_EQ(space.size(), 31u * 2u);
  for (size_t j = 0; j < space.size(); ++j) {
    EXPECT_GE(std::popcount(space.Choice(j, 0)), 1);
    EXPECT_LE(space.Choice(j, 1), 1u);
    EXPECT_EQ(space.IndexOf(space.Choices(j)), j);
  }
  agent.decisions[0].min_selected = 2;
  agent.decisions[0].max_selected = 3;
  EXPECT_EQ(ActionSpace(agent).size(), (10u + 10u) * 2u);  // C(5,2) + C(5,3)
}

TEST(ActionSpaceTest, SafeDefaultMatchesTheConfig) {
  const AllotConfig c = LoadEmbeddedDefaultConfig();
  const ActionSpace recall(c.agents[0]);
  const auto choices = recall.Choices(recall.safe_default());
  EXPECT_EQ(choices[0], 0b101u);  // i2i (bit 0) and hot (bit 2)
  EXPECT_EQ(choices[1], 0u);      // elastic off
  const ActionSpace rank(c.agents[2]);
  EXPECT_EQ(rank.Choices(rank.safe_default())[0], 1u);  // queue 100
}

TEST(ActionSpaceTest, LastDecisionVariesFastest) {
  const ActionSpace rank(LoadEmbeddedDefaultConfig().agents[2]);  // queue(4) x switch(2)
  EXPECT_EQ(rank.Choice(0, 0), 0u);
  EXPECT_EQ(rank.Choice(1, 1), 1u);
  EXPECT_EQ(rank.Choice(2, 0), 1u);
  EXPECT_EQ(rank.IndexOf(std::vector<uint32_t>{3, 1}), 7u);
  EXPECT_EQ(rank.IndexOf(std::vector<uint32_t>{4, 0}), rank.size());
}

TEST(AnalyticScorerTest, ValueFollowsTheDocumentedFormula) {
  const AllotConfig c = LoadEmbeddedDefaultConfig();
  const AnalyticScorer scorer(c);
  // prerank features: user_hist_value_log, user_activity, ctr_7d, is_new_user, ...
  const std::vector<float> x = {1.0f, 0.5f, 0.1f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  AgentScores s;
  ASSERT_TRUE(scorer.Score(1, x, &s));
  const double v = std::exp(-0.2 + 1.0 * 1.0 + 0.4 * 0.5 + 3.0 * 0.1);
  EXPECT_NEAR(s.user_value, v, 1e-6 * v);  // features are floats
  EXPECT_EQ(s.value_bucket, 2);            // 1.5 <= v < 4
  ASSERT_EQ(s.value.size(), 4u);
  EXPECT_NEAR(s.value[1], v * 0.56, 1e-6 * v);
  EXPECT_DOUBLE_EQ(s.cost[3], 5.6);
}

TEST(AnalyticScorerTest, LinkValueAndCostAreSumsOverChannels) {
  const AllotConfig c = LoadEmbeddedDefaultConfig();
  const AnalyticScorer scorer(c);
  const ActionSpace space(c.agents[0]);
  AgentScores s;
  ASSERT_TRUE(scorer.Score(0, std::vector<float>(8, 0.0f), &s));      // v = exp(-0.2), bucket 1
  const size_t j = space.IndexOf(std::vector<uint32_t>{0b00011, 1});  // i2i + u2i_dnn, elastic on
  EXPECT_NEAR(s.cost[j], 1.2 + 2.0 + 1.5, 1e-12);
  EXPECT_NEAR(s.value[j], std::exp(-0.2) * (0.32 + 0.24 + 0.03), 1e-12);
}

TEST(AnalyticScorerTest, RefusesWrongWidthAndUnknownAgent) {
  const AnalyticScorer scorer(LoadEmbeddedDefaultConfig());
  AgentScores s;
  EXPECT_FALSE(scorer.Score(0, std::vector<float>(3, 0.0f), &s));
  EXPECT_FALSE(scorer.Score(9, std::vector<float>(8, 0.0f), &s));
}

TEST(AnalyticScorerTest, ExtremeFeaturesStayFinite) {
  const AnalyticScorer scorer(LoadEmbeddedDefaultConfig());
  AgentScores s;
  ASSERT_TRUE(scorer.Score(0, std::vector<float>(8, 3e38f), &s));
  EXPECT_TRUE(std::isfinite(s.user_value));
  for (double v : s.value) EXPECT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace allot
