// What a control loop learned survives reconfiguration, and the MPC's plan is a pure function of
// its inputs.
#include <gtest/gtest.h>

#include <random>

#include "policy/cache_budget.h"
#include "policy/mpc_controller.h"
#include "tests/unit/closed_loop.h"

namespace allot {
namespace {

using testing::ClosedLoop;

const MpcController& Mpc(const ClosedLoop& loop) {
  return dynamic_cast<const MpcController&>(loop.loop().controller());
}

TEST(ReconfigureTest, SameModulesKeepTheControllersStateAndTakeTheNewTarget) {
  ClosedLoop loop("mpc");
  for (int i = 0; i < 90; ++i) loop.Tick(1.0);
  const MpcController* before = &Mpc(loop);
  const double calibration = before->calibration(2);
  const double lambda = loop.lambda(2);
  const std::vector<ModuleDecision> decided = loop.loop().last();
  ASSERT_GT(calibration, 0.0);

  loop.Reconfigure("mpc", [](AllotConfig& c) { c.modules[2].cpu_target = 0.40; });
  EXPECT_EQ(&Mpc(loop), before) << "the controller was rebuilt";
  EXPECT_DOUBLE_EQ(Mpc(loop).calibration(2), calibration);
  EXPECT_DOUBLE_EQ(loop.lambda(2), lambda);
  ASSERT_EQ(loop.loop().last().size(), decided.size());
  EXPECT_DOUBLE_EQ(loop.loop().last()[2].predicted_cpu, decided[2].predicted_cpu);

  // A warm controller heads for the new target from the first period: it keeps its forecast and
  // back-off, so it is not the cold start at max_backoff below the target.
  for (int i = 0; i < 30; ++i) loop.Tick(1.0);
  EXPECT_EQ(loop.decisions()[2].controller, "mpc");
  EXPECT_NEAR(loop.cpu(2), 0.40, 0.02);
  EXPECT_GT(loop.lambda(2), lambda);
}

TEST(ReconfigureTest, AnotherKindOrModuleSetStartsAFreshController) {
  ClosedLoop loop("mpc");
  for (int i = 0; i < 30; ++i) loop.Tick(1.0);
  loop.Reconfigure("pid");
  EXPECT_STREQ(loop.loop().controller().name(), "pid");
  EXPECT_EQ(loop.loop().last().size(), 3u)
      << "same modules: the last decisions still describe them";
  for (int i = 0; i < 60; ++i) loop.Tick(1.0);
  EXPECT_NEAR(loop.cpu(2), 0.46, 0.02);

  loop.Reconfigure("mpc", [](AllotConfig& c) {
    c.modules[0].name = "retrieval";
    for (AgentConfig& a : c.agents)
      if (a.module == "recall") a.module = "retrieval";
    for (CacheStageConfig& s : c.cache_reuse.stages)
      if (s.module == "recall") s.module = "retrieval";
  });
  EXPECT_STREQ(loop.loop().controller().name(), "mpc");
  EXPECT_TRUE(loop.loop().last().empty());
  EXPECT_EQ(Mpc(loop).calibration(2), 0.0);
}

TEST(ReconfigureTest, CacheBudgetWindowSurvivesASwapThatKeepsCacheReuse) {
  auto budget_mode = [](AllotConfig& c) { c.cache_reuse.mode = CacheReuseMode::kBudget; };
  ClosedLoop loop("mpc", 0.0, 3, 0.004, budget_mode);
  const std::shared_ptr<CacheBudget> budget = loop.engine().cache_budget();
  ASSERT_NE(budget, nullptr);
  loop.Reconfigure("mpc", [&](AllotConfig& c) {
    budget_mode(c);
    c.modules[1].cpu_target = 0.5;
  });
  EXPECT_EQ(loop.engine().cache_budget(), budget);
  loop.Reconfigure("mpc", [&](AllotConfig& c) {
    budget_mode(c);
    c.cache_reuse.budget.decay_budget = 0.05;
  });
  EXPECT_NE(loop.engine().cache_budget(), budget);
}

// A cost curve whose mean chosen cost falls smoothly with lambda: requests of spread-out value
// choosing among four options.
CostCurve SmoothCurve(const AllotConfig& config) {
  std::vector<ScoredSample> samples;
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> value(0.0, 1.0);
  for (int i = 0; i < 400; ++i) {
    ScoredSample s;
    const double u = value(rng);
    s.cost = {1.0, 2.0, 4.0, 8.0};
    for (double c : s.cost) s.value.push_back(u * std::log1p(c));
    samples.push_back(std::move(s));
  }
  return CostCurve(samples, {true}, LambdaGrid(config.lambda.min, config.lambda.max, 48));
}

// The lambda at which the curve's steady-state load k * qps * cost(lambda) equals `load`.
double LambdaFor(const CostCurve& curve, double k, double qps, double load) {
  double lo = 1e-4, hi = 20.0;
  for (int i = 0; i < 100; ++i) {
    const double mid = std::sqrt(lo * hi);
    (k * qps * curve.At(mid) > load ? lo : hi) = mid;
  }
  return lo;
}

TEST(MpcPlanTest, HoldsAtTheAimAndMovesTowardsItWithinTheRateLimit) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const CostCurve curve = SmoothCurve(config);
  const double k = 0.46 / (1000 * curve.At(0.5));  // lambda 0.5 meets 0.46 at 1000 qps
  MpcPlanInput in{0.5, 0.46, 0.46, k, std::vector<double>(10, 1000.0), &curve};
  std::mt19937_64 rng(1);
  EXPECT_NEAR(PlanLambda(config.controller.mpc, config.lambda, in, rng), 0.5, 0.01);

  // Twice the traffic from now on: the load must come down, so lambda goes up, by at most a step.
  in.qps.assign(10, 2000.0);
  const double planned = PlanLambda(config.controller.mpc, config.lambda, in, rng);
  EXPECT_GT(planned, 0.5);
  EXPECT_LE(planned, 0.5 + MaxLambdaStep(config.lambda, 0.5) + 1e-12);
  // And it settles where the doubled traffic meets the aim.
  double lambda = 0.5;
  for (int i = 0; i < 40; ++i) {
    in.lambda = lambda;
    in.start_load = k * 2000.0 * curve.At(lambda);
    lambda = PlanLambda(config.controller.mpc, config.lambda, in, rng);
  }
  EXPECT_NEAR(lambda, LambdaFor(curve, k, 2000.0, 0.46), 0.05 * lambda);
}

// Move suppression scales with the load's unpredictable scatter: with none, the plan is the
// unsuppressed one; the noisier the load, the smaller the step towards an error of the same size.
TEST(MpcPlanTest, MovesLessTheNoisierTheLoad) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const CostCurve curve = SmoothCurve(config);
  const double k = 0.46 / (1000 * curve.At(0.5));
  MpcConfig options = config.controller.mpc;
  options.samples = 0;  // the deterministic candidates only
  MpcPlanInput in{0.5, 0.46, 0.46, k, std::vector<double>(10, 1300.0), &curve};
  std::mt19937_64 rng(1);
  options.move_penalty = 0.0;
  const double free = PlanLambda(options, config.lambda, in, rng);
  ASSERT_GT(free, 0.5);  // more traffic: dearer compute
  options.move_penalty = 5.0;
  EXPECT_DOUBLE_EQ(PlanLambda(options, config.lambda, in, rng), free);  // noise 0
  in.noise = 0.02;
  const double calm = PlanLambda(options, config.lambda, in, rng);
  in.noise = 0.2;
  const double noisy = PlanLambda(options, config.lambda, in, rng);
  EXPECT_GT(noisy, 0.5);
  EXPECT_LT(noisy, calm);
  EXPECT_LE(calm, free);
  EXPECT_GT(calm - 0.5, 0.9 * (free - 0.5));  // a predictable load is followed nearly as fast
}

TEST(OvershootBackoffTest, ScatterIsTheErrorsRobustSpread) {
  OvershootBackoff backoff(60, 0.0035, 0.1);
  const double errors[] = {-0.2, -0.1, 0.0, 0.1, 0.2};  // median 0, median absolute deviation 0.1
  for (int i = 0; i < 10; ++i) {
    if (i + 1 == static_cast<int>(OvershootBackoff::kMinErrors)) {
      EXPECT_EQ(backoff.scatter(), 0.0);  // too few errors to judge
    }
    backoff.Add(errors[i % 5]);
  }
  EXPECT_NEAR(backoff.scatter(), 1.4826 * 0.1, 1e-12);
  backoff.Add(5.0);  // one wild miss does not move it
  EXPECT_NEAR(backoff.scatter(), 1.4826 * 0.1, 1e-12);
}

TEST(MpcPlanTest, SameInputsAndSeedGiveTheSamePlan) {
  const AllotConfig config = LoadEmbeddedDefaultConfig();
  const CostCurve curve = SmoothCurve(config);
  const MpcPlanInput in{
      0.3, 0.5, 0.44, 0.46 / (1000 * curve.At(0.5)), std::vector<double>(10, 1300.0), &curve};
  std::mt19937_64 a(9), b(9);
  EXPECT_EQ(PlanLambda(config.controller.mpc, config.lambda, in, a),
            PlanLambda(config.controller.mpc, config.lambda, in, b));
  // A path that stays at the aim costs nothing; one that stays away from it does.
  MpcPlanInput steady = in;
  steady.start_load = steady.aim;
  steady.qps.assign(10, steady.aim / (steady.k * curve.At(0.3)));
  EXPECT_NEAR(PathCost(config.controller.mpc, steady, std::vector<double>(10, 0.3)), 0.0, 1e-12);
  EXPECT_GT(PathCost(config.controller.mpc, steady, std::vector<double>(10, 0.01)), 1e-4);
}

}  // namespace
}  // namespace allot
