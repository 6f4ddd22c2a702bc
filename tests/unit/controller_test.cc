// Lambda control with a simulated clock and a simulated module: spikes, telemetry loss, noise,
// bounds, overload caps; plus the traffic forecast and ComRecycle's budget multiplier.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "policy/analytic_scorer.h"
#include "policy/cache_budget.h"
#include "policy/control_loop.h"
#include "policy/cost_curve.h"
#include "policy/pid_controller.h"
#include "policy/traffic_forecast.h"
#include "tests/unit/closed_loop.h"

namespace allot {
namespace {

using testing::ClosedLoop;

struct Quality {
  double mu = 0, nu = 0;
};

// ALGORITHMS.md section 4: use of budget and overshoot over a run.
Quality Measure(ClosedLoop& loop, size_t m, int periods, double qps_factor) {
  Quality q;
  const double target = loop.config().modules[m].cpu_target;
  for (int i = 0; i < periods; ++i) {
    loop.Tick(qps_factor);
    if (getenv("ALLOT_TRACE"))
      fprintf(stderr, "%d cpu=%.3f lambda=%.3f %s pred=%.3f\n", i, loop.cpu(m), loop.lambda(m),
              loop.decisions()[m].controller.c_str(), loop.decisions()[m].predicted_cpu);
    q.mu += std::min(loop.cpu(m), target) / target;
    q.nu += std::max(loop.cpu(m) - target, 0.0) / target;
  }
  q.mu /= periods;
  q.nu /= periods;
  return q;
}

class ControllerKindTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ControllerKindTest, SettlesAtTargetAndAbsorbsA2xSpike) {
  ClosedLoop loop(GetParam());
  for (int i = 0; i < 120; ++i) loop.Tick(1.0);
  const double base_lambda = loop.lambda(2);
  EXPECT_NEAR(loop.cpu(2), 0.46, 0.02);
  EXPECT_NEAR(base_lambda, 0.3, 0.1);
  const Quality spike = Measure(loop, 2, 120, 2.0);
  EXPECT_GT(loop.lambda(2), base_lambda * 1.5);
  EXPECT_NEAR(loop.cpu(2), 0.46, 0.02);
  EXPECT_GT(spike.mu, 0.9) << GetParam();
  EXPECT_LT(spike.nu, 0.08) << GetParam();
  // And back down when the spike ends.
  for (int i = 0; i < 120; ++i) loop.Tick(1.0);
  EXPECT_NEAR(loop.lambda(2), base_lambda, 0.1);
}

TEST_P(ControllerKindTest, NoisyTelemetryKeepsLoadNearTargetAndLambdaSmooth) {
  ClosedLoop loop(GetParam(), /*noise=*/0.04);
  for (int i = 0; i < 60; ++i) loop.Tick(1.0);
  double previous = loop.lambda(1);
  double mean_cpu = 0;
  for (int i = 0; i < 200; ++i) {
    loop.Tick(1.0);
    EXPECT_LE(std::abs(loop.lambda(1) - previous),
              MaxLambdaStep(loop.config().lambda, previous) + 1e-12);
    previous = loop.lambda(1);
    mean_cpu += loop.cpu(1) / 200;
  }
  // The MPC aims below the target by up to max_backoff when its predictions are this noisy.
  const double lowest =
      GetParam() == "mpc" ? 0.46 * (1 - loop.config().controller.mpc.max_backoff) : 0.46;
  EXPECT_GT(mean_cpu, lowest - 0.03);
  EXPECT_LT(mean_cpu, 0.46 + 0.03);
}

// A coarse lambda grid (6 points over four decades) is only where the search starts: the MPC
// refines between grid points and settles on the target, not on the nearest grid lambda's load.
TEST(ControlLoopTest, MpcSettlesBetweenGridLambdas) {
  ClosedLoop loop("mpc", /*noise=*/0.0, /*seed=*/3, /*overshoot_budget=*/0.004, [](AllotConfig& c) {
    c.controller.lambda_grid = 6;
    c.controller.mpc.samples = 0;  // no random shooting to land in between by luck
  });
  for (int i = 0; i < 90; ++i) loop.Tick(1.0);
  double mean_cpu = 0;
  for (int i = 0; i < 60; ++i) {
    loop.Tick(1.0);
    mean_cpu += loop.cpu(2) / 60;
  }
  EXPECT_NEAR(mean_cpu, 0.46, 0.002);
  const AllotConfig& c = loop.config();
  for (double g : LambdaGrid(c.lambda.min, c.lambda.max, c.controller.lambda_grid))
    EXPECT_GT(std::abs(loop.lambda(2) - g), 1e-3) << g;
}

// Overshoot is a chance constraint: with unpredictable load the MPC steers below the target far
// enough that the overshoot left is overshoot_budget on average, and at the target itself when
// the budget allows the overshoot of aiming there.
TEST(ControlLoopTest, MpcBacksOffByItsPredictionErrorUnderNoise) {
  struct Result {
    double mean_cpu = 0, overshoot = 0;
  };
  auto run = [](double overshoot_budget) {
    ClosedLoop loop("mpc", /*noise=*/0.03, /*seed=*/5, overshoot_budget);
    for (int i = 0; i < 100; ++i) loop.Tick(1.0);
    Result r;
    for (int i = 0; i < 400; ++i) {
      loop.Tick(1.0);
      r.mean_cpu += loop.cpu(1) / 400;
      r.overshoot += std::max(loop.cpu(1) - 0.46, 0.0) / 0.46 / 400;
    }
    return r;
  };
  const Result at_target = run(0.5);
  const Result backed_off = run(0.004);
  EXPECT_NEAR(at_target.mean_cpu, 0.46, 0.015);
  // Noise 0.03 is 6.5% of the target; the back-off follows it (and stays under max_backoff).
  EXPECT_LT(backed_off.mean_cpu, at_target.mean_cpu - 0.01);
  EXPECT_GT(backed_off.mean_cpu, 0.46 * (1 - 0.1) - 0.015);
  EXPECT_LT(backed_off.overshoot, 0.008);
  EXPECT_GT(at_target.overshoot, 2 * backed_off.overshoot);
}

TEST_P(ControllerKindTest, LambdaStaysWithinBounds) {
  ClosedLoop loop(GetParam());
  for (int i = 0; i < 200; ++i) {
    loop.Tick(50.0);  // far more traffic than any lambda can absorb
    EXPECT_LE(loop.lambda(0), loop.config().lambda.max);
  }
  EXPECT_DOUBLE_EQ(loop.lambda(0), loop.config().lambda.max);
  for (int i = 0; i < 200; ++i) {
    loop.Tick(0.01);  // almost no traffic
    EXPECT_GE(loop.lambda(0), loop.config().lambda.min);
  }
  EXPECT_LT(loop.lambda(0), 0.01);
}

TEST_P(ControllerKindTest, TelemetryLossHoldsThenDecaysThenRecovers) {
  ClosedLoop loop(GetParam());
  for (int i = 0; i < 60; ++i) loop.Tick(2.0);
  const double held = loop.lambda(2);
  ASSERT_GT(held, 0.4);
  const double stale_after = loop.config().lambda.stale_after_s;
  for (int i = 0; i < static_cast<int>(2 * stale_after); ++i) {
    loop.Tick(2.0, /*report=*/false);
    EXPECT_DOUBLE_EQ(loop.lambda(2), held) << "period " << i;
  }
  EXPECT_EQ(loop.decisions()[2].controller, "hold");
  EXPECT_TRUE(loop.decisions()[2].stale);
  for (int i = 0; i < 400; ++i) loop.Tick(2.0, false);
  EXPECT_EQ(loop.decisions()[2].controller, "decay");
  EXPECT_NEAR(loop.lambda(2), loop.config().lambda.safe_value, 0.01);
  for (int i = 0; i < 120; ++i) loop.Tick(2.0);
  EXPECT_FALSE(loop.decisions()[2].stale);
  EXPECT_NEAR(loop.cpu(2), 0.46, 0.02);
}

INSTANTIATE_TEST_SUITE_P(Kinds, ControllerKindTest, ::testing::Values("mpc", "pid"));

TEST(ControlLoopTest, MpcTracksBetterThanPidThroughASpike) {
  ClosedLoop mpc("mpc"), pid("pid");
  for (int i = 0; i < 120; ++i) {
    mpc.Tick(1.0);
    pid.Tick(1.0);
  }
  const Quality q_mpc = Measure(mpc, 2, 60, 2.0);
  const Quality q_pid = Measure(pid, 2, 60, 2.0);
  EXPECT_LE(q_mpc.nu, q_pid.nu + 1e-9) << "mpc nu " << q_mpc.nu << " pid nu " << q_pid.nu;
  EXPECT_EQ(mpc.decisions()[2].controller, "mpc");
  EXPECT_GT(mpc.decisions()[2].forecast_qps, 0);
  EXPECT_EQ(mpc.decisions()[2].forecast.size(),
            static_cast<size_t>(mpc.config().controller.mpc.horizon));
}

TEST(ControlLoopTest, OverloadAboveTheHardLimitCapsRequestCost) {
  ClosedLoop loop("pid");
  for (int i = 0; i < 30; ++i) loop.Tick(1.0);
  loop.SetCpuForTest(2, 0.99);
  loop.Tick(20.0);
  const ModuleDecision& d = loop.decisions()[2];
  ASSERT_TRUE(d.capped);
  EXPECT_GT(d.max_cost_ms, 0);
  const Allocation a = loop.engine().Decide(loop.policy(), 2, loop.request(0), {});
  // When no action fits under the cap the cheapest one (1.5 ms for rank) is chosen.
  EXPECT_LE(a.cost, std::max(d.max_cost_ms, 1.5));
}

// An MPC control loop fed by a real engine (analytic scores) and load reports, on a manual clock.
struct EngineMpcLoop {
  explicit EngineMpcLoop(size_t reservoir) : engine(policy, reservoir, 1) {}
  std::shared_ptr<const AllotConfig> config = ClosedLoop::MakeConfig("mpc", 1.0);
  ManualClock clock;
  std::shared_ptr<const PolicySnapshot> policy =
      MakePolicySnapshot(config, std::make_shared<const AnalyticScorer>(*config));
  AllocationEngine engine;
  TelemetryStore store{clock};
  ReportLoadSource source{store};
  EnginePorts ports{engine};
  ControlLoop loop{config, ControlPorts{&source, &ports, &ports, &clock}};
};

TEST(ControlLoopTest, MpcFallsBackToPidWithoutScoredRequests) {
  EngineMpcLoop w(16);
  w.store.Report("rank", "", {0.9, 100, 0, w.clock.NowMs()});
  const auto d = w.loop.Step();
  EXPECT_EQ(d[2].controller, "pid");
  EXPECT_GT(d[2].lambda, 0.1);          // overloaded: the price of compute goes up
  EXPECT_EQ(d[0].controller, "decay");  // recall never reported
}

// A load report may carry any finite QPS, a tiny one too (the fuzzer sent 7e-307). The MPC's
// calibration divided the measured CPU by a demand that small, and once the QPS was sane again its
// prediction came out infinite. Every number the loop publishes stays finite, and the MPC steers
// again once the reports are sane.
TEST(ControlLoopTest, ATinyQpsReportKeepsEveryDecisionFinite) {
  for (const double tiny : {std::numeric_limits<double>::denorm_min(), 7e-307, 1e-30}) {
    EngineMpcLoop w(64);
    const std::vector<float> features = {0.5f, 0.5f, 0.05f, 0.0f, 0.0f, 1.0f, 0.5f, 5.0f};
    std::string rank_controller;
    for (int period = 0; period < 12; ++period) {
      for (int i = 0; i < 32; ++i) w.engine.Decide(w.policy, 2, features, {});
      const double qps = period < 2 ? tiny : 1188;
      w.store.Report("rank", "", {0.6, qps, 0, w.clock.NowMs()});
      const std::vector<ModuleDecision> decisions = w.loop.Step();
      for (const ModuleDecision& d : decisions) {
        EXPECT_TRUE(std::isfinite(d.lambda) && std::isfinite(d.predicted_cpu) &&
                    std::isfinite(d.forecast_qps) && std::isfinite(d.max_cost_ms))
            << "qps " << qps << " after " << tiny << ": lambda " << d.lambda << " predicted "
            << d.predicted_cpu << " forecast " << d.forecast_qps << " cap " << d.max_cost_ms;
      }
      rank_controller = decisions[2].controller;
      w.clock.AdvanceMs(1000);
    }
    EXPECT_EQ(rank_controller, "mpc") << "after " << tiny;
  }
}

// The controller's curve re-decides recent requests as the request path does: a choice that loads
// a later module is priced at that module's current lambda, so the own module's predicted cost
// follows what the agent will really choose.
// Replicas with the same telemetry: every module at its target (no PID step) and a cluster
// price, so what moves a replica's price is the consensus pull alone.
class SharedTelemetry final : public TelemetrySource {
 public:
  explicit SharedTelemetry(const ManualClock& clock) : clock_(clock) {}
  const char* name() const override { return "prometheus"; }
  std::optional<LoadSample> Latest(const std::string&, std::string*) override {
    return LoadSample{0.46, 1000, 0, clock_.NowMs()};
  }
  std::optional<double> ClusterPrice(const std::string&, std::string*) override { return cluster; }
  std::optional<double> cluster;

 private:
  const ManualClock& clock_;
};

class Board final : public PriceBoard, public SampleSource {
 public:
  explicit Board(double lambda) : lambda_(3, lambda) {}
  std::vector<double> Current(const AllotConfig&) const override { return lambda_; }
  void Publish(const AllotConfig&, std::span<const ModuleDecision> d) override {
    for (size_t m = 0; m < d.size(); ++m) lambda_[m] = d[m].lambda;
  }
  std::vector<ScoredSample> Recent() const override { return {}; }
  double lambda(size_t m) const { return lambda_[m]; }

 private:
  std::vector<double> lambda_;
};

TEST(ControlLoopTest, ReplicasArePulledTowardsTheClusterPriceWhereTheyAskForIt) {
  AllotConfig c = LoadEmbeddedDefaultConfig();
  c.controller.kind = ControllerKind::kPid;
  c.lambda.consensus = 0.3;
  c.modules[0].price_query = "price";  // modules 1 and 2 have no price query
  ManualClock clock;
  SharedTelemetry telemetry(clock);
  telemetry.cluster = 0.1;
  Board board(1.0);
  ControlLoop loop(std::make_shared<const AllotConfig>(c),
                   ControlPorts{&telemetry, &board, &board, &clock});
  for (int period = 1; period <= 3; ++period) {
    clock.AdvanceMs(1000);
    loop.Step();
    // log(lambda / cluster) shrinks by (1 - consensus) per period.
    EXPECT_NEAR(std::log(board.lambda(0) / 0.1), std::pow(0.7, period) * std::log(10.0), 1e-9);
    EXPECT_DOUBLE_EQ(board.lambda(1), 1.0);
  }
  telemetry.cluster.reset();  // the query failed: the replica keeps its own price
  const double own = board.lambda(0);
  clock.AdvanceMs(1000);
  loop.Step();
  EXPECT_DOUBLE_EQ(board.lambda(0), own);

  c.lambda.consensus = 0;
  telemetry.cluster = 0.1;
  Board alone(1.0);
  ControlLoop off(std::make_shared<const AllotConfig>(c),
                  ControlPorts{&telemetry, &alone, &alone, &clock});
  clock.AdvanceMs(1000);
  off.Step();
  EXPECT_DOUBLE_EQ(alone.lambda(0), 1.0);
}

TEST(CostCurveTest, ReDecidesWithTheLaterModulesPrices) {
  ScoredSample s;
  s.agent = 0;
  s.value = {1.0, 1.5};
  s.cost = {1.0, 2.0};
  s.cross_module = {1};
  s.cross_cost = {0.0, 5.0};
  const std::vector<double> grid = {0.01, 1.0};
  const CostCurve unpriced({s}, {true}, grid);
  EXPECT_DOUBLE_EQ(unpriced.At(0.01), 2.0);  // 1.5 - 0.02 beats 1.0 - 0.01
  const std::vector<double> lambdas = {0.01, 0.2};
  const CostCurve priced({s}, {true}, grid, lambdas);
  EXPECT_DOUBLE_EQ(priced.At(0.01), 1.0);  // 1.5 - 0.02 - 1.0 loses to 0.99
  EXPECT_DOUBLE_EQ(priced.At(1.0), 1.0);
}

TEST(PidTest, NoWindupAfterLongSaturation) {
  AllotConfig config = LoadEmbeddedDefaultConfig();
  PidController pid(config);
  double lambda = config.lambda.max;
  for (int i = 0; i < 1000; ++i)
    lambda = std::min(config.lambda.max, pid.Step(0, lambda, 1.0, 0.46, 1.0));
  EXPECT_DOUBLE_EQ(lambda, config.lambda.max);
  // The first period below target already lowers lambda: nothing was stored up while saturated.
  EXPECT_LT(pid.Step(0, lambda, 0.3, 0.46, 1.0), config.lambda.max);
}

TEST(ForecastTest, ConstantTrafficForecastsItself) {
  TrafficForecast f({3600, 60, 0.3, 0.05, 0.5});
  for (int t = 0; t < 500; ++t) f.Observe(t, 200);
  for (double q : f.Horizon(500, 1, 10)) EXPECT_NEAR(q, 200, 1e-6);
}

TEST(ForecastTest, LinearTrendIsExtrapolated) {
  TrafficForecast f({1e9, 1, 0.5, 0.3, 0.5});  // one slot spanning everything: no seasonality
  for (int t = 0; t < 600; ++t) f.Observe(t, 100 + 0.5 * t);
  EXPECT_NEAR(f.At(609), 100 + 0.5 * 609, 1.0);
  EXPECT_NEAR(f.At(599 + 60), 100 + 0.5 * 659, 2.0);
}

TEST(ForecastTest, LearnsTheDailyProfileAndScalesItToToday) {
  const double day = 3600;
  TrafficForecast f({day, 60, 0.3, 0.01, 0.5});
  auto usual = [&](double t) { return 1000 * (1 + 0.5 * std::sin(2 * M_PI * t / day)); };
  for (int t = 0; t < 3 * day; ++t) f.Observe(t, usual(t));
  // A day later the forecast follows the profile ten periods ahead.
  double worst = 0;
  for (int t = 3 * day; t < 4 * day; ++t) {
    worst = std::max(worst, std::abs(f.At(t + 10) - usual(t + 10)) / usual(t + 10));
    f.Observe(t, usual(t));
  }
  EXPECT_LT(worst, 0.03);
  // A promotion doubles traffic: within a minute the forecast is twice the usual day.
  for (int t = 4 * day; t < 4 * day + 60; ++t) f.Observe(t, 2 * usual(t));
  const double t = 4 * day + 70;
  EXPECT_NEAR(f.At(t) / usual(t), 2.0, 0.1);
}

TEST(CacheBudgetTest, MultiplierMeetsTheDecayBudget) {
  CacheReuseConfig config;
  config.max_age_s = 300;
  config.budget.decay_budget = 0.05;
  config.stages = {
      {"recall", "recall", 240, 4}, {"prerank", "prerank", 120, 2}, {"rank", "rank", 45, 4}};
  std::mt19937 rng(5);
  std::exponential_distribution<double> value(1.0), age(1.0 / 60);
  std::vector<double> values;
  std::vector<std::vector<CachedStage>> caches;
  for (int i = 0; i < 2000; ++i) {
    values.push_back(value(rng));
    const double a = age(rng);
    caches.push_back({{1, true, a, 100}, {3, true, a, 20}});
  }
  const double mu = CacheBudget::SolveMu(config, values, caches);
  double total = 0, lost = 0, saved = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const CacheReuseChoice c = ChooseCacheReuse(config, values[i], {}, caches[i], mu);
    total += values[i];
    lost += values[i] * (1 - c.value_retained);
    saved += c.cost_saved_ms;
  }
  EXPECT_LE(lost, 0.05 * total + 1e-9);
  EXPECT_GT(lost, 0.04 * total);  // the budget is used, not wasted
  EXPECT_GT(saved, 0);
  // A tighter budget needs a larger multiplier and saves less.
  config.budget.decay_budget = 0.01;
  EXPECT_GT(CacheBudget::SolveMu(config, values, caches), mu);
}

TEST(CacheBudgetTest, WindowAppliesToTheNextWindow) {
  CacheReuseConfig config;
  config.budget.window_s = 900;
  config.stages = {{"rank", "rank", 45, 4}};
  CacheBudget budget(config);
  EXPECT_FALSE(budget.MaybeRoll(0));  // opens the first window
  const std::vector<CachedStage> caches = {{3, true, 5, 10}};
  for (int i = 0; i < 100; ++i) budget.Record(1.0, caches);
  EXPECT_DOUBLE_EQ(budget.mu(), CacheBudget::kInitialMu);
  EXPECT_FALSE(budget.MaybeRoll(899));
  EXPECT_TRUE(budget.MaybeRoll(900));
  EXPECT_LT(budget.mu(), CacheBudget::kInitialMu);
}

}  // namespace
}  // namespace allot
