// The oracle is the optimum: on a small instance, brute force over every joint assignment finds
// no more revenue within the compute the oracle used; bisection meets the budget.
#include "sim/oracle.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>

#include "sim/bisection.h"
#include "sim/option_table.h"
#include "sim/request_stream.h"
#include "tests/sim/sim_test_util.h"

namespace allot::sim {
namespace {

// A small chain: 2 channels (3 subsets) x 2 pre-rank queues x 2 rank queues = 12 joint options.
constexpr char kSmallConfig[] = R"(
modules:
  - {name: recall,  cpu_target: 0.46, cpu_hard_limit: 0.8, initial_lambda: 0.1}
  - {name: prerank, cpu_target: 0.46, cpu_hard_limit: 0.8, initial_lambda: 0.1}
  - {name: rank,    cpu_target: 0.46, cpu_hard_limit: 0.8, initial_lambda: 0.1}
value_model: {bias: 0.0, bucket_bounds: [1.0], weights: {user_hist_value_log: 1.0}}
agents:
  - name: recall
    module: recall
    features: [user_hist_value_log]
    decisions:
      - name: channels
        kind: link
        safe_default: [hot]
        options:
          - {name: i2i, gain: [0.3, 0.3], cost_ms: 1.0}
          - {name: hot, gain: [0.1, 0.1], cost_ms: 0.3}
  - name: prerank
    module: prerank
    features: [recall_candidates_log]
    decisions:
      - name: queue_length
        kind: queue
        safe_default: "100"
        options:
          - {length: 100, gain: [0.5, 0.5], cost_ms: 0.8}
          - {length: 400, gain: [0.6, 0.6], cost_ms: 2.9}
  - name: rank
    module: rank
    features: [prerank_top_score]
    decisions:
      - name: queue_length
        kind: queue
        safe_default: "50"
        options:
          - {length: 50, gain: [0.6, 0.6], cost_ms: 1.5}
          - {length: 200, gain: [0.7, 0.7], cost_ms: 5.5}
cache_reuse: {enabled: false}
)";

TEST(OracleTest, MatchesBruteForceOnASmallInstance) {
  const auto world = std::make_unique<World>(LoadConfigFromString(kSmallConfig, "small"),
                                             LoadEmbeddedWorldConfig());
  StreamOptions stream;
  stream.seed = 11;
  stream.start_hour = 12;
  std::vector<Request> requests = RequestStream(*world, stream).Take(6);
  for (Request& r : requests)
    r.cache.present = false;  // brute force over the 12 joint options only
  const OptionTable table(*world, requests);
  ASSERT_EQ(table.num_combos(), 12u);

  // Exhaustive values and costs (no pruning) straight from the ground-truth model.
  const ChainLayout& layout = world->layout();
  std::vector<std::vector<std::array<double, 4>>> options(requests.size());  // value, costs
  for (size_t i = 0; i < requests.size(); ++i) {
    for (size_t combo = 0; combo < table.num_combos(); ++combo) {
      const DecodedOption d = table.DecodeCombo(combo);
      const StageResult recall =
          world->model().Recall(requests[i], layout.at_stage(kRecall).settings[d.joint[0]]);
      const StageResult pre = world->model().Prerank(
          requests[i], recall.out, layout.at_stage(kPrerank).settings[d.joint[1]]);
      const StageResult rank =
          world->model().Rank(requests[i], pre.out, layout.at_stage(kRank).settings[d.joint[2]]);
      options[i].push_back(
          {ChainModel::Revenue(requests[i], rank.out), recall.cost, pre.cost, rank.cost});
    }
  }
  // A budget that binds on every module: 60% of what maximal compute would use.
  std::vector<double> budget(3, 0.0);
  for (const auto& per_request : options) {
    for (int m = 0; m < 3; ++m) {
      double most = 0;
      for (const auto& o : per_request) most = std::max(most, o[1 + m]);
      budget[m] += 0.6 * most;
    }
  }
  BisectionOptions bisection;
  bisection.tolerance = 1e-5;
  bisection.max_rounds = 30;
  const OracleSolution oracle = SolveOracle(*world, table, budget, {}, bisection);
  for (int m = 0; m < 3; ++m) EXPECT_LE(oracle.cost[m], budget[m] * (1 + 1e-4)) << m;

  // Brute force: the best assignment within the compute the oracle used is worth no more.
  double best = -1;
  std::vector<size_t> pick(requests.size(), 0);
  const std::function<void(size_t, double, double, double, double)> search =
      [&](size_t i, double v, double c0, double c1, double c2) {
        const double slack = 1e-4;
        if (c0 > oracle.cost[0] * (1 + slack) || c1 > oracle.cost[1] * (1 + slack) ||
            c2 > oracle.cost[2] * (1 + slack)) {
          return;
        }
        if (i == requests.size()) {
          best = std::max(best, v);
          return;
        }
        for (const auto& o : options[i]) search(i + 1, v + o[0], c0 + o[1], c1 + o[2], c2 + o[3]);
      };
  search(0, 0, 0, 0, 0);
  EXPECT_GT(best, 0);
  EXPECT_NEAR(oracle.totals.value, best, 1e-4 * best);
}

TEST(OracleTest, BestStaticFitsTheBudget) {
  const auto world = testing::MakeWorld();
  StreamOptions stream;
  stream.start_hour = 10;
  const std::vector<Request> requests = RequestStream(*world, stream).Take(300);
  const OptionTable table(*world, requests);
  const OracleSolution unconstrained = SolveOracle(*world, table, {0, 0, 0});
  std::vector<double> budget = unconstrained.cost;
  for (double& b : budget) b *= 0.5;
  const StaticChoice fixed = BestStatic(*world, table, budget);
  ASSERT_TRUE(fixed.fits);
  const std::vector<double> cost = ModuleCosts(*world, fixed.totals.cost);
  for (int m = 0; m < 3; ++m) EXPECT_LE(cost[m], budget[m]);
  // The oracle does at least as well as any static allocation at the same budget.
  const OracleSolution oracle = SolveOracle(*world, table, budget);
  EXPECT_GE(oracle.totals.value, fixed.totals.value);
}

// A table over several versions of the same requests scores every option by its mean: over
// copies of one version it is that version's table, every fixed combination's totals are the
// mean of the versions' totals, and weights pick the versions.
TEST(OracleTest, ATableOverSamplesScoresEachOptionByItsMean) {
  const auto world = testing::MakeWorld();
  StreamOptions stream{.seed = 4, .name = "samples", .start_hour = 12};
  const std::vector<Request> a = RequestStream(*world, stream).Take(200);
  stream.posterior_sample = 1;
  const std::vector<Request> b = RequestStream(*world, stream).Take(200);
  const OptionTable table_a(*world, a);
  const OptionTable table_b(*world, b);

  const std::vector<std::vector<Request>> twice = {a, a};
  const OptionTable same(*world, std::span<const std::vector<Request>>(twice));
  ASSERT_EQ(same.num_options(), table_a.num_options());
  for (uint32_t o = 0; o < same.num_options(); ++o) {
    ASSERT_EQ(same.value(o), table_a.value(o)) << o;
    for (int s = 0; s < kNumStages; ++s) ASSERT_EQ(same.cost(o, s), table_a.cost(o, s)) << o;
  }

  const std::vector<std::vector<Request>> both = {a, b};
  const OptionTable mean(*world, std::span<const std::vector<Request>>(both));
  ASSERT_EQ(mean.num_requests(), 200u);
  size_t moved = 0;
  for (size_t c = 0; c < mean.num_combos(); ++c) {
    const OptionTotals& m = mean.fixed_totals()[c];
    const OptionTotals& ta = table_a.fixed_totals()[c];
    const OptionTotals& tb = table_b.fixed_totals()[c];
    EXPECT_NEAR(m.value, 0.5 * (ta.value + tb.value), 1e-6 * (1 + std::abs(m.value))) << c;
    for (int s = 0; s < kNumStages; ++s)
      EXPECT_NEAR(m.cost[s], 0.5 * (ta.cost[s] + tb.cost[s]), 1e-6 * (1 + m.cost[s])) << c;
    moved += ta.value != tb.value;
  }
  EXPECT_GT(moved, mean.num_combos() / 2);  // the two versions do differ

  // Weighted: all of the weight on one version is that version's table.
  const std::vector<std::vector<double>> only_b = {std::vector<double>(200, 0.0),
                                                   std::vector<double>(200, 3.0)};
  const OptionTable weighted(*world, std::span<const std::vector<Request>>(both), only_b);
  ASSERT_EQ(weighted.num_options(), table_b.num_options());
  for (uint32_t o = 0; o < weighted.num_options(); ++o)
    ASSERT_EQ(weighted.value(o), table_b.value(o));
  const std::vector<std::vector<double>> none = {std::vector<double>(200, 0.0),
                                                 std::vector<double>(200, 0.0)};
  EXPECT_THROW(OptionTable(*world, std::span<const std::vector<Request>>(both), none),
               std::invalid_argument);

  const std::vector<std::vector<Request>> uneven = {a,
                                                    std::vector<Request>(b.begin(), b.end() - 1)};
  EXPECT_THROW(OptionTable(*world, std::span<const std::vector<Request>>(uneven)),
               std::invalid_argument);
}

// Held to its target window by window, the oracle keeps every window within its own budget,
// earns no more than the daily optimum at the same compute, and with one window is that optimum.
TEST(OracleTest, WindowedOracleKeepsEveryWindowWithinItsBudget) {
  const auto world = testing::MakeWorld();
  StreamOptions stream;
  stream.start_hour = 6;  // the morning ramp: traffic and value per request change by the hour
  const RequestStream source(*world, stream);
  const std::vector<Request> requests = source.Take(1200);
  const double duration = requests.back().sim_s;
  const double window = duration / 4;
  const OptionTable table(*world, requests);
  const WindowedOracle w =
      SolveWindowedOracle(*world, table, requests, window, duration, source.scale());
  ASSERT_EQ(w.lambda.size(), 4u);
  std::vector<std::vector<double>> used(w.lambda.size(), std::vector<double>(3, 0.0));
  double revenue = 0.0;
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_EQ(w.window[i], std::min<uint32_t>(requests[i].sim_s / window, 3)) << i;
    revenue += table.value(w.chosen[i]);
    for (int s = 0; s < kNumStages; ++s)
      used[w.window[i]][world->layout().stage_module(s)] += table.cost(w.chosen[i], s);
  }
  for (size_t k = 0; k < used.size(); ++k) {
    const std::vector<double> budget = world->Budgets(window, source.scale());
    for (size_t m = 0; m < 3; ++m) EXPECT_LE(used[k][m], budget[m] * (1 + 1e-3)) << k << m;
  }
  std::vector<double> total(3, 0.0);
  for (const auto& u : used)
    for (size_t m = 0; m < 3; ++m) total[m] += u[m];
  const OracleSolution daily = SolveOracle(*world, table, total);
  EXPECT_LE(revenue, daily.totals.value * (1 + 1e-3));

  const WindowedOracle one =
      SolveWindowedOracle(*world, table, requests, 2 * duration, duration, source.scale());
  ASSERT_EQ(one.lambda.size(), 1u);
  const OracleSolution whole = SolveOracle(*world, table, world->Budgets(duration, source.scale()));
  double one_revenue = 0.0;
  for (uint32_t o : one.chosen) one_revenue += table.value(o);
  EXPECT_NEAR(one_revenue, whole.totals.value, 1e-3 * whole.totals.value);
}

TEST(BisectionTest, MeetsBudgetsOfCoupledModules) {
  // cost_0 = 10 / (1 + l0), cost_1 = 20 / (1 + l1) + 5 / (1 + l0): module 1 depends on both.
  const CostFunction cost = [](const std::vector<double>& l) {
    return std::vector<double>{10 / (1 + l[0]), 20 / (1 + l[1]) + 5 / (1 + l[0])};
  };
  const std::vector<double> lambda = CoordinateBisection(cost, {5.0, 12.0}, {0.1, 0.1});
  const std::vector<double> c = cost(lambda);
  EXPECT_NEAR(c[0], 5.0, 0.02);
  EXPECT_NEAR(c[1], 12.0, 0.05);
  EXPECT_LE(c[0], 5.0);
  EXPECT_LE(c[1], 12.0);
  // A slack budget leaves lambda at zero.
  EXPECT_EQ(CoordinateBisection(cost, {100.0, 100.0}, {0.5, 0.5})[0], 0.0);
}

// A table that would not fit its memory limit is refused early (after the first 100 requests of
// 400 here), with the projection and what to change named; under a generous limit it is built
// exactly as without one.
TEST(OracleTest, ATableProjectedPastItsMemoryLimitIsRefusedWithTheNumbers) {
  const auto world = testing::MakeWorld();
  const std::vector<Request> requests = RequestStream(*world, StreamOptions{}).Take(400);
  const OptionTable unlimited(*world, requests);
  const size_t bytes = unlimited.num_options() * (sizeof(float) * (1 + kNumStages) + 4);
  try {
    const OptionTable refused(*world, requests, bytes);  // the size fits, its growing peak not
    FAIL() << "a table past its limit was built";
  } catch (const OptionTableTooLarge& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("options kept per request over the first 100 of 400 requests"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("--requests"), std::string::npos) << what;
    EXPECT_NE(what.find("granularity"), std::string::npos) << what;
  }
  const OptionTable roomy(*world, requests, 10 * bytes);
  EXPECT_EQ(roomy.num_options(), unlimited.num_options());
  EXPECT_EQ(roomy.value(0), unlimited.value(0));
}

}  // namespace
}  // namespace allot::sim
