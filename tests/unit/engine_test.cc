// Cache reuse, the score reservoir, telemetry aggregation and the allocation engine.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "policy/allocation_engine.h"
#include "policy/analytic_scorer.h"
#include "policy/cache_reuse.h"
#include "policy/score_reservoir.h"
#include "policy/telemetry_store.h"

namespace allot {
namespace {

CacheReuseConfig ThreeStages() {
  CacheReuseConfig c;
  c.max_age_s = 300;
  c.stages = {
      {"recall", "recall", 240, 6.0}, {"prerank", "prerank", 120, 3.0}, {"rank", "rank", 45, 8.0}};
  return c;
}

// A bundle's reuse model may say that a cached output loses value at once (exposed items,
// drifted interests), which no half-life can express: a fresh cache is then not worth reusing.
TEST(CacheReuseTest, LearnedRetainedShareAndStageCostsReplaceTheConfigRule) {
  const std::vector<double> lambdas = {0.1, 0.1, 0.1};
  const std::vector<CachedStage> caches = {{2, true, 2.3, 100}};
  // Half-life rule: 0.5^(2.3 / 120) keeps 98.7% of 1.0; saving 0.1 * (6 + 3) = 0.9 wins.
  EXPECT_EQ(ChooseCacheReuse(ThreeStages(), 1.0, lambdas, caches).reuse, 2);
  const std::vector<double> retained = {0.69};
  ReuseEstimates learned;
  learned.retained = retained;
  const CacheReuseChoice c = ChooseCacheReuse(ThreeStages(), 10.0, lambdas, caches, -1, learned);
  EXPECT_EQ(c.reuse, 0);  // loses 3.1 of value to save 0.9 of compute
  EXPECT_EQ(ChooseCacheReuse(ThreeStages(), 2.0, lambdas, caches, -1, learned).reuse, 2);
  EXPECT_NEAR(ChooseCacheReuse(ThreeStages(), 2.0, lambdas, caches, -1, learned).value_retained,
              0.69, 1e-12);
  // The bundle's predicted stage costs price the saving: cheap stages are not worth 0.62 of value.
  const std::vector<double> cheap = {1.0, 0.5, 8.0};
  learned.stage_cost = cheap;
  EXPECT_EQ(ChooseCacheReuse(ThreeStages(), 2.0, lambdas, caches, -1, learned).reuse, 0);
}

TEST(CacheReuseTest, NoCacheMeansRecompute) {
  const std::vector<double> lambdas = {1, 1, 1};
  EXPECT_EQ(ChooseCacheReuse(ThreeStages(), 10.0, lambdas, {}).reuse, 0);
}

TEST(CacheReuseTest, FreshRankCacheIsReusedWhenComputeIsPriced) {
  const std::vector<double> lambdas = {0.1, 0.1, 0.1};
  const std::vector<CachedStage> caches = {{3, true, 1.0, 20}};
  const CacheReuseChoice c = ChooseCacheReuse(ThreeStages(), 1.0, lambdas, caches);
  EXPECT_EQ(c.reuse, 3);
  EXPECT_DOUBLE_EQ(c.cost_saved_ms, 17.0);
  EXPECT_NEAR(c.value_retained, std::exp2(-1.0 / 45), 1e-12);
}

TEST(CacheReuseTest, OldOrEmptyOrAbsentCachesAreIgnored) {
  const std::vector<double> lambdas = {0.1, 0.1, 0.1};
  EXPECT_EQ(
      ChooseCacheReuse(ThreeStages(), 1.0, lambdas, std::vector<CachedStage>{{3, true, 301, 20}})
          .reuse,
      0);
  EXPECT_EQ(ChooseCacheReuse(ThreeStages(), 1.0, lambdas, std::vector<CachedStage>{{3, true, 1, 0}})
                .reuse,
            0);
  EXPECT_EQ(
      ChooseCacheReuse(ThreeStages(), 1.0, lambdas, std::vector<CachedStage>{{3, false, 1, 20}})
          .reuse,
      0);
}

TEST(CacheReuseTest, HighValueRequestsRecomputeAndCheapComputeIsNotSaved) {
  const std::vector<CachedStage> caches = {{3, true, 30.0, 20}};
  const std::vector<double> priced = {0.1, 0.1, 0.1};
  // Losing 37% of a value of 100 costs far more than 1.7 units of priced compute.
  EXPECT_EQ(ChooseCacheReuse(ThreeStages(), 100.0, priced, caches).reuse, 0);
  const std::vector<double> free = {0, 0, 0};
  EXPECT_EQ(ChooseCacheReuse(ThreeStages(), 1.0, free, caches).reuse, 0);
}

TEST(CacheReuseTest, PrefersTheStageWithTheBestTradeOff) {
  // Rank cache is old (its value has decayed); the recall cache is fresh but saves less.
  const std::vector<double> lambdas = {0.1, 0.1, 0.1};
  const std::vector<CachedStage> caches = {{1, true, 2.0, 50}, {3, true, 200.0, 50}};
  EXPECT_EQ(ChooseCacheReuse(ThreeStages(), 2.0, lambdas, caches).reuse, 1);
}

TEST(ScoreReservoirTest, KeepsTheMostRecentSamplesOldestFirst) {
  ScoreReservoir r(3, 1);
  AgentScores s;
  s.value = {0};
  s.cost = {0};
  for (int i = 0; i < 5; ++i) {
    s.user_value = i;
    r.MaybeRecord(0, s);
  }
  const auto snap = r.Snapshot();
  ASSERT_EQ(snap.size(), 3u);
  EXPECT_EQ(snap[0].user_value, 2);
  EXPECT_EQ(snap[2].user_value, 4);
  EXPECT_EQ(r.recorded(), 5u);
}

TEST(ScoreReservoirTest, SamplesOneInN) {
  ScoreReservoir r(100, 4);
  AgentScores s;
  for (int i = 0; i < 40; ++i) r.MaybeRecord(1, s);
  EXPECT_EQ(r.Snapshot().size(), 10u);
}

TEST(ScoreReservoirTest, ConcurrentRecordingNeverBlocksOrLosesTrack) {
  ScoreReservoir r(64, 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      AgentScores s;
      s.value.assign(10, 1.0);
      s.cost.assign(10, 2.0);
      for (int i = 0; i < 5000; ++i) r.MaybeRecord(0, s);
    });
  }
  for (int i = 0; i < 100; ++i) r.Snapshot();
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.recorded() + r.dropped(), 20000u);
  for (const auto& s : r.Snapshot()) EXPECT_EQ(s.value.size(), 10u);
}

TEST(TelemetryStoreTest, AggregatesReportersAndIgnoresOutOfOrderSamples) {
  ManualClock clock;
  TelemetryStore store(clock);
  const int64_t t = clock.NowMs();
  EXPECT_FALSE(store.Latest("rank").has_value());
  EXPECT_EQ(store.Report("rank", "pod-a", {0.4, 100, 0, t}), ReportOutcome::kAccepted);
  store.Report("rank", "pod-b", {0.6, 300, 2, t - 1000});
  auto load = store.Latest("rank");
  ASSERT_TRUE(load);
  EXPECT_DOUBLE_EQ(load->cpu_utilization, 0.5);  // the median of two is their mean
  EXPECT_DOUBLE_EQ(load->qps, 400);              // median share times the replicas
  EXPECT_EQ(load->degradation_level, 1u);
  EXPECT_EQ(load->timestamp_ms, t);
  EXPECT_EQ(store.Report("rank", "pod-a", {0.9, 1, 0, t - 5}), ReportOutcome::kOutOfOrder);
  // A reporter silent for longer than the window no longer counts, and is forgotten.
  clock.AdvanceMs(20'000);
  store.Report("rank", "pod-a", {0.2, 50, 0, clock.NowMs()});
  load = store.Latest("rank");
  EXPECT_DOUBLE_EQ(load->cpu_utilization, 0.2);
  EXPECT_DOUBLE_EQ(load->qps, 50);
  EXPECT_EQ(store.NumReporters("rank"), 1u);
}

// Three honest replicas at 0.46; whatever one other caller sends, the module's load stays theirs.
TEST(TelemetryStoreTest, OneHostileReporterCannotMoveTheLoad) {
  for (const double hostile : {0.0, 1.0}) {
    ManualClock clock;
    TelemetryStore store(clock);
    for (int tick = 0; tick < 50; ++tick) {
      for (const char* pod : {"pod-a", "pod-b", "pod-c"})
        store.Report("recall", pod, {0.46, 100, 0, clock.NowMs()});
      const ReportOutcome o = store.Report("recall", "evil", {hostile, 100, 3, clock.NowMs()});
      EXPECT_TRUE(o == ReportOutcome::kOutlier) << ReportOutcomeName(o);
      clock.AdvanceMs(200);
    }
    const auto load = store.Latest("recall");
    EXPECT_DOUBLE_EQ(load->cpu_utilization, 0.46) << hostile;
    EXPECT_EQ(load->degradation_level, 0u);
  }
}

TEST(TelemetryStoreTest, RefusesFutureStaleFloodingAndUnlistedReporters) {
  ManualClock clock;
  ReportLoadConfig limits;
  limits.max_reporters = 4;
  limits.reports_per_s = 5;
  TelemetryStore store(clock, limits);
  const int64_t now = clock.NowMs();
  EXPECT_EQ(store.Report("rank", "a", {1.0, 1, 0, now + 59'000}), ReportOutcome::kFuture);
  EXPECT_EQ(store.Report("rank", "a", {1.0, 1, 0, 86'400'000}), ReportOutcome::kExpired);  // 1970
  EXPECT_FALSE(store.Latest("rank").has_value());
  // A burst of twice the rate passes, then the reporter waits for its allowance.
  int accepted = 0;
  for (int i = 0; i < 30; ++i) accepted += !Refused(store.Report("rank", "a", {0.5, 1, 0, 0}));
  EXPECT_EQ(accepted, 10);
  EXPECT_EQ(store.Report("rank", "a", {0.5, 1, 0, 0}), ReportOutcome::kRateLimited);
  clock.AdvanceMs(1000);
  EXPECT_FALSE(Refused(store.Report("rank", "a", {0.5, 1, 0, 0})));
  // The reporter map is bounded; the silent expire and make room.
  for (const char* name : {"b", "c", "d"}) store.Report("rank", name, {0.5, 1, 0, 0});
  EXPECT_EQ(store.Report("rank", "e", {0.5, 1, 0, 0}), ReportOutcome::kTooManyReporters);
  clock.AdvanceMs(11'000);
  EXPECT_EQ(store.Report("rank", "e", {0.5, 1, 0, 0}), ReportOutcome::kAccepted);
  EXPECT_EQ(store.NumReporters("rank"), 1u);
  limits.reporters = {"pod-a"};
  store.Configure(limits);
  EXPECT_EQ(store.Report("rank", "e", {0.5, 1, 0, 0}), ReportOutcome::kNotAllowed);
  EXPECT_EQ(store.Report("rank", "pod-a", {0.5, 1, 0, 0}), ReportOutcome::kAccepted);
}

TEST(TelemetryStoreTest, ZeroTimestampMeansNow) {
  ManualClock clock(5'000'000);
  TelemetryStore store(clock);
  store.Report("recall", "", {0.3, 10, 0, 0});
  EXPECT_EQ(store.Latest("recall")->timestamp_ms, 5'000'000);
}

class FailingScorer final : public ActionScorer {
 public:
  const std::string& version() const override { return version_; }
  const char* inference() const override { return "analytic"; }
  bool Score(size_t, std::span<const float>, AgentScores*) const override {
    throw std::runtime_error("boom");
  }

 private:
  std::string version_ = "failing";
};

class EngineTest : public ::testing::Test {
 protected:
  std::shared_ptr<const AllotConfig> config_ =
      std::make_shared<const AllotConfig>(LoadEmbeddedDefaultConfig());
  std::shared_ptr<const PolicySnapshot> policy_ =
      MakePolicySnapshot(config_, std::make_shared<const AnalyticScorer>(*config_));
};

TEST_F(EngineTest, DecidesWithTheModulesLambda) {
  AllocationEngine engine(policy_, 16, 1);
  const std::vector<float> x(8, 0.0f);
  const Allocation cheap = engine.Decide(policy_, 1, x, {});
  EXPECT_FALSE(cheap.fallback);
  EXPECT_DOUBLE_EQ(cheap.lambda, 0.1);
  auto expensive = std::make_shared<LambdaTable>();
  expensive->modules = {{"recall", 0.1, 0}, {"prerank", 5.0, 0}, {"rank", 0.1, 0}};
  engine.SetLambdas(expensive);
  const Allocation a = engine.Decide(policy_, 1, x, {});
  EXPECT_DOUBLE_EQ(a.lambda, 5.0);
  EXPECT_LT(a.cost, cheap.cost);
  EXPECT_EQ(a.joint, 0u);  // the shortest queue
  EXPECT_EQ(engine.reservoir().recorded(), 2u);
}

// Each thread keeps copies of a few engines' prices: engines decided with in turn on one thread
// (experiment arms), more of them than the copies, each decide with their own, and with a new
// table as soon as it is stored.
TEST_F(EngineTest, EnginesDecidingInTurnOnOneThreadEachUseTheirOwnPrices) {
  std::vector<std::unique_ptr<AllocationEngine>> engines;
  const auto prerank_price = [](double lambda) {
    auto table = std::make_shared<LambdaTable>();
    table->modules = {{"recall", 0.1, 0}, {"prerank", lambda, 0}, {"rank", 0.1, 0}};
    return table;
  };
  for (int e = 0; e < 6; ++e) {
    engines.push_back(std::make_unique<AllocationEngine>(policy_, 16, 1));
    engines.back()->SetLambdas(prerank_price(1.0 + e));
  }
  const std::vector<float> x(8, 0.0f);
  for (int round = 0; round < 3; ++round) {
    for (size_t e = 0; e < engines.size(); ++e) {
      EXPECT_DOUBLE_EQ(engines[e]->Decide(policy_, 1, x, {}).lambda, 1.0 + e + 10 * round)
          << "engine " << e << " round " << round;
    }
    for (size_t e = 0; e < engines.size(); ++e)
      engines[e]->SetLambdas(prerank_price(1.0 + e + 10 * (round + 1)));
  }
}

// A shadow decision is the same decision, but feeds neither the control loop's reservoir nor the
// cache budget's statistics.
TEST_F(EngineTest, AShadowDecisionLeavesNoTrace) {
  std::string yaml = EmbeddedDefaultConfigYaml();
  const std::string from = "mode: lambda";
  ASSERT_NE(yaml.find(from), std::string::npos);
  yaml.replace(yaml.find(from), from.size(), "mode: budget");
  auto config = std::make_shared<const AllotConfig>(LoadConfigFromString(yaml, "budget"));
  auto policy = MakePolicySnapshot(config, std::make_shared<const AnalyticScorer>(*config));
  AllocationEngine engine(policy, 16, 1);
  ASSERT_NE(engine.cache_budget(), nullptr);
  const std::vector<float> x(8, 0.5f);
  const std::vector<CachedStage> caches = {{2, true, 5.0, 30}};  // a fresh rank output
  const Allocation served = engine.Decide(policy, 0, x, caches);
  const uint64_t recorded = engine.reservoir().recorded();
  const double mu = engine.cache_budget()->mu();
  for (int i = 0; i < 50; ++i) {
    const Allocation shadow = engine.Decide(policy, 0, x, caches, DecisionUse::kShadow);
    EXPECT_EQ(shadow.joint, served.joint);
    EXPECT_EQ(shadow.cache.reuse, served.cache.reuse);
  }
  EXPECT_EQ(engine.reservoir().recorded(), recorded);
  EXPECT_EQ(engine.cache_budget()->mu(), mu);
  EXPECT_EQ(engine.cache_budget()->window_requests(), 1u);
}

// The engine prices the compute an upstream choice causes downstream at the downstream module's
// lambda: when pre-rank compute gets dear, recall stops picking the channel that loads it.
TEST_F(EngineTest, PricesLaterModulesCostsAtTheirLambdas) {
  std::string yaml = EmbeddedDefaultConfigYaml();
  const std::string from = "{name: u2i_dnn,   gain: [0.18, 0.24, 0.30, 0.36], cost_ms: 2.0}";
  yaml.replace(yaml.find(from), from.size(),
               "{name: u2i_dnn, gain: [0.18, 0.24, 0.30, 0.36], cost_ms: 2.0, "
               "module_cost_ms: {prerank: 4.0}}");
  auto config = std::make_shared<const AllotConfig>(LoadConfigFromString(yaml, "cross"));
  auto policy = MakePolicySnapshot(config, std::make_shared<const AnalyticScorer>(*config));
  AllocationEngine engine(policy, 16, 1);
  const std::vector<float> x = {2.0f, 1.0f, 0.1f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};  // high value
  auto table = std::make_shared<LambdaTable>();
  table->modules = {{"recall", 0.01, 0}, {"prerank", 0.0, 0}, {"rank", 0.01, 0}};
  engine.SetLambdas(table);
  const uint32_t u2i = 1u << 1;
  const Allocation free_prerank = engine.Decide(policy, 0, x, {});
  EXPECT_TRUE(policy->spaces[0].Choice(free_prerank.joint, 0) & u2i);
  auto dear = std::make_shared<LambdaTable>(*table);
  dear->modules[1].lambda = 5.0;
  engine.SetLambdas(dear);
  const Allocation dear_prerank = engine.Decide(policy, 0, x, {});
  EXPECT_FALSE(policy->spaces[0].Choice(dear_prerank.joint, 0) & u2i);
  EXPECT_DOUBLE_EQ(dear_prerank.lambda, 0.01);  // the own module's price is reported
}

// Decisions read their module's price by index; a table built for another module list (published
// while a reload installs a new one) is read by name, and a module it lacks is priced at 0.
TEST_F(EngineTest, PricesByIndexForTheSameModulesAndByNameOtherwise) {
  LambdaTable table;
  table.modules = {{"recall", 0.1, 0}, {"prerank", 0.2, 0}, {"rank", 0.3, 0}};
  table.layout = ModuleLayout(*config_);
  EXPECT_EQ(policy_->module_layout, table.layout);
  EXPECT_DOUBLE_EQ(table.Lambda(policy_->module_layout, policy_->agent_module_index[2], "rank"),
                   0.3);
  AllotConfig renamed = *config_;
  renamed.modules[0].name = "retrieval";
  const uint64_t other = ModuleLayout(renamed);
  EXPECT_NE(other, table.layout);
  EXPECT_DOUBLE_EQ(table.Lambda(other, 1, "prerank"), 0.2);
  EXPECT_DOUBLE_EQ(table.Lambda(other, 0, "retrieval"), 0.0);
  std::swap(renamed.modules[1], renamed.modules[2]);  // same names, another order
  EXPECT_NE(ModuleLayout(renamed), other);
}

TEST_F(EngineTest, ScorerFailureAnswersWithTheSafeDefault) {
  auto failing = MakePolicySnapshot(config_, std::make_shared<const FailingScorer>());
  AllocationEngine engine(failing, 16, 1);
  const Allocation a = engine.Decide(failing, 0, std::vector<float>(8, 0.0f), {});
  EXPECT_TRUE(a.fallback);
  EXPECT_STREQ(a.fallback_reason, "scorer_failed");
  EXPECT_EQ(a.joint, failing->spaces[0].safe_default());
}

// A model that overflows: what a learned network answers for features far outside its training
// range (a probe got user_value NaN for features[0] = 1e38 from the default bundle).
class OverflowingScorer final : public ActionScorer {
 public:
  OverflowingScorer(const AllotConfig& config, double user_value, double value, double cost)
      : analytic_(config), user_value_(user_value), value_(value), cost_(cost) {}
  const std::string& version() const override { return analytic_.version(); }
  const char* inference() const override { return analytic_.inference(); }
  bool Score(size_t agent, std::span<const float> features, AgentScores* out) const override {
    analytic_.Score(agent, features, out);
    out->user_value = user_value_;
    out->value.back() = value_;
    out->cost.back() = cost_;
    return true;
  }

 private:
  AnalyticScorer analytic_;
  double user_value_, value_, cost_;
};

// A non-finite score or a negative cost never reaches the caller or the reservoir the
// controllers learn from.
TEST_F(EngineTest, UnservableScoresAnswerWithTheSafeDefaultAndStayOutOfTheReservoir) {
  const double nan = std::nan(""), inf = INFINITY;
  for (const auto& [user_value, value, cost] : std::vector<std::tuple<double, double, double>>{
           {nan, 1.0, 1.0}, {1.0, inf, 1.0}, {1.0, 1.0, -inf}, {1.0, 1.0, -0.5}, {1.0, 1.0, nan}}) {
    auto policy = MakePolicySnapshot(
        config_, std::make_shared<const OverflowingScorer>(*config_, user_value, value, cost));
    AllocationEngine engine(policy, 16, 1);
    for (size_t agent = 0; agent < 3; ++agent) {
      const Allocation a = engine.Decide(policy, agent, std::vector<float>(8, 0.5f), {});
      EXPECT_TRUE(a.fallback);
      EXPECT_STREQ(a.fallback_reason, "scorer_output_invalid");
      EXPECT_EQ(a.joint, policy->spaces[agent].safe_default());
      EXPECT_TRUE(std::isfinite(a.user_value) && std::isfinite(a.value) && std::isfinite(a.cost));
    }
    EXPECT_EQ(engine.reservoir().recorded(), 0u);
  }
  auto finite = MakePolicySnapshot(
      config_, std::make_shared<const OverflowingScorer>(*config_, 1.0, 1.0, 1.0));
  AllocationEngine engine(finite, 16, 1);
  EXPECT_FALSE(engine.Decide(finite, 0, std::vector<float>(8, 0.5f), {}).fallback);
  EXPECT_EQ(engine.reservoir().recorded(), 1u);
}

TEST_F(EngineTest, FeatureBoundsClipBeforeScoring) {
  AllotConfig bounded = *config_;
  FeatureBoundConfig bound;
  bound.feature = bounded.agents[2].features[0];
  bound.min = -1;
  bound.max = 4;
  bounded.agents[2].feature_bounds.push_back(bound);
  auto config = std::make_shared<const AllotConfig>(bounded);
  auto policy = MakePolicySnapshot(config, std::make_shared<const AnalyticScorer>(*config));
  AllocationEngine engine(policy, 16, 1);
  std::vector<float> huge(8, 0.5f), at_bound(8, 0.5f);
  huge[0] = 1e38f;
  at_bound[0] = 4.0f;
  const Allocation clipped = engine.Decide(policy, 2, huge, {});
  const Allocation reference = engine.Decide(policy, 2, at_bound, {});
  EXPECT_FALSE(clipped.fallback);
  EXPECT_EQ(clipped.joint, reference.joint);
  EXPECT_DOUBLE_EQ(clipped.user_value, reference.user_value);
}

TEST_F(EngineTest, ReloadKeepsLambdasOfModulesThatStillExist) {
  AllocationEngine engine(policy_, 16, 1);
  auto table = std::make_shared<LambdaTable>();
  table->modules = {{"recall", 3.0, 0}, {"prerank", 4.0, 0}, {"rank", 5.0, 0}};
  engine.SetLambdas(table);
  AllotConfig next = *config_;
  ModuleConfig gpu;
  gpu.name = "gpu";
  gpu.initial_lambda = 0.7;
  next.modules.push_back(gpu);
  auto cfg = std::make_shared<const AllotConfig>(next);
  engine.SetPolicy(MakePolicySnapshot(cfg, std::make_shared<const AnalyticScorer>(*cfg)));
  EXPECT_DOUBLE_EQ(engine.lambdas()->Get("rank", -1), 5.0);
  EXPECT_DOUBLE_EQ(engine.lambdas()->Get("gpu", -1), 0.7);
}

TEST_F(EngineTest, OverloadCapLimitsTheCostOfEachRequest) {
  AllocationEngine engine(policy_, 16, 1);
  auto table = std::make_shared<LambdaTable>();
  table->modules = {{"recall", 0.0, 0}, {"prerank", 0.0, 0}, {"rank", 0.0, 3.0}};
  engine.SetLambdas(table);
  const std::vector<float> x(8, 1.0f);
  const Allocation a = engine.Decide(policy_, 2, x, {});
  EXPECT_LE(a.cost, 3.0);
  EXPECT_TRUE(a.capped);
  EXPECT_GT(engine.Decide(policy_, 1, x, {}).cost, 3.0);  // prerank is not capped
}

// Scores every joint action of every agent alike: a request worth `user_value` whose options all
// predict `action_value` at 1 core-ms. With a `reuse_share`, its reuse model says that every
// cached output makes that share of the user value.
class FlatScorer final : public ActionScorer {
 public:
  FlatScorer(const AllotConfig& config, double user_value, double action_value,
             double reuse_share = -1.0)
      : user_value_(user_value), action_value_(action_value), reuse_share_(reuse_share) {
    for (const AgentConfig& agent : config.agents) spaces_.emplace_back(agent);
  }
  bool ScoreReuse(size_t, std::span<const float>, const AgentScores&, std::span<const CachedStage>,
                  std::span<double> retained) const override {
    if (reuse_share_ < 0) return false;
    for (double& share : retained) share = reuse_share_;
    return true;
  }
  const std::string& version() const override { return version_; }
  const char* inference() const override { return "analytic"; }
  bool Score(size_t agent, std::span<const float>, AgentScores* out) const override {
    out->user_value = user_value_;
    out->value.assign(spaces_[agent].size(), action_value_);
    out->cost.assign(spaces_[agent].size(), 1.0);
    return true;
  }

 private:
  std::vector<ActionSpace> spaces_;
  std::string version_ = "flat";
  double user_value_, action_value_, reuse_share_;
};

// What a reuse puts at stake is what recomputing would make, the chosen action's predicted value:
// a request of modest user value whose chosen options are predicted to earn much more recomputes.
TEST_F(EngineTest, ReuseWeighsTheChosenActionsValueNotTheUserValue) {
  const std::vector<CachedStage> caches = {{3, true, 20.0, 30}};  // rank, 20 s old
  auto decide = [&](double action_value) {
    auto policy =
        MakePolicySnapshot(config_, std::make_shared<FlatScorer>(*config_, 0.5, action_value));
    AllocationEngine engine(policy, 16, 1);
    return engine.Decide(policy, 0, std::vector<float>(8, 0.0f), caches);
  };
  // The half-life rule keeps 0.5^(20/45) = 0.73 of the value; the stages' configured compute
  // (4 + 2 + 4 core-ms at lambda 0.1) is worth 1.0.
  EXPECT_EQ(decide(0.5).cache.reuse, 3);  // loses 0.13 to save 1.0
  EXPECT_EQ(decide(5.0).cache.reuse, 0);  // would lose 1.35 to save 1.0
}

// A learned reuse model predicts what a reuse makes as a share of the user value, as it was
// trained. The cached output is the same whatever this request would choose, so a cheap choice
// can be worth less than the cache: the reuse then keeps more than all of the fresh value.
TEST_F(EngineTest, ALearnedReuseKeepsAShareOfTheUserValueNotOfTheChosenOption) {
  const std::vector<CachedStage> caches = {{3, true, 20.0, 30}};  // rank, 20 s old
  auto decide = [&](double user_value, double action_value, double share) {
    auto policy = MakePolicySnapshot(
        config_, std::make_shared<FlatScorer>(*config_, user_value, action_value, share));
    AllocationEngine engine(policy, 16, 1);
    return engine.Decide(policy, 0, std::vector<float>(8, 0.0f), caches);
  };
  // The stages' configured compute (4 + 2 + 4 core-ms at lambda 0.1) is worth 1.0.
  // Half of a user value of 30 is 15, more than the 10 the chosen options would make afresh.
  const Allocation richer = decide(30.0, 10.0, 0.5);
  EXPECT_EQ(richer.cache.reuse, 3);
  EXPECT_NEAR(richer.cache.value_retained, 1.5, 1e-12);
  // 0.95 of a user value of 1 keeps 0.95 of the 10 the chosen options would make: recompute,
  // although 0.95 of the fresh value would have been worth reusing.
  EXPECT_EQ(decide(1.0, 10.0, 0.95).cache.reuse, 0);
}

// Scores joint action j at value 10 (j + 1) for j + 1 core-ms, so the priced argmax takes the
// dearest action at any price below 10, and proposes the contrary of what the rule would choose
// (the cheapest action while its own module's price is below 1, the dearest above): MADDPG's
// actors through the engine. Remembers the prices it was shown.
class ContraryActorScorer final : public ActionScorer {
 public:
  explicit ContraryActorScorer(const AllotConfig& config) : config_(config) {
    for (const AgentConfig& agent : config.agents) spaces_.emplace_back(agent);
  }
  const std::string& version() const override { return version_; }
  const char* inference() const override { return "fast"; }
  bool Score(size_t agent, std::span<const float>, AgentScores* out) const override {
    const size_t n = spaces_[agent].size();
    out->value.resize(n);
    out->cost.resize(n);
    for (size_t j = 0; j < n; ++j) {
      out->value[j] = 10.0 * static_cast<double>(j + 1);
      out->cost[j] = static_cast<double>(j + 1);
    }
    return true;
  }
  bool Propose(size_t agent, std::span<const float>, const AgentScores& scores,
               std::span<const double> module_lambda, size_t* joint) const override {
    if (throws) throw std::runtime_error("actor failed");
    seen_.assign(module_lambda.begin(), module_lambda.end());
    const int module = config_.ModuleIndex(config_.agents[agent].module);
    *joint = module_lambda[static_cast<size_t>(module)] < 1.0 ? 0 : scores.value.size() - 1;
    return true;
  }
  const std::vector<double>& seen() const { return seen_; }
  bool throws = false;

 private:
  const AllotConfig& config_;
  std::vector<ActionSpace> spaces_;
  std::string version_ = "contrary";
  mutable std::vector<double> seen_;  // single-threaded tests only
};

TEST_F(EngineTest, AnActorsProposalIsServedWithinTheCostCap) {
  const std::shared_ptr<const AllotConfig>& config = config_;
  auto scorer = std::make_shared<ContraryActorScorer>(*config);
  auto policy = MakePolicySnapshot(config, scorer);
  AllocationEngine engine(policy, 16, 1);
  const std::vector<float> x(8, 0.0f);
  auto prices = [&](double lambda, double cap) {
    auto table = std::make_shared<LambdaTable>();
    for (size_t m = 0; m < config->modules.size(); ++m)
      table->modules.push_back({config->modules[m].name, lambda * static_cast<double>(m + 1), cap});
    engine.SetLambdas(table);
  };
  prices(0.1, 0.0);
  Allocation a = engine.Decide(policy, 0, x, {});
  EXPECT_EQ(a.joint, 0u);  // the rule would take the dearest
  EXPECT_DOUBLE_EQ(a.cost, 1.0);
  EXPECT_FALSE(a.fallback);
  // The actor is shown every module's price, in config order.
  ASSERT_EQ(scorer->seen().size(), config->modules.size());
  for (size_t m = 0; m < config->modules.size(); ++m)
    EXPECT_DOUBLE_EQ(scorer->seen()[m], 0.1 * static_cast<double>(m + 1));
  const size_t n = policy->spaces[0].size();
  prices(2.0, 0.0);
  EXPECT_EQ(engine.Decide(policy, 0, x, {}).joint, n - 1);
  // The overload cap is a hard limit: a proposal above it goes to the rule under the cap.
  prices(2.0, 2.5);
  a = engine.Decide(policy, 0, x, {});
  EXPECT_EQ(a.joint, 1u);
  EXPECT_DOUBLE_EQ(a.cost, 2.0);
  // An actor that throws leaves the decision to the rule on the same scores.
  scorer->throws = true;
  prices(0.1, 0.0);
  a = engine.Decide(policy, 0, x, {});
  EXPECT_EQ(a.joint, n - 1);
  EXPECT_FALSE(a.fallback);
}

TEST_F(EngineTest, RepeatRequestGetsACacheChoice) {
  AllocationEngine engine(policy_, 16, 1);
  const std::vector<CachedStage> caches = {{3, true, 1.0, 30}};
  const Allocation a = engine.Decide(policy_, 0, std::vector<float>(8, 0.0f), caches);
  EXPECT_EQ(a.cache.reuse, 3);
}

}  // namespace
}  // namespace allot
