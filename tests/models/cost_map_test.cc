// The AutoBucket cost map: recovering a known additive cost structure from testbench-style rows,
// monotone queue costs, the bundle file round trip, and errors that name what is wrong.
#include "models/cost_map.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <sstream>

#include "models/served_scores.h"
#include "policy/action_space.h"
#include "policy/cost_order.h"
#include "tests/models/synthetic_testbench.h"

namespace allot::models {
namespace {

using namespace allot::testing::testbench;  // NOLINT: the ground truth's constants

class CostMapTest : public ::testing::Test {
 protected:
  AllotConfig config_ = LoadEmbeddedDefaultConfig();
  int buckets_ = static_cast<int>(config_.value_model.bucket_bounds.size()) + 1;
};

TEST_F(CostMapTest, RecoversAnAdditiveStageCostForEveryJointAction) {
  const CostMap map = FitCostMap(TestbenchCsv(buckets_), "bench.csv", config_);
  for (int b = 0; b < buckets_; ++b) {
    const double s = BucketScale(b);
    const ActionSpace recall(config_.agents[0]);
    for (size_t j = 0; j < recall.size(); ++j) {
      double truth = kFixed + (recall.Choice(j, 1) ? kElastic : 0.0);
      for (int c = 0; c < 5; ++c)
        if (recall.Choice(j, 0) & (1u << c)) truth += kChannel[c];
      EXPECT_NEAR(map.At(0, b, j), s * truth, 1e-9) << "recall joint " << j << " bucket " << b;
    }
    const ActionSpace rank(config_.agents[2]);
    for (size_t j = 0; j < rank.size(); ++j) {
      const double truth = kRank[rank.Choice(j, 0)] + (rank.Choice(j, 1) ? kHeavy : 0.0);
      EXPECT_NEAR(map.At(2, b, j), s * truth, 1e-9) << "rank joint " << j;
    }
  }
}

TEST_F(CostMapTest, QueueCostIsMonotoneInQueueLength) {
  const CostMap map = FitCostMap(TestbenchCsv(buckets_), "bench.csv", config_);
  // 200 and 400 measured 2.0 and 1.8: pooled to their mean.
  EXPECT_NEAR(map.At(1, 0, 0), 1.0, 1e-9);
  EXPECT_NEAR(map.At(1, 0, 1), 1.9, 1e-9);
  EXPECT_NEAR(map.At(1, 0, 2), 1.9, 1e-9);
  EXPECT_NEAR(map.At(1, 0, 3), 5.0, 1e-9);
}

TEST_F(CostMapTest, BundleFileRoundTripsAndIsCheckedAgainstTheConfig) {
  const CostMap map = FitCostMap(TestbenchCsv(buckets_), "bench.csv", config_);
  const CostMap back = ParseCostMapYaml(CostMapYaml(map, config_), "cost_map.yaml", config_);
  ASSERT_EQ(back.cost.size(), map.cost.size());
  for (size_t a = 0; a < map.cost.size(); ++a) {
    for (size_t b = 0; b < map.cost[a].size(); ++b) {
      for (size_t j = 0; j < map.cost[a][b].size(); ++j)
        EXPECT_NEAR(back.cost[a][b][j], map.cost[a][b][j], 1e-12);
    }
  }
  AllotConfig other = config_;
  other.agents[1].decisions[0].options.pop_back();  // prerank loses a queue length
  try {
    ParseCostMapYaml(CostMapYaml(map, config_), "cost_map.yaml", other);
    FAIL() << "a map for another action space was accepted";
  } catch (const CostMapError& e) {
    EXPECT_STREQ(e.what(),
                 "cost_map.yaml: agents[1].cost_ms: expected 3 finite non-negative costs per row");
  }
}

TEST_F(CostMapTest, ErrorsNameTheFileLineAndField) {
  auto error = [&](const std::string& csv) {
    try {
      FitCostMap(csv, "bench.csv", config_);
    } catch (const CostMapError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error(TestbenchCsv(buckets_, /*drop_one=*/true)),
            "bench.csv: no measurement for agent recall, decision channels, option graph, value "
            "bucket 1");
  std::string csv = TestbenchCsv(buckets_);
  const size_t second_line = csv.find('\n') + 1;
  csv.replace(csv.find(",100\n", second_line), 5, ",abc\n");
  EXPECT_EQ(error(csv), "bench.csv: line 2: requests: not a finite number: 'abc'");
  EXPECT_EQ(error("agent,decision\nrecall,channels\n"),
            "bench.csv: line 1: missing column 'option'");
  // 17 rows per bucket after the header.
  EXPECT_EQ(
      error(TestbenchCsv(buckets_) + "gpu,gpu,x,queue,1,1,0,1.0,100\n"),
      "bench.csv: line " + std::to_string(17 * buckets_ + 2) + ": agent: unknown agent 'gpu'");
}

// A map row that breaks the cost order (a longer pre-rank queue measured cheaper) is served in
// the order, as a learned cost would be: the row is made monotone once at load, and the served
// own cost is exactly what Enforce makes of the raw row, in every bucket.
TEST_F(CostMapTest, ServedOwnCostFromTheMapIsTheRowInTheCostOrder) {
  auto map = std::make_shared<CostMap>();
  map->cost.resize(config_.agents.size());
  const ActionSpace prerank(config_.agents[1]);
  for (int b = 0; b < buckets_; ++b) {
    map->cost[1].push_back({3.0 + b, 1.0, 2.5, 0.5});  // queues 100, 200, 400, 800
  }
  ASSERT_EQ(prerank.size(), 4u);
  ServedCostMap costs{map, {false, true, false}};
  const AgentServing serving(config_, 1, 0.0, 1.0, costs);
  ASSERT_TRUE(serving.OwnCostFromMap(costs));
  const CostOrder order(config_.agents[1], prerank);
  const std::vector<float> q(4, 0.0f);
  const std::vector<float> log_cost(serving.output_slot.size() * 4, 0.0f);  // later: e^0 = 1
  for (int b = 0; b < buckets_; ++b) {
    // The user value that lands in bucket b: just above the bucket's lower bound.
    const double user_value = b == 0 ? 1e-3 : config_.value_model.bucket_bounds[b - 1] * 1.01;
    AgentScores out;
    FinishScores(serving, config_.value_model, costs, std::log(user_value), q.data(),
                 log_cost.data(), serving.output_slot.size(), &out);
    ASSERT_EQ(out.value_bucket, b);
    std::vector<double> expected = map->cost[1][static_cast<size_t>(b)];
    order.Enforce(expected);
    EXPECT_EQ(out.cost, expected) << "bucket " << b;
    EXPECT_EQ(out.cost, std::vector<double>(4, 3.0 + b));
    EXPECT_EQ(out.cross_cost, std::vector<double>(out.cross_module.size() * 4, 1.0));
  }
}

}  // namespace
}  // namespace allot::models
