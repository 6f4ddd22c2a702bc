// Off-policy estimators on logs whose answer is known: a one-step bandit (each estimator, its
// interval's coverage, the effective sample size) and the two-agent chain replayed through the
// decision engine with a fixed candidate.
#include "models/offpolicy.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <random>

#include "models/training_log.h"
#include "tests/models/synthetic.h"

namespace allot::models {
namespace {

// Uniform logging over three arms with mean rewards {1, 2, 4}; the candidate always pulls arm 2,
// so its true value is 4. The doubly robust model is biased by +0.5 on every arm.
struct Bandit {
  std::vector<double> weight, outcome, dr;
};

Bandit LogBandit(int n, uint64_t seed) {
  constexpr std::array<double, 3> kMean = {1.0, 2.0, 4.0};
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> arm(0, 2);
  std::normal_distribution<double> noise(0.0, 0.5);
  Bandit b;
  for (int i = 0; i < n; ++i) {
    const int a = arm(rng);
    const double y = kMean[static_cast<size_t>(a)] + noise(rng);
    const double w = a == 2 ? 3.0 : 0.0;
    const double q_logged = kMean[static_cast<size_t>(a)] + 0.5, q_target = kMean[2] + 0.5;
    b.weight.push_back(w);
    b.outcome.push_back(y);
    b.dr.push_back(q_target + w * (y - q_logged));
  }
  return b;
}

bool Covers(const Interval& i, double truth) { return i.lower <= truth && truth <= i.upper; }

TEST(OffPolicyEstimators, RecoverAKnownBanditValue) {
  const Bandit b = LogBandit(30000, 1);
  const OutcomeEstimates e = EstimateOutcome(b.weight, b.outcome, b.dr);
  EXPECT_NEAR(e.logged, (1.0 + 2.0 + 4.0) / 3.0, 0.03);
  for (const Interval* i : {&e.ips, &e.snips, &e.dr}) {
    EXPECT_NEAR(i->estimate, 4.0, 0.1);
    EXPECT_TRUE(Covers(*i, 4.0)) << i->estimate << " [" << i->lower << ", " << i->upper << "]";
    EXPECT_LT(i->upper - i->lower, 0.2);
  }
  // SNIPS only averages the matched requests: its interval is the tightest here.
  EXPECT_LT(e.snips.upper - e.snips.lower, e.ips.upper - e.ips.lower);
  // A third of the log matches with weight 3: worth n / 3 requests.
  EXPECT_NEAR(EffectiveSampleSize(b.weight), 10000.0, 300.0);
}

TEST(OffPolicyEstimators, IntervalsCoverTheTruthAtAboutTheirNominalRate) {
  int ips = 0, snips = 0, dr = 0;
  constexpr int kRuns = 400;
  for (int run = 0; run < kRuns; ++run) {
    const Bandit b = LogBandit(600, 100 + static_cast<uint64_t>(run));
    const OutcomeEstimates e = EstimateOutcome(b.weight, b.outcome, b.dr);
    ips += Covers(e.ips, 4.0);
    snips += Covers(e.snips, 4.0);
    dr += Covers(e.dr, 4.0);
  }
  for (const int covered : {ips, snips, dr}) {
    EXPECT_GE(covered, static_cast<int>(0.90 * kRuns));
    EXPECT_LE(covered, static_cast<int>(0.99 * kRuns));
  }
}

TEST(OffPolicyEstimators, NoMatchedRequestLeavesSnipsUndefined) {
  const std::vector<double> w = {0.0, 0.0}, y = {1.0, 2.0}, dr = {1.5, 1.5};
  const OutcomeEstimates e = EstimateOutcome(w, y, dr);
  EXPECT_TRUE(std::isnan(e.snips.estimate));
  EXPECT_DOUBLE_EQ(e.ips.estimate, 0.0);
  EXPECT_DOUBLE_EQ(e.dr.estimate, 1.5);
  EXPECT_DOUBLE_EQ(EffectiveSampleSize(w), 0.0);
}

// The candidate of the two-agent chain: the first agent's option 2 and the second's option 1,
// whatever the request (the known task's optimum, worth E[R] = 3.0), predicted a little wrong.
class FixedChoiceScorer final : public ActionScorer {
 public:
  const std::string& version() const override { return version_; }
  const char* inference() const override { return "analytic"; }
  bool Score(size_t agent, std::span<const float>, AgentScores* out) const override {
    const size_t best = agent == 0 ? 2 : 1;
    out->value.assign(3, 1.0);
    out->value[best] = 2.5;
    out->cost.assign({1.0, 2.0, 3.0});
    out->user_value = 2.0;
    out->excluded.clear();  // the AgentScores contract: nothing carried over from another scorer
    return true;
  }

 private:
  std::string version_ = "fixed";
};

class OffPolicyReplay : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/allot-offpolicy-XXXXXX";
    dir_ = mkdtemp(tmpl);
    config_ = LoadConfigFromString(testing::TwoAgentConfigYaml(), "two-agent");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  AllotConfig config_;
};

TEST_F(OffPolicyReplay, TheChainsKnownOptimumIsEstimatedFromUniformLogs) {
  testing::WriteSyntheticLog(dir_ + "/log.binpb", 9000, 3);
  const TrainingLog log = ReadTrainingLog({dir_ + "/log.binpb"}, config_, false);
  std::vector<int64_t> rows(log.rows);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  const OffPolicyReport r =
      EvaluateOffPolicy(log, rows, config_, std::make_shared<FixedChoiceScorer>());
  ASSERT_TRUE(r.unusable.empty()) << r.unusable;
  EXPECT_EQ(r.requests, 9000);
  EXPECT_NEAR(static_cast<double>(r.matched), 1000.0, 100.0);  // 1 in 9 matches both agents
  for (const Interval* i : {&r.revenue.ips, &r.revenue.snips, &r.revenue.dr}) {
    EXPECT_TRUE(Covers(*i, 3.0)) << i->estimate << " [" << i->lower << ", " << i->upper << "]";
    EXPECT_NEAR(i->estimate, 3.0, 0.25);  // IPS: standard error 0.09 here
  }
  // Logged cost is 1 + choice per agent: the candidate spends 3 + 2 = 5 core-ms.
  EXPECT_NEAR(r.cost.snips.estimate, 5.0, 1e-9);
  EXPECT_NEAR(r.cost.dr.estimate, 5.0, 0.15);
  // The log's lambdas are 0, so net return is revenue.
  EXPECT_NEAR(r.net.dr.estimate, r.revenue.dr.estimate, 1e-9);
  EXPECT_NEAR(r.revenue.logged, 1.0 + 1.0 / 3 + 0.6 / 3 + 0.4 / 9, 0.05);
}

TEST_F(OffPolicyReplay, StagesServedFromTheCacheMatchOnTheReuseAlone) {
  testing::WriteReuseLog(dir_ + "/reuse.binpb", 4000, 5);
  const TrainingLog log = ReadTrainingLog({dir_ + "/reuse.binpb"}, config_, false);
  std::vector<int64_t> rows(log.rows);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  const OffPolicyReport r =
      EvaluateOffPolicy(log, rows, config_, std::make_shared<FixedChoiceScorer>());
  ASSERT_TRUE(r.unusable.empty()) << r.unusable;
  // The config disables cache reuse, so the candidate always recomputes: it matches the half of
  // the requests that did, and among those the 1 in 9 with both agents' choices.
  EXPECT_NEAR(static_cast<double>(r.matched), 4000.0 / 2 / 9, 60.0);
  EXPECT_TRUE(Covers(r.revenue.snips, 3.0)) << r.revenue.snips.estimate;
}

TEST_F(OffPolicyReplay, LogsWithoutPropensitiesAreNamedNotEstimated) {
  testing::WriteSyntheticLog(dir_ + "/log.binpb", 50, 4);
  TrainingLog log = ReadTrainingLog({dir_ + "/log.binpb"}, config_, false);
  std::fill(log.agents[1].propensity.begin(), log.agents[1].propensity.end(), 0.0f);
  std::vector<int64_t> rows = {0, 1, 2};
  const OffPolicyReport r =
      EvaluateOffPolicy(log, rows, config_, std::make_shared<FixedChoiceScorer>());
  EXPECT_NE(r.unusable.find("agents[second]"), std::string::npos) << r.unusable;
  EXPECT_NE(r.unusable.find("AgentStep.propensity"), std::string::npos) << r.unusable;
  EXPECT_NE(FormatOffPolicyReport(r).find("no estimate"), std::string::npos);
}

TEST_F(OffPolicyReplay, PropensitiesOutsideZeroToOneAreRefusedWithTheField) {
  v1::Transition t;
  std::mt19937_64 rng(1);
  testing::AddStep(t, "first", 0, rng)->set_propensity(1.5);
  testing::AddStep(t, "second", 0, rng);
  t.set_revenue(1.0);
  TrainingLogBuilder builder(config_);
  EXPECT_EQ(builder.Add(t), "steps[0].propensity: must be in [0, 1]");
  t.mutable_steps(0)->set_propensity(0.5);
  t.set_cache_reuse_propensity(-1);
  EXPECT_EQ(builder.Add(t), "cache_reuse_propensity: must be in [0, 1]");
  t.set_cache_reuse_propensity(1);
  EXPECT_EQ(builder.Add(t), "");
  EXPECT_EQ(builder.Finish().rows, 1u);
}

}  // namespace
}  // namespace allot::models
